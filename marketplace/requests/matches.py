"""Running a match: the listings that can serve a request (stored or previewed) and the open requests a
listing can serve.

Candidates come from :mod:`matching.adapter` (SQL prefilter + calendars); the verdicts and the ranking from
:func:`matching.engine.match`, the one path from candidates to ranked results.
"""

from __future__ import annotations

import time as _time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from listings.taxonomy import get_taxonomy
from marketplace.bookings.repository import BookingRepository
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.requests.access import load_request
from marketplace.requests.convert import draft, match_out, match_request, request_match_out
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import BookedTimeRepository, RequestRepository
from marketplace.requests.schemas import MatchesOut, RequestCreate, RequestMatchOut
from matching import adapter, engine
from matching.types import FeasibleMatch, MatchRequest


def _now() -> datetime:
    return datetime.now(UTC)


# -- collaborators handed to the adapter ---------------------------------------------------------------


class RequestsBlockedTime:
    """Booked time for the adapter (as ``BookingsBlockedTime``, with matching's own machine query). Not a
    subclass: bookings.service imports the requests service (the request_id hook)."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
        return await BookedTimeRepository(session).machine_blocked(asset_ids, start=start, end=end, now=_now())

    async def lab_booked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: date, end: date
    ) -> dict[uuid.UUID, dict[date, int]]:
        return await BookingRepository(session).lab_samples_by_day(asset_ids, first=start, last=end, now=_now())


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


@lru_cache(maxsize=4096)
def _serving_codes(process_code: str) -> frozenset[str]:
    return frozenset(get_taxonomy().serving_codes(process_code))  # the taxonomy is immutable


def serving_codes(process_code: str) -> set[str]:
    return set(_serving_codes(process_code))


# -- listings for a request ----------------------------------------------------------------------------


async def run_match(
    session: AsyncSession,
    request: MatchRequest | None,
    *,
    limit: int = 20,
    explain_rejections: bool = False,
    cap: int | None = adapter.DEFAULT_CAP,
    now: datetime | None = None,
    nearest: int = adapter.NEAREST,
) -> MatchesOut:
    """The endpoint's code path: adapter (prefilter + calendars) then the engine."""
    if request is None:
        return MatchesOut(items=[], rejections={}, feasible=0, examined=0, prefiltered=0)
    if limit < 0:
        raise ValueError("limit must be >= 0")
    codes = _serving_codes(request.process_code)
    loaded = await adapter.load_for_request(
        session, request, codes, blocked=BLOCKED, stats=adapter.NoStats(), now=now or _now(), cap=cap, nearest=nearest
    )
    # Scorecards only for the suppliers that can still reach the top ``limit`` (they are the costly part).
    orgs = engine.quality_orgs(request, loaded.checks, limit)
    counts = await STATS.supplier_stats(session, [uuid.UUID(o) for o in orgs]) if orgs else {}
    result = engine.match(
        request,
        loaded.candidates,
        codes,
        limit=limit,
        explain_rejections=explain_rejections,
        checks=loaded.checks,  # the adapter already ran the engine's check per candidate
        supplier_stats={str(org_id): c for org_id, c in counts.items()},
    )
    rejections: dict[str, int] = {}
    if explain_rejections:
        # Listings the SQL prefilter dropped, by first failing static constraint, then the engine's counts.
        rejections = await adapter.static_rejections(session, request, codes)
        for reason, n in result.rejections.items():
            rejections[reason] = rejections.get(reason, 0) + n
    return MatchesOut(
        items=[match_out(r) for r in result.items],
        rejections=rejections,
        feasible=result.feasible_count,
        examined=len(loaded.candidates),
        prefiltered=loaded.prefiltered,
        nearest=loaded.nearest,
    )


async def matches_for(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    limit: int = 20,
    explain_rejections: bool = False,
) -> MatchesOut:
    """Ranked listings for a stored request the caller may read."""
    row = await load_request(session, principal, request_id, scope="requests:read")
    now = _now()
    return await run_match(
        session, match_request(row, now=now), limit=limit, explain_rejections=explain_rejections, now=now
    )


async def preview(
    *,
    session: AsyncSession,
    principal: Principal,
    data: RequestCreate,
    limit: int = 20,
    explain_rejections: bool = False,
) -> MatchesOut:
    """Ranked listings for a request body, without saving it."""
    lat = lon = None
    if data.location is not None:
        if data.location.site_id is not None:
            site = await RequestRepository(session).site(data.location.site_id)
            if site is None or not (principal.is_platform_admin or principal.is_member(site.org_id)):
                raise Unprocessable("location.site_id: not a site of your organisation.")
            lat, lon = site.latitude, site.longitude
        else:
            lat, lon = data.location.latitude, data.location.longitude
    now = _now()
    return await run_match(
        session,
        match_request(draft(data, lat, lon), now=now),
        limit=limit,
        explain_rejections=explain_rejections,
        now=now,
    )


# -- requests for a listing ----------------------------------------------------------------------------


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
    rows = await RequestRepository(session).open_for_asset(asset, codes, now)
    wanted = [(r, mr) for r in rows if (mr := match_request(r, now=now)) is not None]
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
        found = engine.match_for_asset(mr, cand, serving_codes(mr.process_code))
        if found is not None:
            out.append((r, found))
            if len(out) >= limit:
                break
    return out


async def matching_requests(
    *, session: AsyncSession, principal: Principal, asset_id: uuid.UUID, limit: int
) -> list[RequestMatchOut]:
    """The open requests a listing of the caller's organisation can serve."""
    asset = await RequestRepository(session).asset(asset_id)
    if asset is None or not (principal.is_platform_admin or principal.can_act_for(asset.org_id, None)):
        raise NotFound("Listing not found.")
    if not principal.is_platform_admin and not principal.has_scope("listings:read"):
        raise Forbidden("This API key lacks the 'listings:read' scope.")
    found = await requests_for_asset(session, asset, now=_now(), limit=limit)
    return [request_match_out(r, m) for r, m in found]
