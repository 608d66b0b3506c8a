"""Which payment gateway the platform uses: the one place that chooses it."""

from __future__ import annotations

from marketplace.core.settings import Settings
from payments.invoices import InvoiceConfig, InvoiceGateway
from payments.port import PaymentGateway
from payments.stripe_gateway import StripeConfig, StripeGateway


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
