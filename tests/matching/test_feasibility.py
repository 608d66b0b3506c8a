"""Hard constraints of matching (pure, synchronous). Factories here are reused by the other matching tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from matching.feasibility import check, fits_envelope, half_up_div, haversine_km, machine_slots, price_for
from matching.types import Candidate, CertificateInfo, FeasibleMatch, MatchRequest, Rejection, Weights

SHANGHAI = ZoneInfo("Asia/Shanghai")  # UTC+8 all year: realistic and DST-free
MILLING = frozenset({"machining.milling.cnc_3axis", "machining.milling.cnc_4axis", "machining.milling.cnc_5axis"})
TENSILE = frozenset({"testing.mechanical.tensile"})
SH_LATLON = (31.2304, 121.4737)  # Shanghai
HZ_LATLON = (30.2741, 120.1551)  # Hangzhou, ~165 km away


def sh(day: int, hour: int = 0, minute: int = 0, month: int = 5) -> datetime:
    """Shanghai wall-clock time in May 2027 (2027-05-03 is a Monday), as UTC."""
    return datetime(2027, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def workday(day: int) -> tuple[datetime, datetime]:
    return sh(day, 8), sh(day, 18)


def machine(**overrides: Any) -> Candidate:
    base: dict[str, Any] = {
        "asset_id": "m1",
        "org_id": "o1",
        "site_id": "s1",
        "kind": "machine",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "process_codes": frozenset({"machining.milling.cnc_5axis"}),
        "materials": frozenset({"al6061", "ss304"}),
        "envelope_mm": (800.0, 500.0, 450.0),
        "tolerance_mm": 0.01,
        "hourly_rate": 20_000,  # 200.00 CNY/h
        "setup_fee": 5_000,
        "min_booking_minutes": 60,
        "slot_minutes": 30,
        "setup_minutes": 0,
        "buffer_minutes": 0,
        "free": [workday(3), workday(4), workday(5)],
        "lat": HZ_LATLON[0],
        "lon": HZ_LATLON[1],
        "region_code": "CN-ZJ-HZ",
        "certificates": [CertificateInfo("ISO 9001", date(2026, 1, 1), date(2028, 12, 31))],
        "org_verified": True,
        "status": "published",
    }
    base.update(overrides)
    return Candidate(**base)


def machine_request(**overrides: Any) -> MatchRequest:
    base: dict[str, Any] = {
        "kind": "machine",
        "process_code": "machining.milling.cnc_3axis",
        "material": "al6061",
        "duration_minutes": 120,
        "earliest_start": sh(3, 8),
        "deadline": sh(7, 18),
        "currency": "CNY",
    }
    base.update(overrides)
    return MatchRequest(**base)


def lab(**overrides: Any) -> Candidate:
    base: dict[str, Any] = {
        "asset_id": "l1",
        "org_id": "o2",
        "site_id": "s2",
        "kind": "lab_service",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "process_codes": TENSILE,
        "materials": frozenset({"al6061"}),
        "price_per_sample": 30_000,
        "turnaround_days": 2,
        "daily_sample_capacity": 10,
        "lat": SH_LATLON[0],
        "lon": SH_LATLON[1],
        "region_code": "CN-SH",
        "certificates": [CertificateInfo("ISO/IEC 17025", date(2026, 1, 1), date(2028, 12, 31))],
        "org_verified": True,
        "status": "published",
    }
    base.update(overrides)
    return Candidate(**base)


def lab_request(**overrides: Any) -> MatchRequest:
    base: dict[str, Any] = {
        "kind": "lab_service",
        "process_code": "testing.mechanical.tensile",
        "material": "al6061",
        "samples": 5,
        "earliest_start": sh(7, 9),  # Friday
        "deadline": sh(11, 17),  # Tuesday
        "currency": "CNY",
    }
    base.update(overrides)
    return MatchRequest(**base)


def feasible(result: FeasibleMatch | Rejection) -> FeasibleMatch:
    assert isinstance(result, FeasibleMatch), result
    return result


# --- baseline and each constraint ------------------------------------------------------------------


def test_baseline_machine_gets_earliest_slot_and_price() -> None:
    m = feasible(check(machine_request(), machine(), MILLING))
    assert (m.slot_start, m.slot_end) == (sh(3, 8), sh(3, 10))
    assert (m.block_start, m.block_end) == (m.slot_start, m.slot_end)
    assert m.price.total == 40_000 + 5_000 and m.price.work == 40_000 and m.price.setup_fee == 5_000
    assert m.distance_km is None


@pytest.mark.parametrize(
    ("cand", "req", "expected"),
    [
        ({"status": "draft"}, {}, Rejection.STATUS),
        ({"status": "paused"}, {}, Rejection.STATUS),
        ({"org_verified": False}, {}, Rejection.STATUS),
        ({"process_codes": frozenset({"machining.turning.cnc_lathe"})}, {}, Rejection.PROCESS),
        ({"kind": "lab_service"}, {}, Rejection.PROCESS),
        ({"materials": frozenset({"ss304"})}, {}, Rejection.MATERIAL),
        ({}, {"part_size_mm": (900.0, 10.0, 10.0)}, Rejection.ENVELOPE),
        ({"envelope_mm": None}, {"part_size_mm": (10.0, 10.0, 10.0)}, Rejection.ENVELOPE),
        ({}, {"tolerance_mm": 0.005}, Rejection.TOLERANCE),
        ({"tolerance_mm": None}, {"tolerance_mm": 0.05}, Rejection.TOLERANCE),
        ({}, {"required_certificates": ("IATF 16949",)}, Rejection.CERTIFICATE),
        ({"certificates": []}, {"required_certificates": ("ISO 9001",)}, Rejection.CERTIFICATE),
        ({}, {"lat": SH_LATLON[0], "lon": SH_LATLON[1], "max_distance_km": 150}, Rejection.LOCATION),
        ({"lat": None, "lon": None}, {"lat": 31.0, "lon": 121.0, "max_distance_km": 5000}, Rejection.LOCATION),
        ({}, {"region_prefixes": ("CN-JS",)}, Rejection.LOCATION),
        ({"region_code": None}, {"region_prefixes": ("CN",)}, Rejection.LOCATION),
        ({"currency": "USD"}, {}, Rejection.CURRENCY),
        ({}, {"budget_max": 44_999}, Rejection.BUDGET),
        ({"hourly_rate": None}, {}, Rejection.BUDGET),
        ({"free": []}, {}, Rejection.AVAILABILITY),
        ({}, {"deadline": sh(3, 9)}, Rejection.AVAILABILITY),
    ],
)
def test_each_constraint_fails(cand: dict[str, Any], req: dict[str, Any], expected: Rejection) -> None:
    assert check(machine_request(**req), machine(**cand), MILLING) == expected


@pytest.mark.parametrize(
    ("cand", "req"),
    [
        ({}, {"material": None}),
        ({"materials": frozenset()}, {"material": None}),
        ({}, {"part_size_mm": (800.0, 500.0, 450.0)}),
        ({}, {"tolerance_mm": 0.01}),
        ({}, {"required_certificates": ("ISO 9001",)}),
        ({}, {"required_certificates": ("  iso   9001 ",)}),  # names compare case- and space-insensitively
        ({}, {"lat": SH_LATLON[0], "lon": SH_LATLON[1], "max_distance_km": 200}),
        ({}, {"region_prefixes": ("CN-JS", "CN-ZJ")}),
        ({}, {"lat": SH_LATLON[0], "lon": SH_LATLON[1], "max_distance_km": 200, "region_prefixes": ("CN-ZJ",)}),
        ({}, {"budget_max": 45_000}),
        ({"process_codes": frozenset({"machining.milling.cnc_3axis", "x"})}, {}),
    ],
)
def test_each_constraint_passes(cand: dict[str, Any], req: dict[str, Any]) -> None:
    feasible(check(machine_request(**req), machine(**cand), MILLING))


def test_distance_and_region_both_must_hold() -> None:
    req = machine_request(lat=SH_LATLON[0], lon=SH_LATLON[1], max_distance_km=200, region_prefixes=("CN-SH",))
    assert check(req, machine(), MILLING) == Rejection.LOCATION
    (lat1, lon1), (lat2, lon2) = SH_LATLON, HZ_LATLON
    assert 150 < haversine_km(lat1=lat1, lon1=lon1, lat2=lat2, lon2=lon2) < 180


def test_first_failing_constraint_in_enum_order() -> None:
    cand = machine(materials=frozenset({"ss304"}), currency="USD", free=[])
    assert check(machine_request(), cand, MILLING) == Rejection.MATERIAL
    assert check(machine_request(material=None), cand, MILLING) == Rejection.CURRENCY
    assert [r.value for r in Rejection] == [
        "status",
        "process",
        "material",
        "envelope",
        "tolerance",
        "certificate",
        "location",
        "currency",
        "budget",
        "availability",
    ]


# --- envelope, money -------------------------------------------------------------------------------


def test_rotated_part_fits_sorted_envelope() -> None:
    assert fits_envelope((300, 100, 50), (60, 320, 120))
    assert not fits_envelope((300, 100, 130), (60, 320, 120))
    req = machine_request(part_size_mm=(450.0, 800.0, 500.0))  # same box, rotated
    feasible(check(req, machine(), MILLING))
    assert check(machine_request(part_size_mm=(450.0, 801.0, 100.0)), machine(), MILLING) == Rejection.ENVELOPE


def test_lab_without_envelope_ignores_part_size() -> None:
    feasible(check(lab_request(part_size_mm=(10.0, 10.0, 100.0)), lab(), TENSILE))


@pytest.mark.parametrize(
    ("rate", "minutes", "work"),
    [(10_001, 30, 5_001), (10_000, 30, 5_000), (3, 30, 2), (1, 30, 1), (100, 20, 33), (100, 40, 67), (0, 60, 0)],
)
def test_price_rounds_half_up_to_minor_unit(rate: int, minutes: int, work: int) -> None:
    price = price_for(machine_request(duration_minutes=minutes), machine(hourly_rate=rate, setup_fee=700))
    assert price is not None and (price.work, price.total) == (work, work + 700)
    assert half_up_div(rate * minutes, 60) == work


def test_budget_boundary_uses_rounded_total() -> None:
    cand = machine(hourly_rate=10_001, setup_fee=1_000, min_booking_minutes=0)
    feasible(check(machine_request(duration_minutes=30, budget_max=6_001), cand, MILLING))
    assert check(machine_request(duration_minutes=30, budget_max=6_000), cand, MILLING) == Rejection.BUDGET


# --- machine slots ---------------------------------------------------------------------------------


def test_setup_and_buffer_must_be_free_too() -> None:
    free = [(sh(3, 8), sh(3, 10))]
    cand = machine(free=free, setup_minutes=30, slot_minutes=30)
    m = feasible(check(machine_request(duration_minutes=90), cand, MILLING))
    assert (m.block_start, m.slot_start, m.slot_end, m.block_end) == (sh(3, 8), sh(3, 8, 30), sh(3, 10), sh(3, 10))
    with_buffer = replace(cand, buffer_minutes=15)
    assert check(machine_request(duration_minutes=90), with_buffer, MILLING) == Rejection.AVAILABILITY


def test_setup_may_precede_earliest_start_if_free() -> None:
    cand = machine(setup_minutes=60, free=[(sh(3, 6), sh(3, 18))])
    m = feasible(check(machine_request(), cand, MILLING))
    assert m.slot_start == sh(3, 8) and m.block_start == sh(3, 7)


def test_min_booking_extends_slot_but_not_price() -> None:
    m = feasible(check(machine_request(duration_minutes=30), machine(min_booking_minutes=240), MILLING))
    assert m.slot_end - m.slot_start == timedelta(hours=4)
    assert m.price.work == 10_000 and m.price.billed_minutes == 30


def test_slot_start_on_utc_grid_and_before_deadline() -> None:
    cand = machine(free=[(sh(3, 8, 10), sh(3, 18))], slot_minutes=30)
    assert feasible(check(machine_request(), cand, MILLING)).slot_start == sh(3, 8, 30)
    # 08:30 + 2 h = 10:30 must not pass a 10:29 deadline
    assert check(machine_request(deadline=sh(3, 10, 29)), cand, MILLING) == Rejection.AVAILABILITY
    assert feasible(check(machine_request(deadline=sh(3, 10, 30)), cand, MILLING)).slot_end == sh(3, 10, 30)


def test_adjacent_free_intervals_form_one_slot() -> None:
    cand = machine(free=[(sh(3, 8), sh(3, 9)), (sh(3, 9), sh(3, 10))])
    assert feasible(check(machine_request(), cand, MILLING)).slot_start == sh(3, 8)


def test_busy_gap_pushes_slot_to_next_interval() -> None:
    cand = machine(free=[(sh(3, 8), sh(3, 9)), (sh(3, 9, 30), sh(3, 12))])
    assert feasible(check(machine_request(), cand, MILLING)).slot_start == sh(3, 9, 30)


# --- certificates over the slot --------------------------------------------------------------------


def _iso(valid_from: date, valid_until: date) -> list[CertificateInfo]:
    return [CertificateInfo("ISO 9001", valid_from, valid_until)]


def test_certificate_starting_mid_window_picks_later_slot() -> None:
    cand = machine(certificates=_iso(date(2027, 5, 4), date(2028, 1, 1)))
    m = feasible(check(machine_request(required_certificates=("ISO 9001",)), cand, MILLING))
    assert m.slot_start == sh(4, 8)


def test_certificate_expiring_before_any_free_slot() -> None:
    cand = machine(certificates=_iso(date(2026, 1, 1), date(2027, 5, 3)))
    req = machine_request(required_certificates=("ISO 9001",), earliest_start=sh(4, 8))
    assert check(req, cand, MILLING) == Rejection.CERTIFICATE
    # the same certificate is fine when nothing is required
    feasible(check(machine_request(earliest_start=sh(4, 8)), cand, MILLING))


def test_certificate_must_cover_the_slot_end_date() -> None:
    # night shift Mon 20:00 -> Tue 04:00 local; a 6 h job ends Tuesday 02:00
    cand = machine(free=[(sh(3, 20), sh(4, 4))], certificates=_iso(date(2026, 1, 1), date(2027, 5, 3)))
    req = machine_request(duration_minutes=360, required_certificates=("ISO 9001",))
    assert check(req, cand, MILLING) == Rejection.CERTIFICATE
    assert feasible(check(req, replace(cand, certificates=_iso(date(2026, 1, 1), date(2027, 5, 4))), MILLING))


def test_certificate_end_date_is_site_local() -> None:
    # 23:00-24:00 local on May 3 is 15:00-16:00 UTC; valid_until May 3 covers it
    cand = machine(free=[(sh(3, 23), sh(4, 0))], certificates=_iso(date(2026, 1, 1), date(2027, 5, 3)))
    m = feasible(check(machine_request(duration_minutes=60, required_certificates=("ISO 9001",)), cand, MILLING))
    assert m.slot_end == sh(4, 0)


def test_renewed_certificate_covers_a_slot_spanning_both() -> None:
    certs = [*_iso(date(2026, 1, 1), date(2027, 5, 3)), *_iso(date(2027, 5, 4), date(2030, 1, 1))]
    cand = machine(free=[(sh(3, 20), sh(4, 4))], certificates=certs)
    req = machine_request(duration_minutes=360, required_certificates=("ISO 9001",))
    assert feasible(check(req, cand, MILLING)).slot_start == sh(3, 20)


def test_every_required_certificate_must_be_valid() -> None:
    certs = [
        *_iso(date(2026, 1, 1), date(2030, 1, 1)),
        CertificateInfo("IATF 16949", date(2027, 5, 5), date(2030, 1, 1)),
    ]
    req = machine_request(required_certificates=("ISO 9001", "IATF 16949"))
    assert feasible(check(req, machine(certificates=certs), MILLING)).slot_start == sh(5, 8)


def test_machine_slots_lists_every_valid_start() -> None:
    cand = machine(free=[(sh(3, 8), sh(3, 11))], slot_minutes=30)
    slots = machine_slots(machine_request(), cand)
    assert [s for s, _ in slots] == [sh(3, 8), sh(3, 8, 30), sh(3, 9)]


# --- labs ------------------------------------------------------------------------------------------


def test_lab_drop_off_friday_turnaround_skips_weekend() -> None:
    m = feasible(check(lab_request(), lab(), TENSILE))
    assert (m.drop_off_day, m.completion_day) == (date(2027, 5, 7), date(2027, 5, 11))
    assert (m.slot_start, m.slot_end) == (sh(7, 0), sh(12, 0))  # local midnights, as UTC
    assert m.price.total == 150_000 and m.price.samples == 5


def test_lab_capacity_and_deadline() -> None:
    full_friday = lab(lab_capacity={date(2027, 5, 7): 4})
    # Monday drop-off completes Wednesday, after the Tuesday deadline
    assert check(lab_request(), full_friday, TENSILE) == Rejection.AVAILABILITY
    m = feasible(check(lab_request(deadline=sh(12, 17)), full_friday, TENSILE))
    assert (m.drop_off_day, m.completion_day) == (date(2027, 5, 10), date(2027, 5, 12))
    assert feasible(check(lab_request(samples=4), full_friday, TENSILE)).drop_off_day == date(2027, 5, 7)


def test_lab_closed_days_block_drop_off_and_extend_turnaround() -> None:
    cand = lab(closed_days=frozenset({date(2027, 5, 7), date(2027, 5, 11)}))
    # Friday closed; Monday + 2 working days skipping closed Tuesday = Thursday
    m = feasible(check(lab_request(deadline=sh(13, 17)), cand, TENSILE))
    assert (m.drop_off_day, m.completion_day) == (date(2027, 5, 10), date(2027, 5, 13))
    assert check(lab_request(deadline=sh(12, 17)), cand, TENSILE) == Rejection.AVAILABILITY


def test_lab_no_weekend_drop_off_and_zero_capacity_default() -> None:
    req = lab_request(earliest_start=sh(8, 9), deadline=sh(12, 17))  # Saturday
    assert feasible(check(req, lab(), TENSILE)).drop_off_day == date(2027, 5, 10)
    assert check(req, lab(daily_sample_capacity=None), TENSILE) == Rejection.AVAILABILITY
    assert feasible(check(req, lab(daily_sample_capacity=None, lab_capacity={date(2027, 5, 10): 5}), TENSILE))


def test_lab_certificate_valid_through_completion_day() -> None:
    certs = [CertificateInfo("ISO/IEC 17025", date(2026, 1, 1), date(2027, 5, 10))]
    req = lab_request(required_certificates=("ISO/IEC 17025",))
    assert check(req, lab(certificates=certs), TENSILE) == Rejection.CERTIFICATE
    certs_ok = [CertificateInfo("ISO/IEC 17025", date(2026, 1, 1), date(2027, 5, 11))]
    feasible(check(req, lab(certificates=certs_ok), TENSILE))


def test_lab_turnaround_zero_and_price() -> None:
    m = feasible(check(lab_request(samples=2), lab(turnaround_days=0, price_per_sample=12_345), TENSILE))
    assert m.drop_off_day == m.completion_day == date(2027, 5, 7)
    assert m.price.total == 24_690
    assert check(lab_request(budget_max=24_689, samples=2), lab(price_per_sample=12_345), TENSILE) == Rejection.BUDGET


# --- input validation ------------------------------------------------------------------------------


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        machine_request(earliest_start=datetime(2027, 5, 3, 8))
    with pytest.raises(ValueError, match="before deadline"):
        machine_request(deadline=sh(3, 8))
    with pytest.raises(ValueError, match="duration_minutes"):
        machine_request(duration_minutes=None)
    with pytest.raises(ValueError, match="samples"):
        lab_request(samples=0)
    with pytest.raises(ValueError, match="location"):
        machine_request(max_distance_km=10)
    with pytest.raises(ValueError):
        Weights(price=-0.1)
    with pytest.raises(ValueError):
        Weights(0, 0, 0, 0, 0)
