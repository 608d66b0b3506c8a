from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from marketplace.cli import _alembic_config
from marketplace.models import include_object, metadata
from tests.conftest import _admin, _with_database


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
        names = set(rows.scalars())
    await engine.dispose()
    return names


async def test_upgrade_to_head_and_downgrade_to_base_on_a_fresh_database(server_url: str) -> None:
    name = f"mk_mig_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    cfg = _alembic_config(url)
    cfg.attributes["configure_logger"] = False
    try:
        await asyncio.to_thread(command.upgrade, cfg, "head")
        assert {"users", "organisations", "memberships", "api_keys", "audit_log"} <= await _tables(url)
        await asyncio.to_thread(command.downgrade, cfg, "base")
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(command.upgrade, cfg, "head")
        assert "users" in await _tables(url)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_models_and_migrations_agree(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync_conn: compare_metadata(
                MigrationContext.configure(sync_conn, opts={"compare_type": True, "include_object": include_object}),
                metadata,
            )
        )
    assert diff == []


async def test_required_extensions_are_installed(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        names = set((await conn.execute(sa.text("SELECT extname FROM pg_extension"))).scalars())
    assert {"btree_gist", "cube", "earthdistance"} <= names
