"""Options for the batch optimiser (:mod:`matching.batch`): for each machine request, a bounded set of
(asset, slot) ways to serve it, with their values.

1. Options: assets are prefiltered with dict indexes (process codes, material) and numpy masks (currency,
   envelope, tolerance, budget, distance); the survivors are visited best-first by a slot-independent proxy of
   the ranking score minus the asset's load (share of its free hours already offered as first choice to
   earlier requests, so that options spread over the fleet instead of piling onto the same favourites), and
   only the first ``assets_per_request`` assets that have a valid slot contribute up to ``slots_per_asset``
   back-to-back slots each (so two requests can share one long free interval). Each request keeps at most
   ``max_options_per_request`` options, first slots first so its options spread over several assets. Every
   option satisfies the same hard constraints as :func:`matching.feasibility.check`.
2. Values: objective ``"score"`` uses the engine's scoring normalised across the request's options (+ a small
   floor so that matching always beats not matching); ``"hours"`` uses the job's machine hours (+ a tiny score
   tie-break).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from matching.feasibility import (
    EARTH_RADIUS_KM,
    certificate_windows,
    fit_windows,
    has_certificates,
    intersect,
)
from matching.scoring import RawValues, quality_score, score_components
from matching.types import Candidate, MatchRequest

Objective = Literal["score", "hours"]
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
class Limits:
    """How many options a request may get (see the module docstring)."""

    slots_per_asset: int = 3
    max_options: int = 8
    assets_per_request: int = 5
    max_scan: int = 256  # prefiltered assets examined for free slots


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _US


def _dt(us: int) -> datetime:
    return _EPOCH + us * _US


def _ceil(t: int, grid: int) -> int:
    return -(-t // grid) * grid


def _slot_starts(
    starts: Sequence[int], ends: Sequence[int], *, lo: int, hi: int, length: int, grid: int, gap: int, k: int
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
            self.quality[i] = quality_score(
                rating_sum=c.rating_sum,
                rating_count=c.rating_count,
                completed_count=c.completed_count,
                on_time_count=c.on_time_count,
            )
            self.idle[i] = min(1.0, max(0.0, 1.0 - c.utilisation))
            self.free_hours[i] = sum((e - s).total_seconds() for s, e in c.free) / 3600.0
        self.currencies = currencies
        self.by_process = {k: np.array(v, dtype=np.int64) for k, v in by_process.items()}
        self.by_material = by_material
        self._material_masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._base: dict[tuple[frozenset[str], str | None], _IntArray] = {}
        self._fits: dict[int, tuple[list[int], list[int]]] = {}
        self._flat: tuple[_IntArray, _IntArray, _IntArray] | None = None  # every asset's fit windows, CSR
        self.grid = np.array([c.slot_minutes * _MIN_US for c in self.cands], dtype=np.int64)
        self._cells: dict[tuple[frozenset[str], str | None], dict[tuple[int, int], _IntArray]] = {}

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

    def near(self, serving: frozenset[str], material: str | None, *, lat: float, lon: float, km: float) -> _IntArray:
        """:meth:`base` restricted to the grid cells that can hold an asset within ``km`` of (``lat``, ``lon``)
        (radians): a superset of the assets within ``km`` (haversine), sorted like :meth:`base`."""
        key = (serving, material)
        cells = self._cells.get(key)
        idx = self.base(serving, material)
        if cells is None:
            known = idx[~np.isnan(self.lat[idx])]
            keys = _cell(self.lat[known] + math.pi / 2) * _LON_CELLS + _cell(self.lon[known] + math.pi)
            order = np.argsort(keys, kind="stable")
            keys, known = keys[order], known[order]
            cuts = np.flatnonzero(np.diff(keys)) + 1
            cells = {
                (int(k // _LON_CELLS), int(k % _LON_CELLS)): part
                for k, part in zip(keys[np.r_[0, cuts]] if keys.size else [], np.split(known, cuts), strict=False)
            }
            self._cells[key] = cells
        # Haversine: d <= km implies |dlat| <= km / R and sin(|dlon| / 2) <= sin(km / 2R) / cos(max |lat|).
        dlat = km / EARTH_RADIUS_KM + _MARGIN
        top = min(math.pi / 2, abs(lat) + dlat)
        ratio = math.sin(km / (2 * EARTH_RADIUS_KM)) / max(math.cos(top), 1e-12)
        if ratio >= 1.0 or top >= _POLAR:
            return idx
        dlon = 2 * math.asin(ratio) + _MARGIN
        if lon - dlon <= -math.pi or lon + dlon >= math.pi:  # across the antimeridian: no shortcut
            return idx
        lat0, lon0 = lat + math.pi / 2, lon + math.pi
        parts = []
        for i in range(math.floor((lat0 - dlat) / _CELL), math.floor((lat0 + dlat) / _CELL) + 1):
            for j in range(math.floor((lon0 - dlon) / _CELL), math.floor((lon0 + dlon) / _CELL) + 1):
                part = cells.get((i, j))
                if part is not None:
                    parts.append(part)
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def has_slot(self, assets: _IntArray, *, lo: int, hi: int, minutes: int) -> npt.NDArray[np.bool_]:
        """Per asset: does :func:`_slot_starts` find at least one slot (of ``minutes``, in ``[lo, hi)``)?"""
        if self._flat is None:
            parts = [self.fits(i) for i in range(len(self.cands))]
            counts = np.array([len(st) for st, _ in parts], dtype=np.int64)
            self._flat = (
                np.fromiter((t for st, _ in parts for t in st), dtype=np.int64, count=int(counts.sum())),
                np.fromiter((t for _, en in parts for t in en), dtype=np.int64, count=int(counts.sum())),
                np.concatenate(([0], np.cumsum(counts))),
            )
        starts, ends, ptr = self._flat
        counts = ptr[assets + 1] - ptr[assets]
        owner = np.repeat(np.arange(assets.size), counts)
        offsets = np.cumsum(counts) - counts
        w = np.arange(int(counts.sum())) - offsets[owner] + ptr[assets][owner]
        grid = self.grid[assets][owner]
        length = np.maximum(minutes, self.min_booking[assets][owner]) * _MIN_US
        t = -(-np.maximum(starts[w], lo) // grid) * grid
        ok = t + length <= np.minimum(ends[w], hi)
        found: npt.NDArray[np.bool_] = np.bincount(owner[ok], minlength=assets.size) > 0
        return found

    def fits(self, i: int) -> tuple[list[int], list[int]]:
        """Asset ``i``'s fit windows (free time shrunk by setup/buffer) in epoch microseconds."""
        hit = self._fits.get(i)
        if hit is None:
            c = self.cands[i]
            windows = fit_windows(c.free, c.setup_minutes, c.buffer_minutes)
            hit = ([_us(s) for s, _ in windows], [_us(e) for _, e in windows])
            self._fits[i] = hit
        return hit


_CELL = math.radians(0.25)  # spatial grid of :meth:`_AssetIndex.near` (radians, about 28 km of latitude)
_LON_CELLS = math.ceil(2 * math.pi / _CELL) + 1
_MARGIN = 1e-9  # radians of slack against rounding
_POLAR = math.radians(80.0)  # nearer the poles, :meth:`_AssetIndex.near` gives up and returns every asset


def _cell(radians: _FloatArray) -> _IntArray:
    cells: _IntArray = np.floor(radians / _CELL).astype(np.int64)
    return cells


def _haversine(*, lat1: float, lon1: float, lat2: _FloatArray, lon2: _FloatArray) -> _FloatArray:
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
    ri: int, req: MatchRequest, index: _AssetIndex, *, serving: frozenset[str], objective: Objective, limits: Limits
) -> list[Option]:
    minutes = req.minutes
    if req.lat is not None and req.lon is not None and req.max_distance_km is not None:
        idx = index.near(
            serving, req.material, lat=math.radians(req.lat), lon=math.radians(req.lon), km=req.max_distance_km
        )
    else:
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
        dist = _haversine(
            lat1=math.radians(req.lat), lon1=math.radians(req.lon), lat2=index.lat[idx], lon2=index.lon[idx]
        )
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
    order = np.lexsort((idx, -(proxy - index.load[idx])))[: limits.max_scan]

    lo, hi = _us(req.earliest_start), _us(req.deadline)
    prefixes = tuple(req.region_prefixes)
    certs_needed = bool(req.required_certificates)
    if not prefixes and not certs_needed:  # vectorised: skip the assets without any slot at once
        order = order[index.has_slot(idx[order], lo=lo, hi=hi, minutes=minutes)]
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
            windows = intersect(list(zip(starts, ends, strict=True)), [(_us(s), _us(e)) for s, e in cw])
            starts, ends = [s for s, _ in windows], [e for _, e in windows]
        length = max(minutes, c.min_booking_minutes) * _MIN_US
        gap = (c.setup_minutes + c.buffer_minutes) * _MIN_US
        slots = _slot_starts(
            starts, ends, lo=lo, hi=hi, length=length, grid=c.slot_minutes * _MIN_US, gap=gap, k=limits.slots_per_asset
        )
        if slots:
            found.append((pos, a, slots))
            if len(found) >= limits.assets_per_request:
                break
    if not found:
        return []

    rows = [(pos, a, rank, t) for pos, a, slots in found for rank, t in enumerate(slots)]
    raw = RawValues(
        prices=[float(price[pos]) for pos, _, _, _ in rows],
        distances=[None if dist is None or math.isnan(dist[pos]) else float(dist[pos]) for pos, _, _, _ in rows],
        delays_h=[max(0.0, (t - lo) / 3.6e9) for _, _, _, t in rows],
        qualities=[float(index.quality[a]) for _, a, _, _ in rows],
        idles=[float(index.idle[a]) for _, a, _, _ in rows],
    )
    scored = score_components(w, raw)
    hours = minutes / 60
    picked: list[tuple[int, float, int, int, float, float]] = []
    for (_, a, rank, t), (score, _) in zip(rows, scored, strict=True):
        value = SCORE_FLOOR + score if objective == "score" else hours + HOURS_TIEBREAK * score
        picked.append((rank, -value, a, t, value, score))
    picked.sort()
    out: list[Option] = []
    for rank, _, a, t, value, score in picked[: limits.max_options]:
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
    limits = Limits(slots_per_asset, max_options_per_request, assets_per_request, max_scan)
    return options_within(requests, candidates, serving_codes, objective=objective, limits=limits)


def options_within(
    requests: Sequence[MatchRequest],
    candidates: Sequence[Candidate],
    serving_codes: Mapping[str, Set[str]],
    *,
    objective: Objective,
    limits: Limits,
) -> list[Option]:
    """:func:`generate_options` with its limits as one value."""
    if objective not in ("score", "hours"):
        raise ValueError("objective must be 'score' or 'hours'")
    if min(limits.slots_per_asset, limits.max_options, limits.assets_per_request, limits.max_scan) < 1:
        raise ValueError("option limits must be >= 1")
    _check_requests(requests, serving_codes)
    index = _AssetIndex(candidates)
    options: list[Option] = []
    for ri, req in enumerate(requests):
        options += _request_options(
            ri, req, index, serving=frozenset(serving_codes[req.key]), objective=objective, limits=limits
        )
    return options
