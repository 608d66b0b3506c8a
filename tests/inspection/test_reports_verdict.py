"""The report's arithmetic and the accreditation rule, without a database: conformity with inclusive bounds in
exact decimals, length conversion, the lot verdict at Ac and Re, and which certificate covers which test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from marketplace.core.errors import Unprocessable
from marketplace.inspection.accreditation import assess, is_accreditation, normalise_standard, scope_covers
from marketplace.inspection.models import Inspection
from marketplace.inspection.report_schemas import UnitIn
from marketplace.inspection.reports import assess_units, conforms, convert, verdict_of

BORE = {"name": "Bore", "nominal": "12.000", "lower_tol": "-0.020", "upper_tol": "0.020", "unit": "mm"}
HARD = {"name": "Hardness", "nominal": "45", "lower_tol": "-3", "upper_tol": "3", "unit": "HRC"}


def _inspection(*, sample_size: int = 5, accept: int = 2) -> Inspection:
    return Inspection(
        production_booking_id=uuid.uuid4(),
        lab_booking_id=uuid.uuid4(),
        buyer_org_id=uuid.uuid4(),
        supplier_org_id=uuid.uuid4(),
        lab_org_id=uuid.uuid4(),
        characteristics=[BORE, HARD],
        inspection_level="II",
        aql="15",
        lot_size=20,
        code_letter="C",
        sample_size=sample_size,
        accept_number=accept,
        reject_number=accept + 1,
        due_date=date(2026, 12, 31),
    )


def _unit(bore: str, hardness: str = "45", *, bore_unit: str = "mm", **extra: Any) -> UnitIn:
    return UnitIn.model_validate(
        {
            "measurements": [
                {"characteristic": "Bore", "value": bore, "unit": bore_unit},
                {"characteristic": "Hardness", "value": hardness, "unit": "HRC"},
            ],
            **extra,
        }
    )


def test_tolerance_bounds_are_inclusive_in_exact_decimals() -> None:
    assert conforms(Decimal("11.980"), BORE) and conforms(Decimal("12.020"), BORE)
    assert conforms(Decimal("11.98"), BORE)  # the same number with fewer digits
    assert not conforms(Decimal("11.9799999"), BORE)
    assert not conforms(Decimal("12.0200001"), BORE)
    # Binary floats would put 0.1 + 0.2 just above 0.3: decimals do not.
    tight = {"name": "x", "nominal": "0.1", "lower_tol": "0", "upper_tol": "0.2", "unit": "mm"}
    assert conforms(Decimal("0.3"), tight)


def test_length_converts_between_mm_micrometres_and_inches_and_nothing_else_converts() -> None:
    assert convert(Decimal("12000"), from_unit="µm", to_unit="mm") == Decimal("12")
    assert convert(Decimal("12000"), from_unit="um", to_unit="mm") == Decimal("12")
    assert convert(Decimal("1"), from_unit="in", to_unit="mm") == Decimal("25.4")
    assert convert(Decimal("0.5"), from_unit="mm", to_unit="µm") == Decimal("500")
    assert convert(Decimal("45"), from_unit="HRC", to_unit="HRC") == Decimal("45")
    assert convert(Decimal("45"), from_unit="HV", to_unit="HRC") is None
    assert convert(Decimal("1"), from_unit="kg", to_unit="mm") is None
    # 0.4724 in = 11.99896 mm: inside; 0.4716 in = 11.97864 mm: outside.
    units = [_unit("0.4724", bore_unit="in"), _unit("0.4716", bore_unit="in"), _unit("12020", bore_unit="µm")]
    out = assess_units([BORE, HARD], units, sample_size=3)
    assert [u["conforming"] for u in out] == [True, False, True]
    assert out[1]["failed"] == ["Bore"] and out[1]["measurements"][0]["value"] == "0.4716"


def test_each_unit_records_its_failed_characteristics() -> None:
    units = [_unit("12.000"), _unit("12.030", "49"), _unit("12.000", "41.999", serial="S-3")]
    out = assess_units([BORE, HARD], units, sample_size=3)
    assert [u["failed"] for u in out] == [[], ["Bore", "Hardness"], ["Hardness"]]
    assert [u["unit"] for u in out] == [1, 2, 3] and out[2]["serial"] == "S-3"


@pytest.mark.parametrize(
    ("defectives", "verdict"), [(0, "accepted"), (2, "accepted"), (3, "rejected"), (5, "rejected")]
)
def test_the_lot_is_accepted_up_to_ac_and_rejected_from_re(defectives: int, verdict: str) -> None:
    assert verdict_of(_inspection(accept=2), defectives) == verdict


def test_ac_zero_rejects_on_the_first_nonconforming_unit() -> None:
    inspection = _inspection(sample_size=2, accept=0)
    assert verdict_of(inspection, 0) == "accepted" and verdict_of(inspection, 1) == "rejected"


@pytest.mark.parametrize(
    ("units", "field", "says"),
    [
        ([_unit("12")] * 4, "units", "5 units; 4 were sent"),
        ([_unit("12", bore_unit="HRC")] + [_unit("12")] * 4, "units.0.measurements.0.unit", "cannot be converted"),
    ],
)
def test_a_wrong_sample_or_unit_is_refused_naming_the_field(units: list[UnitIn], field: str, says: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        assess_units([BORE, HARD], units, sample_size=5)
    assert caught.value.extra["fields"][0]["field"] == field
    assert says in caught.value.extra["fields"][0]["message"]


def test_unknown_missing_and_repeated_characteristics_are_refused() -> None:
    unknown = UnitIn.model_validate({"measurements": [{"characteristic": "Colour", "value": "1", "unit": "mm"}]})
    with pytest.raises(Unprocessable, match="'Colour' is not a characteristic of the plan"):
        assess_units([BORE, HARD], [unknown], sample_size=1)
    missing = UnitIn.model_validate({"measurements": [{"characteristic": "Bore", "value": "12", "unit": "mm"}]})
    with pytest.raises(Unprocessable, match="not measured: Hardness"):
        assess_units([BORE, HARD], [missing], sample_size=1)
    twice = UnitIn.model_validate({"measurements": [{"characteristic": "Bore", "value": "12", "unit": "mm"}] * 2})
    with pytest.raises(Unprocessable, match="measured twice"):
        assess_units([BORE], [twice], sample_size=1)


# -- accreditation -------------------------------------------------------------------------------------------


@dataclass
class Cert:
    standard: str = "ISO/IEC 17025"
    status: str = "verified"
    scope: str = "Dimensional measurement to GB/T 3177-2009 and ISO 10360-2:2009; tensile testing GB/T 228.1-2021"
    valid_from: date = date(2025, 1, 1)
    valid_until: date = date(2027, 12, 31)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


ON = date(2026, 6, 1)


def test_a_verified_valid_certificate_whose_scope_names_the_standard_covers_the_test() -> None:
    cert = Cert()
    assert assess([cert], test_standard="GB/T 3177-2009", on=ON) == ("covered", cert.id)
    # Year, spacing, case and the full-width slash do not matter.
    for spelling in ("GB/T 3177", "gb/t3177-2009", "GB／T 3177—2009", "ISO 10360-2", "ISO 10360-2:2019"):
        assert assess([cert], test_standard=spelling, on=ON)[0] == "covered", spelling
    assert assess([Cert(standard="CNAS-CL01")], test_standard="GB/T 228.1", on=ON)[0] == "covered"


def test_validity_is_checked_on_the_test_day_inclusive() -> None:
    cert = Cert(valid_until=ON)
    assert assess([cert], test_standard="GB/T 3177", on=ON)[0] == "covered"
    assert assess([cert], test_standard="GB/T 3177", on=date(2026, 6, 2)) == ("not_valid_on_test_date", None)
    assert assess([Cert(valid_from=date(2026, 6, 2))], test_standard="GB/T 3177", on=ON)[0] == "not_valid_on_test_date"


def test_a_standard_outside_the_scope_is_out_of_scope_even_when_a_longer_code_is_listed() -> None:
    cert = Cert()
    assert assess([cert], test_standard="ISO 6892-1", on=ON) == ("out_of_scope", None)
    assert assess([cert], test_standard="GB/T 228", on=ON)[0] == "out_of_scope"  # only 228.1 is listed
    assert assess([cert], test_standard="ISO 10360", on=ON)[0] == "out_of_scope"  # only part 2 is listed
    assert assess([cert], test_standard="GB/T 3177.1", on=ON)[0] == "out_of_scope"
    assert not scope_covers("GB/T 228.10", "GB/T 228.1")


def test_unverified_or_other_certificates_are_no_certificate() -> None:
    assert assess([], test_standard="GB/T 3177", on=ON) == ("no_certificate", None)
    assert assess([Cert(status="pending")], test_standard="GB/T 3177", on=ON)[0] == "no_certificate"
    assert assess([Cert(status="rejected")], test_standard="GB/T 3177", on=ON)[0] == "no_certificate"
    assert assess([Cert(standard="ISO 9001")], test_standard="GB/T 3177", on=ON)[0] == "no_certificate"


def test_the_covering_certificate_is_chosen_among_several() -> None:
    expired = Cert(valid_until=date(2026, 1, 1))
    narrow = Cert(scope="Hardness GB/T 230.1")
    wide = Cert()
    assert assess([expired, narrow, wide], test_standard="GB/T 3177", on=ON) == ("covered", wide.id)


def test_standards_are_normalised() -> None:
    assert normalise_standard(" gb／t 228.1-2021 ") == "GB/T228.1"
    assert normalise_standard("ISO 10360-2:2009") == "ISO10360-2"
    assert is_accreditation("ISO/IEC 17025") and is_accreditation("iso 17025") and is_accreditation("CNAS-CL01")
    assert not is_accreditation("ISO 9001") and not is_accreditation("CMA")
