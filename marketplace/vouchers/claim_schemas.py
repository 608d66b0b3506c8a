"""Bodies and answers of a programme's claims and statistics API (issue #18, ``claim_endpoints.py``).

Amounts are integer minor units of the programme's currency, as everywhere in the API.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from marketplace.core.text import LINE_PATTERN, TEXT_PATTERN

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

Reason = Annotated[str, StringConstraints(pattern=TEXT_PATTERN, strip_whitespace=True, max_length=2000)]
Reference = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=200)]


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(
        pattern=MONTH_PATTERN,
        description="The claimed calendar month in China Standard Time, `YYYY-MM`; it must have ended.",
        examples=["2026-03"],
    )


class LineDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Reason | None = Field(default=None, description="Required to reject: the buyer and supplier see it.")


class ClaimPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(ge=0, le=10**13, description="What the programme paid: must equal the claim's `approved`.")
    reference: Reference = Field(description="The programme's payment reference (bank transfer number ...).")


class ClaimLineOut(BaseModel):
    id: uuid.UUID
    booking_id: uuid.UUID
    redemption_id: uuid.UUID
    amount: int
    status: str
    reason: str | None
    decided_at: datetime | None
    evidence: dict[str, Any] = Field(
        description="What backs the line, copied when the claim was built: booking, supplier and buyer (name, "
        "USCC), service (title, kind), completion and settlement times, booking amount, invoice number, lab "
        "report (or the booking's result reference)."
    )


class ClaimSummary(BaseModel):
    id: uuid.UUID
    number: str
    programme_id: uuid.UUID
    month: str = Field(description="`YYYY-MM`")
    currency: str
    total: int
    approved: int
    status: Literal["open", "decided", "paid"]
    payment_reference: str | None
    paid_at: datetime | None
    created_at: datetime
    lines_count: int | None = None


class ClaimOut(ClaimSummary):
    programme_name: str
    payment_mode: str
    pending: int
    rejected: int
    lines: list[ClaimLineOut]


class Breakdown(BaseModel):
    key: str
    bookings: int
    amount: int


class StatisticsOut(BaseModel):
    programme_id: uuid.UUID
    currency: str
    budget: int
    used: int = Field(description="Held by active, settled and claimed redemptions.")
    paid: int = Field(description="Approved amounts of paid claims.")
    remaining: int
    bookings: int
    firms_served: int = Field(description="Distinct buyers with a counting redemption.")
    by_kind: list[Breakdown]
    by_family: list[Breakdown]
    by_month: list[Breakdown] = Field(description="By the month the booking was placed (China Standard Time).")


def month_text(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"
