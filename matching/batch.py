"""Batch assignment of many machine requests to assets (offline optimiser and FCFS baseline).

1. Options: for each request, a bounded set of (asset, slot) options. Assets are
   prefiltered with dict indexes (process codes, material) and numpy masks (currency,
   envelope, tolerance, budget, distance); the survivors are visited best-first by a
   slot-independent proxy of the ranking score minus the asset's load (share of its free
   hours already offered as first choice to earlier requests, so that options spread over
   the fleet instead of piling onto the same favourites), and only the first
   ``assets_per_request`` assets that have a valid slot contribute up to
   ``slots_per_asset`` back-to-back slots each (so two requests can share one long free
   interval). Each request keeps at most ``max_options_per_request`` options, first
   slots first so its options spread over several assets. Every option satisfies the
   same hard constraints as :func:`matching.feasibility.check`.
2. Values: objective ``"score"`` uses the engine's scoring normalised across the
   request's options (+ a small floor so that matching always beats not matching);
   ``"hours"`` uses the job's machine hours (+ a tiny score tie-break).
3. Solve: binary MILP (HiGHS via :func:`scipy.optimize.milp`): maximise total value, each
   request at most once, and per asset one clique constraint per maximal set of
   mutually overlapping blocks (setup + slot + buffer); for interval graphs these
   cliques are exactly the overlap constraints and make the LP much tighter than
   pairwise rows. The LP relaxation gives the reported bound. FCFS greedy is the
   fallback when the MILP has no (valid) solution, and is also used if it is better.
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from matching.feasibility import (
    EARTH_RADIUS_KM,
    certificate_windows,
    fit_windows,
    has_certificates,
)
from matching.scoring import quality_score, score_components
from matching.types import Candidate, MatchRequest

Objective = Literal["score", "hours"]
Method = Literal["milp", "greedy"]
SCORE_FLOOR = 1e-3
HOURS_TIEBREAK = 1e-4

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MIN_US = 60_000_000
_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Option:
    """One way to serve a request: an asset and a slot; the asset is blocked over ``[block_start, block_end)``."""

    request_index: int
    asset_index: int
    request_id: str
    asset_id: str
    slot_start: datetime
    slot_end: datetime
    block_start: datetime
    block_end: datetime
    value: float
    score: float
    hours: float


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


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + us * _US


def _ceil(t: int, grid: int) -> int:
    return -(-t // grid) * grid


def _intersect_us(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _slot_starts(
    starts: Sequence[int], ends: Sequence[int], lo: int, hi: int, length: int, grid: int, gap: int, k: int
) -> list[int]:
    """Up to ``k`` grid-aligned slot starts in the fit windows, back-to-back (``gap`` = setup + buffer apart)."""
    out: list[int] = []
    i = bisect_right(ends, lo)  # windows ending at or before `lo` cannot hold a slot
    while i < len(starts) and len(out) < k:
        if starts[i] + length > hi:
            break
        end = min(ends[i], hi)
        t = _ceil(max(starts[i], lo), grid)
        while t + length <= end and len(out) < k:
            out.append(t)
            t = _ceil(t + length + gap, grid)
        i += 1
    return out


class _AssetIndex:
    """Column arrays and dict indexes over the eligible machine candidates."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        seen: set[str] = set()
        for c in candidates:
            if c.asset_id in seen:
                raise ValueError(f"duplicate asset_id {c.asset_id!r}")
            seen.add(c.asset_id)
        self.cands = [c for c in candidates if c.kind == "machine" and c.status == "published" and c.org_verified]
        n = len(self.cands)
        by_process: dict[str, list[int]] = defaultdict(list)
        by_material: dict[str, list[int]] = defaultdict(list)
        currencies: dict[str, int] = {}
        nan = math.nan
        self.env = np.full((n, 3), nan)
        self.tol = np.full(n, nan)
        self.rate = np.zeros(n, dtype=np.int64)
        self.has_rate = np.zeros(n, dtype=bool)
        self.setup_fee = np.zeros(n, dtype=np.int64)
        self.min_booking = np.zeros(n, dtype=np.int64)
        self.cur = np.zeros(n, dtype=np.int64)
        self.lat = np.full(n, nan)
        self.lon = np.full(n, nan)
        self.quality = np.zeros(n)
        self.idle = np.zeros(n)
        self.free_hours = np.zeros(n)
        # Hours of first-choice options already handed out per asset, relative to its free hours.
        self.load = np.zeros(n)
        for i, c in enumerate(self.cands):
            for code in c.process_codes:
                by_process[code].append(i)
            for m in c.materials:
                by_material[m].append(i)
            if c.envelope_mm is not None:
                self.env[i] = sorted(c.envelope_mm)
            if c.tolerance_mm is not None:
                self.tol[i] = c.tolerance_mm
            if c.hourly_rate is not None:
                self.rate[i], self.has_rate[i] = c.hourly_rate, True
            self.setup_fee[i] = c.setup_fee
            self.min_booking[i] = c.min_booking_minutes
            self.cur[i] = currencies.setdefault(c.currency, len(currencies))
            if c.lat is not None and c.lon is not None:
                self.lat[i], self.lon[i] = math.radians(c.lat), math.radians(c.lon)
            self.quality[i] = quality_score(c.rating_sum, c.rating_count, c.completed_count, c.on_time_count)
            self.idle[i] = min(1.0, max(0.0, 1.0 - c.utilisation))
            self.free_hours[i] = sum((e - s).total_seconds() for s, e in c.free) / 3600.0
        self.currencies = currencies
        self.by_process = {k: np.array(v, dtype=np.int64) for k, v in by_process.items()}
        self.by_material = by_material
        self._material_masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._base: dict[tuple[frozenset[str], str | None], _IntArray] = {}
        self._fits: dict[int, tuple[list[int], list[int]]] = {}

    def base(self, serving: frozenset[str], material: str | None) -> _IntArray:
        """Eligible assets serving the process (and offering the material), sorted; cached per key."""
        key = (serving, material)
        hit = self._base.get(key)
        if hit is not None:
            return hit
        parts = [self.by_process[c] for c in serving if c in self.by_process]
        idx = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if material is not None:
            mask = self._material_masks.get(material)
            if mask is None:
                mask = np.zeros(len(self.cands), dtype=bool)
                mask[self.by_material.get(material, [])] = True
                self._material_masks[material] = mask
            idx = idx[mask[idx]]
        self._base[key] = idx
        return idx

    def fits(self, i: int) -> tuple[list[int], list[int]]:
        """Asset ``i``'s fit windows (free time shrunk by setup/buffer) in epoch microseconds."""
        hit = self._fits.get(i)
        if hit is None:
            c = self.cands[i]
            windows = fit_windows(c.free, c.setup_minutes, c.buffer_minutes)
            hit = ([_us(s) for s, _ in windows], [_us(e) for _, e in windows])
            self._fits[i] = hit
        return hit


def _haversine(lat1: float, lon1: float, lat2: _FloatArray, lon2: _FloatArray) -> _FloatArray:
    a = np.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    result: _FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return result


def _minmax_np(values: _FloatArray) -> _FloatArray:
    """Vectorised :func:`matching.scoring.minmax_lower_better` with NaN for "unknown"."""
    known = ~np.isnan(values)
    if not known.any():
        return np.ones(values.shape)
    lo, hi = float(values[known].min()), float(values[known].max())
    if hi <= lo:
        return known.astype(np.float64)
    return np.where(known, np.clip((hi - np.nan_to_num(values, nan=hi)) / (hi - lo), 0.0, 1.0), 0.0)


def _check_requests(requests: Sequence[MatchRequest], serving_codes: Mapping[str, Set[str]]) -> None:
    seen: set[str] = set()
    for r in requests:
        if r.request_id is None or r.request_id in seen:
            raise ValueError("batch requests need unique request_id values")
        if r.kind != "machine":
            raise ValueError(f"request {r.request_id!r}: the batch optimiser handles machine requests only")
        if r.request_id not in serving_codes:
            raise ValueError(f"request {r.request_id!r}: no serving codes given")
        seen.add(r.request_id)


def _request_options(
    ri: int,
    req: MatchRequest,
    index: _AssetIndex,
    serving: frozenset[str],
    objective: Objective,
    slots_per_asset: int,
    max_options: int,
    assets_per_request: int,
    max_scan: int,
) -> list[Option]:
    minutes = req.minutes
    idx = index.base(serving, req.material)
    cur = index.currencies.get(req.currency)
    if cur is None or idx.size == 0:
        return []
    # Vectorised static constraints (same rules as feasibility.static_rejection).
    keep = (index.cur[idx] == cur) & index.has_rate[idx]
    if req.part_size_mm is not None:
        keep &= np.all(index.env[idx] >= np.array(sorted(req.part_size_mm)), axis=1)
    if req.tolerance_mm is not None:
        keep &= index.tol[idx] <= req.tolerance_mm
    price = (2 * index.rate[idx] * minutes + 60) // 120 + index.setup_fee[idx]
    if req.budget_max is not None:
        keep &= price <= req.budget_max
    dist: _FloatArray | None = None
    if req.lat is not None and req.lon is not None:
        dist = _haversine(math.radians(req.lat), math.radians(req.lon), index.lat[idx], index.lon[idx])
        if req.max_distance_km is not None:
            keep &= dist <= req.max_distance_km
    idx, price = idx[keep], price[keep]
    if dist is not None:
        dist = dist[keep]
    if idx.size == 0:
        return []
    w = req.effective_weights
    # Slot-independent proxy of the final score: decides which assets get their slots computed.
    proxy = w.price * _minmax_np(price.astype(np.float64)) + w.quality * index.quality[idx] + w.idle * index.idle[idx]
    if dist is not None:
        proxy += w.distance * _minmax_np(dist)
    # Congestion: subtract the asset's load so requests spread over assets instead of all
    # listing the same few favourites (the MILP can only pick among the options offered).
    order = np.lexsort((idx, -(proxy - index.load[idx])))[:max_scan]

    lo, hi = _us(req.earliest_start), _us(req.deadline)
    prefixes = tuple(req.region_prefixes)
    certs_needed = bool(req.required_certificates)
    found: list[tuple[int, int, list[int]]] = []  # (position in idx, asset, slot starts)
    for pos in order.tolist():
        a = int(idx[pos])
        c = index.cands[a]
        if prefixes and (c.region_code is None or not c.region_code.startswith(prefixes)):
            continue
        starts, ends = index.fits(a)
        if certs_needed:
            if not has_certificates(req.required_certificates, c.certificates):
                continue
            cw = certificate_windows(req.required_certificates, c.certificates, c.timezone) or []
            windows = _intersect_us(list(zip(starts, ends, strict=True)), [(_us(s), _us(e)) for s, e in cw])
            starts, ends = [s for s, _ in windows], [e for _, e in windows]
        length = max(minutes, c.min_booking_minutes) * _MIN_US
        gap = (c.setup_minutes + c.buffer_minutes) * _MIN_US
        slots = _slot_starts(starts, ends, lo, hi, length, c.slot_minutes * _MIN_US, gap, slots_per_asset)
        if slots:
            found.append((pos, a, slots))
            if len(found) >= assets_per_request:
                break
    if not found:
        return []

    rows = [(pos, a, rank, t) for pos, a, slots in found for rank, t in enumerate(slots)]
    scored = score_components(
        w,
        [float(price[pos]) for pos, _, _, _ in rows],
        [None if dist is None or math.isnan(dist[pos]) else float(dist[pos]) for pos, _, _, _ in rows],
        [max(0.0, (t - lo) / 3.6e9) for _, _, _, t in rows],
        [float(index.quality[a]) for _, a, _, _ in rows],
        [float(index.idle[a]) for _, a, _, _ in rows],
    )
    hours = minutes / 60
    picked: list[tuple[int, float, int, int, float, float]] = []
    for (_, a, rank, t), (score, _) in zip(rows, scored, strict=True):
        value = SCORE_FLOOR + score if objective == "score" else hours + HOURS_TIEBREAK * score
        picked.append((rank, -value, a, t, value, score))
    picked.sort()
    out: list[Option] = []
    for rank, _, a, t, value, score in picked[:max_options]:
        c = index.cands[a]
        length = max(minutes, c.min_booking_minutes) * _MIN_US
        if rank == 0 and index.free_hours[a] > 0:
            index.load[a] += (length / 3.6e9) / index.free_hours[a]
        out.append(
            Option(
                request_index=ri,
                asset_index=a,
                request_id=req.key,
                asset_id=c.asset_id,
                slot_start=_dt(t),
                slot_end=_dt(t + length),
                block_start=_dt(t - c.setup_minutes * _MIN_US),
                block_end=_dt(t + length + c.buffer_minutes * _MIN_US),
                value=value,
                score=score,
                hours=hours,
            )
        )
    return out


def generate_options(
    requests: Sequence[MatchRequest],
    candidates: Sequence[Candidate],
    serving_codes: Mapping[str, Set[str]],
    *,
    objective: Objective = "score",
    slots_per_asset: int = 3,
    max_options_per_request: int = 8,
    assets_per_request: int = 5,
    max_scan: int = 256,
) -> list[Option]:
    """Bounded (asset, slot) options for every request; see the module docstring.

    ``serving_codes`` maps request_id to the process codes able to serve it
    (``Taxonomy.serving_codes(request.process_code)``). ``max_scan`` caps how many
    prefiltered assets per request are examined for free slots.
    """
    if objective not in ("score", "hours"):
        raise ValueError("objective must be 'score' or 'hours'")
    if min(slots_per_asset, max_options_per_request, assets_per_request, max_scan) < 1:
        raise ValueError("option limits must be >= 1")
    _check_requests(requests, serving_codes)
    index = _AssetIndex(candidates)
    options: list[Option] = []
    for ri, req in enumerate(requests):
        options += _request_options(
            ri,
            req,
            index,
            frozenset(serving_codes[req.key]),
            objective,
            slots_per_asset,
            max_options_per_request,
            assets_per_request,
            max_scan,
        )
    return options


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
    return _plan(options, chosen, _trivial_bound(options), "greedy", "greedy", None)


def plan_batch(
    requests: Sequence[MatchRequest],
    candidates: Sequence[Candidate],
    serving_codes: Mapping[str, Set[str]],
    *,
    objective: Objective = "score",
    time_limit: float = 20.0,
    options: Sequence[Option] | None = None,
    slots_per_asset: int = 3,
    max_options_per_request: int = 8,
    assets_per_request: int = 5,
) -> BatchPlan:
    """Optimal (or time-limited best) assignment of ``requests``; see the module docstring."""
    if time_limit <= 0:
        raise ValueError("time_limit must be positive")
    if options is None:
        options = generate_options(
            requests,
            candidates,
            serving_codes,
            objective=objective,
            slots_per_asset=slots_per_asset,
            max_options_per_request=max_options_per_request,
            assets_per_request=assets_per_request,
        )
    greedy = _greedy(options, len(requests))
    if not options:
        return _plan(options, [], 0.0, "milp", "no options", 0.0)
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
                return _plan(options, chosen, bound, "milp", status, lp_bound)
    return _plan(options, greedy, bound, "greedy", status, lp_bound)
