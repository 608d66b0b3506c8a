"""Ranking: normalisation, Bayesian quality, explanations and deterministic order."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.feasibility import check
from matching.scoring import RawValues, minmax_lower_better, quality_score, rank, score_components, scores_only
from matching.types import FeasibleMatch, Weights
from tests.matching.test_feasibility import MILLING, SH_LATLON, feasible, machine, machine_request, sh


def _matches(**request_overrides: object) -> list[FeasibleMatch]:
    req = machine_request(**request_overrides)
    return [
        feasible(check(req, machine(asset_id="cheap", hourly_rate=10_000), MILLING)),
        feasible(check(req, machine(asset_id="dear", hourly_rate=30_000), MILLING)),
        feasible(check(req, machine(asset_id="late", free=[(sh(5, 8), sh(5, 18))]), MILLING)),
    ]


def test_quality_bayesian_prior_for_newcomers() -> None:
    newcomer = quality_score(rating_sum=0, rating_count=0, completed_count=0, on_time_count=0)
    assert newcomer == pytest.approx(0.7 * (3.5 - 1) / 4 + 0.3 * 0.9)
    # one 5-star review moves a newcomer only a little; many move it a lot
    one = quality_score(rating_sum=5, rating_count=1, completed_count=1, on_time_count=1)
    many = quality_score(rating_sum=5 * 100, rating_count=100, completed_count=100, on_time_count=100)
    assert newcomer < one < many <= 1.0
    assert quality_score(rating_sum=1 * 100, rating_count=100, completed_count=100, on_time_count=0) < newcomer
    low = quality_score(rating_sum=0, rating_count=100, completed_count=100, on_time_count=0)
    high = quality_score(rating_sum=500, rating_count=100, completed_count=100, on_time_count=100)
    assert 0.0 <= low <= high <= 1.0


def test_minmax_rules() -> None:
    assert minmax_lower_better([5.0]) == [1.0]
    assert minmax_lower_better([3.0, 3.0]) == [1.0, 1.0]
    assert minmax_lower_better([1.0, 3.0, 2.0]) == [1.0, 0.0, 0.5]
    assert minmax_lower_better([None, None]) == [1.0, 1.0]
    assert minmax_lower_better([None, 4.0, 2.0]) == [0.0, 0.0, 1.0]


def test_weights_normalise_and_default() -> None:
    w = Weights(price=2, distance=0, start=1, quality=1, idle=0).normalised()
    assert math.isclose(math.fsum(w.as_tuple()), 1.0)
    assert w.price == pytest.approx(0.5)
    assert Weights().normalised().as_tuple() == pytest.approx((0.35, 0.2, 0.25, 0.15, 0.05))
    with pytest.raises(ValueError):
        Weights(quality=-1)


def test_price_and_start_components() -> None:
    ranked = {r.asset_id: r for r in rank(machine_request(), _matches())}
    comp = {k: {c.component: c for c in r.explanation} for k, r in ranked.items()}
    assert comp["cheap"]["price"].normalised == 1.0 and comp["dear"]["price"].normalised == 0.0
    assert comp["cheap"]["price"].raw == 25_000.0
    assert comp["late"]["start"].raw == pytest.approx(48.0) and comp["late"]["start"].normalised == 0.0
    assert comp["cheap"]["start"].normalised == 1.0
    # no request location: distance is neutral for everyone
    assert all(c["distance"].raw is None and c["distance"].normalised == 1.0 for c in comp.values())
    assert rank(machine_request(), _matches())[0].asset_id == "cheap"


def test_distance_component_with_location() -> None:
    req = machine_request(lat=SH_LATLON[0], lon=SH_LATLON[1])
    near = feasible(check(req, machine(asset_id="near", lat=31.3, lon=121.5), MILLING))
    far = feasible(check(req, machine(asset_id="far"), MILLING))
    nowhere = feasible(check(req, machine(asset_id="nowhere", lat=None, lon=None), MILLING))
    ranked = {r.asset_id: {c.component: c for c in r.explanation} for r in rank(req, [near, far, nowhere])}
    assert ranked["near"]["distance"].normalised == 1.0
    assert ranked["far"]["distance"].normalised == 0.0 and ranked["far"]["distance"].raw == pytest.approx(165, abs=15)
    assert ranked["nowhere"]["distance"].raw is None and ranked["nowhere"]["distance"].normalised == 0.0


def test_single_candidate_gets_full_relative_components() -> None:
    (only,) = rank(machine_request(), _matches()[:1])
    parts = {c.component: c.normalised for c in only.explanation}
    assert parts["price"] == parts["distance"] == parts["start"] == 1.0


def test_weights_change_the_order() -> None:
    price_only = rank(machine_request(weights=Weights(1, 0, 0, 0, 0)), _matches())
    assert price_only[0].asset_id == "cheap"
    idle_only = _matches()
    idle_only[1] = replace(idle_only[1], candidate=replace(idle_only[1].candidate, utilisation=0.0))
    idle_only[0] = replace(idle_only[0], candidate=replace(idle_only[0].candidate, utilisation=0.9))
    assert rank(machine_request(weights=Weights(0, 0, 0, 0, 1)), idle_only)[0].asset_id == "dear"


def test_tie_break_is_deterministic() -> None:
    req = machine_request(weights=Weights(0, 0, 0, 1, 0))  # quality only: every newcomer ties
    ms = [
        feasible(check(req, machine(asset_id="b", hourly_rate=10_000), MILLING)),
        feasible(check(req, machine(asset_id="a", hourly_rate=10_000), MILLING)),
        feasible(check(req, machine(asset_id="c", hourly_rate=5_000), MILLING)),
        feasible(check(req, machine(asset_id="0", free=[(sh(4, 8), sh(4, 18))]), MILLING)),
    ]
    assert [r.asset_id for r in rank(req, ms)] == ["c", "a", "b", "0"]  # slot, then price, then id
    assert [r.asset_id for r in rank(req, list(reversed(ms)))] == ["c", "a", "b", "0"]


finite = st.floats(0, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(finite, st.none() | finite, st.floats(0, 500), st.floats(0, 1), st.floats(0, 1)),
        min_size=1,
        max_size=20,
    ),
    st.tuples(*[st.floats(0, 10)] * 5).filter(lambda w: sum(w) > 0.01),
)
def test_scores_in_unit_interval_and_explained(
    rows: list[tuple[float, float | None, float, float, float]], w: tuple[float, float, float, float, float]
) -> None:
    weights = Weights(*w).normalised()
    prices, dists, delays, quals, idles = (list(col) for col in zip(*rows, strict=True))
    scored = score_components(weights, RawValues(prices, dists, delays, quals, idles))
    # The explanation-free variant the service uses for its quality bound gives bit-identical scores.
    only = scores_only(weights, prices=prices, distances=dists, delays_h=delays, qualities=quals, idles=idles)
    assert only == [score for score, _ in scored]
    for score, comps in scored:
        assert 0.0 <= score <= 1.0
        assert math.isclose(sum(c.contribution for c in comps), score, abs_tol=1e-9)
        assert [c.component for c in comps] == ["price", "distance", "start", "quality", "idle"]
        for c in comps:
            assert 0.0 <= c.normalised <= 1.0
            assert c.contribution == pytest.approx(c.weight * c.normalised)
