"""A worker killed with SIGKILL while it holds the messages of pending hold expiries: every hold still expires,
exactly once, within a minute of its deadline, because the booking sweep acts on the due times in PostgreSQL.

Real processes throughout: a live API server, the outbox relay, Celery beat (the sweep every 2 seconds) and
workers, on real Redis and committed PostgreSQL. The deadlines are moved to a few seconds from now in the
database instead of waiting 15 minutes. To catch the worker with the messages in hand, the test locks the
booking rows: each ``bookings.expire_one`` then waits for the lock inside the task, its message delivered and
unacknowledged, when the worker is killed.

The control runs the same scenario without the sweep: nothing expires, and the killed worker's messages sit in
Redis until its visibility timeout (10 minutes; one hour before this change), far beyond a minute.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.core.settings import Settings
from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, build_market, http_client, live_settings, scalar, sql
from tests.processes import Proc, running

pytestmark = pytest.mark.worker

HOLDS = 3
SWEEP_SECONDS = 2
DEADLINE_IN = 4  # seconds from the moment the test moves the deadlines


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-killed-{uuid.uuid4().hex[:8]}"
    yield name
    processes.drop_queue(redis_url, name)
    _forget_unacked(redis_url, name)


@dataclass
class Unacked:
    tag: str
    task: str
    args: list[Any]
    since: float  # when the worker received it (the visibility clock starts here)


def unacked(redis_url: str, queue: str) -> list[Unacked]:
    """Messages of ``queue`` that a worker received and has not acknowledged (kombu's Redis bookkeeping)."""
    import base64

    client = redis.Redis.from_url(redis_url)
    try:
        # A client without decode_responses: names and values come back as bytes, scores as floats.
        entries = cast(dict[bytes, bytes], client.hgetall("unacked"))
        scores = dict(cast(list[tuple[bytes, float]], client.zrange("unacked_index", 0, -1, withscores=True)))
    finally:
        client.close()
    out = []
    for tag, raw in entries.items():
        message, _exchange, routing_key = json.loads(raw)
        if routing_key != queue:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        out.append(Unacked(tag.decode(), message["headers"]["task"], args, float(scores.get(tag, 0))))
    return out


def _forget_unacked(redis_url: str, queue: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for item in unacked(redis_url, queue):
            client.hdel("unacked", item.tag)
            client.zrem("unacked_index", item.tag)
    finally:
        client.close()


def redeliver_now(redis_url: str, messages: list[Unacked]) -> None:
    """What Redis does once the visibility timeout has passed: put the killed worker's messages back on their
    queue (only these: other test runs may share the server)."""
    from kombu import Connection

    from marketplace.core.celery import kombu_url

    with Connection(kombu_url(redis_url)) as conn:
        channel: Any = conn.default_channel
        for message in messages:
            channel.qos.restore_by_tag(message.tag)


async def lock_waiters(database_url: str) -> int:
    return int(
        await scalar(
            database_url,
            """SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%FROM bookings%'""",
        )
    )


async def expiries(database_url: str, ids: list[str]) -> dict[str, list[datetime]]:
    rows = await sql(
        database_url,
        """SELECT b.id::text, e.created_at FROM bookings b
             LEFT JOIN booking_events e ON e.booking_id = b.id AND e.action = 'expire'
            WHERE b.id::text = ANY(:ids)""",
        {"ids": ids},
    )
    out: dict[str, list[datetime]] = {i: [] for i in ids}
    for booking_id, at in rows:
        if at is not None:
            out[booking_id].append(at)
    return out


@dataclass
class Scenario:
    ids: list[str]
    deadline: dict[str, datetime]
    killed_with: list[Unacked]
    worker: Proc  # the new worker, not started yet by the caller's ``running``


async def kill_the_worker_holding_the_expiries(
    live: LiveServer, engine: AsyncEngine, database_url: str, redis_url: str, queue: str
) -> Scenario:
    """Holds whose expiry messages a worker is running when it gets SIGKILL; a new worker is started."""
    first = processes.worker(database_url, redis_url, queue, pool="threads", concurrency=HOLDS)
    try:
        async with http_client(live) as client:
            market = await build_market(client, database_url)
            ids = []
            for i in range(HOLDS):
                start, end = slot(30 + 4 * i)
                r = await client.post(
                    "/api/v1/bookings",
                    headers={**market.buyer, "Idempotency-Key": uuid.uuid4().hex},
                    json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
                )
                assert r.status_code == 201 and r.json()["status"] == "held", r.text
                ids.append(r.json()["id"])
        # The deadlines come closer: the hold columns and their outbox timers (instead of waiting 15 minutes).
        moved = await sql(
            database_url,
            f"""UPDATE bookings SET hold_expires_at = now() + interval '{DEADLINE_IN} seconds'
                 WHERE id::text = ANY(:ids) RETURNING id::text, hold_expires_at""",
            {"ids": ids},
        )
        deadline = {booking_id: at for booking_id, at in moved}
        timers = await sql(
            database_url,
            f"""UPDATE outbox SET due_at = now() + interval '{DEADLINE_IN + 1} seconds'
                 WHERE task = 'bookings.expire_one' AND args->>0 = ANY(:ids) RETURNING id""",
            {"ids": ids},
        )
        assert len(timers) == HOLDS
        async with engine.connect() as locker:
            # The booking rows are locked: each expiry task waits inside the worker, its message unacknowledged.
            transaction = await locker.begin()
            await locker.execute(sa.text("SELECT id FROM bookings WHERE id::text = ANY(:ids) FOR UPDATE"), {"ids": ids})
            deadline_at = time.monotonic() + 60
            while time.monotonic() < deadline_at:
                held = [m for m in unacked(redis_url, queue) if m.task == "bookings.expire_one"]
                if len(held) == HOLDS and await lock_waiters(database_url) >= HOLDS:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"the worker never held all expiries\n{first.output()[-3000:]}")
            assert sorted(m.args[0] for m in held) == sorted(ids)
            first.kill9()
            await transaction.rollback()
    finally:
        first.cleanup()
    return Scenario(ids, deadline, held, processes.worker(database_url, redis_url, queue))


@pytest.fixture
def live(committed_db_url: str, committed_engine: AsyncEngine, redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings()) as server:
        yield server


async def test_each_hold_expires_exactly_once_within_a_minute_after_the_worker_holding_its_timer_was_killed(
    live: LiveServer, committed_engine: AsyncEngine, committed_db_url: str, redis_url: str, queue: str, tmp_path: Path
) -> None:
    with (
        running(processes.relay(committed_db_url, redis_url, queue)) as relay,
        running(
            processes.beat(committed_db_url, redis_url, queue, tmp_path, booking_sweep_seconds=SWEEP_SECONDS)
        ) as beat,
    ):
        s = await kill_the_worker_holding_the_expiries(live, committed_engine, committed_db_url, redis_url, queue)
        with running(s.worker) as worker:
            started = time.monotonic()
            while time.monotonic() - started < 60:
                found = await expiries(committed_db_url, s.ids)
                if all(found.values()):
                    break
                await asyncio.sleep(0.25)
            else:
                logs = "\n".join(p.output()[-2500:] for p in (worker, beat, relay))
                raise AssertionError(f"holds not expired: {found}\n{logs}")
            late = {i: (found[i][0] - s.deadline[i]).total_seconds() for i in s.ids}
            assert all(0 <= seconds < 60 for seconds in late.values()), late
            # The killed worker's messages are still in Redis, unacknowledged ...
            killed = {m.tag for m in s.killed_with}
            assert killed <= {m.tag for m in unacked(redis_url, queue)}
            # ... until the visibility timeout hands them out again: each runs, and acts no more.
            redeliver_now(redis_url, s.killed_with)

            def expiries_pending() -> bool:
                in_queue = [task for task, _ in processes.queued(redis_url, queue) if task == "bookings.expire_one"]
                return bool(in_queue) or any(m.tag in killed for m in unacked(redis_url, queue))

            await asyncio.to_thread(
                processes.wait_until,
                lambda: not expiries_pending(),
                within=30,
                what="the redelivered expiries to run",
                procs=(worker,),
            )
            await asyncio.sleep(1)
            found = await expiries(committed_db_url, s.ids)
            assert {i: len(at) for i, at in found.items()} == {i: 1 for i in s.ids}, found
            statuses = await sql(
                committed_db_url, "SELECT status FROM bookings WHERE id::text = ANY(:ids)", {"ids": s.ids}
            )
            assert statuses == [("expired",)] * HOLDS


async def test_control_without_the_sweep_the_killed_workers_expiries_wait_for_the_visibility_timeout(
    live: LiveServer, committed_engine: AsyncEngine, committed_db_url: str, redis_url: str, queue: str
) -> None:
    with running(processes.relay(committed_db_url, redis_url, queue)):
        s = await kill_the_worker_holding_the_expiries(live, committed_engine, committed_db_url, redis_url, queue)
        with running(s.worker):
            past = max(s.deadline.values())
            await asyncio.sleep(max(0.0, 15 - (datetime.now(past.tzinfo) - past).total_seconds()))
            found = await expiries(committed_db_url, s.ids)
            assert found == {i: [] for i in s.ids}, "a hold expired without the sweep: the control shows nothing"
            # Redis gives the messages out again only after the visibility timeout, long after a minute.
            visibility = Settings().celery_visibility_timeout_seconds
            again_in = min(m.since for m in unacked(redis_url, queue)) + visibility - time.time()
            assert again_in > 60, again_in
