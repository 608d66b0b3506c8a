"""The outbox relay against real PostgreSQL (committed rows, NOTIFY, SKIP LOCKED) and real Redis: due rows reach
the Celery queue in order and leave the outbox, delayed ones wait for their time, rows another relay holds are
skipped, and a broker that refuses leaves every row in place."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import sqlalchemy as sa
from celery import Celery
from httpx import AsyncClient
from prometheus_client import generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.core import jobs
from marketplace.core.celery import kombu_url
from marketplace.core.outbox import CeleryPublisher, Relay, backoff, observe
from tests import processes
from tests.processes import RedisServer, drop_queue, free_port, queued, running, wait_until


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-outbox-{uuid.uuid4().hex[:8]}"
    yield name
    drop_queue(redis_url, name)


def celery_client(redis_url: str, queue: str) -> Celery:
    url = kombu_url(redis_url)
    app = Celery("outbox-test", broker=url)
    app.conf.task_default_queue = queue
    app.conf.broker_transport_options = {"socket_connect_timeout": 2}
    return app


@pytest.fixture
async def listen_engine(committed_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(committed_db_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


async def enqueue_committed(engine: AsyncEngine, *jobs_: tuple[str, Sequence[object], float]) -> None:
    async with AsyncSession(engine) as session:
        for task, args, delay in jobs_:
            await jobs.enqueue(session, task, *args, delay_seconds=delay)
        await session.commit()


async def outbox_rows(engine: AsyncEngine) -> list[tuple[str, list[object], int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT task, args, attempts FROM outbox ORDER BY id"))
        return [(r[0], r[1], r[2]) for r in rows]


async def test_due_rows_are_sent_in_due_order_and_deleted_while_delayed_ones_stay(
    committed_engine: AsyncEngine, redis_url: str, queue: str
) -> None:
    await enqueue_committed(
        committed_engine,
        ("webhooks.deliver", ["d-1"], 0),
        ("bookings.expire_one", ["b-later"], 3600),
        ("notifications.deliver", ["n-1"], 0),
    )
    relay = Relay(committed_engine, CeleryPublisher(celery_client(redis_url, queue)), batch_size=10)
    result = await relay.relay_due()
    assert (result.claimed, result.sent, result.error) == (2, 2, None)
    assert queued(redis_url, queue) == [("webhooks.deliver", ["d-1"]), ("notifications.deliver", ["n-1"])]
    assert await outbox_rows(committed_engine) == [("bookings.expire_one", ["b-later"], 0)]
    # Nothing more is due: a second pass sends nothing.
    assert (await relay.relay_due()).claimed == 0
    assert len(queued(redis_url, queue)) == 2


async def test_a_batch_takes_at_most_batch_size_rows(committed_engine: AsyncEngine, redis_url: str, queue: str) -> None:
    await enqueue_committed(committed_engine, *[("webhooks.deliver", [f"d-{i}"], 0) for i in range(5)])
    relay = Relay(committed_engine, CeleryPublisher(celery_client(redis_url, queue)), batch_size=2)
    assert [(await relay.relay_due()).sent for _ in range(4)] == [2, 2, 1, 0]
    assert [args for _, args in queued(redis_url, queue)] == [[f"d-{i}"] for i in range(5)]


async def test_rows_another_relay_holds_are_skipped_not_sent_twice(
    committed_engine: AsyncEngine, redis_url: str, queue: str
) -> None:
    await enqueue_committed(committed_engine, ("webhooks.deliver", ["held"], 0), ("webhooks.deliver", ["free"], 0))
    relay = Relay(committed_engine, CeleryPublisher(celery_client(redis_url, queue)), batch_size=10)
    async with AsyncSession(committed_engine) as other:  # another relay, in the middle of its batch
        [claimed] = await jobs.OutboxRepository(other).claim_due(1)
        assert claimed.args == ["held"]
        result = await relay.relay_due()
        assert (result.claimed, result.sent) == (1, 1)
        assert queued(redis_url, queue) == [("webhooks.deliver", ["free"])]
        await other.rollback()  # that relay crashed before its commit: the row is still there for the next one
    assert (await relay.relay_due()).sent == 1
    assert queued(redis_url, queue) == [("webhooks.deliver", ["free"]), ("webhooks.deliver", ["held"])]


async def test_a_refused_send_keeps_every_row_and_counts_an_attempt(committed_engine: AsyncEngine) -> None:
    await enqueue_committed(committed_engine, ("webhooks.deliver", ["a"], 0), ("notifications.deliver", ["b"], 0))
    nobody = celery_client(f"redis://127.0.0.1:{free_port()}/0", "nowhere")  # nothing listens there
    relay = Relay(committed_engine, CeleryPublisher(nobody), batch_size=10)
    result = await relay.relay_due()
    assert (result.claimed, result.sent) == (2, 0) and result.error is not None
    assert await outbox_rows(committed_engine) == [("webhooks.deliver", ["a"], 1), ("notifications.deliver", ["b"], 1)]
    await relay.relay_due()
    assert [attempts for *_, attempts in await outbox_rows(committed_engine)] == [2, 2]


async def test_the_relay_wakes_on_notify_and_at_the_next_due_time_not_at_its_poll_interval(
    committed_engine: AsyncEngine, listen_engine: AsyncEngine, redis_url: str, queue: str
) -> None:
    # A 60-second poll: anything sent sooner was woken by NOTIFY or by the next due time.
    relay = Relay(
        committed_engine,
        CeleryPublisher(celery_client(redis_url, queue)),
        poll_seconds=60,
        listen_engine=listen_engine,
    )
    runner = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # listening
        started = time.monotonic()
        await enqueue_committed(committed_engine, ("webhooks.deliver", ["now"], 0))
        while not queued(redis_url, queue) and time.monotonic() - started < 10:
            await asyncio.sleep(0.02)
        assert queued(redis_url, queue) == [("webhooks.deliver", ["now"])]
        assert time.monotonic() - started < 2

        started = time.monotonic()
        await enqueue_committed(committed_engine, ("bookings.expire_one", ["in-2-s"], 2))
        while len(queued(redis_url, queue)) < 2 and time.monotonic() - started < 15:
            await asyncio.sleep(0.02)
        waited = time.monotonic() - started
        assert queued(redis_url, queue)[-1] == ("bookings.expire_one", ["in-2-s"])
        assert 1.8 <= waited < 4, waited

        # A rolled-back job never reaches the queue.
        async with AsyncSession(committed_engine) as session:
            await jobs.enqueue(session, "webhooks.deliver", "rolled-back")
            await session.rollback()
        await asyncio.sleep(1)
        assert len(queued(redis_url, queue)) == 2
    finally:
        relay.stop()
        await asyncio.wait_for(runner, timeout=10)
    assert await outbox_rows(committed_engine) == []


def test_backoff_doubles_up_to_thirty_seconds() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 7, 50)] == [0.5, 1.0, 2.0, 4.0, 30.0, 30.0]


@pytest.mark.worker
async def test_the_relay_process_survives_a_broker_outage_without_losing_a_row(
    committed_engine: AsyncEngine, committed_db_url: str, queue: str
) -> None:
    broker = RedisServer().start()  # a redis-server of this test's own, which it stops and starts again
    try:
        with running(processes.relay(committed_db_url, broker.url, queue, outbox_poll_seconds=0.5)) as relay:
            await enqueue_committed(committed_engine, ("webhooks.deliver", ["before"], 0))
            await asyncio.to_thread(
                wait_until, lambda: queued(broker.url, queue), within=20, what="the first send", procs=(relay,)
            )
            assert queued(broker.url, queue) == [("webhooks.deliver", ["before"])]

            broker.stop()
            await enqueue_committed(committed_engine, *[("webhooks.deliver", [f"during-{i}"], 0) for i in range(5)])

            async def tried_twice() -> bool:
                rows = await outbox_rows(committed_engine)
                return len(rows) == 5 and all(attempts >= 2 for *_, attempts in rows)

            for _ in range(100):
                if await tried_twice():
                    break
                await asyncio.sleep(0.2)
            assert await tried_twice(), (await outbox_rows(committed_engine), relay.output()[-3000:])
            assert relay.alive()

            broker.start()  # the same address, empty: whatever arrives now was kept in PostgreSQL
            await asyncio.to_thread(
                wait_until, lambda: len(queued(broker.url, queue)) >= 5, within=60, what="the resend", procs=(relay,)
            )
            assert await outbox_rows(committed_engine) == []
            assert queued(broker.url, queue) == [("webhooks.deliver", [f"during-{i}"]) for i in range(5)]
            assert relay.alive()
            assert "the broker refused a send" in relay.output() and "the broker is back" in relay.output()
    finally:
        broker.stop()


def _metric(text: str, line_start: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


async def test_metrics_report_the_outbox_depth_and_how_long_the_oldest_due_job_has_waited(
    committed_engine: AsyncEngine,
) -> None:
    await enqueue_committed(
        committed_engine,
        ("webhooks.deliver", ["late"], 0),
        ("webhooks.deliver", ["due"], 0),
        ("bookings.expire_one", ["later"], 3600),
    )
    async with committed_engine.begin() as conn:
        await conn.execute(sa.text("UPDATE outbox SET due_at = now() - interval '90 seconds' WHERE args->>0 = 'late'"))
    assert await observe(committed_engine)
    text = generate_latest().decode()
    assert _metric(text, 'marketplace_outbox_jobs{state="due"}') == 2
    assert _metric(text, 'marketplace_outbox_jobs{state="scheduled"}') == 1
    assert 89 <= _metric(text, "marketplace_outbox_oldest_due_seconds") < 100


async def test_the_outbox_gauges_never_fail_a_scrape(client: AsyncClient) -> None:
    unreachable = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none", poolclass=NullPool)
    try:
        assert await observe(unreachable, within_seconds=2) is False
    finally:
        await unreachable.dispose()
    r = await client.get("/metrics")
    assert r.status_code == 200 and "marketplace_outbox_jobs" in r.text


@pytest.mark.worker
async def test_the_relay_process_reconnects_when_the_database_drops_its_connections(
    committed_engine: AsyncEngine, committed_db_url: str, redis_url: str, queue: str
) -> None:
    """As in a PostgreSQL restart: every connection of the relay (the listening one too) is terminated."""
    fresh = create_async_engine(committed_db_url, poolclass=NullPool)  # the test's own, untouched by the kill
    try:
        with running(processes.relay(committed_db_url, redis_url, queue, outbox_poll_seconds=0.5)) as relay:
            await enqueue_committed(fresh, ("webhooks.deliver", ["before"], 0))
            await asyncio.to_thread(
                wait_until, lambda: queued(redis_url, queue), within=20, what="the first send", procs=(relay,)
            )
            await committed_engine.dispose()
            async with fresh.connect() as conn:
                killed = (
                    await conn.execute(
                        sa.text(
                            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                                WHERE datname = current_database() AND pid <> pg_backend_pid()"""
                        )
                    )
                ).scalar_one()
            assert killed >= 2  # the relay's listening and working connections
            await enqueue_committed(fresh, ("webhooks.deliver", ["after"], 0))
            after = ("webhooks.deliver", ["after"])
            await asyncio.to_thread(
                wait_until, lambda: after in queued(redis_url, queue), within=30, what="the send after", procs=(relay,)
            )
            # At least once: the kill may land between the first send and the DELETE of its row, which then
            # rolls back, so "before" may be sent again; nothing else is, and nothing is lost.
            sent = queued(redis_url, queue)
            assert {(task, tuple(args)) for task, args in sent} == {
                ("webhooks.deliver", ("before",)),
                ("webhooks.deliver", ("after",)),
            }
            assert sent[-1] == after and sent.count(after) == 1
            assert relay.alive()
    finally:
        await fresh.dispose()
