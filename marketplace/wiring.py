"""How the shell assembles the domains: one place for their configuration and collaborators."""

from __future__ import annotations

from listings.service import BlockedTime, ListingsConfig
from marketplace.settings import Settings
from payments.port import NoPayments, PaymentGateway


def listings_config(settings: Settings) -> ListingsConfig:
    return ListingsConfig(horizon_days=settings.availability_horizon_days)


def blocked_time() -> BlockedTime:
    from marketplace.bookings.service import BookingsBlockedTime

    return BookingsBlockedTime()


def payment_gateway(settings: Settings) -> PaymentGateway:
    return NoPayments()


def booking_deps(settings: Settings):  # type: ignore[no-untyped-def]
    from marketplace.bookings.service import Deps

    return Deps(settings=settings, payments=payment_gateway(settings), listings_config=listings_config(settings))
