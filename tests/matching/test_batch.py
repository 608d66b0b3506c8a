"""Batch optimiser: feasibility of every assignment, no double booking, MILP >= FCFS."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching import batch
from matching.batch import BatchPlan, generate_options, greedy_fcfs, plan_batch
from matching.feasibility import check, machine_slots, static_rejection
from matching.types import Candidate, FeasibleMatch, MatchRequest
from tests.matching.test_feasibility import MILLING, lab_request, machine, machine_request, sh

H = timedelta(hours=1)


def _serving(requests: Sequence[MatchRequest]) -> dict[str, frozenset[str]]:
    return {r.request_id or "": MILLING for r in requests}


def assert_valid_plan(plan: BatchPlan, requests: Sequence[MatchRequest], cands: Sequence[Candidate]) -> None:
    reqs = {r.request_id: r for r in requests}
    assets = {c.asset_id: c for c in cands}
    assigned = [a.request_id for a in plan.assignments]
    assert len(assigned) == len(set(assigned)), "a request was assigned twice"
    blocks: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for a in plan.assignments:
        req, cand = reqs[a.request_id], assets[a.asset_id]
        assert static_rejection(req, cand, MILLING) is None
        assert (a.slot_start, a.slot_end) in machine_slots(req, cand)  # free incl. setup/buffer, in window, certs
        blocks[a.asset_id].append(
            (a.slot_start - timedelta(minutes=cand.setup_minutes), a.slot_end + timedelta(minutes=cand.buffer_minutes))
        )
    for bs in blocks.values():
        bs.sort()
        assert all(prev[1] <= nxt[0] for prev, nxt in pairwise(bs)), "an asset is double-booked"
    hours = sum((reqs[a.request_id].duration_minutes or 0) / 60 for a in plan.assignments)
    assert plan.matched_hours == pytest.approx(hours)
    assert plan.objective == pytest.approx(sum(a.value for a in plan.assignments))
    assert plan.bound >= plan.objective - 1e-9
    assert 0.0 <= plan.gap <= 1.0


# --- crafted: first-come-first-served is bad -------------------------------------------------------


def _fcfs_trap() -> tuple[list[MatchRequest], list[Candidate]]:
    cands = [
        machine(asset_id="big", hourly_rate=10_000, free=[(sh(3, 8), sh(3, 12))]),
        machine(asset_id="small", hourly_rate=30_000, free=[(sh(3, 8), sh(3, 9))]),
    ]
    window = {"earliest_start": sh(3, 8), "deadline": sh(3, 12)}
    requests = [
        machine_request(request_id="short", duration_minutes=60, **window),  # prefers the cheap big machine
        machine_request(request_id="long", duration_minutes=240, **window),  # only fits the big machine
    ]
    return requests, cands


@pytest.mark.parametrize("objective", ["hours", "score"])
def test_milp_beats_fcfs_on_crafted_instance(objective: Any) -> None:
    requests, cands = _fcfs_trap()
    fcfs = greedy_fcfs(requests, cands, _serving(requests), objective=objective)
    best = plan_batch(requests, cands, _serving(requests), objective=objective)
    assert [(a.request_id, a.asset_id) for a in fcfs.assignments] == [("short", "big")]
    assert fcfs.matched_hours == 1.0
    assert best.method == "milp"
    assert {(a.request_id, a.asset_id) for a in best.assignments} == {("short", "small"), ("long", "big")}
    assert best.matched_hours == 5.0 and best.objective > fcfs.objective
    assert best.gap == pytest.approx(0.0, abs=1e-6)
    for plan in (fcfs, best):
        assert_valid_plan(plan, requests, cands)


def test_back_to_back_options_let_requests_share_an_interval() -> None:
    cands = [machine(asset_id="m", free=[(sh(3, 8), sh(3, 18))], setup_minutes=30, buffer_minutes=15)]
    window = {"earliest_start": sh(3, 8), "deadline": sh(3, 18)}
    requests = [machine_request(request_id=f"r{i}", duration_minutes=120, **window) for i in range(3)]
    plan = plan_batch(requests, cands, _serving(requests), objective="hours")
    assert len(plan.assignments) == 3
    assert_valid_plan(plan, requests, cands)
    options = generate_options(requests, cands, _serving(requests))
    first = [o for o in options if o.request_id == "r0"]
    assert [o.slot_start for o in first] == [sh(3, 8, 30), sh(3, 11, 30), sh(3, 14, 30)]
    assert all(a.block_end <= b.block_start for a, b in pairwise(first))


def test_options_start_at_the_engine_slot_and_respect_caps() -> None:
    cands = [machine(asset_id=f"m{i}", hourly_rate=10_000 + i, free=[(sh(3, 8 + i % 4), sh(3, 18))]) for i in range(9)]
    requests = [machine_request(request_id="r", duration_minutes=60)]
    options = generate_options(requests, cands, _serving(requests), max_options_per_request=8, assets_per_request=5)
    assert len(options) == 8
    assert len({o.asset_id for o in options}) == 5
    by_id = {c.asset_id: c for c in cands}
    for asset_id in {o.asset_id for o in options}:
        engine = check(requests[0], by_id[asset_id], MILLING)
        assert isinstance(engine, FeasibleMatch)
        assert min(o.slot_start for o in options if o.asset_id == asset_id) == engine.slot_start


def test_falls_back_to_greedy_when_milp_has_no_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    requests, cands = _fcfs_trap()
    real_milp = batch.milp

    def no_integer_solution(c: Any, *, integrality: Any, **kw: Any) -> Any:
        if integrality.any():
            return SimpleNamespace(status=1, message="Time limit reached", x=None, fun=None, mip_dual_bound=None)
        return real_milp(c, integrality=integrality, **kw)

    monkeypatch.setattr(batch, "milp", no_integer_solution)
    plan = plan_batch(requests, cands, _serving(requests), objective="hours", time_limit=1.0)
    assert plan.method == "greedy" and plan.matched_hours == 1.0
    assert plan.lp_bound is not None and plan.bound >= 5.0 - 1e-6  # the LP still bounds the optimum
    assert plan.gap > 0
    assert "Time limit" in plan.solver_status


def test_input_validation() -> None:
    ok = machine_request(request_id="a")
    with pytest.raises(ValueError, match="unique request_id"):
        plan_batch([ok, machine_request(request_id="a")], [machine()], {"a": MILLING})
    with pytest.raises(ValueError, match="unique request_id"):
        plan_batch([machine_request()], [machine()], {})
    with pytest.raises(ValueError, match="machine requests only"):
        plan_batch([lab_request(request_id="l")], [machine()], {"l": MILLING})
    with pytest.raises(ValueError, match="serving codes"):
        plan_batch([ok], [machine()], {})
    with pytest.raises(ValueError, match="duplicate asset_id"):
        plan_batch([ok], [machine(), machine()], {"a": MILLING})
    empty = plan_batch([ok], [], {"a": MILLING})
    assert empty.assignments == [] and empty.objective == 0.0 and empty.gap == 0.0


# --- random instances ------------------------------------------------------------------------------


def random_instance(rng: random.Random, n_requests: int, n_assets: int) -> tuple[list[MatchRequest], list[Candidate]]:
    """Contended week: few assets per process, short windows, so requests compete for the same hours."""
    base = sh(3, 0)
    cands = []
    for i in range(n_assets):
        free = []
        for day in range(5):
            if rng.random() < 0.8:
                start = base + timedelta(days=day, hours=rng.choice([8, 9, 10]))
                free.append((start, start + rng.choice([4, 6, 8, 10]) * H))
        cands.append(
            machine(
                asset_id=f"a{i:04d}",
                process_codes=frozenset({rng.choice(sorted(MILLING))}),
                materials=frozenset(rng.sample(["al6061", "ss304", "ti"], 2)),
                hourly_rate=rng.randint(8_000, 30_000),
                setup_fee=rng.choice([0, 5_000]),
                setup_minutes=rng.choice([0, 15, 30]),
                buffer_minutes=rng.choice([0, 15]),
                slot_minutes=rng.choice([15, 30, 60]),
                min_booking_minutes=rng.choice([0, 60]),
                utilisation=rng.random(),
                rating_sum=4.0 * (n := rng.randint(0, 5)),
                rating_count=n,
                free=free,
            )
        )
    requests = []
    for j in range(n_requests):
        start = base + timedelta(days=rng.randint(0, 3), hours=rng.randint(6, 12))
        requests.append(
            machine_request(
                request_id=f"r{j:04d}",
                process_code="machining.milling.cnc_3axis",
                material=rng.choice(["al6061", "ss304", "ti", None]),
                duration_minutes=rng.choice([60, 120, 180, 240, 360]),
                earliest_start=start,
                deadline=start + rng.randint(6, 48) * H,
                budget_max=rng.choice([None, 100_000, 60_000]),
            )
        )
    return requests, cands


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_requests=st.integers(1, 12),
    n_assets=st.integers(1, 5),
    objective=st.sampled_from(["score", "hours"]),
)
def test_random_plans_are_valid_and_milp_dominates_fcfs(
    seed: int, n_requests: int, n_assets: int, objective: Any
) -> None:
    requests, cands = random_instance(random.Random(seed), n_requests, n_assets)
    serving = _serving(requests)
    options = generate_options(requests, cands, serving, objective=objective)
    fcfs = greedy_fcfs(requests, cands, serving, objective=objective, options=options)
    best = plan_batch(requests, cands, serving, objective=objective, options=options)
    assert_valid_plan(fcfs, requests, cands)
    assert_valid_plan(best, requests, cands)
    assert best.objective >= fcfs.objective - 1e-6
    assert best.gap >= 0.0
    # no request that the engine could serve is left without options
    with_options = {o.request_id for o in options}
    for r in requests:
        if any(isinstance(check(r, c, MILLING), FeasibleMatch) for c in cands):
            assert r.request_id in with_options


def test_moderate_random_instance_is_fast_and_beats_fcfs() -> None:
    requests, cands = random_instance(random.Random(7), 300, 600)
    serving = _serving(requests)
    started = time.perf_counter()
    options = generate_options(requests, cands, serving, objective="hours")
    best = plan_batch(requests, cands, serving, objective="hours", options=options, time_limit=10)
    elapsed = time.perf_counter() - started
    fcfs = greedy_fcfs(requests, cands, serving, objective="hours", options=options)
    assert elapsed < 15
    assert best.method == "milp"
    assert best.objective >= fcfs.objective - 1e-6 and best.matched_hours >= fcfs.matched_hours - 1e-6
    assert best.gap < 0.01
    assert_valid_plan(best, requests, cands)
    assert_valid_plan(fcfs, requests, cands)
