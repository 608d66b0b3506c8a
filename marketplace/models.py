"""Every table model, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from listings.models import Asset, AssetStatusEvent, AvailabilityException, Certificate, ListingFlag, Site
from marketplace.analytics.models import (
    ObservatoryCell,
    ObservatoryFlow,
    ObservatoryGmv,
    ObservatoryLabTests,
    ObservatoryRollup,
    ObserverGrant,
)
from marketplace.auth.models import ApiKey, EmailToken, RefreshToken, User, UserTotp
from marketplace.bookings.models import Booking, BookingEvent, Review
from marketplace.core.audit import AuditLog
from marketplace.core.idempotency import IdempotencyRecord
from marketplace.core.jobs import OutboxJob
from marketplace.notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from marketplace.orgs.models import Membership, Organisation, OrgInvitation
from marketplace.requests.models import BuyerRequest, MatchPlan
from payments.models import (
    BankTransfer,
    CardPayment,
    CommissionOverride,
    CreditNote,
    DocumentCounter,
    Invoice,
    Journal,
    JournalEntry,
    StripeAccount,
    StripeEvent,
)

metadata = SQLModel.metadata

# Objects that live only in hand-written migrations (expression indexes, exclusion constraints):
# autogenerate and `alembic check` must not try to drop them.
MIGRATION_ONLY_INDEXES = frozenset(
    {
        "ix_sites_earth",
        "ix_sites_region_code",
        "ix_assets_search_next_free",
        "ix_assets_search_price",
        "ex_bookings_no_overlap",
    }
)


# Derived tables kept by triggers (hand-written migrations, no ORM model): matching's read model.
MIGRATION_ONLY_TABLES = frozenset({"matchable_assets"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    if type_ == "table" and reflected and compare_to is None and name in MIGRATION_ONLY_TABLES:
        return False
    return not (type_ == "index" and reflected and compare_to is None and name in MIGRATION_ONLY_INDEXES)


__all__ = [
    "ApiKey",
    "Asset",
    "AssetStatusEvent",
    "AuditLog",
    "AvailabilityException",
    "BankTransfer",
    "Booking",
    "BookingEvent",
    "BuyerRequest",
    "CardPayment",
    "Certificate",
    "CommissionOverride",
    "CreditNote",
    "DocumentCounter",
    "EmailToken",
    "IdempotencyRecord",
    "Invoice",
    "Journal",
    "JournalEntry",
    "ListingFlag",
    "MatchPlan",
    "Membership",
    "Notification",
    "ObservatoryCell",
    "ObservatoryFlow",
    "ObservatoryGmv",
    "ObservatoryLabTests",
    "ObservatoryRollup",
    "ObserverGrant",
    "OrgInvitation",
    "Organisation",
    "OutboxJob",
    "RefreshToken",
    "Review",
    "Site",
    "StripeAccount",
    "StripeEvent",
    "User",
    "UserTotp",
    "WebhookDelivery",
    "WebhookEndpoint",
    "include_object",
    "metadata",
]
