"""Buyer requests: posting, reading, changing, cancelling, booking and expiry. Functions take a session and
never commit; jobs are outbox rows of the caller's transaction.

The room's other services live next door and are re-exported here for existing callers: running a match
(:mod:`.matches`), the notification jobs (:mod:`.notify`) and batch plans (:mod:`.batch`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.requests.access import RequestNotFound, RequestNotOpen, buyer_org, load_request
from marketplace.requests.batch import (
    BATCH_DEFAULT_TIME_LIMIT,
    BatchInputs,
    claim_batch,
    fail_batch,
    get_plan,
    load_batch,
    request_batch,
    solve_batch,
    store_batch,
    suggestion,
)
from marketplace.requests.convert import apply_fields, fields_of, match_out, match_request, plan_out, request_out
from marketplace.requests.hooks import request_closed
from marketplace.requests.matches import (
    BLOCKED,
    STATS,
    BookingStats,
    RequestsBlockedTime,
    matches_for,
    matching_requests,
    preview,
    requests_for_asset,
    run_match,
    serving_codes,
)
from marketplace.requests.models import BuyerRequest, RequestStatus
from marketplace.requests.notify import NOTIFY_LIMIT, notify_buyers, notify_suppliers
from marketplace.requests.repository import RequestRepository
from marketplace.requests.schemas import RequestCreate, RequestFields, RequestUpdate

__all__ = [
    "BATCH_DEFAULT_TIME_LIMIT",
    "BLOCKED",
    "NOTIFY_LIMIT",
    "STATS",
    "BatchInputs",
    "BookingStats",
    "RequestNotFound",
    "RequestNotOpen",
    "RequestsBlockedTime",
    "cancel",
    "claim_batch",
    "create",
    "expire_due",
    "fail_batch",
    "get",
    "get_plan",
    "list_for",
    "load_batch",
    "mark_booked",
    "match_out",
    "match_request",
    "matches_for",
    "matching_requests",
    "notify_buyers",
    "notify_suppliers",
    "plan_out",
    "preview",
    "request_batch",
    "request_out",
    "requests_for_asset",
    "run_match",
    "serving_codes",
    "solve_batch",
    "store_batch",
    "suggestion",
    "update",
]


def _now() -> datetime:
    return datetime.now(UTC)


async def _resolve_location(
    session: AsyncSession, data: RequestFields, buyer_org_id: uuid.UUID
) -> tuple[uuid.UUID | None, float | None, float | None]:
    loc = data.location
    if loc is None:
        return None, None, None
    if loc.site_id is not None:
        site = await RequestRepository(session).site(loc.site_id)
        if site is None or site.org_id != buyer_org_id:
            raise Unprocessable("location.site_id: not a site of the buyer organisation.")
        return site.id, site.latitude, site.longitude
    return None, loc.latitude, loc.longitude


async def create(session: AsyncSession, principal: Principal, data: RequestCreate) -> BuyerRequest:
    """Post a request; the ``requests.notify_suppliers`` job tells the best-matching suppliers."""
    buyer = await buyer_org(session, principal, data.buyer_org_id)
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
    apply_fields(row, data, site_id=site_id, lat=lat, lon=lon)
    await RequestRepository(session).add(row)
    await enqueue(session, "requests.notify_suppliers", str(row.id))
    if row.auto_cascade:  # the quotes room's cascade asks the top-ranked factory (idempotent job)
        await enqueue(session, "quotes.cascade_start", str(row.id))
    return row


async def get(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> BuyerRequest:
    return await load_request(session, principal, request_id, scope="requests:read")


async def list_for(
    *,
    session: AsyncSession,
    principal: Principal,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[BuyerRequest]:
    """The requests of the caller's organisations, newest first (keyset ``after`` = (created_at, id))."""
    orgs = [o for o in principal.org_ids if principal.can_act_for(o, "requests:read")]
    if not orgs:
        return []
    return await RequestRepository(session).page(orgs, status=status, after=after, limit=limit)


async def update(
    *, session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: RequestUpdate
) -> BuyerRequest:
    """Change an open request: the stored fields merged with the patch are validated as a whole body."""
    row = await load_request(session, principal, request_id, scope="requests:write", for_update=True)
    if row.status != RequestStatus.open:
        raise RequestNotOpen()
    merged = fields_of(row)
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
    apply_fields(row, fields, site_id=site_id, lat=lat, lon=lon)
    row.updated_at = _now()
    await session.flush()
    if row.auto_cascade:
        await enqueue(session, "quotes.cascade_start", str(row.id))
    return row


async def _close(session: AsyncSession, row: BuyerRequest, *, to: RequestStatus, refusal: str) -> BuyerRequest:
    """Move an open request to ``to``; a repeat (already ``to``) is a no-op, any other status a conflict."""
    if row.status == to:
        return row
    if row.status != RequestStatus.open:
        raise RequestNotOpen(refusal)
    row.status = to
    row.updated_at = _now()
    await session.flush()
    await request_closed(session, request_id=row.id, now=row.updated_at)
    return row


async def cancel(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> BuyerRequest:
    row = await load_request(session, principal, request_id, scope="requests:write", for_update=True)
    return await _close(session, row, to=RequestStatus.cancelled, refusal="Only open requests can be cancelled.")


async def mark_booked(session: AsyncSession, *, request_id: uuid.UUID, buyer_org_id: uuid.UUID) -> BuyerRequest:
    """A booking was placed for this request (called by the bookings service)."""
    row = await RequestRepository(session).get(request_id, for_update=True)
    if row is None or row.buyer_org_id != buyer_org_id:
        raise RequestNotFound()
    return await _close(session, row, to=RequestStatus.booked, refusal="The request is no longer open.")


async def expire_due(session: AsyncSession, now: datetime | None = None) -> int:
    """Mark open requests whose deadline passed as expired (beat job)."""
    return await RequestRepository(session).expire_due(now or _now())
