"""Business rules of the listings domain, one module per concern; this module re-exports them (the shell and
the endpoints import ``listings.service``). Functions take a session and never commit.

* :mod:`listings.access`: who may see and change what (drafts answer 404 outside the owning organisation);
* :mod:`listings.sites`: sites and certificates;
* :mod:`listings.assets`: creating and editing listings;
* :mod:`listings.lifecycle`: submit, archive, moderation and flags;
* :mod:`listings.slots`: one listing's availability, free slots, lab capacity and ``next_free_at``;
* :mod:`listings.search`: search over published listings;
* :mod:`listings.calendar`: calendars of many assets at once (matching);
* :mod:`listings.ports`: the settings and where booked time comes from.
"""

from __future__ import annotations

from listings.access import visible_asset
from listings.assets import DEFAULT_CANCELLATION_POLICY, create_asset, list_org_assets, update_asset
from listings.lifecycle import admin_transition, flag, history, moderation_queue, owner_transition, resolve_flag
from listings.ports import BlockedTime, Interval, ListingsConfig, NoBookings
from listings.search import SearchHit, SearchQuery, _filters, search
from listings.sites import (
    SITE_LOCATION_FIELDS,
    add_certificate,
    create_site,
    decide_certificate,
    get_site,
    list_certificates,
    list_sites,
    listed_certificates,
    remove_certificate,
    site_certificates,
    update_site,
)
from listings.slots import (
    bookable_windows,
    exception_ranges,
    free_slots,
    get_availability,
    lab_capacity,
    lab_open_days,
    machine_free,
    next_free_slot,
    next_free_slots,
    refresh_due,
    refresh_next_free,
    set_availability,
    sync_exceptions,
    weekly_windows,
)

_lab_open_days = lab_open_days  # the name the bookings room uses


__all__ = [
    "DEFAULT_CANCELLATION_POLICY",
    "SITE_LOCATION_FIELDS",
    "BlockedTime",
    "Interval",
    "ListingsConfig",
    "NoBookings",
    "SearchHit",
    "SearchQuery",
    "_filters",
    "_lab_open_days",
    "add_certificate",
    "admin_transition",
    "bookable_windows",
    "create_asset",
    "create_site",
    "decide_certificate",
    "exception_ranges",
    "flag",
    "free_slots",
    "get_availability",
    "get_site",
    "history",
    "lab_capacity",
    "lab_open_days",
    "list_certificates",
    "list_org_assets",
    "list_sites",
    "listed_certificates",
    "machine_free",
    "moderation_queue",
    "next_free_slot",
    "next_free_slots",
    "owner_transition",
    "refresh_due",
    "refresh_next_free",
    "remove_certificate",
    "resolve_flag",
    "search",
    "set_availability",
    "site_certificates",
    "sync_exceptions",
    "update_asset",
    "update_site",
    "visible_asset",
    "weekly_windows",
]
