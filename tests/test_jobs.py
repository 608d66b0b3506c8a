"""``marketplace.jobs``: a job is an outbox row of the transaction that causes it: it exists exactly when
that transaction commits, and a rolled-back change leaves no job behind."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace import jobs


async def _outbox(session: AsyncSession) -> list[tuple[str, list[object], float]]:
    rows = await session.execute(
        sa.text("SELECT task, args, extract(epoch FROM due_at - now())::float FROM outbox ORDER BY id")
    )
    return [(r[0], r[1], r[2]) for r in rows.all()]


async def test_a_job_is_a_row_of_the_enqueuing_transaction_due_after_its_delay(db: AsyncSession) -> None:
    await jobs.enqueue(db, "bookings.expire_one", "booking-1", delay_seconds=60)
    await jobs.enqueue(db, "webhooks.deliver", "delivery-1")
    (expire, deliver) = await _outbox(db)
    assert expire[:2] == ("bookings.expire_one", ["booking-1"])
    assert abs(expire[2] - 60) < 1
    assert deliver[:2] == ("webhooks.deliver", ["delivery-1"])
    assert abs(deliver[2]) < 1


async def test_jobs_of_a_rolled_back_transaction_never_exist(db: AsyncSession) -> None:
    async with db.begin_nested() as savepoint:
        await jobs.enqueue(db, "bookings.expire_one", "booking-2", delay_seconds=60)
        assert len(await _outbox(db)) == 1
        await savepoint.rollback()
    assert await _outbox(db) == []
