"""Request and response shapes of buyer requests, matches and batch plans."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from listings.taxonomy import get_taxonomy
from marketplace.core.text import Line
from payments.money import InvalidAmount, check_currency


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartEnvelope(Strict):
    x: float = Field(gt=0, le=100_000)
    y: float = Field(gt=0, le=100_000)
    z: float = Field(gt=0, le=100_000)


class LocationIn(Strict):
    """Either one of the buyer organisation's sites, or a point."""

    site_id: uuid.UUID | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _one(self) -> LocationIn:
        point = self.latitude is not None or self.longitude is not None
        if (self.site_id is not None) == point:
            raise ValueError("give either site_id or latitude and longitude")
        if point and (self.latitude is None or self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class WeightsIn(Strict):
    price: float = Field(default=0.35, ge=0)
    distance: float = Field(default=0.2, ge=0)
    start: float = Field(default=0.25, ge=0)
    quality: float = Field(default=0.15, ge=0)
    idle: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> WeightsIn:
        values = (self.price, self.distance, self.start, self.quality, self.idle)
        if any(not math.isfinite(v) for v in values):
            raise ValueError("weights must be finite")
        if sum(values) <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class RequestFields(Strict):
    kind: Literal["machine", "lab_service"]
    process_code: Line = Field(min_length=1, max_length=100, examples=["machining.milling.cnc_3axis"])
    material: Line | None = Field(default=None, max_length=100, examples=["al_6061"])
    quantity: int = Field(default=1, ge=1, le=10_000_000)
    duration_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 90, description="Machines: total time")
    samples: int | None = Field(default=None, ge=1, le=100_000, description="Lab services: number of samples")
    part_envelope_mm: PartEnvelope | None = None
    tolerance_mm: float | None = Field(default=None, gt=0, le=100)
    required_certificates: list[Line] = Field(default_factory=list, max_length=10)
    earliest_start: AwareDatetime
    deadline: AwareDatetime
    location: LocationIn | None = None
    max_distance_km: float | None = Field(default=None, ge=0, le=20_000)
    region_prefixes: list[Line] = Field(default_factory=list, max_length=20)
    budget_max: int | None = Field(default=None, ge=0, description="Minor units")
    currency: Line = Field(min_length=3, max_length=3)
    weights: WeightsIn | None = None
    # Negotiation (docs/api.md, "Quotes"): who may quote, whether a lapsed or declined quote request passes
    # to the next-ranked match, and whether suppliers must accept the platform NDA to see the drawings.
    audience: Literal["open", "invited"] = Field(
        default="open", description="open: every matching verified factory may quote; invited: only those invited"
    )
    auto_cascade: bool = Field(
        default=False, description="Pass a declined or lapsed quote request to the next-ranked match"
    )
    nda_required: bool = Field(default=False, description="Suppliers see the drawings only after accepting the NDA")

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        try:
            code = check_currency(v)  # an ISO 4217 currency in use; amounts are minor units of its exponent
        except InvalidAmount as exc:
            raise ValueError(exc.message) from None
        if code != v:
            raise ValueError("must be an upper-case ISO 4217 code such as CNY or EUR")
        return code

    @field_validator("required_certificates", "region_prefixes")
    @classmethod
    def _strings(cls, v: list[str]) -> list[str]:
        out = []
        for item in v:
            item = item.strip()
            if not item or len(item) > 100:
                raise ValueError("entries must be non-empty and at most 100 characters")
            if item not in out:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _consistent(self) -> RequestFields:
        tax = get_taxonomy()
        if not tax.is_process(self.process_code):
            raise ValueError(f"process_code: unknown process {self.process_code!r}; see GET /api/v1/taxonomy/processes")
        proc_kind = tax.processes[self.process_code].kind
        if proc_kind is not None and proc_kind != self.kind:
            raise ValueError(f"process_code: {self.process_code!r} is a {proc_kind} process, not a {self.kind}")
        if self.material is not None and not tax.is_material(self.material):
            raise ValueError(f"material: unknown material {self.material!r}")
        if self.deadline <= self.earliest_start:
            raise ValueError("deadline must be after earliest_start")
        if self.kind == "machine" and self.duration_minutes is None:
            raise ValueError("duration_minutes: a machine request needs the total machine time")
        if self.kind == "lab_service" and self.samples is None:
            raise ValueError("samples: a lab request needs the number of samples")
        if self.max_distance_km is not None and self.location is None:
            raise ValueError("max_distance_km needs a location")
        return self


class RequestCreate(RequestFields):
    buyer_org_id: uuid.UUID | None = Field(default=None, description="Needed if you belong to several buyers")


class RequestUpdate(Strict):
    """Any subset of the request's fields; the merged request is validated as a whole."""

    process_code: Line | None = Field(default=None, max_length=100)
    material: Line | None = Field(default=None, max_length=100)
    quantity: int | None = None
    duration_minutes: int | None = None
    samples: int | None = None
    part_envelope_mm: PartEnvelope | None = None
    tolerance_mm: float | None = None
    required_certificates: list[Line] | None = None
    earliest_start: AwareDatetime | None = None
    deadline: AwareDatetime | None = None
    location: LocationIn | None = None
    max_distance_km: float | None = None
    region_prefixes: list[Line] | None = None
    budget_max: int | None = None
    currency: Line | None = None
    weights: WeightsIn | None = None
    audience: Literal["open", "invited"] | None = None
    auto_cascade: bool | None = None
    nda_required: bool | None = None


class RequestFacts(BaseModel):
    """What a request asks, as its buyer and the factories that may quote on it read it (never who asks)."""

    kind: str
    process_code: str
    material: str | None
    quantity: int
    duration_minutes: int | None
    samples: int | None
    tolerance_mm: float | None
    required_certificates: list[str]
    earliest_start: datetime
    deadline: datetime
    max_distance_km: float | None
    region_prefixes: list[str]
    budget_max: int | None
    currency: str
    audience: str
    nda_required: bool
    created_at: datetime


class RequestOut(RequestFacts):
    id: uuid.UUID
    status: str
    buyer_org_id: uuid.UUID
    part_envelope_mm: dict[str, float] | None
    location: dict[str, Any] | None
    weights: dict[str, float] | None
    auto_cascade: bool
    updated_at: datetime


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None = None


class SlotOut(BaseModel):
    start: datetime
    end: datetime


class PriceOut(BaseModel):
    amount: int
    currency: str
    breakdown: dict[str, int | None]


class ComponentOut(BaseModel):
    component: str
    raw: float | None
    normalised: float
    weight: float
    contribution: float


class MatchOut(BaseModel):
    asset_id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID
    kind: str
    score: float
    slot: SlotOut
    price: PriceOut
    distance_km: float | None
    drop_off_day: str | None = None
    completion_day: str | None = None
    explanation: list[ComponentOut]


class MatchesOut(BaseModel):
    items: list[MatchOut]
    rejections: dict[str, int] = Field(
        default_factory=dict,
        description="With explain_rejections=true: first failing constraint per listing that offers the process",
    )
    feasible: int = Field(description="Feasible listings among those examined")
    examined: int = Field(description="Listings whose calendars were checked (at most the adapter's cap)")
    prefiltered: int = Field(description="Listings that passed every time-independent constraint")
    nearest: int | None = Field(
        default=None,
        description="Set when the request's process has more listings than matching reads: only those among this"
        " many nearest to the request's location (for each serving process) were checked and ranked",
    )


class RequestMatchOut(BaseModel):
    """An open request an asset can serve, with that asset's earliest slot and price."""

    request: RequestOut
    slot: SlotOut
    price: PriceOut
    distance_km: float | None


class RequestMatchList(BaseModel):
    items: list[RequestMatchOut]


class BatchIn(Strict):
    horizon_start: AwareDatetime
    horizon_end: AwareDatetime
    request_ids: list[uuid.UUID] | None = Field(default=None, max_length=20_000)
    objective: Literal["score", "hours"] = "score"
    time_limit_seconds: float | None = Field(default=None, gt=0, le=300)

    @model_validator(mode="after")
    def _order(self) -> BatchIn:
        if self.horizon_end <= self.horizon_start:
            raise ValueError("horizon_end must be after horizon_start")
        return self


class AssignmentOut(BaseModel):
    request_id: uuid.UUID
    asset_id: uuid.UUID
    slot: SlotOut
    value: float


class PlanOut(BaseModel):
    """A batch plan. The optimiser runs in a worker: the result fields are null until ``status`` is done."""

    id: uuid.UUID
    status: Literal["queued", "running", "done", "failed"]
    error: str | None = Field(default=None, description="Why the plan failed")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    horizon_start: datetime
    horizon_end: datetime
    objective_kind: str
    objective: float | None = Field(description="Total value of the chosen assignments")
    bound: float | None
    lp_bound: float | None
    gap: float | None
    method: str | None
    matched_hours: float | None
    requests: int = Field(description="Requests the optimiser considered")
    option_count: int
    seconds: float = Field(description="Time the optimiser took")
    assignments: list[AssignmentOut]


class SuggestionOut(BaseModel):
    plan_id: uuid.UUID
    plan_created_at: datetime
    request_id: uuid.UUID
    asset_id: uuid.UUID
    slot: SlotOut
    value: float
