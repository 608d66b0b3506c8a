"""SQL of batch plans: the job's claim, its result or failure, and the reads of the status endpoint and the
buyers' suggestions. A plan row moves ``queued → running → done | failed`` only through these statements."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.requests.models import MatchPlan, PlanStatus

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
