"""Database engine and the request-scoped unit of work.

One session per request: the ``get_session`` dependency commits when the endpoint returns normally and
rolls back when it raises. Services and repositories only ``flush``; they never commit. Jobs are outbox rows
(:func:`marketplace.core.jobs.enqueue`) in the same transaction, so they exist exactly when the change does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.core.settings import Settings, get_settings

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the asyncpg driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def driver_options(settings: Settings) -> dict[str, Any]:
    """asyncpg's connection arguments. Behind PgBouncer in transaction pooling mode (``database_pgbouncer``)
    consecutive transactions of one client connection run on different server connections, so a named
    prepared statement made in one may be missing, or taken, in the next (``prepared statement
    "__asyncpg_stmt_1__" does not exist`` / ``already exists``). With ``statement_cache_size=0`` asyncpg
    prepares only the unnamed statement and sends Parse, Bind and Execute together on every execution, which
    is correct on whichever server connection PgBouncer picks; SQLAlchemy's own cache then keeps only the
    statements' column descriptions (no server state), so it stays on."""
    if not settings.database_pgbouncer:
        return {}
    return {"connect_args": {"statement_cache_size": 0}}


def create_engine(url: str, settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """Every engine of the app, its workers and CLI. ``pooled=False`` (NullPool) for a task that runs on an
    event loop of its own: asyncpg connections are loop-bound."""
    if not pooled:
        return create_async_engine(normalise_url(url), poolclass=NullPool, **driver_options(settings))
    engine = create_async_engine(
        normalise_url(url),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        **driver_options(settings),
    )
    ping_when_idle(engine, settings.database_ping_idle_seconds)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Test a pooled connection at checkout only if it sat idle for ``idle_seconds`` or more.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: three round trips (BEGIN, an empty query, ROLLBACK)
    before each request's own statements, a sixth of a booking's (issue #19). A connection returned moments ago
    is alive unless the server went away in those moments. If it did, the requests that meet a dead connection
    before the first failure has renewed the pool fail: SQLAlchemy invalidates the whole pool (every connection
    older than the failure) and each such request answers 503 ``database_unavailable`` with Retry-After, which a
    client retries with its Idempotency-Key. A connection idle for longer (a quiet night, a restart, a firewall's
    idle timeout) is pinged as before, and a failed ping renews the pool before any request sees it. ``0`` pings
    before every checkout."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # a new connection, or one in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as err:  # the pool replaces this connection and every older one, then retries
            raise exc.InvalidatePoolError() from err


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work. Declared with ``scope="function"`` so that the commit happens before
    the response is sent: a failing commit becomes an error response, never a lost write."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def run_in_new_session(url: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Outside a request (CLI commands, Celery tasks): run ``fn`` in a fresh session on its own event loop and
    commit. NullPool: each call has its own event loop, and asyncpg connections are loop-bound."""

    async def runner() -> T:
        engine = create_engine(url, get_settings(), pooled=False)
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session:
                result = await fn(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(runner())


async def ping(engine: AsyncEngine) -> None:
    """One round trip: the readiness probe's proof that the database answers."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
