"""Batch plans: an admin asks for an optimised assignment of the open machine requests of a horizon.

A plan is a job: asking stores a ``queued`` plan and its outbox row; the worker (:mod:`marketplace.requests.tasks`)
claims it, loads the inputs, solves with :func:`matching.batch.plan_batch` outside any transaction and stores
the result. Buyers then see their suggestion from the latest done plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.requests.access import load_request
from marketplace.requests.convert import assignment_out, match_request
from marketplace.requests.matches import BLOCKED, STATS, serving_codes
from marketplace.requests.models import MatchPlan, PlanStatus
from marketplace.requests.repository import PlanRepository, RequestRepository
from marketplace.requests.schemas import BatchIn, SuggestionOut
from matching import adapter
from matching.batch import BatchPlan, Objective, plan_batch
from matching.types import Candidate, MatchRequest

BATCH_DEFAULT_TIME_LIMIT = 20.0


def _now() -> datetime:
    return datetime.now(UTC)


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
    rows = await RequestRepository(session).open_machine_requests(lo, hi, plan.requested_ids)
    requests: list[MatchRequest] = []
    codes: dict[str, set[str]] = {}
    for r in rows:
        mr = match_request(r, now=lo, until=hi)  # each request's window cut to the horizon
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


async def suggestion(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> SuggestionOut:
    """The assignment for this request in the latest plan that considered it (404 when unassigned)."""
    row = await load_request(session, principal, request_id, scope="requests:read")
    plan = await PlanRepository(session).latest_done_for_request(row.id)
    if plan is not None:
        for a in plan.assignments:
            if a["request_id"] == str(row.id):
                out = assignment_out(a)
                return SuggestionOut(
                    plan_id=plan.id,
                    plan_created_at=plan.created_at,
                    request_id=out.request_id,
                    asset_id=out.asset_id,
                    slot=out.slot,
                    value=out.value,
                )
    raise NotFound("No suggestion for this request in the latest plan.")
