"""Notification jobs of the requests room: suppliers hear of a new request their listings match, buyers of a
newly published listing that can serve their open requests. Both are idempotent (a job may run twice)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from listings.taxonomy import get_taxonomy
from marketplace.notifications.service import notify_org
from marketplace.notifications.webhooks import fan_out
from marketplace.requests.convert import match_request
from marketplace.requests.matches import requests_for_asset, run_match
from marketplace.requests.models import RequestStatus
from marketplace.requests.repository import OPEN_FOR_ASSET_LIMIT, RequestRepository
from marketplace.requests.schemas import MatchOut

NOTIFY_LIMIT = 50  # suppliers notified per posted request (the best-ranked listings)


def _now() -> datetime:
    return datetime.now(UTC)


async def notify_suppliers(session: AsyncSession, request_id: uuid.UUID) -> int:
    """``request.matched`` to the suppliers of the best-matching listings of a newly posted request."""
    repo = RequestRepository(session)
    row = await repo.get(request_id, for_update=True)
    if row is None or row.status != RequestStatus.open or row.suppliers_notified_at is not None:
        return 0
    result = await run_match(session, match_request(row, now=_now()), limit=NOTIFY_LIMIT)
    by_org: dict[uuid.UUID, list[MatchOut]] = {}
    for m in result.items:
        by_org.setdefault(m.org_id, []).append(m)
    titles = await repo.titles([m.asset_id for m in result.items])
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
        await notify_org(session, org_id, kind="request.matched", data=data)
        await fan_out(session, [org_id], event="request.matched", payload=data)
    row.suppliers_notified_at = _now()
    await session.flush()
    return len(by_org)


async def notify_buyers(session: AsyncSession, asset_id: uuid.UUID) -> int:
    """``capacity.published`` to buyers whose open requests a newly published listing can serve.

    Idempotent (the job may be delivered twice): a request already told about this listing is not told again,
    and the listing's row lock serialises two deliveries of the same job."""
    repo = RequestRepository(session)
    asset = await repo.asset(asset_id, for_update=True)
    if asset is None or asset.status != "published":
        return 0
    found = await requests_for_asset(session, asset, now=_now(), limit=OPEN_FOR_ASSET_LIMIT)
    told = await repo.requests_told_about(asset.id)
    by_org: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r, _m in found:
        if str(r.id) not in told:
            by_org.setdefault(r.buyer_org_id, []).append(r.id)
    for org_id, request_ids in by_org.items():
        data = {"asset_id": str(asset.id), "title": asset.title, "request_ids": [str(i) for i in request_ids]}
        await notify_org(session, org_id, kind="capacity.published", data=data)
    return len(by_org)
