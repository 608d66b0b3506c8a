"""How the shell assembles the domains: one place for their configuration and collaborators."""

from __future__ import annotations

from listings.service import BlockedTime, ListingsConfig
from marketplace.settings import Settings
from payments.invoices import InvoiceConfig, InvoiceGateway
from payments.port import PaymentGateway
from payments.stripe_gateway import StripeConfig, StripeGateway


def listings_config(settings: Settings) -> ListingsConfig:
    return ListingsConfig(horizon_days=settings.availability_horizon_days)


def blocked_time() -> BlockedTime:
    from marketplace.bookings.service import BookingsBlockedTime

    return BookingsBlockedTime()


def payment_gateway(settings: Settings) -> PaymentGateway:
    """Stripe Connect when a Stripe key is set, else invoices and bank transfer (docs/payments.md)."""
    if settings.stripe_secret_key:
        return StripeGateway(
            StripeConfig(
                secret_key=settings.stripe_secret_key,
                api_base=settings.stripe_api_base,
                max_network_retries=settings.stripe_max_network_retries,
                public_url=settings.public_url,
            )
        )
    return InvoiceGateway(
        InvoiceConfig(
            tax_rate_bp=settings.invoice_tax_rate_bp,
            due_days=settings.invoice_due_days,
            number_prefix=settings.invoice_number_prefix,
        )
    )


def booking_deps(settings: Settings):  # type: ignore[no-untyped-def]
    from marketplace.bookings.service import Deps

    return Deps(settings=settings, payments=payment_gateway(settings), listings_config=listings_config(settings))
