"""API keys' ``last_used_at`` (issue #12, item 7): recorded at most once a minute and outside the request's
transaction, so parallel requests made with one key never wait for each other on the key's row.

Runs on the committed database: the recording happens on its own connection, which must see the key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from marketplace.core.settings import Settings
from tests.bookings.live_server import wait_for
from tests.conftest import build_app
from tests.factories import signed_up


@pytest.fixture
async def live_client(
    settings: Settings, committed_engine: AsyncEngine, redis: Redis, redis_url: str
) -> AsyncIterator[AsyncClient]:
    """The app on the committed database: every request commits for real."""
    maker = async_sessionmaker(committed_engine, expire_on_commit=False, autoflush=False)
    app = build_app(settings, maker, committed_engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


async def _key(client: AsyncClient) -> tuple[str, uuid.UUID, dict[str, str]]:
    reg, owner = await signed_up(client)
    org_id = reg["org"]["id"]
    made = await client.post(
        f"/api/v1/orgs/{org_id}/api-keys", json={"name": "MES", "scopes": ["orgs:read"]}, headers=owner
    )
    assert made.status_code == 201, made.text
    return org_id, uuid.UUID(made.json()["id"]), {"X-API-Key": made.json()["secret"]}


async def _last_used(engine: AsyncEngine, key_id: uuid.UUID) -> datetime | None:
    async with engine.connect() as conn:
        value: Any = await conn.scalar(sa.text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": key_id})
    return value  # type: ignore[no-any-return]


async def test_parallel_requests_with_one_key_do_not_wait_on_its_row(
    live_client: AsyncClient, committed_engine: AsyncEngine
) -> None:
    org_id, key_id, key = await _key(live_client)
    async with committed_engine.connect() as holder:
        # Another transaction holds the key's row lock (as a request writing last_used_at would until it commits).
        await holder.begin()
        await holder.execute(sa.text("SELECT id FROM api_keys WHERE id = :id FOR UPDATE"), {"id": key_id})
        try:
            # Control: a write of the key's row in a transaction does wait for that lock.
            async with committed_engine.connect() as writer:
                await writer.begin()
                await writer.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
                with pytest.raises(DBAPIError, match="lock timeout"):
                    await writer.execute(
                        sa.text("UPDATE api_keys SET last_used_at = now() WHERE id = :id"), {"id": key_id}
                    )
                await writer.rollback()
            answers = await asyncio.wait_for(
                asyncio.gather(*(live_client.get(f"/api/v1/orgs/{org_id}", headers=key) for _ in range(4))),
                timeout=10,
            )
            assert [a.status_code for a in answers] == [200] * 4
        finally:
            await holder.rollback()
    # Once the lock is gone the use is recorded.
    await live_client.get(f"/api/v1/orgs/{org_id}", headers=key)
    assert await wait_for(lambda: _last_used(committed_engine, key_id), within=10, what="last_used_at recorded")


async def test_last_used_at_moves_at_most_once_a_minute(
    live_client: AsyncClient, committed_engine: AsyncEngine
) -> None:
    org_id, key_id, key = await _key(live_client)
    assert await _last_used(committed_engine, key_id) is None
    assert (await live_client.get(f"/api/v1/orgs/{org_id}", headers=key)).status_code == 200
    first = await wait_for(lambda: _last_used(committed_engine, key_id), within=10, what="first use recorded")
    for _ in range(5):
        assert (await live_client.get(f"/api/v1/orgs/{org_id}", headers=key)).status_code == 200
    await asyncio.sleep(0.5)  # time for any background write to land
    assert await _last_used(committed_engine, key_id) == first

    # Over a minute old: the next request moves it again.
    async with committed_engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = :id"), {"id": key_id}
        )
    stale = await _last_used(committed_engine, key_id)
    assert stale is not None and stale < first
    assert (await live_client.get(f"/api/v1/orgs/{org_id}", headers=key)).status_code == 200

    async def moved() -> datetime | None:
        value = await _last_used(committed_engine, key_id)
        return value if value is not None and value > stale else None

    assert await wait_for(moved, within=10, what="last_used_at moved after a minute") >= first
