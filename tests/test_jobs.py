"""``marketplace.core.jobs``: a job is an outbox row of the transaction that causes it: it exists exactly when
that transaction commits, and a rolled-back change leaves no job behind. And the timers' configuration: the
booking sweep's interval and Redis's visibility timeout (tests/test_outbox.py covers the relay)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace import celery_app
from marketplace.celery_app import beat_schedule
from marketplace.core import jobs
from marketplace.core.settings import Settings


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


def test_the_booking_sweep_runs_every_30_seconds_or_more_often(settings: Settings) -> None:
    """The sweep acts on the due times in PostgreSQL: a timer whose message a killed worker took fires at
    most one interval late, well within a minute."""
    assert Settings().booking_sweep_seconds <= 30
    schedule = beat_schedule(Settings(booking_sweep_seconds=7))["booking-timers"]
    assert schedule["task"] == "bookings.sweep" and schedule["schedule"] == timedelta(seconds=7)
    with pytest.raises(ValidationError):
        Settings(booking_sweep_seconds=31)


def test_redis_redelivers_a_killed_workers_messages_after_the_visibility_timeout(
    settings: Settings, redis_url: str
) -> None:
    """No message carries a countdown any more, so the timeout only has to outlast the longest task (the
    batch optimiser's 300 s), not the longest timer (it was Redis's default hour)."""
    app = celery_app.configure(redis_url, settings)
    assert app.conf.broker_transport_options["visibility_timeout"] == settings.celery_visibility_timeout_seconds
    assert 300 < Settings().celery_visibility_timeout_seconds <= 900
