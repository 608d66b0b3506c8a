"""Buyer requests, matching and batch plans. Functions take a session and never commit; jobs are outbox rows
of the caller's transaction. A batch plan is a job: the request stores a queued plan, a worker solves it.

Matching goes through :mod:`matching.adapter` (SQL prefilter + calendars) and :func:`matching.engine.match`
(hard constraints + ranking); the batch optimiser is :func:`matching.batch.plan_batch`.
"""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset, Site
from listings.taxonomy import get_taxonomy
from marketplace.bookings.models import BLOCKING, BLOCKING_SQL, Booking
from marketplace.bookings.repository import BookingRepository, _not_stale
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.notifications.models import Notification
from marketplace.notifications.service import notify_org
from marketplace.notifications.webhooks import fan_out
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest, MatchPlan, PlanStatus, RequestStatus
from marketplace.requests.repository import PlanRepository
from marketplace.requests.schemas import (
    AssignmentOut,
    BatchIn,
    ComponentOut,
    MatchesOut,
    MatchOut,
    PlanOut,
    PriceOut,
    RequestCreate,
    RequestFields,
    RequestMatchOut,
    RequestOut,
    RequestUpdate,
    SlotOut,
    SuggestionOut,
)
from matching import adapter
from matching.batch import BatchPlan, Objective, plan_batch
from matching.feasibility import check
from matching.scoring import delay_hours, rank, scores_only
from matching.types import Candidate, FeasibleMatch, MatchRequest, RankedMatch, Rejection, Weights

NOTIFY_LIMIT = 50  # suppliers notified per posted request (the best-ranked listings)
BATCH_DEFAULT_TIME_LIMIT = 20.0


class RequestNotFound(NotFound):
    """Request not found."""


class RequestNotOpen(Conflict):
    """Only open requests can be changed."""

    code = "request_not_open"


def _now() -> datetime:
    return datetime.now(UTC)


# -- collaborators handed to the adapter ---------------------------------------------------------------


_BLOCKED_SQL = sa.text(
    "SELECT b.asset_id, lower(b.period), upper(b.period) FROM unnest(CAST(:ids AS uuid[])) AS u(id)"
    " JOIN LATERAL (SELECT asset_id, period FROM bookings WHERE asset_id = u.id"
    " AND period && tstzrange(:start, :end, '[)') AND " + BLOCKING_SQL + " AND NOT ("
    "(status = 'held' AND hold_expires_at < :now) OR (status = 'requested' AND accept_by < :now))) AS b ON true"
)  # = BookingRepository.blocked_periods (BLOCKING statuses, overlapping, not stale: see _not_stale)


class RequestsBlockedTime:
    """Booked time for the adapter (as ``BookingsBlockedTime``), plus lab bookings of many assets in one
    query. Not a subclass: bookings.service imports this module (the request_id hook)."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
        """As ``BookingRepository.blocked_periods``, but one probe of the exclusion constraint's GiST index
        ``(asset_id, period) WHERE status IN BLOCKING`` per asset (a LATERAL join), so only the overlapping
        bookings are read instead of every booking of every asset."""
        out: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {a: [] for a in asset_ids}
        if not asset_ids:
            return out
        rows = await session.execute(_BLOCKED_SQL, {"ids": list(out), "start": start, "end": end, "now": _now()})
        for asset_id, lower, upper in rows.all():
            out[asset_id].append((lower, upper))
        return out

    async def lab_booked(self, session: AsyncSession, asset_id: uuid.UUID, start: date, end: date) -> dict[date, int]:
        return await BookingRepository(session).lab_samples_by_day(asset_id, start, end, _now())

    async def lab_booked_many(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], first: date, last: date
    ) -> dict[uuid.UUID, dict[date, int]]:
        out: dict[uuid.UUID, dict[date, int]] = {a: {} for a in asset_ids}
        if not asset_ids:
            return out
        rows = await session.execute(
            sa.select(col(Booking.asset_id), col(Booking.drop_off_date), sa.func.sum(col(Booking.samples)))
            .where(
                col(Booking.asset_id).in_(list(asset_ids)),
                col(Booking.drop_off_date).between(first, last),
                col(Booking.status).in_(BLOCKING),
                _not_stale(_now()),
            )
            .group_by(col(Booking.asset_id), col(Booking.drop_off_date))
        )
        for asset_id, day, n in rows.all():
            if day is not None:
                out[asset_id][day] = int(n or 0)
        return out


class BookingStats:
    """Supplier quality from the bookings scorecard counts, cached per organisation for ``ttl`` seconds.

    The counts aggregate every booking of a supplier (about 10 ms for the ~150 organisations behind one
    request's candidates), change only when bookings complete or are reviewed, and only feed the
    ``quality`` component of the ranking: matching may see them up to ``ttl`` seconds late. ``ttl=0``
    disables the cache."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[uuid.UUID, tuple[float, Mapping[str, Any]]] = {}

    def clear(self) -> None:
        self._cache.clear()

    async def supplier_stats(
        self, session: AsyncSession, org_ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, Mapping[str, Any]]:
        if self.ttl <= 0:
            return await BookingRepository(session).supplier_stats(list(org_ids))
        now = _time.monotonic()
        out: dict[uuid.UUID, Mapping[str, Any]] = {}
        missing: list[uuid.UUID] = []
        for org_id in org_ids:
            hit = self._cache.get(org_id)
            if hit is not None and hit[0] > now:
                out[org_id] = hit[1]
            else:
                missing.append(org_id)
        if missing:
            fresh = await BookingRepository(session).supplier_stats(missing)
            if len(self._cache) + len(fresh) > self.max_entries:
                self._cache.clear()
            for org_id, counts in fresh.items():
                self._cache[org_id] = (now + self.ttl, counts)
                out[org_id] = counts
        return out


BLOCKED = RequestsBlockedTime()
STATS = BookingStats()


# -- conversions -----------------------------------------------------------------------------------


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
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _fields_of(r: BuyerRequest) -> dict[str, Any]:
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


async def _resolve_location(
    session: AsyncSession, data: RequestFields, buyer_org_id: uuid.UUID
) -> tuple[uuid.UUID | None, float | None, float | None]:
    loc = data.location
    if loc is None:
        return None, None, None
    if loc.site_id is not None:
        site = await session.get(Site, loc.site_id)
        if site is None or site.org_id != buyer_org_id:
            raise Unprocessable("location.site_id: not a site of the buyer organisation.")
        return site.id, site.latitude, site.longitude
    return None, loc.latitude, loc.longitude


def _apply(
    row: BuyerRequest, data: RequestFields, site_id: uuid.UUID | None, lat: float | None, lon: float | None
) -> None:
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


def to_match_request(
    *,
    kind: str,
    process_code: str,
    earliest_start: datetime,
    deadline: datetime,
    currency: str,
    material: str | None = None,
    quantity: int = 1,
    duration_minutes: int | None = None,
    samples: int | None = None,
    part: tuple[float, float, float] | None = None,
    tolerance_mm: float | None = None,
    required_certificates: Sequence[str] = (),
    lat: float | None = None,
    lon: float | None = None,
    max_distance_km: float | None = None,
    region_prefixes: Sequence[str] = (),
    budget_max: int | None = None,
    weights: Mapping[str, float] | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> MatchRequest | None:
    """The engine's request; ``None`` when no time is left in the window (nothing can match)."""
    start = max(earliest_start, now) if now is not None else earliest_start
    if start >= deadline:
        return None
    return MatchRequest(
        kind="machine" if kind == "machine" else "lab_service",
        process_code=process_code,
        earliest_start=start,
        deadline=deadline,
        currency=currency,
        material=material,
        quantity=quantity,
        duration_minutes=duration_minutes if kind == "machine" else None,
        samples=samples if kind != "machine" else None,
        part_size_mm=part,
        tolerance_mm=tolerance_mm,
        required_certificates=tuple(required_certificates),
        lat=lat,
        lon=lon,
        max_distance_km=max_distance_km if lat is not None else None,
        region_prefixes=tuple(region_prefixes),
        budget_max=budget_max,
        weights=Weights(**weights) if weights else None,
        request_id=request_id,
    )


def row_to_match_request(r: BuyerRequest, now: datetime | None) -> MatchRequest | None:
    part = (r.part_x_mm, r.part_y_mm, r.part_z_mm)
    return to_match_request(
        kind=r.kind,
        process_code=r.process_code,
        earliest_start=r.earliest_start,
        deadline=r.deadline,
        currency=r.currency,
        material=r.material,
        quantity=r.quantity,
        duration_minutes=r.duration_minutes,
        samples=r.samples,
        part=part if None not in part else None,  # type: ignore[arg-type]
        tolerance_mm=r.tolerance_mm,
        required_certificates=r.required_certificates,
        lat=r.latitude,
        lon=r.longitude,
        max_distance_km=r.max_distance_km,
        region_prefixes=r.region_prefixes,
        budget_max=r.budget_max,
        weights=r.weights,
        request_id=str(r.id),
        now=now,
    )


def _fields_to_match_request(
    data: RequestFields, lat: float | None, lon: float | None, now: datetime
) -> MatchRequest | None:
    env = data.part_envelope_mm
    return to_match_request(
        kind=data.kind,
        process_code=data.process_code,
        earliest_start=data.earliest_start,
        deadline=data.deadline,
        currency=data.currency,
        material=data.material,
        quantity=data.quantity,
        duration_minutes=data.duration_minutes,
        samples=data.samples,
        part=(env.x, env.y, env.z) if env else None,
        tolerance_mm=data.tolerance_mm,
        required_certificates=data.required_certificates,
        lat=lat,
        lon=lon,
        max_distance_km=data.max_distance_km,
        region_prefixes=data.region_prefixes,
        budget_max=data.budget_max,
        weights=data.weights.model_dump() if data.weights else None,
        now=now,
    )


def _price_out(m: FeasibleMatch) -> PriceOut:
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
        price=_price_out(m),
        distance_km=m.distance_km,
        drop_off_day=m.drop_off_day.isoformat() if m.drop_off_day else None,
        completion_day=m.completion_day.isoformat() if m.completion_day else None,
        explanation=[_component(e) for e in r.explanation],
    )


def _component(e: Any) -> ComponentOut:
    return ComponentOut(
        component=e.component, raw=e.raw, normalised=e.normalised, weight=e.weight, contribution=e.contribution
    )


# -- access ----------------------------------------------------------------------------------------


async def _buyer_org(session: AsyncSession, principal: Principal, requested: uuid.UUID | None) -> Organisation:
    if not principal.has_scope("requests:write"):
        raise Forbidden("This API key lacks the 'requests:write' scope.")
    candidates = [requested] if requested else sorted(principal.org_ids)
    orgs = []
    for org_id in candidates:
        if not principal.can_act_for(org_id, "requests:write"):
            continue
        org = await session.get(Organisation, org_id)
        if org is not None and "buyer" in org.roles:
            orgs.append(org)
    if requested and not orgs:
        raise NotFound("Organisation not found.")
    if len(orgs) != 1:
        raise Unprocessable("buyer_org_id: say which of your buyer organisations posts (or you have none).")
    return orgs[0]


async def _get(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, scope: str, for_update: bool = False
) -> BuyerRequest:
    stmt = sa.select(BuyerRequest).where(col(BuyerRequest.id) == request_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None or not (principal.is_platform_admin or principal.is_member(row.buyer_org_id)):
        raise RequestNotFound()
    if not principal.is_platform_admin and not principal.has_scope(scope):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")
    return row


# -- CRUD ------------------------------------------------------------------------------------------


async def create(session: AsyncSession, principal: Principal, data: RequestCreate) -> BuyerRequest:
    buyer = await _buyer_org(session, principal, data.buyer_org_id)
    site_id, lat, lon = await _resolve_location(session, data, buyer.id)
    row = BuyerRequest(
        buyer_org_id=buyer.id,
        created_by=principal.user_id,
        kind=data.kind,
        currency=data.currency,
        process_code=data.process_code,
        earliest_start=data.earliest_start,
        deadline=data.deadline,
    )
    _apply(row, data, site_id, lat, lon)
    session.add(row)
    await session.flush()
    await enqueue(session, "requests.notify_suppliers", str(row.id))
    return row


async def get(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> BuyerRequest:
    return await _get(session, principal, request_id, scope="requests:read")


async def list_for(
    session: AsyncSession,
    principal: Principal,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[BuyerRequest]:
    orgs = [o for o in principal.org_ids if principal.can_act_for(o, "requests:read")]
    if not orgs:
        return []
    stmt = sa.select(BuyerRequest).where(col(BuyerRequest.buyer_org_id).in_(orgs))
    if status:
        stmt = stmt.where(col(BuyerRequest.status) == status)
    if after is not None:
        stmt = stmt.where(sa.tuple_(col(BuyerRequest.created_at), col(BuyerRequest.id)) < sa.tuple_(*after))
    stmt = stmt.order_by(col(BuyerRequest.created_at).desc(), col(BuyerRequest.id).desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def update(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: RequestUpdate
) -> BuyerRequest:
    row = await _get(session, principal, request_id, scope="requests:write", for_update=True)
    if row.status != RequestStatus.open:
        raise RequestNotOpen()
    merged = _fields_of(row)
    merged.update(data.model_dump(exclude_unset=True, mode="python"))
    try:
        fields = RequestFields.model_validate(merged)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise Unprocessable(detail) from None
    site_id, lat, lon = await _resolve_location(session, fields, row.buyer_org_id)
    _apply(row, fields, site_id, lat, lon)
    row.updated_at = _now()
    await session.flush()
    return row


async def cancel(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> BuyerRequest:
    row = await _get(session, principal, request_id, scope="requests:write", for_update=True)
    if row.status == RequestStatus.cancelled:
        return row
    if row.status != RequestStatus.open:
        raise RequestNotOpen("Only open requests can be cancelled.")
    row.status = RequestStatus.cancelled
    row.updated_at = _now()
    await session.flush()
    return row


async def mark_booked(session: AsyncSession, request_id: uuid.UUID, buyer_org_id: uuid.UUID) -> BuyerRequest:
    """A booking was placed for this request (called by the bookings service)."""
    row = (
        await session.execute(sa.select(BuyerRequest).where(col(BuyerRequest.id) == request_id).with_for_update())
    ).scalar_one_or_none()
    if row is None or row.buyer_org_id != buyer_org_id:
        raise RequestNotFound()
    if row.status == RequestStatus.booked:
        return row
    if row.status != RequestStatus.open:
        raise RequestNotOpen("The request is no longer open.")
    row.status = RequestStatus.booked
    row.updated_at = _now()
    await session.flush()
    return row


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Mark open requests whose deadline passed as expired (beat job)."""
    result = await session.execute(
        sa.update(BuyerRequest)
        .where(col(BuyerRequest.status) == RequestStatus.open, col(BuyerRequest.deadline) <= (now or _now()))
        .values(status=RequestStatus.expired, updated_at=now or _now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- matching --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _serving_codes(process_code: str) -> frozenset[str]:
    return frozenset(get_taxonomy().serving_codes(process_code))  # the taxonomy is immutable


def serving_codes(process_code: str) -> set[str]:
    return set(_serving_codes(process_code))


async def _with_quality(
    session: AsyncSession, request: MatchRequest, feasible: list[FeasibleMatch], limit: int
) -> list[FeasibleMatch]:
    """Supplier scorecards for the matches that can still reach the top ``limit``.

    Quality is the only component that is not normalised over the set and it adds at most its weight, so
    with quality 0 each score is a lower bound and with ``+ weight`` an upper bound. A match whose upper bound
    is below the ``limit``-th best lower bound cannot be in the top ``limit``: it keeps empty counts (its own
    score is then still below that of the top ``limit``), everyone else gets the real counts. The top
    ``limit`` (scores, explanations, order) is therefore exactly the engine's."""
    if not feasible:
        return feasible
    w = request.effective_weights
    lower = scores_only(
        w,
        [m.price.total for m in feasible],
        [m.distance_km for m in feasible],
        [delay_hours(request.earliest_start, m.slot_start) for m in feasible],
        [0.0] * len(feasible),
        [1.0 - m.candidate.utilisation for m in feasible],
    )
    if limit >= len(feasible):
        needed = list(range(len(feasible)))
    elif limit == 0:
        needed = []
    else:
        threshold = sorted(lower, reverse=True)[limit - 1]
        needed = [i for i, lo in enumerate(lower) if lo + w.quality >= threshold - 1e-9]
    if not needed:
        return feasible
    counts = await STATS.supplier_stats(session, sorted({uuid.UUID(feasible[i].candidate.org_id) for i in needed}))
    out = list(feasible)
    for i in needed:
        m = feasible[i]
        sc = counts.get(uuid.UUID(m.candidate.org_id), {})
        candidate = replace(
            m.candidate,
            rating_sum=float(sc.get("rating_sum", 0) or 0),
            rating_count=int(sc.get("rating_count", 0) or 0),
            completed_count=int(sc.get("completed", 0) or 0),
            on_time_count=int(sc.get("on_time", 0) or 0),
        )
        out[i] = replace(m, candidate=candidate)
    return out


async def run_match(
    session: AsyncSession,
    request: MatchRequest | None,
    *,
    limit: int = 20,
    explain_rejections: bool = False,
    cap: int | None = adapter.DEFAULT_CAP,
    now: datetime | None = None,
) -> MatchesOut:
    """The endpoint's code path: adapter (prefilter + calendars) then the engine."""
    if request is None:
        return MatchesOut(items=[], rejections={}, feasible=0, examined=0, prefiltered=0)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    codes = _serving_codes(request.process_code)
    loaded = await adapter.load_for_request(
        session, request, codes, blocked=BLOCKED, stats=adapter.NoStats(), now=now or _now(), cap=cap
    )
    # = matching.engine.match over loaded.candidates; the adapter already ran the engine's check per candidate.
    feasible = [r for r in loaded.checks if not isinstance(r, Rejection)]
    ranked = rank(request, await _with_quality(session, request, feasible, limit))
    rejections: dict[str, int] = {}
    if explain_rejections:
        rejections = await adapter.static_rejections(session, request, codes)
        for r in loaded.checks:
            if isinstance(r, Rejection):
                rejections[r.value] = rejections.get(r.value, 0) + 1
    return MatchesOut(
        items=[match_out(r) for r in ranked[:limit]],
        rejections=rejections,
        feasible=len(feasible),
        examined=len(loaded.candidates),
        prefiltered=loaded.prefiltered,
    )


async def matches_for(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, limit: int, explain_rejections: bool
) -> MatchesOut:
    row = await get(session, principal, request_id)
    now = _now()
    return await run_match(
        session, row_to_match_request(row, now), limit=limit, explain_rejections=explain_rejections, now=now
    )


async def preview(
    session: AsyncSession, principal: Principal, data: RequestCreate, limit: int, explain_rejections: bool
) -> MatchesOut:
    lat = lon = None
    if data.location is not None:
        if data.location.site_id is not None:
            site = await session.get(Site, data.location.site_id)
            if site is None or not (principal.is_platform_admin or principal.is_member(site.org_id)):
                raise Unprocessable("location.site_id: not a site of your organisation.")
            lat, lon = site.latitude, site.longitude
        else:
            lat, lon = data.location.latitude, data.location.longitude
    now = _now()
    return await run_match(
        session,
        _fields_to_match_request(data, lat, lon, now),
        limit=limit,
        explain_rejections=explain_rejections,
        now=now,
    )


def _codes_served_by(process_codes: Sequence[str]) -> list[str]:
    """Request process codes (any taxonomy node) that an asset offering ``process_codes`` can serve."""
    tax = get_taxonomy()
    offered = set(process_codes)
    return sorted(code for code in tax.processes if not offered.isdisjoint(tax.serving_codes(code)))


async def requests_for_asset(
    session: AsyncSession, asset: Asset, *, now: datetime, limit: int = 100
) -> list[tuple[BuyerRequest, FeasibleMatch]]:
    """Open requests (of other organisations) this asset can serve, earliest deadline first."""
    codes = _codes_served_by(asset.process_codes)
    if not codes:
        return []
    rows = list(
        (
            await session.execute(
                sa.select(BuyerRequest)
                .where(
                    col(BuyerRequest.status) == RequestStatus.open,
                    col(BuyerRequest.kind) == asset.kind,
                    col(BuyerRequest.process_code).in_(codes),
                    col(BuyerRequest.currency) == asset.currency,
                    col(BuyerRequest.deadline) > now,
                    col(BuyerRequest.buyer_org_id) != asset.org_id,
                    sa.or_(
                        col(BuyerRequest.material).is_(None),
                        col(BuyerRequest.material).in_(list(asset.materials) or [""]),
                    ),
                )
                .order_by(col(BuyerRequest.deadline), col(BuyerRequest.id))
                .limit(1000)
            )
        ).scalars()
    )
    wanted = [(r, mr) for r in rows if (mr := row_to_match_request(r, now)) is not None]
    if not wanted:
        return []
    start = min(mr.earliest_start for _, mr in wanted)
    end = max(mr.deadline for _, mr in wanted)
    cands = await adapter.load_assets(
        session, start, end, blocked=BLOCKED, stats=STATS, now=now, asset_ids=[asset.id], published_only=False
    )
    if not cands:
        return []
    cand = cands[0]
    out: list[tuple[BuyerRequest, FeasibleMatch]] = []
    for r, mr in wanted:
        result = check(mr, cand, serving_codes(mr.process_code))
        if not isinstance(result, Rejection):
            out.append((r, result))
            if len(out) >= limit:
                break
    return out


async def matching_requests(
    session: AsyncSession, principal: Principal, asset_id: uuid.UUID, limit: int
) -> list[RequestMatchOut]:
    asset = await session.get(Asset, asset_id)
    if asset is None or not (principal.is_platform_admin or principal.can_act_for(asset.org_id, None)):
        raise NotFound("Listing not found.")
    if not principal.is_platform_admin and not principal.has_scope("listings:read"):
        raise Forbidden("This API key lacks the 'listings:read' scope.")
    found = await requests_for_asset(session, asset, now=_now(), limit=limit)
    return [
        RequestMatchOut(
            request=request_out(r),
            slot=SlotOut(start=m.slot_start, end=m.slot_end),
            price=_price_out(m),
            distance_km=m.distance_km,
        )
        for r, m in found
    ]


# -- jobs ------------------------------------------------------------------------------------------


async def notify_suppliers(session: AsyncSession, request_id: uuid.UUID) -> int:
    """``request.matched`` to the suppliers of the best-matching listings of a newly posted request."""
    row = (
        await session.execute(sa.select(BuyerRequest).where(col(BuyerRequest.id) == request_id).with_for_update())
    ).scalar_one_or_none()
    if row is None or row.status != RequestStatus.open or row.suppliers_notified_at is not None:
        return 0
    result = await run_match(session, row_to_match_request(row, _now()), limit=NOTIFY_LIMIT)
    by_org: dict[uuid.UUID, list[MatchOut]] = {}
    for m in result.items:
        by_org.setdefault(m.org_id, []).append(m)
    titles = await _titles(session, [m.asset_id for m in result.items])
    process = get_taxonomy().name(row.process_code, "en")
    for org_id, items in by_org.items():
        best = items[0]
        data = {
            "request_id": str(row.id),
            "asset_id": str(best.asset_id),
            "asset_ids": [str(m.asset_id) for m in items],
            "title": titles.get(best.asset_id, ""),
            "process": process,
            "process_code": row.process_code,
            "earliest_start": row.earliest_start.isoformat(),
            "deadline": row.deadline.isoformat(),
        }
        await notify_org(session, org_id, "request.matched", data)
        await fan_out(session, [org_id], "request.matched", data)
    row.suppliers_notified_at = _now()
    await session.flush()
    return len(by_org)


async def notify_buyers(session: AsyncSession, asset_id: uuid.UUID) -> int:
    """``capacity.published`` to buyers whose open requests a newly published listing can serve.

    Idempotent (the job may be delivered twice): a request already told about this listing is not told again,
    and the listing's row lock serialises two deliveries of the same job."""
    asset = await session.get(Asset, asset_id, with_for_update=True)
    if asset is None or asset.status != "published":
        return 0
    found = await requests_for_asset(session, asset, now=_now(), limit=1000)
    told = await _requests_told_about(session, asset.id)
    by_org: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r, _m in found:
        if str(r.id) not in told:
            by_org.setdefault(r.buyer_org_id, []).append(r.id)
    for org_id, request_ids in by_org.items():
        data = {"asset_id": str(asset.id), "title": asset.title, "request_ids": [str(i) for i in request_ids]}
        await notify_org(session, org_id, "capacity.published", data)
    return len(by_org)


async def _requests_told_about(session: AsyncSession, asset_id: uuid.UUID) -> set[str]:
    """Ids of the requests whose buyers already had a ``capacity.published`` notification for this listing."""
    data = col(Notification.data)
    rows = await session.execute(
        sa.select(sa.func.jsonb_array_elements_text(data["request_ids"])).where(
            col(Notification.kind) == "capacity.published", data["asset_id"].astext == str(asset_id)
        )
    )
    return set(rows.scalars())


async def _titles(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not asset_ids:
        return {}
    rows = await session.execute(sa.select(col(Asset.id), col(Asset.title)).where(col(Asset.id).in_(list(asset_ids))))
    return {a: t for a, t in rows.all()}


# -- batch -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchInputs:
    """What the optimiser needs, loaded in one short transaction; solving then needs no database."""

    requests: list[MatchRequest]
    candidates: list[Candidate]
    codes: dict[str, set[str]]
    objective: Objective
    time_limit: float


async def request_batch(session: AsyncSession, *, admin: Principal, data: BatchIn) -> MatchPlan:
    """Ask for a batch plan: a ``queued`` plan row and its job (``requests.run_batch_plan``), written in the
    caller's transaction. The optimiser (up to ``time_limit_seconds``, 300 s at most) runs in a worker, never in
    the request; the plan's status endpoint shows queued → running → done | failed."""
    lo, hi = max(data.horizon_start, _now()), data.horizon_end
    if lo >= hi:
        raise Unprocessable("horizon_end: the horizon lies in the past.")
    plan = await PlanRepository(session).add(
        MatchPlan(
            created_by=admin.user_id,
            status=PlanStatus.queued,
            horizon_start=lo,
            horizon_end=hi,
            objective=data.objective,
            requested_ids=data.request_ids,
            time_limit_seconds=data.time_limit_seconds,
        )
    )
    await enqueue(session, "requests.run_batch_plan", str(plan.id))
    return plan


async def get_plan(session: AsyncSession, *, plan_id: uuid.UUID) -> MatchPlan:
    plan = await PlanRepository(session).get(plan_id)
    if plan is None:
        raise NotFound("Plan not found.")
    return plan


async def claim_batch(session: AsyncSession, *, plan_id: uuid.UUID) -> bool:
    """Mark the plan running for the job about to solve it (False: nothing to do, e.g. a redelivered job)."""
    return await PlanRepository(session).claim(plan_id)


async def load_batch(session: AsyncSession, *, plan_id: uuid.UUID) -> BatchInputs:
    """The open machine requests of the plan's horizon (or the admin's chosen ones among them) and the
    candidate listings, as the optimiser's inputs."""
    plan = await get_plan(session, plan_id=plan_id)
    lo, hi = max(plan.horizon_start, _now()), plan.horizon_end
    time_limit = plan.time_limit_seconds or BATCH_DEFAULT_TIME_LIMIT
    objective: Objective = "hours" if plan.objective == "hours" else "score"
    if lo >= hi:
        return BatchInputs([], [], {}, objective, time_limit)
    stmt = sa.select(BuyerRequest).where(
        col(BuyerRequest.status) == RequestStatus.open,
        col(BuyerRequest.kind) == "machine",
        col(BuyerRequest.earliest_start) < hi,
        col(BuyerRequest.deadline) > lo,
    )
    if plan.requested_ids is not None:
        stmt = stmt.where(col(BuyerRequest.id).in_(plan.requested_ids))
    rows = list((await session.execute(stmt.order_by(col(BuyerRequest.created_at), col(BuyerRequest.id)))).scalars())
    requests: list[MatchRequest] = []
    codes: dict[str, set[str]] = {}
    for r in rows:
        mr = to_match_request(
            kind=r.kind,
            process_code=r.process_code,
            earliest_start=max(r.earliest_start, lo),
            deadline=min(r.deadline, hi),
            currency=r.currency,
            material=r.material,
            quantity=r.quantity,
            duration_minutes=r.duration_minutes,
            part=(r.part_x_mm, r.part_y_mm, r.part_z_mm) if r.part_x_mm is not None else None,  # type: ignore[arg-type]
            tolerance_mm=r.tolerance_mm,
            required_certificates=r.required_certificates,
            lat=r.latitude,
            lon=r.longitude,
            max_distance_km=r.max_distance_km,
            region_prefixes=r.region_prefixes,
            budget_max=r.budget_max,
            weights=r.weights,
            request_id=str(r.id),
        )
        if mr is not None:
            requests.append(mr)
            codes[str(r.id)] = serving_codes(r.process_code)
    all_codes = set().union(*codes.values()) if codes else set()
    candidates = (
        await adapter.load_assets(
            session,
            lo,
            hi,
            blocked=BLOCKED,
            stats=STATS,
            now=_now(),
            kind="machine",
            serving_codes=all_codes,
            currencies=sorted({r.currency for r in requests}),
        )
        if requests
        else []
    )
    return BatchInputs(requests, list(candidates), codes, objective, time_limit)


def solve_batch(inputs: BatchInputs) -> BatchPlan:
    """The optimiser itself: pure CPU work (up to ``time_limit`` seconds), no database, no event loop."""
    return plan_batch(
        inputs.requests, inputs.candidates, inputs.codes, objective=inputs.objective, time_limit=inputs.time_limit
    )


async def store_batch(
    session: AsyncSession, *, plan_id: uuid.UUID, inputs: BatchInputs, result: BatchPlan, seconds: float
) -> bool:
    """Store the optimiser's result on the running plan (done); False if the plan was no longer running."""
    return await PlanRepository(session).finish(
        plan_id,
        {
            "request_ids": [uuid.UUID(r.request_id) for r in inputs.requests if r.request_id],
            "assignments": [
                {
                    "request_id": a.request_id,
                    "asset_id": a.asset_id,
                    "slot": {"start": a.slot_start.isoformat(), "end": a.slot_end.isoformat()},
                    "value": a.value,
                }
                for a in result.assignments
            ],
            "value": result.objective,
            "bound": result.bound,
            "lp_bound": result.lp_bound,
            "gap": result.gap,
            "method": result.method,
            "matched_hours": result.matched_hours,
            "option_count": result.option_count,
            "solver_status": result.solver_status[:500],
            "seconds": round(seconds, 3),
        },
    )


async def fail_batch(session: AsyncSession, *, plan_id: uuid.UUID, error: str) -> bool:
    return await PlanRepository(session).fail(plan_id, error)


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
        assignments=[_assignment(a) for a in p.assignments],
    )


def _assignment(a: Mapping[str, Any]) -> AssignmentOut:
    return AssignmentOut(
        request_id=a["request_id"],
        asset_id=a["asset_id"],
        slot=SlotOut(start=a["slot"]["start"], end=a["slot"]["end"]),
        value=a["value"],
    )


async def suggestion(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> SuggestionOut:
    """The assignment for this request in the latest plan that considered it (404 when unassigned)."""
    row = await get(session, principal, request_id)
    plan = await PlanRepository(session).latest_done_for_request(row.id)
    if plan is not None:
        for a in plan.assignments:
            if a["request_id"] == str(row.id):
                out = _assignment(a)
                return SuggestionOut(
                    plan_id=plan.id,
                    plan_created_at=plan.created_at,
                    request_id=out.request_id,
                    asset_id=out.asset_id,
                    slot=out.slot,
                    value=out.value,
                )
    raise NotFound("No suggestion for this request in the latest plan.")
