"""Batch assignment of many machine requests to assets (offline optimiser and FCFS baseline).

Options (which asset and slot could serve each request, and its value) come from :mod:`matching.options`.
Solve: binary MILP (HiGHS via :func:`scipy.optimize.milp`): maximise total value, each request at most once,
and per asset one clique constraint per maximal set of mutually overlapping blocks (setup + slot + buffer); for
interval graphs these cliques are exactly the overlap constraints and make the LP much tighter than pairwise
rows. The LP relaxation gives the reported bound. FCFS greedy is the fallback when the MILP has no (valid)
solution, and is also used if it is better.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from matching.options import HOURS_TIEBREAK, SCORE_FLOOR, Limits, Objective, Option, generate_options, options_within
from matching.types import Candidate, MatchRequest

__all__ = [
    "DEFAULT_LIMITS",
    "HOURS_TIEBREAK",
    "SCORE_FLOOR",
    "Assignment",
    "BatchPlan",
    "Limits",
    "Method",
    "Objective",
    "Option",
    "generate_options",
    "greedy_fcfs",
    "milp",
    "plan_batch",
]

Method = Literal["milp", "greedy"]
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Assignment:
    request_id: str
    asset_id: str
    slot_start: datetime
    slot_end: datetime
    value: float


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """``bound`` is an upper bound on the best achievable objective over the same options."""

    assignments: list[Assignment]
    objective: float
    bound: float
    gap: float
    method: Method
    matched_hours: float
    solver_status: str = ""
    lp_bound: float | None = None
    option_count: int = 0


def _fits_free(taken: dict[str, tuple[list[datetime], list[datetime]]], o: Option) -> bool:
    starts, ends = taken.get(o.asset_id, ([], []))
    p = bisect_right(starts, o.block_start)
    if p > 0 and ends[p - 1] > o.block_start:
        return False
    return not (p < len(starts) and starts[p] < o.block_end)


def _greedy(options: Sequence[Option], n_requests: int) -> list[int]:
    """FCFS: requests in input order, each takes its best option that still fits."""
    by_request: list[list[int]] = [[] for _ in range(n_requests)]
    for k, o in enumerate(options):
        by_request[o.request_index].append(k)
    taken: dict[str, tuple[list[datetime], list[datetime]]] = {}
    chosen: list[int] = []
    for ks in by_request:
        ks.sort(key=lambda k: (-options[k].value, options[k].slot_start, options[k].asset_id))
        for k in ks:
            o = options[k]
            if _fits_free(taken, o):
                starts, ends = taken.setdefault(o.asset_id, ([], []))
                insort(starts, o.block_start)
                insort(ends, o.block_end)  # blocks are disjoint, so ends sort like starts
                chosen.append(k)
                break
    return chosen


def _valid(options: Sequence[Option], chosen: Sequence[int]) -> bool:
    if len({options[k].request_index for k in chosen}) != len(chosen):
        return False
    per_asset: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for k in chosen:
        per_asset[options[k].asset_id].append((options[k].block_start, options[k].block_end))
    for blocks in per_asset.values():
        blocks.sort()
        if any(b[0] < a[1] for a, b in pairwise(blocks)):
            return False
    return True


def _constraint_matrix(options: Sequence[Option]) -> csr_array | None:
    """Rows: one per request with >= 2 options, one per maximal clique (>= 2) of overlapping blocks per asset."""
    rows: list[list[int]] = []
    per_request: dict[int, list[int]] = defaultdict(list)
    per_asset: dict[int, list[int]] = defaultdict(list)
    for k, o in enumerate(options):
        per_request[o.request_index].append(k)
        per_asset[o.asset_index].append(k)
    rows += [ks for ks in per_request.values() if len(ks) > 1]
    for ks in per_asset.values():
        if len(ks) < 2:
            continue
        # Half-open blocks: at equal times an end is processed before a start. A clique is
        # maximal exactly when an end follows a run of starts.
        events = sorted([(options[k].block_start, 1, k) for k in ks] + [(options[k].block_end, 0, k) for k in ks])
        active: set[int] = set()
        last_was_start = False
        for _, is_start, k in events:
            if is_start:
                active.add(k)
                last_was_start = True
            else:
                if last_was_start and len(active) > 1:
                    rows.append(sorted(active))
                last_was_start = False
                active.discard(k)
    if not rows:
        return None
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.fromiter((k for r in rows for k in r), dtype=np.int64, count=int(indptr[-1]))
    return csr_array((np.ones(len(indices)), indices, indptr), shape=(len(rows), len(options)))


def _plan(
    options: Sequence[Option],
    chosen: Sequence[int],
    *,
    bound: float,
    method: Method,
    status: str,
    lp_bound: float | None,
) -> BatchPlan:
    picked = sorted((options[k] for k in chosen), key=lambda o: o.request_index)
    objective = math.fsum(o.value for o in picked)
    bound = max(bound, objective)  # solver tolerances must not make the bound look infeasible
    return BatchPlan(
        assignments=[Assignment(o.request_id, o.asset_id, o.slot_start, o.slot_end, o.value) for o in picked],
        objective=objective,
        bound=bound,
        gap=(bound - objective) / bound if bound > 0 else 0.0,
        method=method,
        matched_hours=math.fsum(o.hours for o in picked),
        solver_status=status,
        lp_bound=lp_bound,
        option_count=len(options),
    )


def _trivial_bound(options: Sequence[Option]) -> float:
    best: dict[int, float] = {}
    for o in options:
        best[o.request_index] = max(best.get(o.request_index, 0.0), o.value)
    return math.fsum(best.values())


def greedy_fcfs(
    requests: Sequence[MatchRequest],
    candidates: Sequence[Candidate],
    serving_codes: Mapping[str, Set[str]],
    *,
    objective: Objective = "score",
    options: Sequence[Option] | None = None,
) -> BatchPlan:
    """First-come-first-served baseline over the same options (pass ``options`` to reuse them)."""
    if options is None:
        options = generate_options(requests, candidates, serving_codes, objective=objective)
    chosen = _greedy(options, len(requests))
    return _plan(options, chosen, bound=_trivial_bound(options), method="greedy", status="greedy", lp_bound=None)


def plan_batch(
    requests: Sequence[MatchRequest],
    candidates: Sequence[Candidate],
    serving_codes: Mapping[str, Set[str]],
    *,
    objective: Objective = "score",
    time_limit: float = 20.0,
    options: Sequence[Option] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> BatchPlan:
    """Optimal (or time-limited best) assignment of ``requests`` over ``options`` (default: those within
    ``limits``); see the module docstring."""
    if time_limit <= 0:
        raise ValueError("time_limit must be positive")
    if options is None:
        options = options_within(requests, candidates, serving_codes, objective=objective, limits=limits)
    greedy = _greedy(options, len(requests))
    if not options:
        return _plan(options, [], bound=0.0, method="milp", status="no options", lp_bound=0.0)
    n = len(options)
    c = -np.array([o.value for o in options])
    matrix = _constraint_matrix(options)
    constraints = [LinearConstraint(matrix, -np.inf, 1.0)] if matrix is not None else []
    solver_options = {"time_limit": float(time_limit), "disp": False}
    bounds = Bounds(0.0, 1.0)

    lp = milp(c, integrality=np.zeros(n), bounds=bounds, constraints=constraints, options=solver_options)
    lp_bound = float(-lp.fun) if lp.status == 0 and lp.fun is not None else None
    res = milp(c, integrality=np.ones(n), bounds=bounds, constraints=constraints, options=solver_options)

    bounds_found = [b for b in (lp_bound, _trivial_bound(options)) if b is not None]
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(dual):
        bounds_found.append(float(-dual))
    bound = min(bounds_found)
    status = f"{res.status}: {res.message}"
    if res.x is not None:
        chosen = [k for k in range(n) if res.x[k] > 0.5]
        if _valid(options, chosen):
            milp_value = math.fsum(options[k].value for k in chosen)
            greedy_value = math.fsum(options[k].value for k in greedy)
            if milp_value + 1e-9 >= greedy_value:
                return _plan(options, chosen, bound=bound, method="milp", status=status, lp_bound=lp_bound)
    return _plan(options, greedy, bound=bound, method="greedy", status=status, lp_bound=lp_bound)
