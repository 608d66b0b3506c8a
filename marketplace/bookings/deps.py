"""The collaborators of the bookings room: one place that chooses them (the payment gateway comes from billing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from listings.service import BlockedTime, ListingsConfig
from marketplace.billing.gateway import payment_gateway
from marketplace.core.settings import Settings

if TYPE_CHECKING:
    from marketplace.bookings.service import Deps


def listings_config(settings: Settings) -> ListingsConfig:
    return ListingsConfig(horizon_days=settings.availability_horizon_days)


def blocked_time() -> BlockedTime:
    from marketplace.bookings.service import BookingsBlockedTime

    return BookingsBlockedTime()


def booking_deps(settings: Settings) -> Deps:
    from marketplace.bookings.service import Deps

    return Deps(settings=settings, payments=payment_gateway(settings), listings_config=listings_config(settings))
