"""Request and response shapes of quotes and counter-offers."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from marketplace.bookings.schemas import check_work_shape
from marketplace.core.text import Line, Text

MAX_AMOUNT = 10**13  # minor units; far above any real job, far below BIGINT


class MilestoneIn(BaseModel):
    """One payment milestone of a quote: its own words and its share of the amount."""

    model_config = ConfigDict(extra="forbid")

    label: Line = Field(min_length=1, max_length=100)
    percent: int = Field(ge=1, le=99)


class Terms(BaseModel):
    """The terms of one offer: machine time (``start``, ``end``) or a lab service (``drop_off_date``,
    ``samples``), the total ``amount`` in minor units, and an optional note."""

    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, le=MAX_AMOUNT, description="Total price in minor units")
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    drop_off_date: date | None = None
    samples: int | None = Field(default=None, ge=1, le=100_000)
    note: Text | None = Field(default=None, max_length=2000)
    milestones: list[MilestoneIn] | None = Field(
        default=None,
        min_length=2,
        max_length=6,
        description="Payment milestones (2 to 6, percents summing to 100; invoice gateway only): the first is"
        " invoiced on confirmation, the last on completion, the others when the supplier marks them reached",
    )

    @model_validator(mode="after")
    def _shape(self) -> Terms:
        check_work_shape(start=self.start, end=self.end, drop_off_date=self.drop_off_date, samples=self.samples)
        if self.milestones and sum(m.percent for m in self.milestones) != 100:
            raise ValueError("milestones: the percents must add up to 100")
        return self


class QuoteCreate(Terms):
    asset_id: uuid.UUID
    currency: Line = Field(min_length=3, max_length=3, description="The listing's currency")
    valid_until: AwareDatetime = Field(description="The offer lapses then; not after the request's deadline")


class CounterIn(Terms):
    valid_until: AwareDatetime | None = Field(default=None, description="Default: the previous version's")


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=2000)


class MilestoneOut(BaseModel):
    label: str
    percent: int


class QuoteVersionOut(BaseModel):
    number: int
    party: str = Field(description="buyer or supplier: who made this version")
    amount: int
    start: datetime | None
    end: datetime | None
    drop_off_date: date | None
    samples: int | None
    valid_until: datetime
    note: str | None
    milestones: list[MilestoneOut] | None = None
    created_at: datetime


class QuoteOut(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    asset_id: uuid.UUID
    supplier_org_id: uuid.UUID
    buyer_org_id: uuid.UUID | None = Field(description="Shown to the supplier only once the quote is accepted")
    kind: str
    currency: str
    status: str
    version: int = Field(description="The latest version's number")
    latest_by: str = Field(description="Who made the latest version; the other party may accept or counter")
    amount: int = Field(description="The latest version's amount")
    valid_until: datetime
    milestones: list[MilestoneOut] | None = Field(default=None, description="The latest version's milestones")
    decline_reason: str | None
    your_role: str | None
    created_at: datetime
    updated_at: datetime
    versions: list[QuoteVersionOut]


class QuoteList(BaseModel):
    items: list[QuoteOut]


class AcceptIn(BaseModel):
    """Optional body of an acceptance: the buyer may pay part of the booking with an innovation voucher."""

    model_config = ConfigDict(extra="forbid")

    voucher_id: uuid.UUID | None = None
