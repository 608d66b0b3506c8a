"""Every table model, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

import listings.models
import marketplace.analytics.models
import marketplace.auth.models
import marketplace.bookings.models
import marketplace.core.audit
import marketplace.core.idempotency
import marketplace.core.jobs
import marketplace.documents.models
import marketplace.inspection.models
import marketplace.messages.models
import marketplace.notifications.models
import marketplace.orgs.models
import marketplace.quotes.invitation_models
import marketplace.quotes.models
import marketplace.requests.models
import marketplace.vouchers.models
import payments.models

metadata = SQLModel.metadata
# The modules that define tables: importing them registers their tables on ``metadata``.
TABLE_MODULES = (
    listings.models,
    marketplace.analytics.models,
    marketplace.auth.models,
    marketplace.bookings.models,
    marketplace.core.audit,
    marketplace.core.idempotency,
    marketplace.core.jobs,
    marketplace.documents.models,
    marketplace.inspection.models,
    marketplace.messages.models,
    marketplace.notifications.models,
    marketplace.orgs.models,
    marketplace.quotes.invitation_models,
    marketplace.quotes.models,
    marketplace.requests.models,
    marketplace.vouchers.models,
    payments.models,
)

# Objects that live only in hand-written migrations (expression indexes, exclusion constraints):
# autogenerate and `alembic check` must not try to drop them.
MIGRATION_ONLY_INDEXES = frozenset(
    {
        "ix_sites_earth",
        "ix_sites_region_code",
        "ix_assets_search_next_free",
        "ix_assets_search_next_free_kind",
        "ix_assets_search_price",
        "ex_bookings_no_overlap",
    }
)


# Derived tables kept by triggers (hand-written migrations, no ORM model): matching's read model and its
# per-process rows.
MIGRATION_ONLY_TABLES = frozenset({"matchable_assets", "matchable_processes"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    if type_ == "table" and reflected and compare_to is None and name in MIGRATION_ONLY_TABLES:
        return False
    return not (type_ == "index" and reflected and compare_to is None and name in MIGRATION_ONLY_INDEXES)


__all__ = ["TABLE_MODULES", "include_object", "metadata"]
