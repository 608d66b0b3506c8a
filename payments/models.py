"""Tables of the payments domain: the double-entry ledger, invoices and bank transfers, commission
overrides, Stripe accounts, card payments and received Stripe events.

All money is integer minor units with an ISO 4217 currency. Journal entries are signed: a positive
amount is a debit, a negative amount a credit; every journal sums to zero per currency (checked by
:func:`payments.ledger.post` and, at commit, by a deferred constraint trigger from migration 0005).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(*, nullable: bool = False, default_now: bool = False) -> Any:
    default = sa.func.now() if default_now else None
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _jsonb(*, nullable: bool = True) -> Any:
    return sa.Column(pg.JSONB, nullable=nullable)


class Journal(SQLModel, table=True):
    """One business event's posting. ``key`` makes posting idempotent (e.g. ``booking:{id}:capture``)."""

    __tablename__ = "journals"
    __table_args__ = (
        sa.Index("ix_journals_booking", "booking_id"),
        sa.Index("ix_journals_kind_created", "kind", "created_at"),  # fapiao data and tax reports by period
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=40)
    booking_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    memo: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entries"
    __table_args__ = (
        sa.CheckConstraint("amount <> 0", name="ck_journal_entries_nonzero"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_journal_entries_currency"),
        sa.Index("ix_journal_entries_account", "account", "org_id", "currency"),
        sa.Index("ix_journal_entries_org", "org_id", "id"),  # statements: an org's lines by line id
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    journal_id: uuid.UUID = Field(foreign_key="journals.id", index=True, ondelete="RESTRICT")
    account: str = Field(max_length=40)
    org_id: uuid.UUID | None = None  # the buyer or supplier a sub-ledger account belongs to
    currency: str = Field(max_length=3)
    amount: int = Field(sa_type=sa.BigInteger)  # + debit, - credit


class CommissionOverride(SQLModel, table=True):
    __tablename__ = "commission_overrides"
    __table_args__ = (sa.CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="ck_commission_overrides_rate"),)

    org_id: uuid.UUID = Field(primary_key=True, foreign_key="organisations.id", ondelete="CASCADE")
    rate_bp: int
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class DocumentCounter(SQLModel, table=True):
    """Gap-free numbering per series (e.g. ``INV-2026``): incremented under the row lock."""

    __tablename__ = "document_counters"

    series: str = Field(primary_key=True, max_length=40)
    last: int = Field(default=0, sa_type=sa.BigInteger)


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'paid', 'void', 'closed')", name="ck_invoices_status"),
        sa.CheckConstraint("total >= 0 AND tax >= 0 AND subtotal + tax = total", name="ck_invoices_totals"),
        sa.CheckConstraint("instalment >= 0", name="ck_invoices_instalment"),
        sa.UniqueConstraint("booking_id", "instalment", name="uq_invoices_booking_instalment"),
        sa.Index("ix_invoices_due", "due_date", postgresql_where=sa.text("status = 'open'")),
        sa.Index("ix_invoices_buyer", "buyer_org_id"),
        sa.Index("ix_invoices_supplier", "supplier_org_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(max_length=40, unique=True)
    booking_id: uuid.UUID = Field(foreign_key="bookings.id", ondelete="RESTRICT")
    # 0: the whole-booking invoice; n: instalment n of the booking's schedule (deposit, milestone, balance).
    instalment: int = Field(default=0, sa_column=sa.Column(sa.SmallInteger, nullable=False, server_default="0"))
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    currency: str = Field(max_length=3)
    line_items: list[dict[str, Any]] = Field(default_factory=list, sa_column=_jsonb(nullable=False))
    subtotal: int = Field(sa_type=sa.BigInteger)  # net of tax
    tax_rate_bp: int
    tax: int = Field(sa_type=sa.BigInteger)
    total: int = Field(sa_type=sa.BigInteger)  # tax-inclusive; equals the booking amount
    status: str = Field(default="open", max_length=16)
    issued_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))
    due_date: date
    overdue_flagged_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class CreditNote(SQLModel, table=True):
    __tablename__ = "credit_notes"
    __table_args__ = (sa.CheckConstraint("amount > 0", name="ck_credit_notes_amount"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(max_length=40, unique=True)
    invoice_id: uuid.UUID = Field(foreign_key="invoices.id", index=True, ondelete="RESTRICT")
    amount: int = Field(sa_type=sa.BigInteger)
    reason: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class BankTransfer(SQLModel, table=True):
    """Money that moved through the platform's bank account for an invoice, recorded by an admin:
    ``in`` (the buyer paid), ``payout`` (paid to the supplier), ``refund`` (paid back to the buyer)."""

    __tablename__ = "bank_transfers"
    __table_args__ = (
        sa.CheckConstraint("direction IN ('in', 'payout', 'refund')", name="ck_bank_transfers_direction"),
        sa.CheckConstraint("amount > 0", name="ck_bank_transfers_amount"),
        sa.UniqueConstraint("invoice_id", "direction", "reference", name="uq_bank_transfers_reference"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    invoice_id: uuid.UUID = Field(foreign_key="invoices.id", index=True, ondelete="RESTRICT")
    direction: str = Field(max_length=8)
    amount: int = Field(sa_type=sa.BigInteger)
    reference: str = Field(max_length=200)
    recorded_by: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class StripeAccount(SQLModel, table=True):
    """A supplier's Stripe Connect Express account; flags are copied from ``account.updated``."""

    __tablename__ = "stripe_accounts"

    org_id: uuid.UUID = Field(primary_key=True, foreign_key="organisations.id", ondelete="CASCADE")
    account_id: str = Field(max_length=255, unique=True)
    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class CardPayment(SQLModel, table=True):
    """A booking paid by card through Stripe (separate charges and transfers)."""

    __tablename__ = "card_payments"
    __table_args__ = (
        sa.CheckConstraint(
            "captured >= 0 AND refunded >= 0 AND refunded <= captured AND transferred >= 0",
            name="ck_card_payments_amounts",
        ),
    )

    booking_id: uuid.UUID = Field(primary_key=True, foreign_key="bookings.id", ondelete="RESTRICT")
    payment_intent_id: str = Field(max_length=255, unique=True)
    client_secret: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=40)  # the PaymentIntent's status as last seen
    amount: int = Field(sa_type=sa.BigInteger)
    currency: str = Field(max_length=3)
    buyer_org_id: uuid.UUID
    supplier_org_id: uuid.UUID
    destination_account: str | None = Field(default=None, max_length=255)
    charge_id: str | None = Field(default=None, max_length=255)
    captured: int = Field(default=0, sa_type=sa.BigInteger)
    refunded: int = Field(default=0, sa_type=sa.BigInteger)
    transfer_id: str | None = Field(default=None, max_length=255)
    transferred: int = Field(default=0, sa_type=sa.BigInteger)
    disputed: bool = False
    dispute_id: str | None = Field(default=None, max_length=255)
    dispute_status: str | None = Field(default=None, max_length=40)
    payout_held: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))


class StripeEvent(SQLModel, table=True):
    """Every received Stripe webhook event, stored once under its event id."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'processed', 'ignored', 'failed')", name="ck_stripe_events_status"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100)
    object_id: str | None = Field(default=None, max_length=255)
    payload: dict[str, Any] = Field(sa_column=_jsonb(nullable=False))
    status: str = Field(default="pending", max_length=16)
    error: str | None = Field(default=None, max_length=2000)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts(default_now=True))
    processed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
