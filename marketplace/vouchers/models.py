"""Tables of the voucher room (issue #18).

A **programme** (``voucher_programmes``) belongs to an organisation with the ``programme`` role (a bureau or a
park operator, verified by the admin). A buyer holds at most one **voucher** per programme::

    applied ──approve (programme)──▶ granted ──revoke (programme)──▶ revoked
       └────reject (programme)────▶ rejected
    (a grant by the programme, or an application that the programme's ``auto_grant`` finds eligible, starts granted)

A booking placed with a granted voucher gets one **redemption** (``voucher_redemptions``): the programme's share
of the booking, reserved under the programme's row lock so that neither the budget nor the buyer's yearly cap
is ever overspent::

    active ──the booking settles, is resolved, or cancelled with a fee──▶ settled ──put on a claim──▶ claimed
       │                                                                    (a claim line rejected ──▶ rejected)
       └──declined / expired / cancelled with a full refund──▶ released

``amount`` is always the share of what the buyer finally keeps paying for (``payments.ledger.subsidy_share``);
released and rejected redemptions count for nothing against the budget and the caps.

Each month the platform builds a programme's **claim** (``voucher_claims``, one per programme and month) with one
**line** per settled redemption not yet claimed (``voucher_claim_lines``); the programme decides each line and
records its payment.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, text_array_column, ts_column, utcnow


class PaymentMode(StrEnum):
    advance = "advance"  # the voucher pays its share of the invoice; the programme pays the platform (claim)
    after_use = "after_use"  # 先用后补: the buyer pays in full; the programme reimburses the buyer (claim)


class VoucherStatus(StrEnum):
    applied = "applied"
    granted = "granted"
    rejected = "rejected"
    revoked = "revoked"


class RedemptionStatus(StrEnum):
    active = "active"
    settled = "settled"
    released = "released"
    claimed = "claimed"
    rejected = "rejected"


# Redemptions that hold budget and yearly cap.
COUNTING: tuple[str, ...] = (RedemptionStatus.active, RedemptionStatus.settled, RedemptionStatus.claimed)
COUNTING_SQL = "status IN ('active', 'settled', 'claimed')"


class ClaimStatus(StrEnum):
    open = "open"  # built; the programme decides its lines
    decided = "decided"  # every line approved or rejected; awaiting payment
    paid = "paid"


class LineStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class VoucherProgramme(SQLModel, table=True):
    __tablename__ = "voucher_programmes"
    __table_args__ = (
        sa.CheckConstraint("region_prefix ~ '^[0-9]{2,6}$'", name="ck_voucher_programmes_region"),
        sa.CheckConstraint(
            "cardinality(eligible_kinds) > 0 AND eligible_kinds <@ ARRAY['machine', 'lab_service']::text[]",
            name="ck_voucher_programmes_kinds",
        ),
        sa.CheckConstraint("rate_bp BETWEEN 1 AND 10000", name="ck_voucher_programmes_rate"),
        sa.CheckConstraint(
            "cap_per_booking > 0 AND cap_per_buyer_year > 0 AND budget > 0", name="ck_voucher_programmes_caps"
        ),
        sa.CheckConstraint("valid_from <= valid_until", name="ck_voucher_programmes_validity"),
        sa.CheckConstraint("payment_mode IN ('advance', 'after_use')", name="ck_voucher_programmes_mode"),
        sa.CheckConstraint("status IN ('active', 'closed')", name="ck_voucher_programmes_status"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_voucher_programmes_currency"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="RESTRICT")
    name: str = Field(max_length=200)
    # GB/T 2260 region-code prefix: eligible buyers are registered there (their USCC's positions 3-8), and the
    # voucher is spent at suppliers whose site is there (or in a partner programme's region, below).
    region_prefix: str = Field(max_length=6)
    eligible_kinds: list[str] = Field(default_factory=list, sa_column=text_array_column())
    eligible_families: list[str] = Field(default_factory=list, sa_column=text_array_column())  # empty: all
    rate_bp: int  # the share of a booking the voucher pays, in basis points
    currency: str = Field(default="CNY", max_length=3)
    cap_per_booking: int = Field(sa_type=sa.BigInteger)
    cap_per_buyer_year: int = Field(sa_type=sa.BigInteger)
    budget: int = Field(sa_type=sa.BigInteger)
    valid_from: date
    valid_until: date
    payment_mode: str = Field(default=PaymentMode.advance, max_length=16)
    # The G60 case: this programme accepts vouchers of these programmes at suppliers in its own region.
    partner_programme_ids: list[uuid.UUID] = Field(
        default_factory=list, sa_column=sa.Column(pg.ARRAY(sa.Uuid), nullable=False, server_default="{}")
    )
    auto_grant: bool = False  # an eligible buyer's application is granted at once
    status: str = Field(default="active", max_length=16)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class Voucher(SQLModel, table=True):
    __tablename__ = "vouchers"
    __table_args__ = (
        sa.UniqueConstraint("programme_id", "buyer_org_id", name="uq_vouchers_programme_buyer"),
        sa.CheckConstraint("status IN ('applied', 'granted', 'rejected', 'revoked')", name="ck_vouchers_status"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    programme_id: uuid.UUID = Field(foreign_key="voucher_programmes.id", ondelete="RESTRICT")
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="RESTRICT")
    status: str = Field(default=VoucherStatus.applied, max_length=16)
    note: str | None = Field(default=None, max_length=2000)  # the applicant's words
    decision_reason: str | None = Field(default=None, max_length=2000)
    applied_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    decided_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    decided_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class VoucherRedemption(SQLModel, table=True):
    __tablename__ = "voucher_redemptions"
    __table_args__ = (
        sa.CheckConstraint("amount >= 0 AND amount <= booked_amount", name="ck_voucher_redemptions_amount"),
        sa.CheckConstraint(
            "status IN ('active', 'settled', 'released', 'claimed', 'rejected')", name="ck_voucher_redemptions_status"
        ),
        sa.CheckConstraint("payment_mode IN ('advance', 'after_use')", name="ck_voucher_redemptions_mode"),
        sa.Index("ix_voucher_redemptions_programme", "programme_id", "status"),
        sa.Index("ix_voucher_redemptions_buyer_year", "programme_id", "buyer_org_id", "year"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    voucher_id: uuid.UUID = Field(foreign_key="vouchers.id", index=True, ondelete="RESTRICT")
    programme_id: uuid.UUID = Field(foreign_key="voucher_programmes.id", ondelete="RESTRICT")
    booking_id: uuid.UUID = Field(foreign_key="bookings.id", unique=True, ondelete="RESTRICT")
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    year: int  # the buyer's cap year: the booking's calendar year in China Standard Time
    currency: str = Field(max_length=3)
    booked_amount: int = Field(sa_type=sa.BigInteger)  # the share reserved when booked
    amount: int = Field(sa_type=sa.BigInteger)  # the share now (of what the buyer keeps paying for)
    payment_mode: str = Field(max_length=16)
    status: str = Field(default=RedemptionStatus.active, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    settled_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class VoucherClaim(SQLModel, table=True):
    __tablename__ = "voucher_claims"
    __table_args__ = (
        sa.UniqueConstraint("programme_id", "month", name="uq_voucher_claims_programme_month"),
        sa.CheckConstraint("status IN ('open', 'decided', 'paid')", name="ck_voucher_claims_status"),
        sa.CheckConstraint("total >= 0 AND approved >= 0 AND approved <= total", name="ck_voucher_claims_amounts"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    number: str = Field(max_length=40, unique=True)  # CLM-2026-000001, gap-free (document_counters)
    programme_id: uuid.UUID = Field(foreign_key="voucher_programmes.id", index=True, ondelete="RESTRICT")
    month: date  # the first day of the claimed month
    currency: str = Field(max_length=3)
    total: int = Field(default=0, sa_type=sa.BigInteger)
    approved: int = Field(default=0, sa_type=sa.BigInteger)
    status: str = Field(default=ClaimStatus.open, max_length=16)
    payment_reference: str | None = Field(default=None, max_length=200)
    paid_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    paid_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class VoucherClaimLine(SQLModel, table=True):
    __tablename__ = "voucher_claim_lines"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="ck_voucher_claim_lines_status"),
        sa.CheckConstraint("amount > 0", name="ck_voucher_claim_lines_amount"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    claim_id: uuid.UUID = Field(foreign_key="voucher_claims.id", index=True, ondelete="RESTRICT")
    redemption_id: uuid.UUID = Field(foreign_key="voucher_redemptions.id", unique=True, ondelete="RESTRICT")
    booking_id: uuid.UUID = Field(foreign_key="bookings.id", ondelete="RESTRICT")
    amount: int = Field(sa_type=sa.BigInteger)
    # What backs the line: booking, supplier, service, completion, invoice number, lab report (where there is one).
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=jsonb_column(nullable=False))
    status: str = Field(default=LineStatus.pending, max_length=16)
    reason: str | None = Field(default=None, max_length=2000)
    decided_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    decided_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
