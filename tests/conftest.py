"""Test infrastructure: real PostgreSQL and Redis.

* ``MARKETPLACE_TEST_DATABASE_URL`` / ``MARKETPLACE_TEST_REDIS_URL`` point at servers to use (CI sets them
  to the machine's services); without them the embedded PostgreSQL and Redis are started under
  ``.data/test``.
* A fresh database per test run is built by running the Alembic migrations.
* Each test runs inside one connection-level transaction that is rolled back (``db`` / ``client``).
  Tests that need real commits seen by other connections (a Celery worker, races) use
  ``committed_db_url``, a separate migrated database that is emptied after each such test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from marketplace.core import embedded
from marketplace.core.db import normalise_url
from marketplace.core.ratelimit import RateLimiter, login_limiter
from marketplace.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]


def _server_url() -> str:
    url = os.environ.get("MARKETPLACE_TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    return embedded.start_postgres(ROOT / ".data" / "test", database="postgres")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        for stmt in statements:
            await conn.execute(sa.text(stmt))
    await engine.dispose()


async def create_migrated_database(server_url: str, name: str) -> str:
    from marketplace.cli import _alembic_config

    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    from alembic import command

    cfg = _alembic_config(url)
    cfg.attributes["configure_logger"] = False
    # env.py runs asyncio.run(); do it in a worker thread because a loop is already running here.
    import asyncio

    await asyncio.to_thread(command.upgrade, cfg, "head")
    return url


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    name = f"mk_test_{RUN_ID}"
    url = await create_migrated_database(server_url, name)
    yield url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("MARKETPLACE_TEST_REDIS_URL")
    if url:
        return url
    return embedded.start_redis(ROOT / ".data" / "test")


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            yield conn
        finally:
            await trans.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Commits inside the app become savepoint releases; the outer transaction is rolled back.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        jwt_secret="test-secret-" + "x" * 32,
        auth_rate_limit=10_000,  # many tests sign in from one address; rate-limit tests tighten it
        celery_queue=f"test-{RUN_ID}",
        webhook_allow_private=True,  # tests deliver webhooks to a receiver on 127.0.0.1
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def build_app(  # type: ignore[no-untyped-def]
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
):
    from marketplace import celery_app
    from marketplace.app import create_app

    # Jobs enqueued by requests go to this run's own queue on the test Redis (no worker consumes it
    # unless a test starts one).
    celery_app.configure(redis_url, settings)
    app = create_app(settings, database_url="unused", redis_url="unused")
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.redis = redis
    # A namespace per test keeps rate-limit counters from leaking between tests.
    app.state.auth_rate_limiter = RateLimiter(
        redis,
        limit=settings.auth_rate_limit,
        window_seconds=settings.auth_rate_window_seconds,
        namespace=f"rl-test-{uuid.uuid4().hex}",
    )
    app.state.login_limiter = login_limiter(redis, settings, namespace=f"login-test-{uuid.uuid4().hex}")
    return app


@pytest.fixture
def app(  # type: ignore[no-untyped-def]
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
):
    return build_app(settings, sessionmaker, engine, redis, redis_url)


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def committed_db_url(server_url: str) -> AsyncIterator[str]:
    name = f"mk_test_{RUN_ID}_committed"
    url = await create_migrated_database(server_url, name)
    yield url
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def committed_engine(committed_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database whose commits are real. Tables are emptied afterwards."""
    eng = create_async_engine(committed_db_url, pool_size=20, max_overflow=20)
    yield eng
    async with eng.begin() as conn:
        tables = (
            (
                await conn.execute(
                    sa.text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if tables:
            await conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    await eng.dispose()


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_services() -> Iterator[None]:
    yield
    embedded.stop_all()
