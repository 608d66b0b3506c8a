"""How the shell configures the listings domain: one place for its settings and its source of booked
time (no bookings yet: the bookings module replaces ``blocked_time``)."""

from __future__ import annotations

from listings.service import BlockedTime, ListingsConfig, NoBookings
from marketplace.settings import Settings


def listings_config(settings: Settings) -> ListingsConfig:
    return ListingsConfig(horizon_days=settings.availability_horizon_days)


def blocked_time() -> BlockedTime:
    return NoBookings()
