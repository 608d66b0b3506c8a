"""Batch optimiser decomposition: solving the request-asset components one by one (or packed into blocks) gives
the same optimum and the same LP bound as one MILP over all options."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from matching import batch
from matching.batch import Option, generate_options, greedy_fcfs, plan_batch
from matching.types import Candidate, MatchRequest
from tests.matching.test_batch import _serving, assert_valid_plan, random_instance

# Groups ~110 km apart with a 40 km radius: requests of one group never reach another group's machines.
GROUP_LAT = 30.0
GROUP_STEP = 1.0


def grouped_instance(rng: random.Random, sizes: list[tuple[int, int]]) -> tuple[list[MatchRequest], list[Candidate]]:
    """Several independent :func:`random_instance` groups side by side (disjoint ids and places)."""
    requests: list[MatchRequest] = []
    cands: list[Candidate] = []
    for g, (n_requests, n_assets) in enumerate(sizes):
        reqs, cs = random_instance(rng, n_requests, n_assets)
        lat = GROUP_LAT + g * GROUP_STEP
        cands += [replace(c, asset_id=f"g{g}{c.asset_id}", lat=lat, lon=120.0) for c in cs]
        requests += [
            replace(r, request_id=f"g{g}{r.request_id}", lat=lat, lon=120.0, max_distance_km=40.0) for r in reqs
        ]
    return requests, cands


def monolithic(options: list[Option]) -> tuple[float, float]:
    """Reference: one exact MILP and one LP over all options (the optimiser before decomposition)."""
    n = len(options)
    c = -np.array([o.value for o in options])
    matrix = batch._constraint_matrix(options)
    constraints = [LinearConstraint(matrix, -np.inf, 1.0)] if matrix is not None else []
    exact = {"disp": False, "mip_rel_gap": 0.0}
    lp = milp(c, integrality=np.zeros(n), bounds=Bounds(0, 1), constraints=constraints, options=exact)
    ip = milp(c, integrality=np.ones(n), bounds=Bounds(0, 1), constraints=constraints, options=exact)
    return float(-ip.fun), float(-lp.fun)


def test_blocks_partition_the_options_along_components() -> None:
    requests, cands = grouped_instance(random.Random(3), [(6, 3), (1, 2), (5, 2), (8, 4)])
    options = generate_options(requests, cands, _serving(requests), objective="hours")
    blocks = batch._blocks(options, 1)
    flat = sorted(k for b in blocks for k in b)
    assert flat == list(range(len(options)))
    owner = {k: i for i, b in enumerate(blocks) for k in b}
    for i, o in enumerate(options):  # a request's or an asset's options all lie in one block
        for j, p in enumerate(options):
            if o.request_index == p.request_index or o.asset_index == p.asset_index:
                assert owner[i] == owner[j]
    assert len(blocks) >= 4
    assert len(batch._blocks(options, 10**9)) <= 1 + sum(
        1 for b in blocks if len({options[k].request_index for k in b}) == 1
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.tuples(st.integers(1, 10), st.integers(1, 4)), min_size=1, max_size=4),
    block=st.sampled_from([1, 7, 40, 10**9]),
    objective=st.sampled_from(["score", "hours"]),
)
def test_decomposed_solve_equals_the_monolithic_one(
    seed: int, sizes: list[tuple[int, int]], block: int, objective: Any
) -> None:
    requests, cands = grouped_instance(random.Random(seed), sizes)
    serving = _serving(requests)
    options = generate_options(requests, cands, serving, objective=objective)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "BLOCK_OPTIONS", block)
        plan = plan_batch(requests, cands, serving, objective=objective, options=options)
    fcfs = greedy_fcfs(requests, cands, serving, objective=objective, options=options)
    assert_valid_plan(plan, requests, cands)
    if not options:
        assert plan.objective == 0.0
        return
    best, lp = monolithic(options)
    assert plan.lp_bound == pytest.approx(lp, rel=1e-6, abs=1e-7)
    assert plan.objective == pytest.approx(best, rel=2e-4, abs=1e-6)  # HiGHS stops at a 1e-4 relative gap
    assert plan.objective >= fcfs.objective - 1e-9
    assert plan.bound >= best - 1e-6 * max(1.0, best)
    assert math.isfinite(plan.gap) and plan.gap >= 0.0


def test_greedy_fallback_is_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block whose MILP fails keeps its FCFS assignment; the other blocks keep their MILP optimum."""
    requests, cands = grouped_instance(random.Random(11), [(8, 3), (8, 3)])
    serving = _serving(requests)
    options = generate_options(requests, cands, serving, objective="hours")
    monkeypatch.setattr(batch, "BLOCK_OPTIONS", 1)
    real_milp = batch.milp
    calls = {"ip": 0}

    def first_ip_fails(c: Any, *, integrality: Any, **kw: Any) -> Any:
        if integrality.any():
            calls["ip"] += 1
            if calls["ip"] == 1:
                return SimpleNamespace(status=1, message="Time limit reached", x=None, fun=None, mip_dual_bound=None)
        return real_milp(c, integrality=integrality, **kw)

    monkeypatch.setattr(batch, "milp", first_ip_fails)
    plan = plan_batch(requests, cands, serving, objective="hours", options=options)
    fcfs = greedy_fcfs(requests, cands, serving, objective="hours", options=options)
    assert_valid_plan(plan, requests, cands)
    assert plan.objective >= fcfs.objective - 1e-9
    assert plan.bound >= plan.objective
    assert calls["ip"] >= 2 and plan.method == "milp"
    assert "Time limit" in plan.solver_status and "solved by the MILP" in plan.solver_status
