"""Matching entry points: feasibility filter + ranking for one request.

:func:`match` is the one path from candidates to a ranked result, for the API, the jobs, tests and benchmarks.
Callers that loaded candidates through the adapter pass its verdicts (``checks``) instead of checking twice,
and supplier scorecards (``supplier_stats``) for the organisations :func:`quality_orgs` names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import replace
from typing import Any

from matching.feasibility import check
from matching.scoring import delay_hours, rank, scores_only
from matching.types import Candidate, FeasibleMatch, MatchRequest, MatchResult, Rejection

Verdict = FeasibleMatch | Rejection
# Per organisation id: the bookings scorecard counts (``rating_sum``, ``rating_count``, ``completed``, ``on_time``).
SupplierCounts = Mapping[str, Mapping[str, Any]]


def match(
    request: MatchRequest,
    candidates: Iterable[Candidate],
    serving_codes: Set[str],
    *,
    limit: int = 20,
    explain_rejections: bool = False,
    checks: Sequence[Verdict] | None = None,
    supplier_stats: SupplierCounts | None = None,
) -> MatchResult:
    """The best ``limit`` feasible candidates, ranked.

    Normalisation (price, distance, start) runs over the whole feasible set before the
    cut, so a candidate's score does not depend on ``limit``. ``rejections`` counts the
    first failing constraint per rejected candidate, only when ``explain_rejections``.

    ``checks``: the verdict of :func:`matching.feasibility.check` per candidate, in order, when the caller
    already has it (the adapter checks while loading calendars). ``supplier_stats``: scorecards replacing the
    candidates' quality counts for the matches that can still reach the top ``limit`` (see :func:`quality_orgs`).
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if checks is None:
        checks = [check(request, candidate, serving_codes) for candidate in candidates]
    feasible: list[FeasibleMatch] = []
    rejected: Counter[str] = Counter()
    for result in checks:
        if isinstance(result, Rejection):
            rejected[result.value] += 1
        else:
            feasible.append(result)
    if supplier_stats is not None:
        feasible = _with_quality(request, feasible, limit=limit, stats=supplier_stats)
    ranked = rank(request, feasible)
    return MatchResult(
        items=ranked[:limit],
        rejections=dict(rejected) if explain_rejections else {},
        feasible_count=len(feasible),
    )


def _quality_needed(request: MatchRequest, feasible: Sequence[FeasibleMatch], limit: int) -> list[int]:
    """Indices of the matches that can still reach the top ``limit`` once their quality is known.

    Quality is the only component that is not normalised over the set and it adds at most its weight, so
    with quality 0 each score is a lower bound and with ``+ weight`` an upper bound. A match whose upper bound
    is below the ``limit``-th best lower bound cannot be in the top ``limit``: it keeps empty counts (its own
    score is then still below that of the top ``limit``). The top ``limit`` (scores, explanations, order) is
    therefore exactly that of ranking with every supplier's real counts, while fewer scorecards are read."""
    if not feasible or limit == 0:
        return []
    if limit >= len(feasible):
        return list(range(len(feasible)))
    w = request.effective_weights
    lower = scores_only(
        w,
        prices=[m.price.total for m in feasible],
        distances=[m.distance_km for m in feasible],
        delays_h=[delay_hours(request.earliest_start, m.slot_start) for m in feasible],
        qualities=[0.0] * len(feasible),
        idles=[1.0 - m.candidate.utilisation for m in feasible],
    )
    threshold = sorted(lower, reverse=True)[limit - 1]
    return [i for i, lo in enumerate(lower) if lo + w.quality >= threshold - 1e-9]


def quality_orgs(request: MatchRequest, checks: Sequence[Verdict], limit: int) -> list[str]:
    """The organisations whose scorecards :func:`match` needs for the top ``limit`` (sorted, no repeats)."""
    feasible = [r for r in checks if not isinstance(r, Rejection)]
    return sorted({feasible[i].candidate.org_id for i in _quality_needed(request, feasible, limit)})


def _with_quality(
    request: MatchRequest, feasible: list[FeasibleMatch], *, limit: int, stats: SupplierCounts
) -> list[FeasibleMatch]:
    out = list(feasible)
    for i in _quality_needed(request, feasible, limit):
        m = feasible[i]
        sc = stats.get(m.candidate.org_id, {})
        candidate = replace(
            m.candidate,
            rating_sum=float(sc.get("rating_sum", 0) or 0),
            rating_count=int(sc.get("rating_count", 0) or 0),
            completed_count=int(sc.get("completed", 0) or 0),
            on_time_count=int(sc.get("on_time", 0) or 0),
        )
        out[i] = replace(m, candidate=candidate)
    return out


def match_for_asset(request: MatchRequest, candidate: Candidate, serving_codes: Set[str]) -> FeasibleMatch | None:
    """``candidate``'s earliest feasible slot for ``request`` (``None``: it cannot serve it); used to list the
    open requests an asset can take, where there is nothing to rank."""
    result = check(request, candidate, serving_codes)
    return None if isinstance(result, Rejection) else result


def request_matches_asset(request: MatchRequest, candidate: Candidate, serving_codes: Set[str]) -> bool:
    """Whether ``candidate`` can serve ``request``."""
    return match_for_asset(request, candidate, serving_codes) is not None
