"""Tables of quotes: a supplier's offer on a buyer request and the counter-offers that follow.

A quote is one negotiation between a request's buyer and one supplier organisation about one listing; each
offer (the first one and every counter-offer) is a numbered, immutable version. The quote row holds the
state and, denormalised from its latest version, who made it and until when it is valid (the expiry timer
and the sweep read ``valid_until``).

    submitted ──counter──▶ countered ──counter──▶ countered ...
        │                      │
        ├──accept──▶ accepted (a booking is placed at the latest version's terms)
        ├──decline─▶ declined        ├──withdraw──▶ withdrawn
        ├──(valid_until)──▶ expired  └──(another quote of the request accepted)──▶ closed

At most one open quote (submitted or countered) per (request, supplier organisation, listing).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import ts_column, utcnow


class QuoteStatus(StrEnum):
    submitted = "submitted"
    countered = "countered"
    accepted = "accepted"
    declined = "declined"
    withdrawn = "withdrawn"
    expired = "expired"
    closed = "closed"


OPEN: tuple[str, ...] = (QuoteStatus.submitted, QuoteStatus.countered)
OPEN_SQL = "status IN ('submitted', 'countered')"


class Quote(SQLModel, table=True):
    __tablename__ = "quotes"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('submitted', 'countered', 'accepted', 'declined', 'withdrawn', 'expired', 'closed')",
            name="ck_quotes_status",
        ),
        sa.CheckConstraint("kind IN ('machine', 'lab_service')", name="ck_quotes_kind"),
        sa.CheckConstraint("latest_by IN ('buyer', 'supplier')", name="ck_quotes_latest_by"),
        sa.CheckConstraint("buyer_org_id <> supplier_org_id", name="ck_quotes_not_own_request"),
        sa.Index(
            "uq_quotes_one_open",
            "request_id",
            "supplier_org_id",
            "asset_id",
            unique=True,
            postgresql_where=sa.text(OPEN_SQL),
        ),
        sa.Index("ix_quotes_request", "request_id", "created_at"),
        sa.Index("ix_quotes_open_valid_until", "valid_until", postgresql_where=sa.text(OPEN_SQL)),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id", ondelete="CASCADE")
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="CASCADE")
    asset_id: uuid.UUID = Field(foreign_key="assets.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)
    currency: str = Field(max_length=3)
    status: str = Field(default=QuoteStatus.submitted, max_length=16)
    version: int = 1  # the latest version's number
    latest_by: str = Field(default="supplier", max_length=8)  # who made the latest version
    valid_until: datetime = Field(sa_column=ts_column())
    decline_reason: str | None = Field(default=None, max_length=2000)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class QuoteVersion(SQLModel, table=True):
    """One offer of a quote: the first (by the supplier) or a counter-offer (by either party). Never changed."""

    __tablename__ = "quote_versions"
    __table_args__ = (
        sa.UniqueConstraint("quote_id", "number", name="uq_quote_versions_number"),
        sa.CheckConstraint("party IN ('buyer', 'supplier')", name="ck_quote_versions_party"),
        sa.CheckConstraint("amount > 0", name="ck_quote_versions_amount"),
        sa.CheckConstraint(
            "(start_at IS NOT NULL AND end_at IS NOT NULL AND start_at < end_at AND drop_off_date IS NULL)"
            " OR (drop_off_date IS NOT NULL AND samples > 0 AND start_at IS NULL)",
            name="ck_quote_versions_shape",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    quote_id: uuid.UUID = Field(foreign_key="quotes.id", ondelete="CASCADE")
    number: int
    party: str = Field(max_length=8)
    author_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    amount: int = Field(sa_type=sa.BigInteger)
    start_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    end_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    drop_off_date: date | None = None
    samples: int | None = None
    valid_until: datetime = Field(sa_column=ts_column())
    note: str | None = Field(default=None, max_length=2000)
    # Payment milestones [{"label", "percent"}] (2..6, summing to 100); the accepted version's become the
    # booking's schedule. NULL: none.
    milestones: list[dict[str, Any]] | None = Field(
        default=None, sa_column=sa.Column(pg.JSONB(none_as_null=True), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
