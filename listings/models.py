"""Tables of the listings domain: sites, certificates, assets (machines and lab services), their
availability exceptions, flags and moderation history.

Organisations belong to the app shell; we reference them only by foreign key (``organisations.id``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(*, nullable: bool = False, default_now: bool = False, index: bool = False) -> Any:
    return sa.Column(
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default_now else None,
        index=index,
    )


class AssetKind(StrEnum):
    machine = "machine"
    lab_service = "lab_service"


class AssetStatus(StrEnum):
    draft = "draft"
    pending_review = "pending_review"
    published = "published"
    rejected = "rejected"
    suspended = "suspended"
    archived = "archived"


class CertificateStatus(StrEnum):
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


class Site(SQLModel, table=True):
    __tablename__ = "sites"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    address: str = Field(max_length=500)
    country: str = Field(max_length=2)
    # China: the 6-digit administrative division code (GB/T 2260); elsewhere free text.
    region_code: str = Field(max_length=20)
    latitude: float
    longitude: float
    timezone: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))


class Certificate(SQLModel, table=True):
    __tablename__ = "certificates"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'verified', 'rejected')", name="ck_certificates_status"),
        sa.CheckConstraint("valid_until >= valid_from", name="ck_certificates_validity"),
        sa.Index("ix_certificates_org_standard", "org_id", "standard"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    site_id: uuid.UUID | None = Field(default=None, foreign_key="sites.id", ondelete="CASCADE")
    standard: str = Field(max_length=40)
    number: str = Field(max_length=100)
    issuer: str = Field(max_length=200)
    accreditation_body: str | None = Field(default=None, max_length=100)
    scope: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    valid_from: date
    valid_until: date
    document_ref: str | None = Field(default=None, max_length=1000)
    status: str = Field(default=CertificateStatus.pending, max_length=16)
    status_reason: str | None = Field(default=None, max_length=1000)
    verified_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))


class Asset(SQLModel, table=True):
    """A listing: a machine booked by time, or a lab service booked by samples."""

    __tablename__ = "assets"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('machine', 'lab_service')", name="ck_assets_kind"),
        sa.CheckConstraint(
            "status IN ('draft', 'pending_review', 'published', 'rejected', 'suspended', 'archived')",
            name="ck_assets_status",
        ),
        sa.CheckConstraint(
            "coalesce(hourly_rate, 0) >= 0 AND coalesce(setup_fee, 0) >= 0 AND coalesce(price_per_sample, 0) >= 0",
            name="ck_assets_prices_nonnegative",
        ),
        sa.CheckConstraint(
            "kind <> 'machine' OR (hourly_rate IS NOT NULL AND slot_minutes > 0 AND min_booking_minutes > 0)",
            name="ck_assets_machine_fields",
        ),
        sa.CheckConstraint(
            "kind <> 'lab_service' OR (price_per_sample IS NOT NULL AND daily_sample_capacity > 0"
            " AND turnaround_days >= 0)",
            name="ck_assets_lab_fields",
        ),
        sa.CheckConstraint(
            "deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 90", name="ck_assets_deposit_percent"
        ),
        sa.Index("ix_assets_process_codes", "process_codes", postgresql_using="gin"),
        sa.Index("ix_assets_materials", "materials", postgresql_using="gin"),
        sa.Index("ix_assets_status_kind", "status", "kind"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="CASCADE")
    site_id: uuid.UUID = Field(foreign_key="sites.id", index=True, ondelete="RESTRICT")
    kind: str = Field(max_length=16)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    status: str = Field(default=AssetStatus.draft, max_length=20)
    status_reason: str | None = Field(default=None, max_length=1000)
    process_codes: list[str] = Field(sa_column=sa.Column(pg.ARRAY(sa.Text), nullable=False))
    materials: list[str] = Field(
        default_factory=list, sa_column=sa.Column(pg.ARRAY(sa.Text), nullable=False, server_default="{}")
    )
    currency: str = Field(max_length=3)

    # Machines
    envelope_x_mm: float | None = None
    envelope_y_mm: float | None = None
    envelope_z_mm: float | None = None
    # The same envelope sorted (largest first): a part fits if its sorted dimensions fit these.
    envelope_max_mm: float | None = None
    envelope_mid_mm: float | None = None
    envelope_min_mm: float | None = None
    max_part_mass_kg: float | None = None
    tolerance_mm: float | None = None
    hourly_rate: int | None = Field(default=None, sa_type=sa.BigInteger)
    setup_fee: int | None = Field(default=None, sa_type=sa.BigInteger)
    min_booking_minutes: int | None = None
    slot_minutes: int | None = None
    buffer_minutes: int | None = None
    setup_minutes: int | None = None
    operator_included: bool | None = None
    photo_urls: list[str] = Field(
        default_factory=list, sa_column=sa.Column(pg.ARRAY(sa.Text), nullable=False, server_default="{}")
    )
    weekly_plan: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(pg.JSONB, nullable=False, server_default="[]")
    )

    # Lab services
    test_standard: str | None = Field(default=None, max_length=100)
    accredited: bool | None = None
    price_per_sample: int | None = Field(default=None, sa_type=sa.BigInteger)
    turnaround_days: int | None = None
    daily_sample_capacity: int | None = None
    sample_requirements: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))

    # Machines: quality documents sold as add-ons, {kind: price in minor units} (listings/quality_documents.py).
    quality_documents: dict[str, int] = Field(
        default_factory=dict, sa_column=sa.Column(pg.JSONB, nullable=False, server_default="{}")
    )

    # Refund shares by notice period, snapshotted into each booking (the bookings issue uses it).
    cancellation_policy: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(pg.JSONB, nullable=True))
    # Share of the price invoiced on confirmation, the balance on completion (issue #18); NULL: no deposit.
    deposit_percent: int | None = Field(default=None, sa_type=sa.SmallInteger)
    # Start of the next free slot (of min_booking_minutes) from now; maintained for sorting search results.
    next_free_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))
    updated_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))
    submitted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AvailabilityException(SQLModel, table=True):
    """A dated range that closes (``available=false``) or adds open time to an asset's weekly plan.
    For a lab service a closed range marks days without sample drop-off."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ck_availability_exceptions_order"),
        sa.Index("ix_availability_exceptions_asset_start", "asset_id", "starts_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    asset_id: uuid.UUID = Field(foreign_key="assets.id", ondelete="CASCADE")
    starts_at: datetime = Field(sa_column=_ts())
    ends_at: datetime = Field(sa_column=_ts())
    available: bool
    note: str | None = Field(default=None, max_length=200)


class ListingFlag(SQLModel, table=True):
    """A person's report of a listing: the reason they chose (``reason_code``, see :mod:`listings.flagging`)
    and their own words (``reason``, may be empty when the code says it all)."""

    __tablename__ = "listing_flags"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_listing_flags_status"),
        sa.CheckConstraint(
            "reason_code IN ('misleading_description', 'wrong_capacity_or_price', 'not_a_real_company', "
            "'prohibited_item', 'other')",
            name="ck_listing_flags_reason_code",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    asset_id: uuid.UUID = Field(foreign_key="assets.id", index=True, ondelete="CASCADE")
    reporter_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    reason_code: str = Field(
        default="other", sa_column=sa.Column(sa.String(32), nullable=False, server_default="other")
    )
    reason: str = Field(max_length=2000)
    status: str = Field(default="open", max_length=16, index=True)
    resolution: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))
    resolved_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AssetStatusEvent(SQLModel, table=True):
    """Moderation history of a listing, shown to its owner (with the reasons)."""

    __tablename__ = "asset_status_events"

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    asset_id: uuid.UUID = Field(foreign_key="assets.id", index=True, ondelete="CASCADE")
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    action: str = Field(max_length=30)
    reason: str | None = Field(default=None, max_length=1000)
    actor_user_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=_now, sa_column=_ts(default_now=True))
