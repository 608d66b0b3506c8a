"""Jobs of committed transactions reach a real worker through a real relay process; jobs of a transaction that
failed after writing them never existed: no delivery row, no webhook posted, nothing sent to the queue.

The failure is injected at the booking's last step, the payment gateway's invoice insert, by a trigger on
``invoices`` for one buyer organisation (SQLSTATE 57P01, as when the database goes away mid-request). Before the
outbox, a web form action that rolled back after its service had buffered jobs still sent them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, build_market, http_client, live_settings, login, register, scalar
from tests.bookings.live_server import sql as run_sql
from tests.bookings.test_delivery import Receiver, receiver  # noqa: F401 (the fixture)
from tests.factories import PASSWORD, csrf_token
from tests.processes import Proc, running

pytestmark = pytest.mark.worker


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-relay-e2e-{uuid.uuid4().hex[:8]}"
    yield name
    processes.drop_queue(redis_url, name)


@pytest.fixture
def relay(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.relay(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture
def worker(committed_db_url: str, redis_url: str, queue: str) -> Iterator[Proc]:
    with running(processes.worker(committed_db_url, redis_url, queue)) as proc:
        yield proc


@pytest.fixture
def live(committed_db_url: str, committed_engine: AsyncEngine, redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings()) as server:
        yield server


FAIL_PAYMENT_STEP = """
CREATE OR REPLACE FUNCTION test_payment_step_fails() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.buyer_org_id = '{org}' THEN
        RAISE EXCEPTION 'the payment step failed (test)' USING ERRCODE = 'admin_shutdown';
    END IF;
    RETURN NEW;
END $$
"""


async def _last_job_id(database_url: str) -> int:
    return int(await scalar(database_url, "SELECT last_value FROM outbox_id_seq"))


async def _book_in_the_web(live: LiveServer, email: str, asset_id: str, buyer_org: str, hours: float) -> int:
    """The buyer's booking form, signed in through the login form; returns the response status."""
    start, end = slot(hours)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        token = csrf_token((await browser.get("/login")).text)
        signed_in = await browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 303, signed_in.text
        token = csrf_token((await browser.get(f"/book/{asset_id}")).text)
        form = {
            "csrf_token": token,
            "buyer_org_id": buyer_org,
            "start_utc": start.isoformat(),
            "end_utc": end.isoformat(),
        }
        return (await browser.post(f"/book/{asset_id}", data=form)).status_code


async def test_committed_jobs_reach_the_worker_and_jobs_of_a_failed_transaction_never_exist(
    live: LiveServer,
    relay: Proc,
    worker: Proc,
    committed_db_url: str,
    redis_url: str,
    queue: str,
    receiver: Receiver,  # noqa: F811
) -> None:
    async with http_client(live) as client:
        market = await build_market(client, committed_db_url)
        hook = await client.post(
            f"/api/v1/orgs/{market.supplier_org}/webhooks",
            headers=market.supplier,
            json={"url": receiver.url, "events": ["booking.*"]},
        )
        assert hook.status_code == 201, hook.text
        doomed = await register(client, ("buyer",), database_url=committed_db_url)
        doomed_headers = await login(client, doomed["email"])
        await run_sql(committed_db_url, FAIL_PAYMENT_STEP.format(org=doomed["org"]["id"]))
        await run_sql(
            committed_db_url,
            "CREATE TRIGGER test_payment_step_fails BEFORE INSERT ON invoices "
            "FOR EACH ROW EXECUTE FUNCTION test_payment_step_fails()",
        )
        try:
            # The failing buyer, through the API and through the web form: both transactions fail at the end.
            jobs_before = await _last_job_id(committed_db_url)
            start, end = slot(30)
            failed = await client.post(
                "/api/v1/bookings",
                headers={**doomed_headers, "Idempotency-Key": uuid.uuid4().hex},
                json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
            )
            assert failed.status_code >= 400, failed.text
            web_status = await _book_in_the_web(live, doomed["email"], market.machine["id"], doomed["org"]["id"], 34)
            assert web_status >= 400
            # Not vacuous: both wrote jobs (the identity sequence moved on) that never existed.
            assert await _last_job_id(committed_db_url) >= jobs_before + 4
            assert await scalar(committed_db_url, "SELECT count(*) FROM outbox WHERE id > :n", {"n": jobs_before}) == 0
            # A buyer whose booking commits.
            start, end = slot(38)
            ok = await client.post(
                "/api/v1/bookings",
                headers={**market.buyer, "Idempotency-Key": uuid.uuid4().hex},
                json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
            )
            assert ok.status_code == 201, ok.text
        finally:
            await run_sql(committed_db_url, "DROP TRIGGER IF EXISTS test_payment_step_fails ON invoices")
            await run_sql(committed_db_url, "DROP FUNCTION IF EXISTS test_payment_step_fails()")
    booking_id = ok.json()["id"]

    # The committed booking's webhook goes outbox -> relay -> Celery -> worker -> receiver.
    def posted() -> list[tuple[str, str]]:
        return [(h["x-marketplace-event"], h["x-marketplace-delivery"]) for h, _ in receiver.requests]

    await asyncio.to_thread(processes.wait_until, posted, within=30, what="the webhook", procs=(relay, worker))

    async def due_rows() -> int:
        return int(await scalar(committed_db_url, "SELECT count(*) FROM outbox WHERE due_at <= now()"))

    # Everything due has been relayed and consumed; give a straggler a moment to show up.
    for _ in range(100):
        if await due_rows() == 0 and not processes.queued(redis_url, queue):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)

    assert len(receiver.requests) == 1
    [(event, delivery_id)] = posted()
    assert event == "booking.held"
    deliveries = await run_sql(committed_db_url, "SELECT id, payload->'data'->>'booking_id' FROM webhook_deliveries")
    assert [(str(d), b) for d, b in deliveries] == [(delivery_id, booking_id)]
    bookings = await run_sql(committed_db_url, "SELECT id::text, buyer_org_id::text FROM bookings")
    assert bookings == [(booking_id, market.buyer_org)]
    # Left in the outbox: the committed hold's expiry timer, due in 15 minutes; nothing is due.
    left = await run_sql(committed_db_url, "SELECT task, args FROM outbox")
    assert ("bookings.expire_one", [booking_id]) in left
    assert await due_rows() == 0
    assert processes.queued(redis_url, queue) == []
    assert relay.alive() and worker.alive()
