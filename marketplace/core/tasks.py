"""Background jobs of the app shell. Each task opens its own unit of work (commit on success)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.core.celery import celery
from marketplace.core.db import create_engine, run_in_new_session
from marketplace.core.settings import Settings, get_settings

T = TypeVar("T")


def run_in_unit_of_work(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``fn`` in a fresh session and commit (the jobs it enqueues are outbox rows of that transaction)."""

    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("MARKETPLACE_DATABASE_URL is not set for this worker")
    return run_in_new_session(settings.database_url, fn)


def run_with_sessionmaker(fn: Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[T]]) -> T:
    """For a job of several units of work (each committed on its own): ``fn`` gets a session factory on a
    fresh, unpooled engine (one event loop per task run) and the settings."""
    settings = get_settings()
    if not settings.database_url:
        raise RuntimeError("MARKETPLACE_DATABASE_URL is not set for this worker")
    url = settings.database_url

    async def runner() -> T:
        engine = create_engine(url, settings, pooled=False)
        try:
            return await fn(async_sessionmaker(engine, expire_on_commit=False, autoflush=False), settings)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


@celery.task(name="marketplace.health.roundtrip")
def roundtrip(token: str) -> dict[str, Any]:
    """Proves a worker is connected to the broker and the database: echoes the token with the name of
    the database it reached."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        db = (await session.execute(sa.text("SELECT current_database()"))).scalar_one()
        return {"token": token, "database": db}

    return run_in_unit_of_work(work)


@celery.task(name="marketplace.purge_idempotency_keys", acks_late=True)
def purge_idempotency_keys() -> int:
    async def work(session: AsyncSession) -> int:
        result = await session.execute(sa.text("DELETE FROM idempotency_keys WHERE expires_at < now()"))
        return int(result.rowcount)  # type: ignore[attr-defined]

    return run_in_unit_of_work(work)
