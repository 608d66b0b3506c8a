"""Matching entry points: feasibility filter + ranking for one request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Set

from matching.feasibility import check
from matching.scoring import rank
from matching.types import Candidate, FeasibleMatch, MatchRequest, MatchResult, Rejection


def match(
    request: MatchRequest,
    candidates: Iterable[Candidate],
    serving_codes: Set[str],
    *,
    limit: int = 20,
    explain_rejections: bool = False,
) -> MatchResult:
    """The best ``limit`` feasible candidates, ranked.

    Normalisation (price, distance, start) runs over the whole feasible set before the
    cut, so a candidate's score does not depend on ``limit``. ``rejections`` counts the
    first failing constraint per rejected candidate, only when ``explain_rejections``.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    feasible: list[FeasibleMatch] = []
    rejected: Counter[str] = Counter()
    for candidate in candidates:
        result = check(request, candidate, serving_codes)
        if isinstance(result, Rejection):
            rejected[result.value] += 1
        else:
            feasible.append(result)
    ranked = rank(request, feasible)
    return MatchResult(
        items=ranked[:limit],
        rejections=dict(rejected) if explain_rejections else {},
        feasible_count=len(feasible),
    )


def request_matches_asset(request: MatchRequest, candidate: Candidate, serving_codes: Set[str]) -> bool:
    """Whether ``candidate`` can serve ``request`` (used to list open requests an asset can take)."""
    return not isinstance(check(request, candidate, serving_codes), Rejection)
