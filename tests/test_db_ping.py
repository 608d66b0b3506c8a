"""The pool tests a connection before use only after it sat idle (marketplace.core.db.ping_when_idle).

A connection whose server process died while it sat in the pool must not fail the next request once it has
been idle for ``database_ping_idle_seconds``; one used moments ago is handed out without a round trip (the
control: the same dead connection, not yet idle long enough, fails its statement and invalidates the pool).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.core.db import create_engine
from marketplace.core.settings import Settings

IDLE = 0.3


def _engine(url: str, idle_seconds: float) -> AsyncEngine:
    settings = Settings(database_ping_idle_seconds=idle_seconds, database_pool_size=1, database_max_overflow=0)
    return create_engine(url, settings)


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def _kill(engine: AsyncEngine, pid: int) -> None:
    """End the pooled connection's server process from another connection, as a restart or a failover
    would."""
    async with engine.connect() as other:
        await other.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


async def test_a_connection_idle_past_the_setting_is_pinged_and_replaced_when_dead(committed_db_url: str) -> None:
    engine = _engine(committed_db_url, IDLE)
    killer = _engine(committed_db_url, 0)
    try:
        dead = await _backend_pid(engine)
        await _kill(killer, dead)
        await asyncio.sleep(IDLE + 0.2)
        fresh = await _backend_pid(engine)  # no error: the ping found the dead connection first
        assert fresh != dead
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_the_control_a_connection_used_moments_ago_is_handed_out_without_a_ping(committed_db_url: str) -> None:
    engine = _engine(committed_db_url, 60)
    killer = _engine(committed_db_url, 0)
    try:
        dead = await _backend_pid(engine)
        await _kill(killer, dead)
        with pytest.raises(sa.exc.DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated  # the request answers 503 database_unavailable
        assert await _backend_pid(engine) != dead  # and the pool has replaced the connection for the next one
    finally:
        await engine.dispose()
        await killer.dispose()
