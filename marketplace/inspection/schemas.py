"""Bodies and answers of the inspection plan API (issue #17, ``endpoints.py``).

Characteristics are stored in ``inspections.characteristics`` as written here, with the decimals as strings
(``{"name": "Bore", "nominal": "12.000", "lower_tol": "-0.020", "upper_tol": "0.020", "unit": "mm"}``), so that
the report's conformity check (``reports.py``) reads exact decimals back with ``Decimal(value)``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from marketplace.core.text import LINE_PATTERN
from marketplace.inspection import sampling

# The units a characteristic may be measured in: length, mass, force, stress, hardness, ratio, angle and surface
# roughness. Reports convert between the length units (mm, µm, in); every other unit must match exactly.
UNITS: tuple[str, ...] = ("mm", "µm", "in", "g", "kg", "N", "MPa", "HRC", "HV", "%", "°", "Ra µm")
Unit = Literal["mm", "µm", "in", "g", "kg", "N", "MPa", "HRC", "HV", "%", "°", "Ra µm"]

MAX_CHARACTERISTICS = 50
MAX_LOT_SIZE = 1_000_000
MAX_TRANSIT_DAYS = 30

Name = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=100)]
# Printable, one line: a carrier's tracking number or waybill reference.
Reference = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=200)]
CarrierName = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, max_length=100)]
# A decimal as a JSON number or a string ("0.020" keeps its trailing zeros); a string is parsed as a decimal, so
# control characters are refused as for any line of text (the schema says so with the text rule's pattern).
Measure = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=18, decimal_places=6),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": LINE_PATTERN, "maxLength": 40}]}),
]
Level = Literal["S-1", "S-2", "S-3", "S-4", "I", "II", "III"]
AqlText = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=10)]


class Characteristic(BaseModel):
    """One measured characteristic: conforming when nominal + lower_tol <= value <= nominal + upper_tol."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    nominal: Measure
    lower_tol: Measure = Field(description="Lower tolerance, added to the nominal: zero or negative.")
    upper_tol: Measure = Field(description="Upper tolerance, added to the nominal: zero or positive.")
    unit: Unit = Field(description=f"One of: {', '.join(UNITS)}.")

    @model_validator(mode="after")
    def _tolerances(self) -> Characteristic:
        if self.lower_tol > 0 or self.upper_tol < 0:
            raise ValueError("lower_tol must be <= 0 and upper_tol >= 0 (tolerances are added to the nominal)")
        return self

    def stored(self) -> dict[str, str]:
        return {
            "name": self.name,
            "nominal": str(self.nominal),
            "lower_tol": str(self.lower_tol),
            "upper_tol": str(self.upper_tol),
            "unit": self.unit,
        }


class SamplingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    standard: Literal["ISO 2859-1"] = "ISO 2859-1"
    inspection_level: Level = "II"
    aql: AqlText | float = Field(
        description="A preferred AQL value of ISO 2859-1: " + ", ".join(str(v) for v in sampling.AQL_VALUES) + "."
    )

    @field_validator("aql")
    @classmethod
    def _preferred(cls, value: str | float) -> str:
        try:
            plan = sampling.single_sampling_plan(lot_size=2, inspection_level="II", aql=str(value))
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return str(plan.aql)


class InspectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lab_asset_id: uuid.UUID
    characteristics: list[Characteristic] = Field(min_length=1, max_length=MAX_CHARACTERISTICS)
    sampling: SamplingIn
    lot_size: int = Field(ge=2, le=MAX_LOT_SIZE)
    require_accreditation: bool = False
    transit_days: int = Field(default=2, ge=0, le=MAX_TRANSIT_DAYS)

    @field_validator("characteristics")
    @classmethod
    def _unique_names(cls, value: list[Characteristic]) -> list[Characteristic]:
        names = [c.name.casefold() for c in value]
        if len(set(names)) != len(names):
            raise ValueError("characteristic names must be unique")
        return value


class ShipmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_reference: Reference
    carrier: CarrierName | None = None


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_date: date


class PlanOut(BaseModel):
    standard: str
    inspection_level: str
    aql: str
    lot_size: int
    code_letter: str
    sample_size: int
    accept_number: int
    reject_number: int


class CharacteristicOut(BaseModel):
    name: str
    nominal: str
    lower_tol: str
    upper_tol: str
    unit: str


class InspectionOut(BaseModel):
    id: uuid.UUID
    production_booking_id: uuid.UUID
    lab_booking_id: uuid.UUID
    lab_asset_id: uuid.UUID | None
    buyer_org_id: uuid.UUID
    supplier_org_id: uuid.UUID
    lab_org_id: uuid.UUID
    status: str
    plan: PlanOut
    characteristics: list[CharacteristicOut]
    require_accreditation: bool
    transit_days: int
    drop_off_date: date | None
    due_date: date
    overdue: bool
    tracking_reference: str | None
    carrier: str | None = None
    shipped_at: datetime | None
    received_at: datetime | None
    verdict: str | None
    gates_payment: bool | None
    report_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
