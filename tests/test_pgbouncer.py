"""The API behind PgBouncer in transaction pooling mode (issue 19, item 2).

A freshly migrated database (migrated directly, not through the bouncer), Debian's ``pgbouncer`` in front of
it with 3 server connections, and a live uvicorn server whose pool of 30 client connections reaches the
database only through the bouncer: consecutive transactions of one client connection land on different
server connections. With ``database_pgbouncer`` on, the whole booking flow (register supplier and buyer,
list, publish, book, accept the invoice terms, accept, start, complete) runs for several buyers at once
without an error. The controls show the same set-up without the setting fails with asyncpg's
prepared-statement errors, so the first test would catch a regression.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.db import create_engine
from marketplace.core.jobs import enqueue
from tests import processes
from tests.bookings.helpers import slot
from tests.bookings.live_server import (
    LiveServer,
    admin_headers,
    http_client,
    live_settings,
    login,
    published,
    register,
    scalar,
    verified_supplier,
)
from tests.conftest import _admin, create_migrated_database
from tests.factories import machine_payload
from tests.pgbouncer_support import PgBouncer, pgbouncer_executable

SERVER_CONNECTIONS = 3
BUYERS = 6


@pytest.fixture(scope="module")
def bouncer(server_url: str) -> Iterator[PgBouncer]:
    exe = pgbouncer_executable()
    with PgBouncer(exe, server_url, pool_size=SERVER_CONNECTIONS) as running:
        yield running


@pytest.fixture
async def direct_url(server_url: str) -> AsyncIterator[str]:
    """A database of the test's own, migrated directly (migrations bypass PgBouncer), dropped afterwards."""
    name = f"mk_pgb_{uuid.uuid4().hex[:10]}"
    url = await create_migrated_database(server_url, name)
    try:
        yield url
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _settings(*, pgbouncer: bool) -> Any:
    return live_settings(database_pgbouncer=pgbouncer, database_pool_size=20, database_max_overflow=10)


async def _post(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any = None) -> Any:
    response = await client.post(url, headers=headers, json=body)
    assert response.status_code in (200, 201), f"POST {url}: {response.status_code} {response.text}"
    return response.json()


async def _buyer_flow(
    client: httpx.AsyncClient, direct_url: str, supplier: dict[str, str], asset_id: str, hours: float
) -> str:
    """A new buyer books one slot and the booking goes all the way to completed; returns its status."""
    reg = await register(client, ("buyer",), database_url=direct_url)
    buyer = await login(client, reg["email"])
    start, end = slot(hours, minutes=60)
    booking = await _post(
        client,
        "/api/v1/bookings",
        {**buyer, "Idempotency-Key": uuid.uuid4().hex},
        {"asset_id": asset_id, "start": start.isoformat(), "end": end.isoformat()},
    )
    url = f"/api/v1/bookings/{booking['id']}"
    await _post(client, f"{url}/payment/accept-terms", buyer)
    await _post(client, f"{url}/accept", supplier)
    await _post(client, f"{url}/start", supplier)
    await _post(client, f"{url}/complete", supplier, {"reason": "done"})
    seen = await client.get(url, headers=buyer)
    assert seen.status_code == 200, seen.text
    return str(seen.json()["status"])


async def test_booking_flow_through_pgbouncer_transaction_pooling(
    bouncer: PgBouncer, direct_url: str, redis_url: str
) -> None:
    via_bouncer = bouncer.url_for(direct_url)
    with LiveServer(via_bouncer, redis_url, _settings(pgbouncer=True)) as server:
        async with http_client(server) as client:
            admin = await admin_headers(client, direct_url)
            _reg, supplier, site = await verified_supplier(client, direct_url)
            machine = await published(
                client, supplier, admin, machine_payload(site["id"], slot_minutes=30, min_booking_minutes=60)
            )
            statuses = await asyncio.gather(
                *(_buyer_flow(client, direct_url, supplier, machine["id"], 1 + 2 * i) for i in range(BUYERS))
            )
            # Many concurrent reads on top: more client connections than server connections at once.
            reads = await asyncio.gather(*(client.get("/api/v1/bookings", headers=supplier) for _ in range(40)))
            # The control's waves of searches, which fail without the setting.
            searches = [
                r for _ in range(5) for r in await asyncio.gather(*(client.get("/api/v1/assets") for _ in range(40)))
            ]
    assert statuses == ["completed"] * BUYERS
    assert {r.status_code for r in reads} == {200}
    assert {r.status_code for r in searches} == {200}
    assert all(len(r.json()["items"]) == BUYERS for r in reads)
    assert await scalar(direct_url, "SELECT count(*) FROM bookings WHERE status = 'completed'") == BUYERS
    # The bouncer really multiplexed the app's pool (up to 30 connections) onto its few server connections
    # (+ 1: this query's own direct connection).
    backends = await scalar(
        direct_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
    )
    assert 1 < backends <= SERVER_CONNECTIONS + 1
    assert "prepared statement" not in bouncer.output()


async def test_control_without_the_setting_the_api_fails_through_pgbouncer(
    bouncer: PgBouncer, direct_url: str, redis_url: str
) -> None:
    """The same server without ``database_pgbouncer``: asyncpg names its prepared statements per client
    connection (``__asyncpg_stmt_1__`` ...), and those names collide or vanish on the shared server
    connections, so requests fail."""
    via_bouncer = bouncer.url_for(direct_url)
    statuses: list[int] = []
    with LiveServer(via_bouncer, redis_url, _settings(pgbouncer=False)) as server:
        async with http_client(server) as client:
            # Waves of concurrent searches (public, a few statements each, no password hashing in between):
            # more client connections at once than the bouncer has server connections.
            for _ in range(5):
                wave = await asyncio.gather(*(client.get("/api/v1/assets") for _ in range(40)))
                statuses += [r.status_code for r in wave]
                if any(r.status_code >= 500 for r in wave):
                    assert all(r.json()["error"] == "internal_error" for r in wave if r.status_code >= 500)
                    break
    assert any(s >= 500 for s in statuses), "every request succeeded through PgBouncer without the setting"


@pytest.mark.parametrize("pgbouncer", [True, False])
async def test_engine_options_decide_prepared_statement_errors(
    bouncer: PgBouncer, direct_url: str, pgbouncer: bool
) -> None:
    """The app's engine factory through the bouncer, made deterministic: client connection A runs a statement
    (asyncpg prepares it on the server connection it was lent), B then holds that server connection in an open
    transaction (PgBouncer lends the most recently released one first), and A runs the statement again on
    another server connection. With the setting nothing is prepared by name, so it works; without it, asyncpg's
    named statement does not exist there."""
    engine = create_engine(bouncer.url_for(direct_url), _settings(pgbouncer=pgbouncer))
    stmt = sa.text("SELECT count(*) FROM organisations WHERE name <> :n")
    errors: list[BaseException] = []
    try:
        for _ in range(3):
            async with engine.connect() as a, engine.connect() as b:
                async with a.begin():
                    await a.execute(stmt, {"n": "x"})
                async with b.begin():
                    await b.execute(sa.text("SELECT 1"))  # B now holds A's former server connection
                    try:
                        async with a.begin():
                            await a.execute(stmt, {"n": "y"})
                    except DBAPIError as exc:
                        errors.append(exc)
    finally:
        await engine.dispose()
    if pgbouncer:
        assert errors == []
    else:
        assert errors, "no prepared-statement error without the setting: the control caught nothing"
        assert all("prepared statement" in str(e) for e in errors), errors[:3]


async def _expired_key_and_purge_job(direct_url: str) -> None:
    """One committed transaction: an expired idempotency key and the job that purges it (an outbox row)."""
    engine = create_engine(direct_url, _settings(pgbouncer=False), pooled=False)
    try:
        async with AsyncSession(engine) as session:
            await session.execute(
                sa.text(
                    "INSERT INTO idempotency_keys (id, scope, key, method, path, request_hash, expires_at)"
                    " VALUES (gen_random_uuid(), 'pgb', :key, 'POST', '/x', 'h', now() - interval '1 day')"
                ),
                {"key": uuid.uuid4().hex},
            )
            await enqueue(session, "marketplace.purge_idempotency_keys")
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.worker
async def test_worker_through_pgbouncer_and_relay_bypassing_it(
    bouncer: PgBouncer, direct_url: str, redis_url: str
) -> None:
    """The deployment behind PgBouncer: the relay (``database_pgbouncer`` on) LISTENs on the direct URL and the
    worker's tasks (a new connection each, NullPool) go through the bouncer with the setting; jobs of
    committed transactions are done one after the other. (The API and engine tests above are the ones whose
    controls show the prepared-statement failure.)"""
    queue = f"test-pgb-{uuid.uuid4().hex[:8]}"
    via_bouncer = bouncer.url_for(direct_url)
    relay = processes.relay(via_bouncer, redis_url, queue, database_pgbouncer=True, database_direct_url=direct_url)
    worker = processes.worker(via_bouncer, redis_url, queue, database_pgbouncer=True)
    try:
        with processes.running(relay), processes.running(worker):
            for n in range(4):
                await _expired_key_and_purge_job(direct_url)

                async def purged() -> bool:
                    return await scalar(direct_url, "SELECT count(*) FROM idempotency_keys") == 0

                deadline = asyncio.get_running_loop().time() + 60
                while not await purged():
                    assert relay.alive() and worker.alive(), f"{relay.output()[-3000:]}\n{worker.output()[-3000:]}"
                    assert asyncio.get_running_loop().time() < deadline, (
                        f"job {n} not done within 60 s\n{relay.output()[-3000:]}\n{worker.output()[-3000:]}"
                    )
                    await asyncio.sleep(0.2)
            assert "prepared statement" not in worker.output()
    finally:
        processes.drop_queue(redis_url, queue)


def test_relay_refuses_to_listen_through_pgbouncer(bouncer: PgBouncer, direct_url: str, redis_url: str) -> None:
    """Behind PgBouncer without a direct URL the relay would hear no NOTIFY: it refuses to start."""
    relay = processes.relay(bouncer.url_for(direct_url), redis_url, "unused", database_pgbouncer=True)
    with processes.running(relay):
        relay.popen.wait(timeout=60)
        assert relay.popen.returncode == 2
        assert "MARKETPLACE_DATABASE_DIRECT_URL" in relay.output()
