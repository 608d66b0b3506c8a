"""Business rules of the listings domain. Functions take a session and never commit.

Visibility: a published listing of a verified organisation is public; everything else (drafts, sites,
certificates) is visible only to the owning organisation and platform admins, and answers 404 to anyone
else so its existence is not revealed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings import availability as av
from listings.actor import Actor
from listings.errors import EmailUnverified, Forbidden, Invalid, NotFound, OrganisationNotVerified
from listings.models import (
    Asset,
    AssetKind,
    AssetStatus,
    AssetStatusEvent,
    AvailabilityException,
    Certificate,
    CertificateStatus,
    ListingFlag,
    Site,
)
from listings.moderation import ADMIN_ACTIONS, EDITABLE, next_status
from listings.repository import ListingsRepository, SearchFilters
from listings.schemas import (
    LAB_ONLY,
    MACHINE_ONLY,
    MATERIAL_FIELDS,
    AssetUpdate,
    AvailabilityIn,
    AvailabilitySyncIn,
    CertificateCreate,
    Decision,
    ExceptionIn,
    LabServiceCreate,
    MachineCreate,
    SiteCreate,
    SiteUpdate,
    _check_codes,
)
from listings.taxonomy import get_taxonomy

Interval = av.Interval
DEFAULT_CANCELLATION_POLICY = {"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50}
SITE_LOCATION_FIELDS = frozenset({"address", "region_code", "latitude", "longitude", "timezone"})


@dataclass(frozen=True)
class ListingsConfig:
    horizon_days: int = 180
    # How many SQL candidates a search with a "free between" filter examines at most per page.
    search_scan_limit: int = 2000


class BlockedTime(Protocol):
    """Where booked time comes from. The bookings module of the app shell provides the real one."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]: ...

    async def lab_booked(
        self, session: AsyncSession, asset_id: uuid.UUID, start: date, end: date
    ) -> dict[date, int]: ...


class NoBookings:
    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]:
        return {a: [] for a in asset_ids}

    async def lab_booked(self, session: AsyncSession, asset_id: uuid.UUID, start: date, end: date) -> dict[date, int]:
        return {}


def _now() -> datetime:
    return datetime.now(UTC)


# -- access ----------------------------------------------------------------------------------------


def _can_manage(actor: Actor | None, org_id: uuid.UUID, scope: str = "listings:write") -> bool:
    return actor is not None and (actor.is_platform_admin or actor.can_act_for(org_id, scope))


def _require(actor: Actor, org_id: uuid.UUID, scope: str, not_found: str) -> None:
    """Members lacking an API-key scope get 403; everyone outside the organisation gets 404."""
    if actor.is_platform_admin or actor.can_act_for(org_id, scope):
        return
    if actor.can_act_for(org_id, None):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")
    raise NotFound(not_found)


async def _require_existing(repo: ListingsRepository, actor: Actor, org_id: uuid.UUID, scope: str) -> None:
    """:func:`_require`, and for a platform admin acting for an organisation they are not in, that it exists
    (a member's organisation does; an admin may name any id)."""
    _require(actor, org_id, scope, "Organisation not found.")
    if not actor.can_act_for(org_id, None) and not await repo.org_exists(org_id):
        raise NotFound("Organisation not found.")


async def _owned_site(repo: ListingsRepository, actor: Actor, site_id: uuid.UUID, scope: str) -> Site:
    site = await repo.get_site(site_id)
    if site is None:
        raise NotFound("Site not found.")
    _require(actor, site.org_id, scope, "Site not found.")
    return site


async def _owned_asset(
    repo: ListingsRepository, actor: Actor, asset_id: uuid.UUID, scope: str = "listings:write"
) -> Asset:
    asset = await repo.get_asset(asset_id, for_update=True)
    if asset is None:
        raise NotFound("Listing not found.")
    _require(actor, asset.org_id, scope, "Listing not found.")
    return asset


async def visible_asset(session: AsyncSession, viewer: Actor | None, asset_id: uuid.UUID) -> Asset:
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id)
    if asset is None:
        raise NotFound("Listing not found.")
    if _can_manage(viewer, asset.org_id, "listings:read"):
        return asset
    if asset.status == AssetStatus.published and await repo.org_is_verified(asset.org_id):
        return asset
    raise NotFound("Listing not found.")


# -- sites -----------------------------------------------------------------------------------------


async def create_site(session: AsyncSession, actor: Actor, data: SiteCreate) -> Site:
    org_id = data.org_id
    member_orgs = sorted(actor.org_ids)
    if org_id is None:
        if len(member_orgs) != 1:
            raise Invalid("org_id: you belong to several organisations (or none); say which one owns the site.")
        org_id = member_orgs[0]
    repo = ListingsRepository(session)
    await _require_existing(repo, actor, org_id, "listings:write")
    site = Site(org_id=org_id, **data.model_dump(exclude={"org_id"}))
    return await repo.add(site)  # type: ignore[no-any-return]


async def get_site(session: AsyncSession, actor: Actor, site_id: uuid.UUID) -> Site:
    return await _owned_site(ListingsRepository(session), actor, site_id, "listings:read")


async def list_sites(session: AsyncSession, actor: Actor, org_id: uuid.UUID) -> list[Site]:
    _require(actor, org_id, "listings:read", "Organisation not found.")
    return await ListingsRepository(session).sites_of_org(org_id)


async def update_site(session: AsyncSession, actor: Actor, site_id: uuid.UUID, data: SiteUpdate) -> Site:
    repo = ListingsRepository(session)
    site = await _owned_site(repo, actor, site_id, "listings:write")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "region_code" in changes and site.country == "CN" and not str(changes["region_code"]).isdigit():
        raise Invalid("region_code: Chinese sites need the 6-digit administrative division code")
    moved = any(getattr(site, k) != v for k, v in changes.items() if k in SITE_LOCATION_FIELDS)
    for key, value in changes.items():
        setattr(site, key, value)
    site.updated_at = _now()
    if moved:
        # Buyers chose these listings partly by location: a moved site goes back to review.
        for asset in await repo.published_assets_at_site(site.id):
            await _transition(repo, asset, "material_edit", actor.user_id, "site location changed")
    await session.flush()
    return site


# -- certificates ----------------------------------------------------------------------------------


async def add_certificate(
    session: AsyncSession, actor: Actor, org_id: uuid.UUID, data: CertificateCreate
) -> Certificate:
    repo = ListingsRepository(session)
    await _require_existing(repo, actor, org_id, "listings:write")
    if data.site_id is not None:
        site = await repo.get_site(data.site_id)
        if site is None or site.org_id != org_id:
            raise NotFound("Site not found.")
    cert = Certificate(org_id=org_id, **data.model_dump())
    return await repo.add(cert)  # type: ignore[no-any-return]


async def list_certificates(session: AsyncSession, actor: Actor, org_id: uuid.UUID) -> list[Certificate]:
    _require(actor, org_id, "listings:read", "Organisation not found.")
    return await ListingsRepository(session).certificates_of_org(org_id)


async def decide_certificate(session: AsyncSession, cert_id: uuid.UUID, data: Decision) -> tuple[str, Certificate]:
    """Admin decision; returns the previous status (for the audit log) and the certificate."""
    cert = await ListingsRepository(session).get_certificate(cert_id, for_update=True)
    if cert is None:
        raise NotFound("Certificate not found.")
    before = cert.status
    cert.status = CertificateStatus(data.decision)
    cert.status_reason = data.reason or None
    cert.verified_at = _now() if data.decision == "verified" else None
    await session.flush()
    return before, cert


# -- assets ----------------------------------------------------------------------------------------


def _sorted_envelope(x: float, y: float, z: float) -> tuple[float, float, float]:
    a, b, c = sorted((x, y, z), reverse=True)
    return a, b, c


def _apply_envelope(asset: Asset, env: dict[str, float]) -> None:
    asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm = env["x"], env["y"], env["z"]
    asset.envelope_max_mm, asset.envelope_mid_mm, asset.envelope_min_mm = _sorted_envelope(env["x"], env["y"], env["z"])


async def create_asset(
    session: AsyncSession,
    actor: Actor,
    data: MachineCreate | LabServiceCreate,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    site = await _owned_site(repo, actor, data.site_id, "listings:write")
    fields = data.model_dump(exclude={"envelope_mm", "cancellation_policy"})
    asset = Asset(org_id=site.org_id, **fields)
    asset.cancellation_policy = (
        data.cancellation_policy.model_dump() if data.cancellation_policy else dict(DEFAULT_CANCELLATION_POLICY)
    )
    if isinstance(data, MachineCreate):
        _apply_envelope(asset, data.envelope_mm.model_dump())
    await repo.add(asset)
    await repo.add(
        AssetStatusEvent(
            asset_id=asset.id, from_status=None, to_status=asset.status, action="create", actor_user_id=actor.user_id
        )
    )
    await refresh_next_free(session, asset, config, blocked)
    return asset


async def list_org_assets(
    session: AsyncSession,
    actor: Actor,
    org_id: uuid.UUID,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Asset]:
    _require(actor, org_id, "listings:read", "Organisation not found.")
    return await ListingsRepository(session).assets_of_org(org_id, status, after=after, limit=limit)


async def update_asset(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    data: AssetUpdate,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    asset = await _owned_asset(repo, actor, asset_id)
    if asset.status not in EDITABLE:
        raise Invalid(f"An {asset.status} listing can no longer be edited.")
    changes = data.model_dump(exclude_unset=True)
    wrong = (LAB_ONLY if asset.kind == AssetKind.machine else MACHINE_ONLY) & changes.keys()
    if wrong:
        raise Invalid(f"{sorted(wrong)} do not apply to a {asset.kind} listing.")
    nulls = [k for k, v in changes.items() if v is None and k not in ("cancellation_policy",)]
    if nulls:
        raise Invalid(f"{sorted(nulls)} cannot be set to null.")
    if "process_codes" in changes:
        try:
            changes["process_codes"] = _check_codes(changes["process_codes"], asset.kind)
        except ValueError as exc:
            raise Invalid(f"process_codes: {exc}") from None
    if "site_id" in changes:
        await _owned_site(repo, actor, changes["site_id"], "listings:write")
        site = await repo.get_site(changes["site_id"])
        if site is None or site.org_id != asset.org_id:
            raise NotFound("Site not found.")
    material = any(_differs(asset, k, v) for k, v in changes.items() if k in MATERIAL_FIELDS)
    for key, value in changes.items():
        if key == "envelope_mm":
            _apply_envelope(asset, value)
        elif key == "cancellation_policy":
            asset.cancellation_policy = value or dict(DEFAULT_CANCELLATION_POLICY)
        else:
            setattr(asset, key, value)
    slot, minimum = asset.slot_minutes, asset.min_booking_minutes
    if asset.kind == AssetKind.machine and slot and minimum and (1440 % slot or minimum % slot):
        raise Invalid("slot_minutes must divide a day and min_booking_minutes must be a multiple of it.")
    asset.updated_at = _now()
    if material and asset.status in (AssetStatus.published, AssetStatus.suspended):
        await _transition(repo, asset, "material_edit", actor.user_id, "capability, price or location changed")
    await session.flush()
    await refresh_next_free(session, asset, config, blocked)
    return asset


def _differs(asset: Asset, key: str, value: Any) -> bool:
    if key == "envelope_mm":
        return (asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm) != (value["x"], value["y"], value["z"])
    current = getattr(asset, key)
    if isinstance(current, list) and isinstance(value, list):
        return sorted(current) != sorted(value)
    return bool(current != value)


async def _transition(
    repo: ListingsRepository, asset: Asset, action: str, actor_user_id: uuid.UUID | None, reason: str | None
) -> tuple[str, str]:
    before = asset.status
    after = next_status(before, action)
    asset.status = after
    asset.status_reason = reason if action in ("reject", "suspend", "material_edit") else None
    now = _now()
    if after == AssetStatus.pending_review:
        asset.submitted_at = now
    if after == AssetStatus.published:
        asset.published_at = now
    asset.updated_at = now
    await repo.add(
        AssetStatusEvent(
            asset_id=asset.id,
            from_status=before,
            to_status=after,
            action=action,
            reason=reason,
            actor_user_id=actor_user_id,
        )
    )
    return before, after


async def owner_transition(session: AsyncSession, actor: Actor, asset_id: uuid.UUID, action: str) -> Asset:
    """``submit`` (verified organisations only) or ``archive``."""
    repo = ListingsRepository(session)
    asset = await _owned_asset(repo, actor, asset_id)
    if action == "submit":
        next_status(asset.status, action)  # an illegal transition is a 409 before anything else
        if not actor.email_verified:
            raise EmailUnverified()
        if not await repo.org_is_verified(asset.org_id):
            raise OrganisationNotVerified()
        if asset.kind == AssetKind.machine and not asset.weekly_plan:
            exceptions = await repo.exceptions_for([asset.id])
            if not any(e.available for e in exceptions[asset.id]):
                raise Invalid("Set the machine's availability (a weekly plan or open exceptions) before submitting.")
    await _transition(repo, asset, action, actor.user_id, None)
    await session.flush()
    return asset


async def admin_transition(
    session: AsyncSession, admin_user_id: uuid.UUID | None, asset_id: uuid.UUID, action: str, reason: str | None
) -> tuple[str, Asset]:
    """approve / reject / suspend / reinstate; returns the previous status (for the audit log)."""
    if action not in ADMIN_ACTIONS:
        raise Invalid(f"Unknown moderation action {action!r}.")
    if action in ("reject", "suspend") and not reason:
        raise Invalid("reason: a reason is required so the owner knows what to fix.")
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id, for_update=True)
    if asset is None:
        raise NotFound("Listing not found.")
    before, _ = await _transition(repo, asset, action, admin_user_id, reason)
    await session.flush()
    return before, asset


async def history(session: AsyncSession, actor: Actor, asset_id: uuid.UUID) -> list[AssetStatusEvent]:
    repo = ListingsRepository(session)
    asset = await repo.get_asset(asset_id)
    if asset is None:
        raise NotFound("Listing not found.")
    _require(actor, asset.org_id, "listings:read", "Listing not found.")
    return await repo.status_events(asset_id)


async def flag(session: AsyncSession, actor: Actor, asset_id: uuid.UUID, reason: str) -> ListingFlag:
    asset = await visible_asset(session, actor, asset_id)
    return await ListingsRepository(session).add(  # type: ignore[no-any-return]
        ListingFlag(asset_id=asset.id, reporter_user_id=actor.user_id, reason=reason)
    )


async def moderation_queue(session: AsyncSession, limit: int = 100) -> tuple[list[Asset], list[ListingFlag]]:
    repo = ListingsRepository(session)
    return await repo.pending_review(limit), await repo.open_flags(limit)


async def resolve_flag(session: AsyncSession, flag_id: uuid.UUID, resolution: str) -> ListingFlag:
    item = await ListingsRepository(session).get_flag(flag_id)
    if item is None:
        raise NotFound("Flag not found.")
    item.status = "resolved"
    item.resolution = resolution
    item.resolved_at = _now()
    await session.flush()
    return item


# -- availability ----------------------------------------------------------------------------------


def weekly_windows(asset: Asset) -> list[av.WeeklyWindow]:
    return [
        av.WeeklyWindow(
            weekday=int(w["weekday"]),
            start=av.parse_hhmm(w["start"], allow_end_of_day=False),
            end=av.parse_hhmm(w["end"]),
        )
        for w in asset.weekly_plan
    ]


def exception_ranges(rows: Sequence[AvailabilityException]) -> list[av.ExceptionRange]:
    return [av.ExceptionRange(start=r.starts_at, end=r.ends_at, available=r.available) for r in rows]


async def _site_of(repo: ListingsRepository, asset: Asset) -> Site:
    site = await repo.get_site(asset.site_id)
    if site is None:  # the foreign key makes this impossible; a clear 404 rather than a crash if it happens
        raise NotFound("Site not found.")
    return site


async def get_availability(session: AsyncSession, viewer: Actor | None, asset_id: uuid.UUID) -> dict[str, Any]:
    asset = await visible_asset(session, viewer, asset_id)
    repo = ListingsRepository(session)
    site = await _site_of(repo, asset)
    excs = (await repo.exceptions_for([asset.id]))[asset.id]
    return {
        "timezone": site.timezone,
        "weekly": asset.weekly_plan,
        "exceptions": [ExceptionIn(start=e.starts_at, end=e.ends_at, available=e.available, note=e.note) for e in excs],
    }


async def set_availability(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    data: AvailabilityIn,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    asset = await _owned_asset(repo, actor, asset_id, "availability:write")
    asset.weekly_plan = [w.model_dump() for w in data.weekly]
    await repo.delete_exceptions(asset.id)
    for e in data.exceptions:
        session.add(
            AvailabilityException(
                asset_id=asset.id, starts_at=e.start, ends_at=e.end, available=e.available, note=e.note
            )
        )
    asset.updated_at = _now()
    await session.flush()
    await refresh_next_free(session, asset, config, blocked)
    return asset


async def sync_exceptions(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    data: AvailabilitySyncIn,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    """Replace the exceptions inside [from, to) atomically; exceptions that straddle a boundary keep
    their part outside the range."""
    repo = ListingsRepository(session)
    asset = await _owned_asset(repo, actor, asset_id, "availability:write")
    lo, hi = data.range_from, data.range_to
    for old in await repo.exceptions_overlapping(asset.id, lo, hi):
        if old.starts_at < lo:
            session.add(
                AvailabilityException(
                    asset_id=asset.id, starts_at=old.starts_at, ends_at=lo, available=old.available, note=old.note
                )
            )
        if old.ends_at > hi:
            session.add(
                AvailabilityException(
                    asset_id=asset.id, starts_at=hi, ends_at=old.ends_at, available=old.available, note=old.note
                )
            )
        await repo.delete(old)
    for e in data.exceptions:
        session.add(
            AvailabilityException(
                asset_id=asset.id, starts_at=e.start, ends_at=e.end, available=e.available, note=e.note
            )
        )
    asset.updated_at = _now()
    await session.flush()
    await refresh_next_free(session, asset, config, blocked)
    return asset


def bookable_windows(asset: Asset, free: Sequence[Interval]) -> list[Interval]:
    """Free time in which a booking's own ``[start, end)`` may lie: setup time must fit before it and
    the buffer after it, and starts sit on the slot grid."""
    setup = timedelta(minutes=asset.setup_minutes or 0)
    buffer = timedelta(minutes=asset.buffer_minutes or 0)
    grid = asset.slot_minutes or 1
    out: list[Interval] = []
    for start, end in free:
        s, e = start + setup, end - buffer
        first = av.find_slots(
            [(s, e)], timedelta(minutes=grid), granularity_minutes=grid, earliest=s, latest_end=e, limit=1
        )
        if first and first[0][0] < e:
            out.append((first[0][0], e))
    return out


async def machine_free(
    session: AsyncSession, assets: Sequence[tuple[Asset, Site]], start: datetime, end: datetime, blocked: BlockedTime
) -> dict[uuid.UUID, list[Interval]]:
    """Free intervals (plan + open exceptions − closed exceptions − bookings) per machine, in UTC."""
    ids = [a.id for a, _ in assets]
    repo = ListingsRepository(session)
    excs = await repo.exceptions_for(ids, start, end)
    booked = await blocked.machine_blocked(session, ids, start, end)
    return {
        a.id: av.free_intervals(
            weekly_windows(a), s.timezone, exception_ranges(excs[a.id]), booked.get(a.id, []), start, end
        )
        for a, s in assets
    }


async def free_slots(
    session: AsyncSession,
    viewer: Actor | None,
    asset_id: uuid.UUID,
    start: datetime,
    end: datetime,
    duration_minutes: int,
    blocked: BlockedTime,
) -> list[Interval]:
    asset = await visible_asset(session, viewer, asset_id)
    if asset.kind != AssetKind.machine:
        raise Invalid("free-slots applies to machines; use lab-capacity for lab services.")
    if end <= start:
        raise Invalid("end must be after start.")
    if end - start > timedelta(days=366):
        raise Invalid("The window may span at most 366 days.")
    site = await _site_of(ListingsRepository(session), asset)
    free = (await machine_free(session, [(asset, site)], start, end, blocked))[asset.id]
    need = timedelta(minutes=duration_minutes)
    return [(s, e) for s, e in bookable_windows(asset, free) if e - s >= need]


def _lab_open_days(
    asset: Asset, site: Site, excs: Sequence[AvailabilityException], first: date, last: date
) -> list[date]:
    zone = ZoneInfo(site.timezone)
    open_weekdays = {int(w["weekday"]) for w in asset.weekly_plan} or {0, 1, 2, 3, 4}
    days = []
    d = first
    while d <= last:
        day_start = datetime.combine(d, time(0), zone)
        day_end = datetime.combine(d + timedelta(days=1), time(0), zone)
        overlapping = [e for e in excs if e.starts_at < day_end and e.ends_at > day_start]
        is_open = d.weekday() in open_weekdays
        if any(e.available for e in overlapping):
            is_open = True
        if any(not e.available for e in overlapping):
            is_open = False
        if is_open:
            days.append(d)
        d += timedelta(days=1)
    return days


async def lab_capacity(
    session: AsyncSession, viewer: Actor | None, asset_id: uuid.UUID, first: date, last: date, blocked: BlockedTime
) -> list[dict[str, Any]]:
    asset = await visible_asset(session, viewer, asset_id)
    if asset.kind != AssetKind.lab_service:
        raise Invalid("lab-capacity applies to lab services; use free-slots for machines.")
    if last < first:
        raise Invalid("to must not be before from.")
    if (last - first).days > 366:
        raise Invalid("The range may span at most 366 days.")
    repo = ListingsRepository(session)
    site = await _site_of(repo, asset)
    excs = (await repo.exceptions_for([asset.id]))[asset.id]
    open_days = set(_lab_open_days(asset, site, excs, first, last))
    booked = await blocked.lab_booked(session, asset.id, first, last)
    cap = asset.daily_sample_capacity or 0
    out = []
    d = first
    while d <= last:
        used = booked.get(d, 0)
        is_open = d in open_days
        out.append(
            {
                "date": d,
                "capacity": cap if is_open else 0,
                "booked": used,
                "remaining": max(cap - used, 0) if is_open else 0,
                "open": is_open,
            }
        )
        d += timedelta(days=1)
    return out


# A first look covers two weeks; only listings with nothing free there are searched to the horizon.
_FIRST_LOOK = timedelta(days=14)


async def next_free_slots(
    session: AsyncSession,
    items: Sequence[tuple[Asset, Site]],
    config: ListingsConfig,
    blocked: BlockedTime,
    earliest: datetime | None = None,
    duration_minutes: int | None = None,
    latest_end: datetime | None = None,
) -> dict[uuid.UUID, Interval | None]:
    """The first bookable slot of each listing from ``earliest`` (default now) until ``latest_end``
    (default the horizon): for a machine ``duration_minutes`` (default its minimum booking), for a lab
    the next open day with capacity (from the start of that local day, or now when it is today).
    Batched: a constant number of queries for any number of machines."""
    now = _now()
    start = max(earliest or now, now)
    end = min(latest_end or now + timedelta(days=config.horizon_days), now + timedelta(days=config.horizon_days))
    result: dict[uuid.UUID, Interval | None] = {}
    machines = [(a, s) for a, s in items if a.kind == AssetKind.machine]
    pending = machines
    window_end = min(end, start + _FIRST_LOOK)
    lo = start
    while pending and lo < end:
        # Setup may begin before ``start`` and the buffer run past ``window_end``: load a margin.
        margin = timedelta(minutes=max((a.setup_minutes or 0) + (a.buffer_minutes or 0) for a, _ in pending))
        free = await machine_free(session, pending, lo - margin, window_end + margin, blocked)
        still = []
        for asset, _site in pending:
            minutes = max(duration_minutes or 0, asset.min_booking_minutes or 0) or (asset.slot_minutes or 60)
            found = av.earliest_slot(
                bookable_windows(asset, free[asset.id]),
                timedelta(minutes=minutes),
                granularity_minutes=asset.slot_minutes or 1,
                earliest=start,
                latest_end=window_end,
            )
            if found is None and window_end < end:
                still.append((asset, _site))
            else:
                result[asset.id] = found
        pending, window_end = still, end
    for asset, site in items:
        if asset.kind == AssetKind.lab_service:
            result[asset.id] = await _lab_next_day(session, asset, site, blocked, start, end)
    return result


async def _lab_next_day(
    session: AsyncSession, asset: Asset, site: Site, blocked: BlockedTime, start: datetime, end: datetime
) -> Interval | None:
    zone = ZoneInfo(site.timezone)
    first = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    excs = (await ListingsRepository(session).exceptions_for([asset.id]))[asset.id]
    booked = await blocked.lab_booked(session, asset.id, first, last)
    cap = asset.daily_sample_capacity or 0
    for d in _lab_open_days(asset, site, excs, first, last):
        if booked.get(d, 0) < cap:
            day_start = datetime.combine(d, time(0), zone).astimezone(UTC)
            day_end = datetime.combine(d + timedelta(days=1), time(0), zone).astimezone(UTC)
            return max(day_start, start), day_end
    return None


async def next_free_slot(
    session: AsyncSession,
    asset: Asset,
    site: Site,
    config: ListingsConfig,
    blocked: BlockedTime,
    earliest: datetime | None = None,
    duration_minutes: int | None = None,
) -> Interval | None:
    """:func:`next_free_slots` for one listing."""
    slots = await next_free_slots(session, [(asset, site)], config, blocked, earliest, duration_minutes)
    return slots[asset.id]


async def refresh_next_free(session: AsyncSession, asset: Asset, config: ListingsConfig, blocked: BlockedTime) -> None:
    site = await ListingsRepository(session).get_site(asset.site_id)
    if site is None:
        return
    slot = await next_free_slot(session, asset, site, config, blocked)
    asset.next_free_at = slot[0] if slot else None
    await session.flush()


async def refresh_due(session: AsyncSession, config: ListingsConfig, blocked: BlockedTime, limit: int = 500) -> int:
    """Recompute ``next_free_at`` of published listings whose stored value has passed (beat job)."""
    assets = await ListingsRepository(session).published_assets_due_for_refresh(_now(), limit)
    for asset in assets:
        await refresh_next_free(session, asset, config, blocked)
    return len(assets)


# -- search ----------------------------------------------------------------------------------------


@dataclass
class SearchQuery:
    process: str | None = None
    material: str | None = None
    min_x: float | None = None
    min_y: float | None = None
    min_z: float | None = None
    tolerance_mm: float | None = None
    certificate: str | None = None
    region: list[str] | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    max_hourly_rate: int | None = None
    max_price_per_sample: int | None = None
    kind: str | None = None
    currency: str | None = None
    free_minutes: int | None = None
    free_from: datetime | None = None
    free_to: datetime | None = None
    sort: str = "next_free"
    limit: int = 20
    after: tuple[Any, uuid.UUID] | None = None


@dataclass
class SearchHit:
    asset: Asset
    site: Site
    distance_km: float | None
    next_free_slot: Interval | None
    certificates: list[str]
    sort_value: Any


def _filters(q: SearchQuery) -> SearchFilters:
    tax = get_taxonomy()
    serving = None
    if q.process:
        if not tax.is_process(q.process):
            raise Invalid(f"process: unknown process code {q.process!r}")
        serving = sorted(tax.serving_codes(q.process))
    if q.material and not tax.is_material(q.material):
        raise Invalid(f"material: unknown material code {q.material!r}")
    dims = [d for d in (q.min_x, q.min_y, q.min_z) if d is not None]
    env = None
    if dims:
        padded = sorted(dims + [0.0] * (3 - len(dims)), reverse=True)
        env = (padded[0], padded[1], padded[2])
    if (q.lat is None) != (q.lon is None):
        raise Invalid("lat and lon go together.")
    if q.radius_km is not None and q.lat is None:
        raise Invalid("radius_km needs lat and lon.")
    if q.sort == "distance" and q.lat is None:
        raise Invalid("sort=distance needs lat and lon.")
    free_given = [q.free_minutes is not None, q.free_from is not None, q.free_to is not None]
    if any(free_given) and not all(free_given):
        raise Invalid("free_minutes, free_from and free_to go together.")
    if q.free_from and q.free_to and q.free_to <= q.free_from:
        raise Invalid("free_to must be after free_from.")
    return SearchFilters(
        serving_codes=serving,
        material=q.material,
        envelope_sorted=env,
        tolerance_mm=q.tolerance_mm,
        certificate=q.certificate,
        certificate_valid_from=q.free_from.date() if q.free_from else None,
        certificate_valid_until=q.free_to.date() if q.free_to else None,
        region_prefixes=[r for r in (q.region or []) if r],
        near=(q.lat, q.lon) if q.lat is not None and q.lon is not None else None,
        radius_km=q.radius_km,
        max_hourly_rate=q.max_hourly_rate,
        max_price_per_sample=q.max_price_per_sample,
        kind=q.kind,
        currency=q.currency,
    )


async def search(
    session: AsyncSession, q: SearchQuery, config: ListingsConfig, blocked: BlockedTime
) -> tuple[list[SearchHit], tuple[Any, uuid.UUID] | None]:
    """Published listings of verified organisations, filtered in SQL (indexes: GIN on process codes and
    materials, GiST on the site's earth position), sorted by price, distance or next free slot, with a
    keyset cursor. The "free for N minutes between A and B" filter is checked per candidate against the
    real calendar; it scans at most ``search_scan_limit`` candidates per page."""
    filters = _filters(q)
    repo = ListingsRepository(session)
    stmt, sort_expr = repo.search_statement(filters, q.sort)
    stmt = stmt.add_columns(sort_expr.label("sort_value"))
    if q.after is not None:
        stmt = stmt.where(
            sa.tuple_(sort_expr, col(Asset.id)) > sa.tuple_(sa.literal(q.after[0]), sa.literal(q.after[1]))
        )
    stmt = stmt.order_by(sort_expr, col(Asset.id))
    hits: list[SearchHit] = []
    scanned = 0
    last_key: tuple[Any, uuid.UUID] | None = None
    batch = q.limit if q.free_minutes is None else max(q.limit * 4, 50)
    offset_stmt = stmt
    while len(hits) < q.limit and scanned < config.search_scan_limit:
        rows = (await session.execute(offset_stmt.limit(batch))).all()
        if not rows:
            last_key = None
            break
        candidates = [(r[0], r[1], r[2], r[3]) for r in rows]
        accepted = await _with_calendar(session, candidates, q, config, blocked)
        for asset, site, dist, sort_value, slot in accepted:
            last_key = (sort_value, asset.id)
            if slot is None and q.free_minutes is not None:
                continue
            hits.append(SearchHit(asset, site, dist, slot, [], sort_value))
            if len(hits) == q.limit:
                break
        scanned += len(rows)
        if len(rows) < batch and len(hits) < q.limit:
            last_key = None
            break
        if len(hits) < q.limit:
            if last_key is None:  # a full batch always has a last row
                break
            offset_stmt = stmt.where(
                sa.tuple_(sort_expr, col(Asset.id)) > sa.tuple_(sa.literal(last_key[0]), sa.literal(last_key[1]))
            )
    if len(hits) == q.limit and hits:
        last_key = (hits[-1].sort_value, hits[-1].asset.id)
    certs = await repo.valid_standards([(h.asset.org_id, h.asset.site_id) for h in hits], date.today())
    for h in hits:
        h.certificates = certs.get((h.asset.org_id, h.asset.site_id), [])
    return hits, last_key


async def _with_calendar(
    session: AsyncSession,
    rows: Sequence[tuple[Asset, Site, float | None, Any]],
    q: SearchQuery,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> list[tuple[Asset, Site, float | None, Any, Interval | None]]:
    """Attach each candidate's next free slot (within the free filter's window when given)."""
    pairs = [(a, s) for a, s, _, _ in rows]
    if q.free_minutes is not None and q.free_from is not None and q.free_to is not None:
        slots = await next_free_slots(
            session, pairs, config, blocked, earliest=q.free_from, duration_minutes=q.free_minutes, latest_end=q.free_to
        )
        for asset, _ in pairs:  # a lab qualifies with a drop-off day that starts inside the window
            slot = slots[asset.id]
            if slot is not None and asset.kind == AssetKind.lab_service and slot[0] >= q.free_to:
                slots[asset.id] = None
    else:
        slots = await next_free_slots(session, pairs, config, blocked)
    return [(a, s, d, v, slots[a.id]) for a, s, d, v in rows]
