"""Bodies and answers of the lab's report API (issue #17, ``report_endpoints.py``).

The lab sends what it measured, never a verdict: the platform computes each unit's conformity and the lot's
verdict from the plan (``reports.py``). Values are exact decimals; they are stored as the strings they were
sent as (``"12.013"``), so the report shows what the lab wrote.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from marketplace.core.text import LINE_PATTERN, TEXT_PATTERN

MAX_UNITS = 1250  # the largest ISO 2859-1 single sample (code letter R)
MAX_MEASUREMENTS = 50  # the plan's characteristics (inspection.schemas.MAX_CHARACTERISTICS)


CharacteristicName = Annotated[
    str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=100)
]
UnitName = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=10)]
Serial = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=100)]
Standard = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=100)]
Label = Annotated[str, StringConstraints(pattern=LINE_PATTERN, strip_whitespace=True, min_length=1, max_length=200)]
# A JSON number or a string ("12.020" keeps its trailing zeros); a string is parsed as a decimal, so control
# characters are refused as for any line of text (the schema says so with the text rule's pattern).
Value = Annotated[
    Decimal,
    Field(allow_inf_nan=False, max_digits=24, decimal_places=9),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": LINE_PATTERN, "maxLength": 40}]}),
]


class MeasurementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    characteristic: CharacteristicName = Field(description="The name of one characteristic of the plan.")
    value: Value = Field(description="The measured value, an exact decimal (a JSON number or a string).")
    unit: UnitName = Field(description="The plan's unit; length may also be sent in mm, µm (or um) or in.")


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    serial: Serial | None = Field(default=None, description="The part's serial or mark, if it has one.")
    measurements: list[MeasurementIn] = Field(min_length=1, max_length=MAX_MEASUREMENTS)


class ReportIn(BaseModel):
    """What the lab measured: exactly the plan's sample size of units, each characteristic once per unit."""

    model_config = ConfigDict(extra="forbid")

    tested_on: date = Field(description="The test day: not in the future, not before the samples were received.")
    test_standard: Standard = Field(description="The method followed, e.g. GB/T 3177-2009 or ISO 10360-2.")
    instrument: Label = Field(description="The instrument used (make, model, asset number).")
    operator: Label = Field(description="Who performed the test.")
    signed_document_id: uuid.UUID = Field(description="The signed report: a document uploaded by the lab.")
    units: list[UnitIn] = Field(min_length=1, max_length=MAX_UNITS)


class MeasurementOut(BaseModel):
    characteristic: str
    value: str
    unit: str
    conforming: bool


class UnitOut(BaseModel):
    index: int = Field(description="1-based position in the sample, as sent.")
    serial: str | None
    measurements: list[MeasurementOut]
    conforming: bool
    failed: list[str] = Field(description="The characteristics out of tolerance.")


class ReportOut(BaseModel):
    id: uuid.UUID
    inspection_id: uuid.UUID
    lab_booking_id: uuid.UUID
    production_booking_id: uuid.UUID
    tested_on: date
    test_standard: str
    instrument: str
    operator: str
    signed_document_id: uuid.UUID | None
    sample_size: int
    accept_number: int
    reject_number: int
    units: list[UnitOut]
    nonconforming: int
    verdict: str = Field(description="accepted (nonconforming <= Ac) or rejected (nonconforming >= Re).")
    accreditation: str = Field(description="covered, no_certificate, not_valid_on_test_date or out_of_scope.")
    certificate_id: uuid.UUID | None
    require_accreditation: bool
    gates_payment: bool = Field(description="False when the buyer required accreditation and it was not covered.")
    pdf_document_id: uuid.UUID | None = Field(description="The platform's bilingual PDF, once generated.")
    created_at: datetime


class ReworkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(pattern=TEXT_PATTERN, min_length=1, max_length=2000)] = Field(
        description="What must be made again, and why (on the booking's timeline and the audit log)."
    )
