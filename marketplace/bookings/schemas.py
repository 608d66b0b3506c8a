from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from listings.quality_documents import QualityDocumentKind
from marketplace.core.text import Line, Text


def check_work_shape(
    *, start: datetime | None, end: datetime | None, drop_off_date: date | None, samples: int | None
) -> None:
    """Machine time (start and end) or a lab service (drop-off day and samples), never both or half of one:
    the one rule of a booking's and a quote's terms."""
    machine = start is not None or end is not None
    lab = drop_off_date is not None or samples is not None
    if machine == lab:
        raise ValueError("give either start and end (machine time) or drop_off_date and samples (lab service)")
    if machine and (start is None or end is None):
        raise ValueError("start and end go together")
    if start is not None and end is not None and end <= start:
        raise ValueError("end must be after start")
    if lab and (drop_off_date is None or samples is None):
        raise ValueError("drop_off_date and samples go together")


class BookingCreate(BaseModel):
    """Machine time: ``asset_id``, ``start``, ``end``. Lab service: ``asset_id``, ``drop_off_date``, ``samples``."""

    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    drop_off_date: date | None = None
    samples: int | None = Field(default=None, ge=1, le=100_000)
    request_id: uuid.UUID | None = None
    buyer_org_id: uuid.UUID | None = Field(default=None, description="Needed if you belong to several buyers")
    quality_documents: list[QualityDocumentKind] = Field(
        default_factory=list,
        max_length=3,
        description="Machine time: quality documents to order with it, each offered by the listing "
        "(its `quality_documents`) and added to the amount at the listing's price",
    )
    voucher_id: uuid.UUID | None = Field(
        default=None,
        description="An innovation voucher of the buyer (GET /orgs/{id}/vouchers) that pays part of the booking",
    )

    @model_validator(mode="after")
    def _shape(self) -> BookingCreate:
        check_work_shape(start=self.start, end=self.end, drop_off_date=self.drop_off_date, samples=self.samples)
        if len(set(self.quality_documents)) != len(self.quality_documents):
            raise ValueError("quality_documents: name each kind once")
        return self


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=2000)


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result_reference: Line | None = Field(
        default=None, max_length=1000, description="Result or inspection-report reference"
    )
    reason: Text | None = Field(
        default=None,
        max_length=2000,
        description="Required when completing before the booked start (machine) or the drop-off day (lab); "
        "shown on the timeline",
    )


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=2000, description="Shown on the timeline and audited")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_amount: int = Field(ge=0)
    note: Text = Field(min_length=1, max_length=2000)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: Text = Field(default="", max_length=4000)


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    action: str
    actor_kind: str
    actor_user_id: uuid.UUID | None
    reason: str | None
    created_at: datetime


class QualityDocumentOut(BaseModel):
    """A quality document ordered with a machine booking, at the price snapshotted when it was booked."""

    kind: str = Field(description="coc | fai | material_cert")
    price: int = Field(description="Minor units of the booking's currency, part of the booking amount")
    provided: bool = Field(description="Whether the factory has supplied it (required before completing)")
    document_id: uuid.UUID | None = Field(description="The supplied document (GET /api/v1/documents/{id})")
    provided_at: datetime | None = None


class InstalmentOut(BaseModel):
    n: int
    label: str = Field(description="deposit, balance, or the milestone's own words")
    percent: int
    amount: int
    due: str = Field(description="confirmation, milestone (the supplier marks it reached) or completion")
    invoiced: bool


class BookingOut(BaseModel):
    id: uuid.UUID
    asset_id: uuid.UUID
    kind: str
    status: str
    supplier_org_id: uuid.UUID
    buyer_org_id: uuid.UUID
    request_id: uuid.UUID | None
    start: datetime | None
    end: datetime | None
    blocked_from: datetime | None = Field(description="Start of the blocked period (setup included)")
    blocked_until: datetime | None = Field(
        description="End of the blocked period (buffer included); earlier than the booked end once the supplier "
        "released the time after an early completion. Both null when nothing is blocked any more."
    )
    drop_off_date: date | None
    samples: int | None
    due_date: date | None
    currency: str
    unit_price: int
    setup_fee: int
    amount: int
    commission_rate_bp: int
    cancellation_policy: dict[str, Any]
    site_timezone: str
    refund_amount: int
    hold_expires_at: datetime | None
    accept_by: datetime | None
    completed_at: datetime | None
    settled_at: datetime | None
    cancelled_by: str | None
    result_reference: str | None
    dispute_reason: str | None
    payment_method: str
    voucher_id: uuid.UUID | None = None
    voucher_share: int = Field(
        default=0, description="What the voucher pays of the amount, as booked (minor units); 0 without a voucher"
    )
    instalments: list[InstalmentOut] | None = Field(
        default=None, description="The payment schedule (deposit and balance, or milestones); null: one invoice"
    )
    created_at: datetime
    your_role: str | None = None
    refund_if_cancelled_now: int | None = Field(default=None, description="What the caller's cancellation would refund")
    timeline: list[EventOut] | None = None
    quality_documents: list[QualityDocumentOut] | None = Field(
        default=None, description="Ordered quality documents (also GET /bookings/{id}/quality-documents)"
    )


class BookingPage(BaseModel):
    items: list[BookingOut]
    next_cursor: str | None = None


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    booking_id: uuid.UUID
    author_org_id: uuid.UUID
    subject_org_id: uuid.UUID
    rating: int
    comment: str
    created_at: datetime


class ScorecardOut(BaseModel):
    org_id: uuid.UUID
    as_supplier: dict[str, Any]
    as_buyer: dict[str, Any]


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    subject: str
    body: str
    locale: str
    data: dict[str, Any] | None
    created_at: datetime
    read_at: datetime | None
    delivered_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None


WebhookEvent = Literal[
    "booking.*",
    "booking.held",
    "booking.requested",
    "booking.confirmed",
    "booking.declined",
    "booking.expired",
    "booking.in_progress",
    "booking.completed",
    "booking.settled",
    "booking.cancelled",
    "booking.disputed",
    "booking.resolved",
    "booking.released",
    "request.matched",
]
WEBHOOK_EVENTS: tuple[str, ...] = get_args(WebhookEvent)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    events: list[WebhookEvent] = Field(min_length=1)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: verify `X-Marketplace-Signature` with it")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookWithDeliveries(WebhookOut):
    deliveries: list[DeliveryOut]


class WebhookPage(BaseModel):
    items: list[WebhookWithDeliveries]
    next_cursor: str | None = None


class CalendarLink(BaseModel):
    url: str
