"""SQL of the requests room: buyer requests (:class:`RequestRepository`), the booked time matching reads
(:class:`BookedTimeRepository`) and batch plans (:class:`PlanRepository`: the job's claim, its result or
failure, and the reads of the status endpoint and the buyers' suggestions; a plan row moves
``queued → running → done | failed`` only through these statements)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset, Site
from marketplace.bookings.models import BLOCKING_SQL
from marketplace.notifications.models import Notification
from marketplace.orgs.models import Organisation
from marketplace.requests.models import BuyerRequest, MatchPlan, PlanStatus, RequestStatus

# An asset is checked against at most this many open requests (earliest deadline first) when listing what it can serve.
OPEN_FOR_ASSET_LIMIT = 1000


class RequestRepository:
    """Buyer requests, and the few rows of other rooms the requests services read (sites, listings,
    organisations, notifications)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: BuyerRequest) -> BuyerRequest:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, request_id: uuid.UUID, *, for_update: bool = False) -> BuyerRequest | None:
        stmt = sa.select(BuyerRequest).where(col(BuyerRequest.id) == request_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self,
        org_ids: Sequence[uuid.UUID],
        *,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[BuyerRequest]:
        """The organisations' requests, newest first, after the keyset cursor ``(created_at, id)``."""
        stmt = sa.select(BuyerRequest).where(col(BuyerRequest.buyer_org_id).in_(list(org_ids)))
        if status:
            stmt = stmt.where(col(BuyerRequest.status) == status)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(BuyerRequest.created_at), col(BuyerRequest.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(BuyerRequest.created_at).desc(), col(BuyerRequest.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def expire_due(self, now: datetime) -> int:
        """Open requests whose deadline passed become expired; returns how many."""
        result = await self.session.execute(
            sa.update(BuyerRequest)
            .where(col(BuyerRequest.status) == RequestStatus.open, col(BuyerRequest.deadline) <= now)
            .values(status=RequestStatus.expired, updated_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def open_for_asset(self, asset: Asset, codes: Sequence[str], now: datetime) -> list[BuyerRequest]:
        """Open requests of other organisations whose static fields this asset can serve (process among
        ``codes``, kind, currency, material), earliest deadline first."""
        stmt = (
            sa.select(BuyerRequest)
            .where(
                col(BuyerRequest.status) == RequestStatus.open,
                col(BuyerRequest.kind) == asset.kind,
                col(BuyerRequest.process_code).in_(list(codes)),
                col(BuyerRequest.currency) == asset.currency,
                col(BuyerRequest.deadline) > now,
                col(BuyerRequest.buyer_org_id) != asset.org_id,
                sa.or_(
                    col(BuyerRequest.material).is_(None),
                    col(BuyerRequest.material).in_(list(asset.materials) or [""]),
                ),
            )
            .order_by(col(BuyerRequest.deadline), col(BuyerRequest.id))
            .limit(OPEN_FOR_ASSET_LIMIT)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def open_machine_requests(
        self, lo: datetime, hi: datetime, ids: Sequence[uuid.UUID] | None
    ) -> list[BuyerRequest]:
        """Open machine requests whose window overlaps ``[lo, hi)`` (only ``ids`` when given), oldest first."""
        stmt = sa.select(BuyerRequest).where(
            col(BuyerRequest.status) == RequestStatus.open,
            col(BuyerRequest.kind) == "machine",
            col(BuyerRequest.earliest_start) < hi,
            col(BuyerRequest.deadline) > lo,
        )
        if ids is not None:
            stmt = stmt.where(col(BuyerRequest.id).in_(ids))
        stmt = stmt.order_by(col(BuyerRequest.created_at), col(BuyerRequest.id))
        return list((await self.session.execute(stmt)).scalars())

    async def organisations(self, org_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
        """The organisations among ``org_ids`` that exist, in one statement."""
        if not org_ids:
            return {}
        rows = await self.session.execute(sa.select(Organisation).where(col(Organisation.id).in_(list(org_ids))))
        return {o.id: o for o in rows.scalars()}

    async def site(self, site_id: uuid.UUID) -> Site | None:
        return await self.session.get(Site, site_id)

    async def asset(self, asset_id: uuid.UUID, *, for_update: bool = False) -> Asset | None:
        return await self.session.get(Asset, asset_id, with_for_update=True if for_update else None)

    async def titles(self, asset_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not asset_ids:
            return {}
        rows = await self.session.execute(
            sa.select(col(Asset.id), col(Asset.title)).where(col(Asset.id).in_(list(asset_ids)))
        )
        return {a: t for a, t in rows.all()}

    async def requests_told_about(self, asset_id: uuid.UUID) -> set[str]:
        """Ids of the requests whose buyers already had a ``capacity.published`` notification for this listing."""
        data = col(Notification.data)
        rows = await self.session.execute(
            sa.select(sa.func.jsonb_array_elements_text(data["request_ids"])).where(
                col(Notification.kind) == "capacity.published", data["asset_id"].astext == str(asset_id)
            )
        )
        return set(rows.scalars())


_BLOCKED_SQL = sa.text(
    "SELECT b.asset_id, lower(b.period), upper(b.period) FROM unnest(CAST(:ids AS uuid[])) AS u(id)"
    " JOIN LATERAL (SELECT asset_id, period FROM bookings WHERE asset_id = u.id"
    " AND period && tstzrange(:start, :end, '[)') AND " + BLOCKING_SQL + " AND NOT ("
    "(status = 'held' AND hold_expires_at < :now) OR (status = 'requested' AND accept_by < :now))) AS b ON true"
)  # = BookingRepository.blocked_periods (BLOCKING statuses, overlapping, not stale: see _not_stale)


class BookedTimeRepository:
    """Booked time of many assets at once, as the matching adapter reads it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def machine_blocked(
        self, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime, now: datetime
    ) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
        """As ``BookingRepository.blocked_periods``, but one probe of the exclusion constraint's GiST index
        ``(asset_id, period) WHERE status IN BLOCKING`` per asset (a LATERAL join), so only the overlapping
        bookings are read instead of every booking of every asset."""
        out: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {a: [] for a in asset_ids}
        if not asset_ids:
            return out
        rows = await self.session.execute(_BLOCKED_SQL, {"ids": list(out), "start": start, "end": end, "now": now})
        for asset_id, lower, upper in rows.all():
            out[asset_id].append((lower, upper))
        return out


# A job may run a plan that is queued, or one whose worker died mid-solve: ``running`` for longer than its
# time limit plus ``STALE_GRACE_SECONDS`` (a redelivered message). A second delivery of the job while the first
# still solves, or after it finished, claims nothing.
STALE_GRACE_SECONDS = 120.0
DEFAULT_TIME_LIMIT_SECONDS = 20.0
_plans: sa.Table = MatchPlan.__table__  # type: ignore[attr-defined]
_CLAIM = (
    sa.update(_plans)
    .where(
        _plans.c.id == sa.bindparam("plan_id"),
        sa.or_(
            _plans.c.status == PlanStatus.queued,
            sa.and_(
                _plans.c.status == PlanStatus.running,
                _plans.c.started_at
                < sa.func.now()
                - sa.func.make_interval(
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    sa.func.coalesce(_plans.c.time_limit_seconds, DEFAULT_TIME_LIMIT_SECONDS) + STALE_GRACE_SECONDS,
                ),
            ),
        ),
    )
    .values(status=PlanStatus.running, started_at=sa.func.now(), attempts=_plans.c.attempts + 1)
    .returning(_plans.c.id)
)


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, plan: MatchPlan) -> MatchPlan:
        self.session.add(plan)
        await self.session.flush()
        return plan

    async def get(self, plan_id: uuid.UUID) -> MatchPlan | None:
        return await self.session.get(MatchPlan, plan_id, populate_existing=True)

    async def claim(self, plan_id: uuid.UUID) -> bool:
        """Mark the plan running for this job; False if it is not the job's to run (done, failed, missing, or
        being solved by another delivery)."""
        claimed = await self.session.execute(_CLAIM, {"plan_id": plan_id})
        return claimed.first() is not None

    async def finish(self, plan_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Store the result of a running plan (done); False if the plan is no longer running."""
        stored = await self.session.execute(
            sa.update(_plans)
            .where(_plans.c.id == plan_id, _plans.c.status == PlanStatus.running)
            .values(**values, status=PlanStatus.done, error=None, finished_at=sa.func.now())
            .returning(_plans.c.id)
        )
        return stored.first() is not None

    async def fail(self, plan_id: uuid.UUID, error: str) -> bool:
        failed = await self.session.execute(
            sa.update(_plans)
            .where(_plans.c.id == plan_id, _plans.c.status == PlanStatus.running)
            .values(status=PlanStatus.failed, error=error[:2000], finished_at=sa.func.now())
            .returning(_plans.c.id)
        )
        return failed.first() is not None

    async def latest_done_for_request(self, request_id: uuid.UUID) -> MatchPlan | None:
        """The latest finished plan that considered this request (assigned or not)."""
        return (
            await self.session.execute(
                sa.select(MatchPlan)
                .where(col(MatchPlan.request_ids).contains([request_id]), col(MatchPlan.status) == PlanStatus.done)
                .order_by(col(MatchPlan.created_at).desc(), col(MatchPlan.id).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
