"""Batch assignment of many machine requests to assets (offline optimiser and FCFS baseline).

Options (which asset and slot could serve each request, and its value) come from :mod:`matching.options`.
Solve: binary MILP (HiGHS via :func:`scipy.optimize.milp`): maximise total value, each request at most once,
and per asset one clique constraint per maximal set of mutually overlapping blocks (setup + slot + buffer); for
interval graphs these cliques are exactly the overlap constraints and make the LP much tighter than pairwise
rows. The LP relaxation gives the reported bound. FCFS greedy is the fallback when the MILP has no (valid)
solution, and is also used if it is better.

Decomposition: an option links its request and its asset; the connected components of that graph share no
constraint row, so the MILP optimum and the LP bound of the whole batch are the sums over the components. Each
component (small ones packed together into blocks of about ``BLOCK_OPTIONS`` options) is solved on its own,
a component of one request without the solver (its best option); the greedy fallback applies per block (FCFS
restricted to a component is exactly the global FCFS there, so the result never falls below FCFS).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import connected_components

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
BLOCK_OPTIONS = 2000  # components are solved in blocks of about this many options (see _blocks)
MIN_BLOCK_SECONDS = 0.05  # solver time every block gets, however late
_SINGLE = "0: single request"


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
    ``limits``); see the module docstring. ``time_limit`` is the solver budget of the whole batch (LP bounds
    and MILPs of all blocks)."""
    if time_limit <= 0:
        raise ValueError("time_limit must be positive")
    if options is None:
        options = options_within(requests, candidates, serving_codes, objective=objective, limits=limits)
    greedy = _greedy(options, len(requests))
    if not options:
        return _plan(options, [], bound=0.0, method="milp", status="no options", lp_bound=0.0)
    in_greedy = np.zeros(len(options), dtype=bool)
    in_greedy[greedy] = True
    blocks = _blocks(options, BLOCK_OPTIONS)
    deadline = time.perf_counter() + time_limit
    left = sum(len(b) for b in blocks)
    chosen: list[int] = []
    bounds: list[float] = []
    lp_bounds: list[float | None] = []
    statuses: Counter[str] = Counter()
    milp_blocks = 0
    for block in blocks:
        share = max(MIN_BLOCK_SECONDS, (deadline - time.perf_counter()) * len(block) / left)
        left -= len(block)
        result = _solve_block(options, block, share)
        statuses[result.status] += 1
        bounds.append(result.bound)
        lp_bounds.append(result.lp_bound)
        block_greedy = [k for k in block if in_greedy[k]]
        if result.chosen is not None:
            value = math.fsum(options[k].value for k in result.chosen)
            if value + 1e-9 >= math.fsum(options[k].value for k in block_greedy):
                chosen += result.chosen
                milp_blocks += 1
                continue
        chosen += block_greedy
    bound = math.fsum(bounds)
    lp_bound = None if any(b is None for b in lp_bounds) else math.fsum(b for b in lp_bounds if b is not None)
    status = "; ".join(f"{s}" if len(statuses) == 1 else f"{n} x {s}" for s, n in statuses.most_common())
    if len(blocks) > 1:
        status += f" ({len(blocks)} blocks, {milp_blocks} solved by the MILP)"
    method: Method = "milp" if milp_blocks else "greedy"
    return _plan(options, chosen, bound=bound, method=method, status=status, lp_bound=lp_bound)


@dataclass(frozen=True, slots=True)
class _BlockResult:
    chosen: list[int] | None  # global option indices of a valid MILP solution, None if there is none
    bound: float
    lp_bound: float | None
    status: str


def _solve_block(options: Sequence[Option], block: Sequence[int], time_limit: float) -> _BlockResult:
    """LP bound and MILP of the options ``block`` (a union of whole components)."""
    sub = [options[k] for k in block]
    if len({o.request_index for o in sub}) == 1:  # one request, no rival: its best option is optimal
        best = max(range(len(sub)), key=lambda i: (sub[i].value, -i))
        return _BlockResult([block[best]], sub[best].value, sub[best].value, _SINGLE)
    n = len(sub)
    c = -np.array([o.value for o in sub])
    matrix = _constraint_matrix(sub)
    constraints = [LinearConstraint(matrix, -np.inf, 1.0)] if matrix is not None else []
    bounds = Bounds(0.0, 1.0)
    started = time.perf_counter()
    lp = milp(c, integrality=np.zeros(n), bounds=bounds, constraints=constraints, options=_solver(time_limit))
    lp_bound = float(-lp.fun) if lp.status == 0 and lp.fun is not None else None
    rest = max(MIN_BLOCK_SECONDS, time_limit - (time.perf_counter() - started))
    res = milp(c, integrality=np.ones(n), bounds=bounds, constraints=constraints, options=_solver(rest))
    found = [b for b in (lp_bound, _trivial_bound(sub)) if b is not None]
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and math.isfinite(dual):
        found.append(float(-dual))
    chosen = None
    if res.x is not None:
        local = [i for i in range(n) if res.x[i] > 0.5]
        if _valid(sub, local):
            chosen = [block[i] for i in local]
    return _BlockResult(chosen, min(found), lp_bound, f"{res.status}: {res.message}")


def _solver(time_limit: float) -> dict[str, float | bool]:
    return {"time_limit": float(time_limit), "disp": False}


def _blocks(options: Sequence[Option], max_options: int) -> list[list[int]]:
    """Option indices by connected component of the request-asset graph (an option joins its request and its
    asset): no constraint row spans two components, so their optima and LP bounds add up. Components are
    packed smallest first into blocks of up to ``max_options`` options (fewer solver calls; a bigger component
    is a block of its own)."""
    n_requests = 1 + max(o.request_index for o in options)
    n_nodes = n_requests + 1 + max(o.asset_index for o in options)
    r = np.fromiter((o.request_index for o in options), dtype=np.int64, count=len(options))
    a = n_requests + np.fromiter((o.asset_index for o in options), dtype=np.int64, count=len(options))
    graph = coo_array((np.ones(len(options), dtype=np.int8), (r, a)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    option_labels = labels[r]
    order = np.argsort(option_labels, kind="stable")
    cuts = np.flatnonzero(np.diff(option_labels[order])) + 1
    components = sorted((part.tolist() for part in np.split(order, cuts)), key=len)
    blocks: list[list[int]] = []
    current: list[int] = []
    for comp in components:
        if len({options[k].request_index for k in comp}) == 1:
            blocks.append(comp)  # solved without the solver
            continue
        if current and len(current) + len(comp) > max_options:
            blocks.append(current)
            current = []
        current.extend(comp)
    if current:
        blocks.append(current)
    return blocks
