"""Request and response shapes of the listings API (the field names are a published contract)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from listings.availability import parse_hhmm
from listings.quality_documents import QualityOffer
from listings.taxonomy import get_taxonomy
from payments.money import InvalidAmount, check_currency

# The text rule for every string this package accepts, the same patterns as the shell's marketplace/core/text.py
# (which this package may not import): Line = one line, no control character; Text = may keep \t \n \r.
Line = Annotated[str, StringConstraints(pattern=r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$")]
Text = Annotated[str, StringConstraints(pattern=r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]

KNOWN_STANDARDS = ("ISO 9001", "IATF 16949", "AS9100", "ISO 13485", "ISO 14001", "ISO 45001", "ISO/IEC 17025", "CMA")


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Shanghai, Europe/Berlin)") from None
    return value


def check_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased (the shell's organisations use it too)."""
    if not value.isalpha():
        raise ValueError("must be an ISO 3166-1 alpha-2 code such as CN or DE")
    return value.upper()


# GB/T 2260 administrative division codes: two digits of the province (or autonomous region, municipality,
# Taiwan, Hong Kong, Macao), two of the prefecture, two of the county.
CN_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
CN_REGION_MESSAGE = "region_code: Chinese sites need the 6-digit administrative division code (GB/T 2260), e.g. 320500"
REGION_MESSAGE = "region_code: give the ISO 3166-2 subdivision code of the country, e.g. DE-BY"


def check_region_code(country: str, code: str) -> str:
    """A site's region: in China a GB/T 2260 code (6 digits under a real province, such as 320500 Suzhou),
    elsewhere an ISO 3166-2 subdivision code of the site's country (DE-BY), upper-cased. Anything else (a city
    name, "abc") is refused: search by region prefix and the observatory rely on the code."""
    value = code.strip().upper()
    if country.upper() == "CN":
        if not re.fullmatch(r"\d{6}", value) or value[:2] not in CN_PROVINCES:
            raise ValueError(CN_REGION_MESSAGE)
        return value
    if not re.fullmatch(rf"{re.escape(country.upper())}-[A-Z0-9]{{1,3}}", value):
        raise ValueError(REGION_MESSAGE)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- sites ---------------------------------------------------------------------------------------


class SiteFields(Strict):
    name: Line = Field(min_length=1, max_length=200)
    address: Line = Field(min_length=1, max_length=500)
    country: Line = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    region_code: Line = Field(
        min_length=1,
        max_length=20,
        description="China: the 6-digit GB/T 2260 administrative division code, e.g. 320500 (Suzhou); elsewhere "
        "the ISO 3166-2 subdivision code, e.g. DE-BY",
    )
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: Line = Field(max_length=100, description="IANA time zone, e.g. Asia/Shanghai")

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return check_country(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @model_validator(mode="after")
    def _region(self) -> SiteFields:
        self.region_code = check_region_code(self.country, self.region_code)
        return self


class SiteCreate(SiteFields):
    org_id: uuid.UUID | None = Field(default=None, description="Needed only if you belong to several organisations")


class SiteUpdate(Strict):
    name: Line | None = Field(default=None, min_length=1, max_length=200)
    address: Line | None = Field(default=None, min_length=1, max_length=500)
    region_code: Line | None = Field(default=None, min_length=1, max_length=20)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: Line | None = Field(default=None, max_length=100)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else check_timezone(v)


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    address: str
    country: str
    region_code: str
    latitude: float
    longitude: float
    timezone: str
    created_at: datetime


# -- certificates --------------------------------------------------------------------------------


class CertificateCreate(Strict):
    standard: Literal["ISO 9001", "IATF 16949", "AS9100", "ISO 13485", "ISO 14001", "ISO 45001", "ISO/IEC 17025", "CMA"]
    number: Line = Field(min_length=1, max_length=100)
    issuer: Line = Field(min_length=1, max_length=200, description="Certification body or accreditation body")
    accreditation_body: Line | None = Field(default=None, max_length=100, description="e.g. CNAS")
    scope: Text = Field(default="", max_length=5000)
    valid_from: date
    valid_until: date
    document_ref: Line | None = Field(default=None, max_length=1000)
    document_id: uuid.UUID | None = Field(
        default=None, description="The scan: a PDF, PNG or JPEG this organisation uploaded to /documents"
    )
    site_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _order(self) -> CertificateCreate:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        return self


class CertificateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID | None
    standard: str
    number: str
    issuer: str
    accreditation_body: str | None
    scope: str
    valid_from: date
    valid_until: date
    document_ref: str | None
    document_id: uuid.UUID | None = Field(default=None, description="The scan, when one is attached")
    status: str
    status_reason: str | None


class Decision(Strict):
    decision: Literal["verified", "rejected"]
    reason: Text = Field(default="", max_length=1000)


# -- assets --------------------------------------------------------------------------------------


class Envelope(Strict):
    x: float = Field(gt=0, le=100_000)
    y: float = Field(gt=0, le=100_000)
    z: float = Field(gt=0, le=100_000)


class CancellationPolicy(Strict):
    """Refund share (percent) of the price by notice before the start."""

    full_refund_hours: int = Field(default=72, ge=0)
    partial_refund_hours: int = Field(default=24, ge=0)
    partial_refund_percent: int = Field(default=50, ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> CancellationPolicy:
        if self.partial_refund_hours > self.full_refund_hours:
            raise ValueError("partial_refund_hours must not exceed full_refund_hours")
        return self


Money = Annotated[int, Field(ge=0, le=10**12, description="Integer minor units (fen, cents)")]


def _check_codes(codes: list[str], kind: str) -> list[str]:
    tax = get_taxonomy()
    seen: list[str] = []
    for code in codes:
        if not tax.is_process(code):
            raise ValueError(f"unknown process code {code!r}; see GET /api/v1/taxonomy/processes")
        proc = tax.processes[code]
        if proc.kind is None:
            raise ValueError(f"{code!r} is a process group; list the specific processes")
        if proc.kind != kind:
            raise ValueError(f"{code!r} is a {proc.kind} process and cannot be listed as a {kind}")
        if code not in seen:
            seen.append(code)
    return seen


def _check_materials(codes: list[str]) -> list[str]:
    tax = get_taxonomy()
    unknown = [c for c in codes if not tax.is_material(c)]
    if unknown:
        raise ValueError(f"unknown material codes {unknown}; see GET /api/v1/taxonomy/materials")
    return list(dict.fromkeys(codes))


def _check_currency(v: str) -> str:
    """An ISO 4217 currency in use (payments.money: prices are minor units of its own exponent, JPY 0, BHD 3)."""
    try:
        return check_currency(v)
    except InvalidAmount as exc:
        raise ValueError(exc.message) from None


class AssetCommon(Strict):
    site_id: uuid.UUID
    title: Line = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=10_000)
    process_codes: list[Line] = Field(min_length=1, max_length=20)
    materials: list[Line] = Field(default_factory=list, max_length=100)
    currency: Line = Field(default="CNY")
    photo_urls: list[Line] = Field(default_factory=list, max_length=20)
    cancellation_policy: CancellationPolicy | None = None
    deposit_percent: int | None = Field(
        default=None, ge=1, le=90, description="Share invoiced on confirmation, the rest on completion; null: none"
    )

    @field_validator("materials")
    @classmethod
    def _materials(cls, v: list[str]) -> list[str]:
        return _check_materials(v)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        return _check_currency(v)


class MachineCreate(AssetCommon):
    kind: Literal["machine"]
    envelope_mm: Envelope
    max_part_mass_kg: float | None = Field(default=None, gt=0)
    tolerance_mm: float = Field(gt=0, le=100)
    hourly_rate: Money
    setup_fee: Money = 0
    min_booking_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    slot_minutes: int = Field(default=30, ge=5, le=1440)
    buffer_minutes: int = Field(default=0, ge=0, le=1440)
    setup_minutes: int = Field(default=0, ge=0, le=1440)
    operator_included: bool = True
    quality_documents: QualityOffer = Field(default_factory=dict)

    @field_validator("process_codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "machine")

    @model_validator(mode="after")
    def _grid(self) -> MachineCreate:
        if 1440 % self.slot_minutes:
            raise ValueError("slot_minutes must divide a day (e.g. 15, 30, 60)")
        if self.min_booking_minutes % self.slot_minutes:
            raise ValueError("min_booking_minutes must be a multiple of slot_minutes")
        return self


class LabServiceCreate(AssetCommon):
    kind: Literal["lab_service"]
    test_standard: Line = Field(min_length=2, max_length=100, description="e.g. GB/T 228.1-2021")
    accredited: bool = False
    price_per_sample: Money
    turnaround_days: int = Field(ge=0, le=365)
    daily_sample_capacity: int = Field(ge=1, le=100_000)
    sample_requirements: Text = Field(default="", max_length=5000)

    @field_validator("process_codes")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return _check_codes(v, "lab_service")


AssetCreate = Annotated[MachineCreate | LabServiceCreate, Field(discriminator="kind")]


class AssetUpdate(Strict):
    """Every field optional; fields that do not apply to the asset's kind are refused."""

    site_id: uuid.UUID | None = None
    title: Line | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=10_000)
    process_codes: list[Line] | None = Field(default=None, min_length=1, max_length=20)
    materials: list[Line] | None = Field(default=None, max_length=100)
    currency: Line | None = None
    photo_urls: list[Line] | None = Field(default=None, max_length=20)
    cancellation_policy: CancellationPolicy | None = None
    deposit_percent: int | None = Field(default=None, ge=1, le=90, description="null removes the deposit")
    envelope_mm: Envelope | None = None
    max_part_mass_kg: float | None = Field(default=None, gt=0)
    tolerance_mm: float | None = Field(default=None, gt=0, le=100)
    hourly_rate: Money | None = None
    setup_fee: Money | None = None
    min_booking_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 30)
    slot_minutes: int | None = Field(default=None, ge=5, le=1440)
    buffer_minutes: int | None = Field(default=None, ge=0, le=1440)
    setup_minutes: int | None = Field(default=None, ge=0, le=1440)
    operator_included: bool | None = None
    quality_documents: QualityOffer | None = None
    test_standard: Line | None = Field(default=None, min_length=2, max_length=100)
    accredited: bool | None = None
    price_per_sample: Money | None = None
    turnaround_days: int | None = Field(default=None, ge=0, le=365)
    daily_sample_capacity: int | None = Field(default=None, ge=1, le=100_000)
    sample_requirements: Text | None = Field(default=None, max_length=5000)

    @field_validator("materials")
    @classmethod
    def _materials(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_materials(v)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str | None) -> str | None:
        return None if v is None else _check_currency(v)


class NextSlot(BaseModel):
    start: datetime
    end: datetime


class AssetOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID
    kind: str
    status: str
    status_reason: str | None
    title: str
    description: str
    process_codes: list[str]
    materials: list[str]
    currency: str
    photo_urls: list[str]
    envelope_mm: Envelope | None = None
    max_part_mass_kg: float | None = None
    tolerance_mm: float | None = None
    hourly_rate: int | None = None
    setup_fee: int | None = None
    min_booking_minutes: int | None = None
    slot_minutes: int | None = None
    buffer_minutes: int | None = None
    setup_minutes: int | None = None
    operator_included: bool | None = None
    quality_documents: dict[str, int] = Field(default_factory=dict, description="Quality documents on offer")
    test_standard: str | None = None
    accredited: bool | None = None
    price_per_sample: int | None = None
    turnaround_days: int | None = None
    daily_sample_capacity: int | None = None
    sample_requirements: str | None = None
    cancellation_policy: dict[str, Any] | None = None
    deposit_percent: int | None = None
    next_free_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = None


class SearchResult(AssetOut):
    site: SiteOut
    distance_km: float | None = None
    next_free_slot: NextSlot | None = None
    certificates: list[str] = Field(default_factory=list, description="Verified, currently valid standards")


class StatusEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    action: str
    reason: str | None
    created_at: datetime


class OptionalReasonIn(Strict):
    reason: Text | None = Field(default=None, max_length=1000)


# -- availability --------------------------------------------------------------------------------


class WeeklyIn(Strict):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: Line = Field(max_length=5, description="HH:MM local time at the site")
    end: Line = Field(
        max_length=5, description="HH:MM; an end at or before the start crosses midnight; 24:00 = midnight"
    )

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        parse_hhmm(v, allow_end_of_day=False)
        return v

    @field_validator("end")
    @classmethod
    def _end(cls, v: str) -> str:
        parse_hhmm(v)
        return v


class ExceptionIn(Strict):
    start: AwareDatetime
    end: AwareDatetime
    available: bool
    note: Text | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _order(self) -> ExceptionIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AvailabilityIn(Strict):
    weekly: list[WeeklyIn] = Field(default_factory=list, max_length=100)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=2000)


class AvailabilityOut(BaseModel):
    timezone: str
    weekly: list[dict[str, Any]]
    exceptions: list[ExceptionIn]


class AvailabilitySyncIn(Strict):
    """Replace every exception inside [from, to) with these, atomically (MES/ERP integration)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    range_from: AwareDatetime = Field(alias="from")
    range_to: AwareDatetime = Field(alias="to")
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=5000)

    @model_validator(mode="after")
    def _inside(self) -> AvailabilitySyncIn:
        if self.range_to <= self.range_from:
            raise ValueError("to must be after from")
        for e in self.exceptions:
            if e.start < self.range_from or e.end > self.range_to:
                raise ValueError("every exception must lie inside [from, to)")
        return self


class Interval(BaseModel):
    start: datetime
    end: datetime


class IntervalsOut(BaseModel):
    items: list[Interval]


class LabDay(BaseModel):
    date: date
    capacity: int
    booked: int
    remaining: int
    open: bool


class LabCapacityOut(BaseModel):
    items: list[LabDay]
