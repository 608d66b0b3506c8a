"""Concurrent deliveries of the cascade job (committed PostgreSQL, one session each) invite exactly one
factory: the request's row lock serialises them. The control runs the same concurrent invitations without the
lock and shows the check would catch two factories holding the request at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.quotes import cascade, invitations
from marketplace.requests.repository import RequestRepository
from tests.bookings.live_server import (
    LiveServer,
    admin_headers,
    http_client,
    live_settings,
    login,
    published,
    register,
    sql,
    verified_supplier,
)
from tests.factories import machine_payload
from tests.quotes.test_invitations_helpers import MILL, request_body

DELIVERIES = 4


@pytest.fixture(scope="module")
def server(committed_db_url: str, redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings()) as s:  # jobs stay in the outbox
        yield s


async def _auto_cascade_request(client: httpx.AsyncClient, db_url: str) -> str:
    admin = await admin_headers(client, db_url)
    mill = {k: v for k, v in MILL.items() if k != "weekly"}
    for rate in (10000, 20000):
        _reg, headers, site = await verified_supplier(client, db_url)
        await published(client, headers, admin, machine_payload(site["id"], **{**mill, "hourly_rate": rate}))
    buyer_reg = await register(client, ("buyer",), database_url=db_url)
    buyer = await login(client, buyer_reg["email"])
    resp = await client.post("/api/v1/requests", json=request_body(auto_cascade=True), headers=buyer)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _pending(db_url: str, request_id: str) -> list[Any]:
    return await sql(
        db_url,
        "SELECT supplier_org_id FROM quote_invitations WHERE request_id = :id AND status = 'invited'",
        {"id": request_id},
    )


async def test_concurrent_cascade_deliveries_invite_one_factory(
    server: LiveServer, committed_engine: AsyncEngine, committed_db_url: str
) -> None:
    async with http_client(server) as client:
        rid = await _auto_cascade_request(client, committed_db_url)
    maker = async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)

    async def deliver() -> bool:
        async with maker() as session:
            made = await cascade.advance(session, uuid.UUID(rid))
            await session.commit()
            return made is not None

    made = await asyncio.gather(*(deliver() for _ in range(DELIVERIES)))
    assert sorted(made) == [False] * (DELIVERIES - 1) + [True]
    assert len(await _pending(committed_db_url, rid)) == 1


async def test_control_without_the_row_lock_two_factories_would_hold_the_request(
    server: LiveServer, committed_engine: AsyncEngine, committed_db_url: str
) -> None:
    async with http_client(server) as client:
        rid = await _auto_cascade_request(client, committed_db_url)
    maker = async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)
    ready = asyncio.Barrier(2)

    async def unlocked_step(session: AsyncSession) -> None:
        # advance() minus the row lock: both deliveries see nothing pending; the second one's insert for the
        # top-ranked organisation waits for the first, finds it taken and moves on to the next one.
        request = await RequestRepository(session).get(uuid.UUID(rid))
        assert request is not None
        items = await invitations.ranked(session, request, now=request.created_at)
        asked = await cascade.InvitationRepository(session).org_ids(request.id)
        await ready.wait()
        for match in items:
            if match.org_id in asked:
                continue
            if await invitations.create_invitation(session, request=request, match=match, rank=None, via="cascade"):
                return

    async def deliver() -> None:
        async with maker() as session:
            await unlocked_step(session)
            await session.commit()

    await asyncio.gather(deliver(), deliver())
    assert len(await _pending(committed_db_url, rid)) == 2  # the check of the real test would fail
