"""Bodies and answers of the voucher programme and voucher API (issue #18, ``endpoints.py``).

Money is in integer minor units of the programme's ``currency``; rates in basis points (5000 = 50 %).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from listings.taxonomy import get_taxonomy
from marketplace.core.text import Line, Text

MAX_MONEY = 10**13  # minor units: far above any programme's budget, below BIGINT
MAX_PARTNERS = 50

Kind = Literal["machine", "lab_service"]
Mode = Literal["advance", "after_use"]


def top_level_families() -> list[str]:
    """The taxonomy's top-level process codes (``testing``, ``machining``, ...), the families a programme may name."""
    return sorted(code for code, process in get_taxonomy().processes.items() if process.parent is None)


class ProgrammeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: uuid.UUID = Field(description="The programme organisation (role programme, verified) that runs it.")
    name: Line = Field(min_length=1, max_length=200)
    region_prefix: str = Field(
        pattern=r"^[0-9]{2,6}$",
        description="GB/T 2260 region-code prefix (2-6 digits): eligible buyers are registered there (USCC "
        "positions 3-8) and the voucher is spent at suppliers whose site is there.",
    )
    eligible_kinds: list[Kind] = Field(min_length=1, max_length=2)
    eligible_families: list[Line] = Field(
        default_factory=list, max_length=20, description="Top-level process codes; empty: every family."
    )
    rate_bp: int = Field(ge=1, le=10_000, description="The voucher's share of a booking, in basis points.")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    cap_per_booking: int = Field(gt=0, le=MAX_MONEY)
    cap_per_buyer_year: int = Field(gt=0, le=MAX_MONEY)
    budget: int = Field(gt=0, le=MAX_MONEY)
    valid_from: date
    valid_until: date
    payment_mode: Mode = Field(
        default="advance",
        description="advance: the voucher pays its share of the invoice and the programme pays the platform; "
        "after_use (先用后补): the buyer pays in full and the programme reimburses the buyer.",
    )
    partner_programme_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_PARTNERS,
        description="Programmes whose vouchers are accepted at suppliers in this programme's region.",
    )
    auto_grant: bool = False

    @field_validator("eligible_kinds", "partner_programme_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("eligible_families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        families = top_level_families()
        unknown = [f for f in value if f not in families]
        if unknown:
            raise ValueError(f"not a top-level process family: {', '.join(unknown)} (one of {', '.join(families)})")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _validity(self) -> ProgrammeCreate:
        if self.valid_from > self.valid_until:
            raise ValueError("valid_until must not be before valid_from")
        return self


class ProgrammeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "closed"] | None = None
    auto_grant: bool | None = None
    partner_programme_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_PARTNERS)
    budget: int | None = Field(default=None, gt=0, le=MAX_MONEY, description="Only raised, never lowered.")

    @field_validator("partner_programme_ids")
    @classmethod
    def _unique(cls, value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        return None if value is None else list(dict.fromkeys(value))


class ProgrammeOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    region_prefix: str
    eligible_kinds: list[str]
    eligible_families: list[str]
    rate_bp: int
    currency: str
    cap_per_booking: int
    cap_per_buyer_year: int
    budget: int
    valid_from: date
    valid_until: date
    payment_mode: str
    partner_programme_ids: list[uuid.UUID]
    auto_grant: bool
    status: str
    created_at: datetime
    # Operators of the programme and admins only (None for everyone else).
    budget_used: int | None = None
    budget_remaining: int | None = None


class VoucherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buyer_org_id: uuid.UUID
    note: Text | None = Field(default=None, max_length=2000)


class VoucherDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "revoke"]
    reason: Text | None = Field(default=None, max_length=2000)


class ProgrammeTerms(BaseModel):
    """What a voucher holder needs to know of its programme."""

    id: uuid.UUID
    name: str
    region_prefix: str
    eligible_kinds: list[str]
    eligible_families: list[str]
    rate_bp: int
    currency: str
    cap_per_booking: int
    cap_per_buyer_year: int
    valid_from: date
    valid_until: date
    payment_mode: str
    status: str


class VoucherOut(BaseModel):
    id: uuid.UUID
    programme_id: uuid.UUID
    buyer_org_id: uuid.UUID
    buyer_name: str
    status: str
    note: str | None
    decision_reason: str | None
    created_at: datetime
    decided_at: datetime | None
    programme: ProgrammeTerms
    used_this_year: int
    remaining_this_year: int = Field(description="min(the yearly cap left, the programme's budget left)")
