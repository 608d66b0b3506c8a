"""Engine: feasibility + ranking, checked against an independent brute-force oracle."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Set
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.engine import match, request_matches_asset
from matching.types import Candidate, CertificateInfo, MatchRequest
from tests.matching.test_feasibility import MILLING, TENSILE, lab, lab_request, machine, machine_request, sh

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SERVING = frozenset({"p.a", "p.b"})


# --- independent oracle (deliberately naive: enumerate every grid start / every day) --------------


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    x = (
        math.sin(math.radians(lat2 - lat1) / 2) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(x))


def _norm(s: str) -> str:
    return " ".join(s.split()).lower()


def _certs_cover(req: MatchRequest, c: Candidate, first: date, last: date) -> bool:
    day = first
    while day <= last:
        for std in req.required_certificates:
            if not any(
                _norm(x.standard) == _norm(std) and x.valid_from <= day <= x.valid_until for x in c.certificates
            ):
                return False
        day += timedelta(days=1)
    return True


def _merged(free: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(free):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif s < e:
            out.append((s, e))
    return out


def _static(req: MatchRequest, c: Candidate, serving: Set[str]) -> str | None:
    if c.status != "published" or not c.org_verified:
        return "status"
    if c.kind != req.kind or not set(c.process_codes) & set(serving):
        return "process"
    if req.material is not None and req.material not in c.materials:
        return "material"
    if req.part_size_mm is not None:
        if c.envelope_mm is None:
            if c.kind == "machine":
                return "envelope"
        elif any(p > e for p, e in zip(sorted(req.part_size_mm), sorted(c.envelope_mm), strict=True)):
            return "envelope"
    if req.tolerance_mm is not None and (c.tolerance_mm is None or c.tolerance_mm > req.tolerance_mm):
        return "tolerance"
    held = {_norm(x.standard) for x in c.certificates if x.valid_from <= x.valid_until}
    if any(_norm(r) not in held for r in req.required_certificates):
        return "certificate"
    if req.max_distance_km is not None:
        assert req.lat is not None and req.lon is not None
        if c.lat is None or c.lon is None or _km(req.lat, req.lon, c.lat, c.lon) > req.max_distance_km:
            return "location"
    if req.region_prefixes and not any((c.region_code or "\0").startswith(p) for p in req.region_prefixes):
        return "location"
    if c.currency != req.currency:
        return "currency"
    if req.kind == "machine":
        if c.hourly_rate is None:
            return "budget"
        assert req.duration_minutes is not None
        work = (Decimal(c.hourly_rate) * req.duration_minutes / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        total = int(work) + c.setup_fee
    else:
        if c.price_per_sample is None:
            return "budget"
        assert req.samples is not None
        total = c.price_per_sample * req.samples
    if req.budget_max is not None and total > req.budget_max:
        return "budget"
    return None


def oracle(req: MatchRequest, c: Candidate, serving: Set[str]) -> tuple[str | None, datetime | None]:
    """(first failing constraint, earliest valid slot start)."""
    reason = _static(req, c, serving)
    if reason is not None:
        return reason, None
    tz = ZoneInfo(c.timezone)
    any_free = False
    if req.kind == "machine":
        assert req.duration_minutes is not None
        length = timedelta(minutes=max(req.duration_minutes, c.min_booking_minutes))
        grid = c.slot_minutes * 60
        secs = (req.earliest_start - EPOCH).total_seconds()
        t = EPOCH + timedelta(seconds=math.ceil(secs / grid) * grid)
        free = _merged(list(c.free))
        while t + length <= req.deadline:
            bs, be = t - timedelta(minutes=c.setup_minutes), t + length + timedelta(minutes=c.buffer_minutes)
            if any(fs <= bs and be <= fe for fs, fe in free):
                any_free = True
                last = (t + length - timedelta(microseconds=1)).astimezone(tz).date()
                if _certs_cover(req, c, t.astimezone(tz).date(), last):
                    return None, t
            t += timedelta(seconds=grid)
    else:
        assert req.samples is not None and c.turnaround_days is not None
        day = req.earliest_start.astimezone(tz).date()
        end = req.deadline.astimezone(tz).date()
        while day <= end:
            working = day.weekday() < 5 and day not in c.closed_days
            done, n = day, c.turnaround_days
            while n:
                done += timedelta(days=1)
                if done.weekday() < 5 and done not in c.closed_days:
                    n -= 1
            cap = c.lab_capacity.get(day, c.daily_sample_capacity or 0)
            if working and done <= end and cap >= req.samples:
                any_free = True
                if _certs_cover(req, c, day, done):
                    return None, datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
            day += timedelta(days=1)
    return ("certificate" if any_free else "availability"), None


# --- random instances --------------------------------------------------------------------------------

BASE = sh(3, 0)  # Monday 00:00 Shanghai
STANDARDS = ["ISO 9001", "IATF 16949"]


def _usually(draw: st.DrawFn, p: float = 0.85) -> bool:
    """Bias towards the feasible side so that most examples exercise the slot search, not a static reject."""
    return draw(st.integers(0, 99)) < p * 100


@st.composite
def certificates(draw: st.DrawFn) -> list[CertificateInfo]:
    out = []
    if _usually(draw, 0.6):
        out.append(CertificateInfo("ISO 9001", date(2027, 1, 1), date(2028, 1, 1)))
    for _ in range(draw(st.integers(0, 3))):
        start = date(2027, 5, 1) + timedelta(days=draw(st.integers(0, 8)))
        out.append(
            CertificateInfo(draw(st.sampled_from(STANDARDS)), start, start + timedelta(days=draw(st.integers(-1, 6))))
        )
    return out


@st.composite
def common_candidate(draw: st.DrawFn, i: int, kind: str) -> dict[str, object]:
    has_loc = _usually(draw, 0.9)
    return {
        "asset_id": f"a{i:03d}",
        "org_id": "o",
        "site_id": "s",
        "kind": kind,
        "currency": "CNY" if _usually(draw, 0.95) else "USD",
        "timezone": "Asia/Shanghai",
        "status": "published" if _usually(draw, 0.95) else "draft",
        "org_verified": _usually(draw, 0.95),
        "process_codes": frozenset({"p.a"} if _usually(draw, 0.9) else {"p.c"})
        | draw(st.sets(st.sampled_from(["p.b", "p.c"]), max_size=1)),
        "materials": frozenset({"al", "st", "ti"} if _usually(draw) else draw(st.sets(st.sampled_from(["al", "ti"])))),
        "envelope_mm": draw(st.tuples(*[st.integers(150, 800).map(float)] * 3)) if _usually(draw, 0.9) else None,
        "tolerance_mm": draw(st.sampled_from([0.005, 0.01, 0.05])) if _usually(draw, 0.9) else None,
        "lat": draw(st.floats(30.0, 32.0)) if has_loc else None,
        "lon": draw(st.floats(120.0, 122.0)) if has_loc else None,
        "region_code": draw(st.sampled_from(["CN-ZJ-HZ", "CN-SH", "CN-JS-SZ"])) if _usually(draw, 0.9) else None,
        "certificates": draw(certificates()),
        "rating_sum": float(draw(st.integers(0, 50))),
        "rating_count": draw(st.integers(0, 10)),
        "completed_count": draw(st.integers(0, 10)),
        "on_time_count": draw(st.integers(0, 10)),
        "utilisation": draw(st.floats(0.0, 1.0)),
    }


@st.composite
def machine_candidate(draw: st.DrawFn, i: int) -> Candidate:
    fields = draw(common_candidate(i, "machine"))
    free = []
    for _ in range(draw(st.integers(0, 8))):
        start = BASE + timedelta(minutes=15 * draw(st.integers(0, 4 * 24 * 4)))
        free.append((start, start + timedelta(minutes=15 * draw(st.integers(1, 96)))))
    return Candidate(
        **fields,  # type: ignore[arg-type]
        hourly_rate=draw(st.integers(1, 30_000)) if _usually(draw, 0.95) else None,
        setup_fee=draw(st.integers(0, 10_000)),
        min_booking_minutes=draw(st.sampled_from([0, 60, 120])),
        slot_minutes=draw(st.sampled_from([15, 30, 45, 60])),
        setup_minutes=draw(st.sampled_from([0, 15, 30, 45])),
        buffer_minutes=draw(st.sampled_from([0, 15, 30])),
        free=free,
    )


@st.composite
def lab_candidate(draw: st.DrawFn, i: int) -> Candidate:
    fields = draw(common_candidate(i, "lab_service"))
    days = [date(2027, 5, 3) + timedelta(days=d) for d in range(14)]
    return Candidate(
        **fields,  # type: ignore[arg-type]
        price_per_sample=draw(st.integers(1, 20_000)) if _usually(draw, 0.95) else None,
        turnaround_days=draw(st.integers(0, 4)),
        daily_sample_capacity=draw(st.integers(0, 10)) if _usually(draw) else None,
        lab_capacity=draw(st.dictionaries(st.sampled_from(days), st.integers(0, 10), max_size=5)),
        closed_days=frozenset(draw(st.sets(st.sampled_from(days), max_size=3))),
    )


@st.composite
def request(draw: st.DrawFn, kind: str) -> MatchRequest:
    start = BASE + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    has_loc = draw(st.booleans())
    return MatchRequest(
        kind=kind,  # type: ignore[arg-type]
        process_code="p",
        earliest_start=start,
        deadline=start + timedelta(hours=draw(st.integers(2, 60) if kind == "machine" else st.integers(24, 240))),
        currency="CNY",
        material=draw(st.sampled_from(["al", "st"])) if _usually(draw, 0.5) else None,
        duration_minutes=draw(st.integers(2, 30)) * 15 if kind == "machine" else None,
        samples=draw(st.integers(1, 8)) if kind == "lab_service" else None,
        part_size_mm=draw(st.tuples(*[st.integers(10, 400).map(float)] * 3)) if _usually(draw, 0.3) else None,
        tolerance_mm=draw(st.sampled_from([0.005, 0.01, 0.05])) if _usually(draw, 0.3) else None,
        required_certificates=tuple(draw(st.sets(st.sampled_from([*STANDARDS, "iso  9001"]), max_size=2)))
        if _usually(draw, 0.3)
        else (),
        lat=31.0 if has_loc else None,
        lon=121.0 if has_loc else None,
        max_distance_km=draw(st.floats(50, 400)) if has_loc and _usually(draw, 0.5) else None,
        region_prefixes=tuple(draw(st.sets(st.sampled_from(["CN-ZJ", "CN-SH", "CN"]), min_size=1, max_size=2)))
        if _usually(draw, 0.3)
        else (),
        budget_max=draw(st.integers(20_000, 400_000)) if _usually(draw, 0.4) else None,
    )


@st.composite
def instance(draw: st.DrawFn) -> tuple[MatchRequest, list[Candidate]]:
    kind = draw(st.sampled_from(["machine", "lab_service"]))
    make = machine_candidate if kind == "machine" else lab_candidate
    n = draw(st.integers(1, 10))
    return draw(request(kind)), [draw(make(i)) for i in range(n)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance())
def test_engine_agrees_with_brute_force_oracle(inst: tuple[MatchRequest, list[Candidate]]) -> None:
    req, cands = inst
    result = match(req, cands, SERVING, limit=len(cands), explain_rejections=True)
    expected = {c.asset_id: oracle(req, c, SERVING) for c in cands}
    by_id = {c.asset_id: c for c in cands}

    # exactly the feasible candidates, each at the oracle's earliest slot
    assert {r.asset_id: r.match.slot_start for r in result.items} == {
        a: slot for a, (reason, slot) in expected.items() if reason is None
    }
    # rejection reasons (first failing constraint) and the count identity
    assert result.rejections == dict(Counter(reason for reason, _ in expected.values() if reason is not None))
    assert sum(result.rejections.values()) + len(result.items) == len(cands)
    assert result.feasible_count == len(result.items)

    for r in result.items:
        m, c = r.match, by_id[r.asset_id]
        if req.kind == "machine":
            assert req.duration_minutes is not None
            assert req.earliest_start <= m.slot_start and m.slot_end <= req.deadline
            assert m.slot_end - m.slot_start >= timedelta(minutes=req.duration_minutes)
            assert m.block_start == m.slot_start - timedelta(minutes=c.setup_minutes)
            assert m.block_end == m.slot_end + timedelta(minutes=c.buffer_minutes)
            assert any(fs <= m.block_start and m.block_end <= fe for fs, fe in _merged(list(c.free)))
            assert (m.slot_start - EPOCH) % timedelta(minutes=c.slot_minutes) == timedelta(0)
        else:
            assert m.drop_off_day is not None and m.completion_day is not None
            tz = ZoneInfo(c.timezone)
            assert req.earliest_start.astimezone(tz).date() <= m.drop_off_day
            assert m.completion_day <= req.deadline.astimezone(tz).date()
        # scores and explanations
        assert 0.0 <= r.score <= 1.0
        assert math.isclose(sum(x.contribution for x in r.explanation), r.score, abs_tol=1e-9)
        assert all(0.0 <= x.normalised <= 1.0 for x in r.explanation)
    scores = [r.score for r in result.items]
    assert scores == sorted(scores, reverse=True)
    for r in result.items:
        assert request_matches_asset(req, by_id[r.asset_id], SERVING)


# --- unit tests ------------------------------------------------------------------------------------


def _fleet() -> list[Candidate]:
    return [
        machine(asset_id="cheap", hourly_rate=10_000),
        machine(asset_id="dear", hourly_rate=40_000),
        machine(asset_id="late", free=[(sh(6, 8), sh(6, 18))]),
        machine(asset_id="draft", status="draft"),
        machine(asset_id="busy", free=[]),
        machine(asset_id="usd", currency="USD"),
    ]


def test_match_ranks_limits_and_counts_rejections() -> None:
    result = match(machine_request(), _fleet(), MILLING, limit=2, explain_rejections=True)
    assert [r.asset_id for r in result.items] == ["cheap", "dear"] or result.items[0].asset_id == "cheap"
    assert len(result.items) == 2 and result.feasible_count == 3
    assert result.rejections == {"status": 1, "availability": 1, "currency": 1}


def test_rejections_only_when_asked() -> None:
    assert match(machine_request(), _fleet(), MILLING).rejections == {}


def test_scores_do_not_depend_on_limit() -> None:
    full = {r.asset_id: r.score for r in match(machine_request(), _fleet(), MILLING, limit=20).items}
    top = match(machine_request(), _fleet(), MILLING, limit=1).items
    assert len(top) == 1 and top[0].score == max(full.values()) == full[top[0].asset_id]


def test_empty_candidates_and_limit_zero() -> None:
    assert match(machine_request(), [], MILLING, explain_rejections=True).items == []
    assert match(machine_request(), _fleet(), MILLING, limit=0).items == []


def test_request_matches_asset_for_open_requests() -> None:
    assert request_matches_asset(machine_request(), machine(), MILLING)
    assert not request_matches_asset(machine_request(material="ti"), machine(), MILLING)
    assert request_matches_asset(lab_request(), lab(), TENSILE)
    assert not request_matches_asset(lab_request(), machine(), TENSILE)
