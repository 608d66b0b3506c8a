"""Ranking of feasible matches: a weighted sum of normalised components, with explanations.

Components (each normalised to [0, 1], 1 = best):

* ``price``    raw = total price (minor units); min-max across the set, cheaper -> 1.
* ``distance`` raw = km; min-max, closer -> 1. Without a request location every candidate
               gets 1 (raw ``None``); a candidate without a site location gets 0.
* ``start``    raw = hours from ``earliest_start`` to the slot start (>= 0); min-max, earlier -> 1.
* ``quality``  raw = normalised = 0.7 * Bayesian rating + 0.3 * Bayesian on-time share, so a
               newcomer sits at the neutral prior instead of at either extreme.
* ``idle``     raw = normalised = 1 - utilisation: nudges demand towards idle machines.

Min-max over a set whose values are all equal gives 1 to everyone (a single candidate is
never penalised). Score = sum of contributions, so the explanation adds up exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from matching.types import FeasibleMatch, MatchRequest, RankedMatch, ScoreComponent, Weights

PRIOR_WEIGHT = 5.0  # C: pseudo-observations of the prior
PRIOR_RATING = 3.5  # m, on the 1..5 star scale
PRIOR_ON_TIME = 0.9
RATING_SHARE = 0.7
COMPONENTS: tuple[str, ...] = ("price", "distance", "start", "quality", "idle")


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def quality_score(*, rating_sum: float, rating_count: int, completed_count: int, on_time_count: int) -> float:
    """Bayesian-averaged supplier quality in [0, 1]."""
    rating = (PRIOR_WEIGHT * PRIOR_RATING + rating_sum) / (PRIOR_WEIGHT + max(0, rating_count))
    rating01 = _clamp01((rating - 1.0) / 4.0)
    on_time = (PRIOR_WEIGHT * PRIOR_ON_TIME + on_time_count) / (PRIOR_WEIGHT + max(0, completed_count))
    return _clamp01(RATING_SHARE * rating01 + (1.0 - RATING_SHARE) * _clamp01(on_time))


def minmax_lower_better(values: Sequence[float | None]) -> list[float]:
    """Min-max normalisation where lower is better; ``None`` -> 0 unless every value is ``None`` (-> 1)."""
    known = [v for v in values if v is not None]
    if not known:
        return [1.0] * len(values)
    lo, hi = min(known), max(known)
    span = hi - lo
    if span <= 0:
        return [0.0 if v is None else 1.0 for v in values]
    return [0.0 if v is None else _clamp01((hi - v) / span) for v in values]


def delay_hours(earliest_start: datetime, slot_start: datetime) -> float:
    return max(0.0, (slot_start - earliest_start).total_seconds() / 3600.0)


@dataclass(frozen=True, slots=True)
class RawValues:
    """Raw component values of a set of options: parallel sequences, one entry per option."""

    prices: Sequence[float]
    distances: Sequence[float | None]  # all ``None``: the request has no location
    delays_h: Sequence[float]
    qualities: Sequence[float]
    idles: Sequence[float]


def score_components(weights: Weights, raw: RawValues) -> list[tuple[float, tuple[ScoreComponent, ...]]]:
    """Scores and explanations (one entry per option); ``weights`` must already be normalised."""
    prices, distances, delays_h, qualities, idles = raw.prices, raw.distances, raw.delays_h, raw.qualities, raw.idles
    wp, wd, ws, wq, wi = weights.as_tuple()
    price_n, dist_n, start_n = _normalised(prices, distances, delays_h)
    out: list[tuple[float, tuple[ScoreComponent, ...]]] = []
    # Unrolled over the five COMPONENTS (this runs for every examined candidate of every request).
    for i in range(len(prices)):
        q, idle = _clamp01(qualities[i]), _clamp01(idles[i])
        cp, cd, cs, cq, ci = wp * price_n[i], wd * dist_n[i], ws * start_n[i], wq * q, wi * idle
        comps = (
            ScoreComponent("price", float(prices[i]), price_n[i], wp, cp),
            ScoreComponent("distance", distances[i], dist_n[i], wd, cd),
            ScoreComponent("start", delays_h[i], start_n[i], ws, cs),
            ScoreComponent("quality", q, q, wq, cq),
            ScoreComponent("idle", idle, idle, wi, ci),
        )
        out.append((_clamp01(cp + cd + cs + cq + ci), comps))
    return out


def scores_only(
    weights: Weights,
    *,
    prices: Sequence[float],
    distances: Sequence[float | None],
    delays_h: Sequence[float],
    qualities: Sequence[float],
    idles: Sequence[float],
) -> list[float]:
    """The scores of :func:`score_components` (bit for bit) without building the explanations (the engine's
    hot path calls it)."""
    wp, wd, ws, wq, wi = weights.as_tuple()
    price_n, dist_n, start_n = _normalised(prices, distances, delays_h)
    return [
        _clamp01(wp * pn + wd * dn + ws * sn + wq * _clamp01(q) + wi * _clamp01(idle))
        for pn, dn, sn, q, idle in zip(price_n, dist_n, start_n, qualities, idles, strict=True)
    ]


def _normalised(
    prices: Sequence[float], distances: Sequence[float | None], delays_h: Sequence[float]
) -> tuple[list[float], list[float], list[float]]:
    return minmax_lower_better(prices), minmax_lower_better(distances), minmax_lower_better(delays_h)


def rank(request: MatchRequest, matches: Sequence[FeasibleMatch]) -> list[RankedMatch]:
    """Score every match (normalising across ``matches``) and sort best first.

    Tie-break, for a deterministic order: score desc, slot start asc, price asc, asset id.
    """
    raw = RawValues(
        prices=[m.price.total for m in matches],
        distances=[m.distance_km for m in matches],
        delays_h=[delay_hours(request.earliest_start, m.slot_start) for m in matches],
        qualities=[
            quality_score(
                rating_sum=c.rating_sum,
                rating_count=c.rating_count,
                completed_count=c.completed_count,
                on_time_count=c.on_time_count,
            )
            for c in (m.candidate for m in matches)
        ],
        idles=[1.0 - m.candidate.utilisation for m in matches],
    )
    scored = score_components(request.effective_weights, raw)
    ranked = [RankedMatch(match=m, score=s, explanation=e) for m, (s, e) in zip(matches, scored, strict=True)]
    ranked.sort(key=lambda r: (-r.score, r.match.slot_start, r.match.price.total, r.match.candidate.asset_id))
    return ranked
