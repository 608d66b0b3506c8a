"""Pydantic in/out models of analytics (table models are never returned directly)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from marketplace.core.text import Line

REGION_PREFIX_PATTERN = r"^[A-Za-z0-9-]{1,20}$"


class ObserverGrantIn(BaseModel):
    user_email: Line | None = Field(default=None, max_length=320)
    user_id: uuid.UUID | None = None
    region_prefixes: list[Line] = Field(min_length=1, max_length=50)

    @field_validator("region_prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        import re

        bad = [p for p in v if not re.fullmatch(REGION_PREFIX_PATTERN, p)]
        if bad:
            raise ValueError(f"region prefixes must be 1-20 letters, digits or '-': {bad}")
        return v

    @model_validator(mode="after")
    def _one_user(self) -> ObserverGrantIn:
        if (self.user_email is None) == (self.user_id is None):
            raise ValueError("give exactly one of user_email or user_id")
        return self


class ObserverGrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    region_prefixes: list[str]
    created_by: uuid.UUID | None
    created_at: datetime


class Indicators(BaseModel):
    listed_hours: float
    booked_hours: float
    utilization: float | None
    active_suppliers: int
    active_buyers: int
    bookings: int
    gmv: dict[str, int]
    requests: int
    requests_closed: int
    requests_booked: int
    request_fill_rate: float | None
    median_minutes_to_match: float | None
    lab_tests: int
    lab_samples: int
    accredited_share: float | None


class IndicatorCell(BaseModel):
    month: str = Field(description="YYYY-MM (UTC calendar month)")
    prefix: str = Field(description="The region prefix this table covers ('' = everything, admins)")
    region: str = Field(description="Site region code cut to `depth` characters; '*' = total of the prefix")
    process_family: str = Field(description="Top-level process code; '*' = all families")
    suppressed: bool
    indicators: Indicators | None = Field(description="null when suppressed")


class FlowCell(BaseModel):
    month: str
    prefix: str
    buyer_region: str = Field(description="'outside' = any region outside the prefix; '*' = total")
    supplier_region: str
    suppressed: bool
    bookings: int | None
    booked_hours: float | None


class LabTestCell(BaseModel):
    month: str
    prefix: str
    region: str
    test_standard: str
    suppressed: bool
    tests: int | None
    samples: int | None
    accredited_share: float | None


class ConformanceCell(BaseModel):
    """Conformance of inspected lots: reports that gate the payment, by the factory's site region and the
    production listing's process family (issue #17)."""

    month: str
    prefix: str
    region: str = Field(description="Region of the production factory's site; '*' = total of the prefix")
    process_family: str = Field(description="Family of the production listing; '*' = all families")
    suppressed: bool
    reported_lots: int | None = Field(description="Gating inspection reports made in the month (null: suppressed)")
    accepted_lots: int | None
    conformance_rate: float | None = Field(description="accepted_lots / reported_lots")


class LabUtilisationCell(BaseModel):
    """Booked lab samples against the sample capacity of listed lab services, by the lab's site region and the
    lab listing's process family."""

    month: str
    prefix: str
    region: str
    process_family: str
    suppressed: bool
    offered_samples: int | None = Field(description="daily sample capacity x drop-off days of listed lab services")
    booked_samples: int | None = Field(description="samples of counted lab bookings dropped off in the month")
    utilization: float | None = Field(description="booked_samples / offered_samples")


class ObservatoryOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    regions: list[str]
    from_: date = Field(alias="from")
    to: date
    depth: int
    process: str | None
    min_organisations: int
    complementary_suppression: bool
    cells: list[IndicatorCell]
    flows: list[FlowCell]
    lab_tests: list[LabTestCell]
    conformance: list[ConformanceCell] = Field(default_factory=list)
    lab_utilisation: list[LabUtilisationCell] = Field(default_factory=list)


class UsageMetrics(BaseModel):
    offered_hours: float
    booked_hours: float
    idle_shared_hours: float
    utilization: float | None
    earnings: dict[str, int]
    bookings: int
    cancelled: int
    cancelled_by_supplier: int
    declined_or_expired: int
    cancellation_rate: float | None
    completed: int
    on_time: int
    on_time_rate: float | None


class SiteUsage(UsageMetrics):
    site_id: uuid.UUID
    name: str
    region_code: str


class MachineUsage(UsageMetrics):
    asset_id: uuid.UUID
    title: str
    site_id: uuid.UUID


class LabUsage(BaseModel):
    asset_id: uuid.UUID
    title: str
    site_id: uuid.UUID
    test_standard: str
    accredited: bool
    offered_samples: int
    booked_samples: int
    tests: int
    sample_utilization: float | None
    earnings: dict[str, int]


class StandardUsage(BaseModel):
    test_standard: str
    offered_samples: int
    booked_samples: int
    tests: int
    sample_utilization: float | None


class BuyerUsage(BaseModel):
    bookings: int
    spend: dict[str, int]
    suppliers_used: int
    median_lead_time_hours: float | None


class Bucket(BaseModel):
    start: date
    end: date = Field(description="exclusive")
    organisation: UsageMetrics
    sites: list[SiteUsage]
    machines: list[MachineUsage]
    labs: list[LabUsage]
    lab_standards: list[StandardUsage]
    buyer: BuyerUsage


class FirstPassYield(BaseModel):
    """Of a factory's produced lots with at least one inspection report that gates the payment, the share whose
    first such report accepted the lot (a rework's later acceptance does not count)."""

    inspected_lots: int
    accepted_first_time: int
    first_pass_yield: float | None = Field(
        description="accepted_first_time / inspected_lots; null below min_inspected_lots (not enough inspected lots)"
    )
    min_inspected_lots: int
    enough_lots: bool


class FactoryAnalytics(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    org_id: uuid.UUID
    from_: date = Field(alias="from")
    to: date
    granularity: str
    buckets: list[Bucket]
    first_pass_yield: FirstPassYield | None = Field(
        default=None, description="Lots whose first gating inspection report was made in from..to"
    )


class RollupOut(BaseModel):
    month: str
    rows: int
    seconds: float
