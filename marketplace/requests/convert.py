"""Conversions of the requests room: request bodies → rows, rows → the engine's :class:`MatchRequest` (the one
mapping, for stored requests, previews and batch plans alike) and engine results and rows → response bodies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marketplace.requests.models import BuyerRequest, MatchPlan
from marketplace.requests.schemas import (
    AssignmentOut,
    ComponentOut,
    MatchOut,
    PlanOut,
    PriceOut,
    RequestFields,
    RequestMatchOut,
    RequestOut,
    SlotOut,
)
from matching.types import FeasibleMatch, MatchRequest, RankedMatch, ScoreComponent, Weights

# -- request bodies and rows -------------------------------------------------------------------------


def request_out(r: BuyerRequest) -> RequestOut:
    envelope = (
        {"x": r.part_x_mm, "y": r.part_y_mm, "z": r.part_z_mm}
        if r.part_x_mm is not None and r.part_y_mm is not None and r.part_z_mm is not None
        else None
    )
    location: dict[str, Any] | None = None
    if r.site_id is not None:
        location = {"site_id": str(r.site_id), "latitude": r.latitude, "longitude": r.longitude}
    elif r.latitude is not None:
        location = {"latitude": r.latitude, "longitude": r.longitude}
    return RequestOut(
        id=r.id,
        status=r.status,
        buyer_org_id=r.buyer_org_id,
        kind=r.kind,
        process_code=r.process_code,
        material=r.material,
        quantity=r.quantity,
        duration_minutes=r.duration_minutes,
        samples=r.samples,
        part_envelope_mm=envelope,
        tolerance_mm=r.tolerance_mm,
        required_certificates=list(r.required_certificates),
        earliest_start=r.earliest_start,
        deadline=r.deadline,
        location=location,
        max_distance_km=r.max_distance_km,
        region_prefixes=list(r.region_prefixes),
        budget_max=r.budget_max,
        currency=r.currency,
        weights=r.weights,
        audience=r.audience,
        auto_cascade=r.auto_cascade,
        nda_required=r.nda_required,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def fields_of(r: BuyerRequest) -> dict[str, Any]:
    """The stored request as a ``RequestFields`` body (for PATCH merging)."""
    out = request_out(r).model_dump(
        include=set(RequestFields.model_fields) - {"location"}, exclude_none=False, mode="python"
    )
    if r.site_id is not None:
        out["location"] = {"site_id": r.site_id}
    elif r.latitude is not None:
        out["location"] = {"latitude": r.latitude, "longitude": r.longitude}
    else:
        out["location"] = None
    return out


def apply_fields(
    row: BuyerRequest, data: RequestFields, *, site_id: uuid.UUID | None, lat: float | None, lon: float | None
) -> None:
    """Write a request body (and its resolved location) onto a row."""
    row.kind = data.kind
    row.process_code = data.process_code
    row.material = data.material
    row.quantity = data.quantity
    row.duration_minutes = data.duration_minutes if data.kind == "machine" else None
    row.samples = data.samples if data.kind == "lab_service" else None
    env = data.part_envelope_mm
    row.part_x_mm, row.part_y_mm, row.part_z_mm = (env.x, env.y, env.z) if env else (None, None, None)
    row.tolerance_mm = data.tolerance_mm
    row.required_certificates = list(data.required_certificates)
    row.earliest_start = data.earliest_start
    row.deadline = data.deadline
    row.site_id, row.latitude, row.longitude = site_id, lat, lon
    row.max_distance_km = data.max_distance_km
    row.region_prefixes = list(data.region_prefixes)
    row.budget_max = data.budget_max
    row.currency = data.currency
    row.weights = data.weights.model_dump() if data.weights else None
    row.audience = data.audience
    row.auto_cascade = data.auto_cascade
    row.nda_required = data.nda_required


def draft(data: RequestFields, lat: float | None, lon: float | None) -> BuyerRequest:
    """An unsaved row for a request body (never added to the session), so a preview is matched through the
    same mapping as a stored request."""
    row = BuyerRequest(
        buyer_org_id=uuid.UUID(int=0),  # nobody's: a preview has no posting organisation
        kind=data.kind,
        currency=data.currency,
        process_code=data.process_code,
        earliest_start=data.earliest_start,
        deadline=data.deadline,
    )
    apply_fields(row, data, site_id=None, lat=lat, lon=lon)
    return row


def match_request(r: BuyerRequest, *, now: datetime | None, until: datetime | None = None) -> MatchRequest | None:
    """The engine's request for a row, its window cut to ``[now, until)``; ``None`` when no time is left in the
    window (nothing can match)."""
    start = max(r.earliest_start, now) if now is not None else r.earliest_start
    deadline = min(r.deadline, until) if until is not None else r.deadline
    if start >= deadline:
        return None
    machine = r.kind == "machine"
    part = (r.part_x_mm, r.part_y_mm, r.part_z_mm)
    return MatchRequest(
        kind="machine" if machine else "lab_service",
        process_code=r.process_code,
        earliest_start=start,
        deadline=deadline,
        currency=r.currency,
        material=r.material,
        quantity=r.quantity,
        duration_minutes=r.duration_minutes if machine else None,
        samples=r.samples if not machine else None,
        part_size_mm=part if None not in part else None,  # type: ignore[arg-type]
        tolerance_mm=r.tolerance_mm,
        required_certificates=tuple(r.required_certificates),
        lat=r.latitude,
        lon=r.longitude,
        max_distance_km=r.max_distance_km if r.latitude is not None else None,
        region_prefixes=tuple(r.region_prefixes),
        budget_max=r.budget_max,
        weights=Weights(**r.weights) if r.weights else None,
        request_id=str(r.id),
    )


# -- engine results ----------------------------------------------------------------------------------


def price_out(m: FeasibleMatch) -> PriceOut:
    p = m.price
    return PriceOut(
        amount=p.total,
        currency=p.currency,
        breakdown={"work": p.work, "setup_fee": p.setup_fee, "billed_minutes": p.billed_minutes, "samples": p.samples},
    )


def match_out(r: RankedMatch) -> MatchOut:
    m = r.match
    c = m.candidate
    return MatchOut(
        asset_id=uuid.UUID(c.asset_id),
        org_id=uuid.UUID(c.org_id),
        site_id=uuid.UUID(c.site_id),
        kind=c.kind,
        score=r.score,
        slot=SlotOut(start=m.slot_start, end=m.slot_end),
        price=price_out(m),
        distance_km=m.distance_km,
        drop_off_day=m.drop_off_day.isoformat() if m.drop_off_day else None,
        completion_day=m.completion_day.isoformat() if m.completion_day else None,
        explanation=[_component(e) for e in r.explanation],
    )


def _component(e: ScoreComponent) -> ComponentOut:
    return ComponentOut(
        component=e.component, raw=e.raw, normalised=e.normalised, weight=e.weight, contribution=e.contribution
    )


def request_match_out(r: BuyerRequest, m: FeasibleMatch) -> RequestMatchOut:
    return RequestMatchOut(
        request=request_out(r),
        slot=SlotOut(start=m.slot_start, end=m.slot_end),
        price=price_out(m),
        distance_km=m.distance_km,
    )


# -- batch plans -------------------------------------------------------------------------------------


def plan_out(p: MatchPlan) -> PlanOut:
    return PlanOut(
        id=p.id,
        status=p.status,
        error=p.error,
        created_at=p.created_at,
        started_at=p.started_at,
        finished_at=p.finished_at,
        horizon_start=p.horizon_start,
        horizon_end=p.horizon_end,
        objective_kind=p.objective,
        objective=p.value,
        bound=p.bound,
        lp_bound=p.lp_bound,
        gap=p.gap,
        method=p.method,
        matched_hours=p.matched_hours,
        requests=len(p.request_ids),
        option_count=p.option_count,
        seconds=p.seconds,
        assignments=[assignment_out(a) for a in p.assignments],
    )


def assignment_out(a: Mapping[str, Any]) -> AssignmentOut:
    return AssignmentOut(
        request_id=a["request_id"],
        asset_id=a["asset_id"],
        slot=SlotOut(start=a["slot"]["start"], end=a["slot"]["end"]),
        value=a["value"],
    )
