from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, ts_column, utcnow


class BookingStatus(StrEnum):
    held = "held"
    requested = "requested"
    confirmed = "confirmed"
    in_progress = "in_progress"
    completed = "completed"
    settled = "settled"
    cancelled = "cancelled"
    declined = "declined"
    expired = "expired"
    disputed = "disputed"
    resolved = "resolved"


# What a booking holds in each state (issue #12: "completed" once stopped blocking, and a finished job's
# hour was sold again). Time = the machine's blocked ``period``; samples = the lab day's intake (capacity is
# daily intake, so counted samples stay counted once the work is done).
#
#   state        machine time                          lab samples   money
#   held         yes (until hold_expires_at)           yes           invoice issued / card PaymentIntent created
#   requested    yes (until accept_by)                 yes           invoice terms accepted / card authorised
#   confirmed    yes                                   yes           owed by invoice / card captured
#   in_progress  yes                                   yes           as confirmed
#   completed    yes; the supplier may release the     yes           kept until the dispute window closes
#                rest after the completion time (*)
#   disputed     yes (rework may need the machine)     yes           payout held until an admin resolves
#   settled      yes; may release the rest             yes           paid out, minus commission
#   resolved     yes; may release the rest             yes           split as the admin decided
#   cancelled    no                                    no            refunded per the snapshotted policy
#   declined     no                                    no            hold released / invoice voided
#   expired      no                                    no            hold released / invoice voided
#
# (*) "release" (transitions.py) shortens the blocked period to the completion time, explicitly, audited and
# on the timeline; nothing is ever released silently.
# Holds and requests past their deadline stop blocking for reads at once (``_not_stale``) and are expired by
# the sweep or by the next conflicting insert. BLOCKING is the one source: the exclusion constraint
# ``ex_bookings_no_overlap`` (migration 0009) lists the same statuses (tests/bookings/test_booked_time_kept.py
# compares them), and matching's ``_NOT_USED`` is its complement.
BLOCKING: tuple[str, ...] = (
    BookingStatus.held,
    BookingStatus.requested,
    BookingStatus.confirmed,
    BookingStatus.in_progress,
    BookingStatus.completed,
    BookingStatus.settled,
    BookingStatus.disputed,
    BookingStatus.resolved,
)
BLOCKING_SQL = "status IN (" + ", ".join(f"'{s}'" for s in BLOCKING) + ")"


class Booking(SQLModel, table=True):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('held', 'requested', 'confirmed', 'in_progress', 'completed', 'settled', 'cancelled',"
            " 'declined', 'expired', 'disputed', 'resolved')",
            name="ck_bookings_status",
        ),
        sa.CheckConstraint("kind IN ('machine', 'lab_service')", name="ck_bookings_kind"),
        sa.CheckConstraint(
            "(kind = 'machine' AND period IS NOT NULL AND start_at < end_at)"
            " OR (kind = 'lab_service' AND drop_off_date IS NOT NULL AND samples > 0)",
            name="ck_bookings_shape",
        ),
        sa.CheckConstraint(
            "amount >= 0 AND refund_amount >= 0 AND refund_amount <= amount", name="ck_bookings_amounts"
        ),
        sa.CheckConstraint("buyer_org_id <> supplier_org_id", name="ck_bookings_not_own_asset"),
        sa.CheckConstraint(
            "voucher_share >= 0 AND voucher_share <= amount"
            " AND (voucher_payer_org_id IS NULL OR voucher_id IS NOT NULL)",
            name="ck_bookings_voucher",
        ),
        # INCLUDE columns (migration 0007): index-only scans for matching's utilisation and scorecard counts.
        sa.Index("ix_bookings_asset_status", "asset_id", "status", postgresql_include=["period"]),
        sa.Index("ix_bookings_buyer", "buyer_org_id", "created_at"),
        sa.Index(
            "ix_bookings_supplier",
            "supplier_org_id",
            "created_at",
            postgresql_include=["status", "kind", "completed_at", "end_at", "due_date", "cancelled_by"],
        ),
        sa.Index("ix_bookings_lab_day", "asset_id", "drop_off_date", postgresql_where=sa.text("kind = 'lab_service'")),
        sa.Index("ix_bookings_hold_expiry", "hold_expires_at", postgresql_where=sa.text("status = 'held'")),
        sa.Index("ix_bookings_accept_by", "accept_by", postgresql_where=sa.text("status = 'requested'")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    asset_id: uuid.UUID = Field(foreign_key="assets.id", ondelete="RESTRICT")
    kind: str = Field(max_length=16)
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    status: str = Field(default=BookingStatus.held, max_length=16)
    request_id: uuid.UUID | None = Field(default=None, index=True)
    # The accepted quote whose agreed terms (price, slot) this booking was placed at (marketplace/quotes).
    quote_id: uuid.UUID | None = Field(default=None, foreign_key="quotes.id", ondelete="SET NULL")

    # Machines: the booked time, and the period the asset is blocked (setup before, buffer after).
    start_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    end_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    period: Any = Field(default=None, sa_column=sa.Column(pg.TSTZRANGE, nullable=True))
    # Lab services: samples dropped off on a day, results due on a working day.
    drop_off_date: date | None = None
    samples: int | None = None
    due_date: date | None = None

    # Terms snapshotted at booking time; later edits of the listing never change them.
    currency: str = Field(max_length=3)
    unit_price: int = Field(sa_type=sa.BigInteger)  # hourly rate, or price per sample
    setup_fee: int = Field(default=0, sa_type=sa.BigInteger)
    amount: int = Field(sa_type=sa.BigInteger)
    commission_rate_bp: int = Field(default=800)  # basis points: 800 = 8 %
    cancellation_policy: dict[str, Any] = Field(sa_column=jsonb_column(nullable=False))
    site_timezone: str = Field(max_length=64)

    refund_amount: int = Field(default=0, sa_type=sa.BigInteger)
    hold_expires_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    accept_by: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    completed_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    settled_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    cancelled_by: str | None = Field(default=None, max_length=16)  # buyer | supplier | admin
    result_reference: str | None = Field(default=None, max_length=1000)
    dispute_reason: str | None = Field(default=None, max_length=2000)
    reminder_sent_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    payment_method: str = Field(default="invoice", max_length=16)
    # Issue #18: the innovation voucher the booking was placed with, its share when booked (either payment mode),
    # and, only when the programme pays in advance, the programme's organisation that owes that share (its
    # receivable in the ledger; the buyer's invoice share is the rest).
    voucher_id: uuid.UUID | None = Field(default=None, foreign_key="vouchers.id", ondelete="RESTRICT")
    voucher_share: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0"))
    voucher_payer_org_id: uuid.UUID | None = Field(default=None)
    # Issue #18: the payment schedule (deposit and balance, or a quote's milestones), snapshotted at placement;
    # each item {n, label, percent, amount, due, invoiced} (marketplace/bookings/instalments.py). NULL: one
    # invoice for the whole amount when booked.
    instalments: list[dict[str, Any]] | None = Field(
        default=None, sa_column=sa.Column(pg.JSONB(none_as_null=True), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class BookingEvent(SQLModel, table=True):
    """The booking's timeline: every transition with who, when and why."""

    __tablename__ = "booking_events"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    booking_id: uuid.UUID = Field(foreign_key="bookings.id", index=True, ondelete="CASCADE")
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    action: str = Field(max_length=30)
    actor_kind: str = Field(max_length=16)  # buyer | supplier | admin | system
    actor_user_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class Review(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (
        sa.UniqueConstraint("booking_id", "author_org_id", name="uq_reviews_booking_author"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_reviews_rating"),
        sa.Index("ix_reviews_subject", "subject_org_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    booking_id: uuid.UUID = Field(foreign_key="bookings.id", ondelete="CASCADE")
    author_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    subject_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    author_user_id: uuid.UUID | None = None
    rating: int
    comment: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
