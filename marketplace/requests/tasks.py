"""Request jobs run by Celery: notifications on new requests and new capacity, the expiry sweep and batch
plans. Every task is idempotent and acknowledged late."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work, run_with_sessionmaker
from marketplace.requests import batch, notify, service

log = logging.getLogger(__name__)


async def run_batch_plan_job(maker: async_sessionmaker[AsyncSession], *, plan_id: uuid.UUID) -> str:
    """Solve a queued batch plan in three short units of work, none open while the solver runs: claim it
    (``running``, committed, so the status endpoint shows it), load the inputs, solve without a transaction
    (in a thread: the event loop stays free), store the result (``done``). Any error marks it ``failed``.
    A redelivered job finds the plan done (or still being solved) and does nothing. Returns the outcome."""
    async with maker() as session:
        claimed = await batch.claim_batch(session, plan_id=plan_id)
        await session.commit()
    if not claimed:
        return "skipped"
    try:
        async with maker() as session:
            inputs = await batch.load_batch(session, plan_id=plan_id)
        started = time.perf_counter()
        result = await asyncio.to_thread(batch.solve_batch, inputs)
        seconds = time.perf_counter() - started
        async with maker() as session:
            stored = await batch.store_batch(session, plan_id=plan_id, inputs=inputs, result=result, seconds=seconds)
            await session.commit()
    except Exception as exc:
        log.exception("batch plan %s failed", plan_id)
        async with maker() as session:
            await batch.fail_batch(session, plan_id=plan_id, error=f"{type(exc).__name__}: {exc}")
            await session.commit()
        return "failed"
    return "done" if stored else "skipped"


@celery.task(name="requests.run_batch_plan", acks_late=True)
def run_batch_plan(plan_id: str) -> str:
    """Compute a batch plan an admin asked for (``POST /admin/matching/batch``); see :func:`run_batch_plan_job`."""

    return run_with_sessionmaker(lambda maker, _settings: run_batch_plan_job(maker, plan_id=uuid.UUID(plan_id)))


@celery.task(name="requests.notify_suppliers", acks_late=True)
def notify_suppliers(request_id: str) -> int:
    """Tell the suppliers of the best-matching listings about a newly posted request (once)."""
    return run_in_unit_of_work(lambda s: notify.notify_suppliers(s, uuid.UUID(request_id)))


@celery.task(name="requests.notify_buyers", acks_late=True)
def notify_buyers(asset_id: str) -> int:
    """Tell buyers with matching open requests that a listing was published."""
    return run_in_unit_of_work(lambda s: notify.notify_buyers(s, uuid.UUID(asset_id)))


@celery.task(name="requests.expire", acks_late=True)
def expire() -> int:
    """Open requests whose deadline passed become expired."""
    return run_in_unit_of_work(service.expire_due)
