"""Booking timers run by a real Celery worker process on real Redis and committed PostgreSQL: a live uvicorn
server writes jobs into the outbox in its transactions, and a real relay process sends them to the worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, Market, build_market, http_client, live_settings, sql, wait_for
from tests.processes import Proc, run_task, running, task_client

pytestmark = pytest.mark.worker

HOLD_MINUTES = 0.05  # 3 seconds


@pytest.fixture(scope="module")
def queue() -> str:
    return f"test-timers-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue, hold_minutes=HOLD_MINUTES)) as proc:
        yield proc


@pytest.fixture(scope="module")
def relay(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    """The outbox relay: sends the jobs the server's transactions commit to the worker's queue."""
    with running(processes.relay(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture(scope="module")
def short_hold_server(committed_db_url: str, redis_url: str, queue: str) -> Iterator[LiveServer]:
    """Holds expire after 3 seconds; jobs go to the worker's queue."""
    with LiveServer(committed_db_url, redis_url, live_settings(celery_queue=queue, hold_minutes=HOLD_MINUTES)) as s:
        yield s


@pytest.fixture(scope="module")
def server(committed_db_url: str, redis_url: str, queue: str) -> Iterator[LiveServer]:
    """The default hold time, so a slow machine cannot expire a hold before the test pays it."""
    with LiveServer(committed_db_url, redis_url, live_settings(celery_queue=queue)) as s:
        yield s


@pytest.fixture
def celery_client(redis_url: str, queue: str) -> Celery:
    client: Celery = task_client(redis_url, queue, "timers-test-client")
    return client


async def _book(client: httpx.AsyncClient, market: Market, hours_from_now: float) -> dict[str, Any]:
    start, end = slot(hours_from_now)
    r = await client.post(
        "/api/v1/bookings",
        headers={**market.buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
    )
    assert r.status_code == 201, r.text
    booking: dict[str, Any] = r.json()
    return booking


async def _act(client: httpx.AsyncClient, headers: dict[str, str], booking_id: str, action: str) -> dict[str, Any]:
    # Completing before the booked start needs a reason.
    body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None
    r = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=headers, json=body)
    assert r.status_code == 200, (action, r.text)
    out: dict[str, Any] = r.json()
    return out


async def _status(client: httpx.AsyncClient, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/bookings/{booking_id}", headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_worker_expires_an_unpaid_hold_at_its_deadline_and_frees_the_slot(
    worker: Proc,
    relay: Proc,
    short_hold_server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
) -> None:
    async with http_client(short_hold_server) as client:
        market = await build_market(client, committed_db_url)
        start, end = slot(30)
        body = {"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()}
        first = await client.post("/api/v1/bookings", headers={**market.buyer, "Idempotency-Key": "t1"}, json=body)
        assert first.status_code == 201 and first.json()["status"] == "held", first.text
        booking_id = first.json()["id"]
        taken = await client.post("/api/v1/bookings", headers={**market.buyer, "Idempotency-Key": "t2"}, json=body)
        assert taken.status_code == 409 and taken.json()["error"] == "slot_unavailable", taken.text

        async def expired() -> dict[str, Any] | None:
            b = await _status(client, market.buyer, booking_id)
            return b if b["status"] == "expired" else None

        booking = await wait_for(expired, within=30, what="the worker's expiry of the hold")
        assert [(e["action"], e["to_status"], e["actor_kind"]) for e in booking["timeline"]] == [
            ("book", "held", "buyer"),
            ("expire", "expired", "system"),
        ]
        # Expired by the worker's timer, not lazily by the next booking: nobody has booked since.
        rows = await sql(committed_db_url, "SELECT status FROM bookings WHERE id = :id", {"id": booking_id})
        assert rows == [("expired",)]
        again = await client.post("/api/v1/bookings", headers={**market.buyer, "Idempotency-Key": "t3"}, json=body)
        assert again.status_code == 201, again.text
        assert again.json()["id"] != booking_id


async def test_sweep_on_the_worker_starts_a_confirmed_booking_whose_start_passed(
    worker: Proc,
    server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
    celery_client: Celery,
) -> None:
    async with http_client(server) as client:
        market = await build_market(client, committed_db_url)
        booking = await _book(client, market, 48)
        await _act(client, market.buyer, booking["id"], "payment/accept-terms")
        assert (await _act(client, market.supplier, booking["id"], "accept"))["status"] == "confirmed"
        # Time passes: move the booking two hours into the past (bookings cannot be made there).
        await sql(
            committed_db_url,
            """UPDATE bookings SET start_at = now() - interval '2 hours', end_at = now() - interval '1 hour',
                      period = tstzrange(now() - interval '2 hours', now() - interval '1 hour', '[)')
                WHERE id = :id""",
            {"id": booking["id"]},
        )
        counts = run_task(celery_client, worker, "bookings.sweep")
        assert counts["started"] == 1, counts
        after = await _status(client, market.supplier, booking["id"])
        assert after["status"] == "in_progress"
        assert after["timeline"][-1]["action"] == "start" and after["timeline"][-1]["actor_kind"] == "system"
        # The sweep is idempotent: a second run finds nothing left to start.
        assert run_task(celery_client, worker, "bookings.sweep")["started"] == 0


async def test_sweep_on_the_worker_settles_a_completed_booking_after_the_dispute_window(
    worker: Proc,
    server: LiveServer,
    committed_engine: AsyncEngine,
    committed_db_url: str,
    celery_client: Celery,
) -> None:
    async with http_client(server) as client:
        market = await build_market(client, committed_db_url)
        inside = await _book(client, market, 3)
        outside = await _book(client, market, 8)
        for b in (inside, outside):
            await _act(client, market.buyer, b["id"], "payment/accept-terms")
            for action in ("accept", "start", "complete"):
                await _act(client, market.supplier, b["id"], action)
        window = timedelta(hours=server.settings.dispute_window_hours)
        now = datetime.now(UTC)
        ages = ((outside, window + timedelta(minutes=5)), (inside, window - timedelta(minutes=5)))
        for b, age in ages:
            await sql(
                committed_db_url,
                "UPDATE bookings SET completed_at = :at WHERE id = :id",
                {"id": b["id"], "at": now - age},
            )
        counts = run_task(celery_client, worker, "bookings.sweep")
        assert counts["settled"] == 1, counts
        settled = await _status(client, market.buyer, outside["id"])
        assert settled["status"] == "settled" and settled["settled_at"]
        assert settled["timeline"][-1]["action"] == "confirm" and settled["timeline"][-1]["actor_kind"] == "system"
        # Still inside its window: the buyer can still dispute it.
        assert (await _status(client, market.buyer, inside["id"]))["status"] == "completed"
