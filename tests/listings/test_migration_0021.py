"""Revision 0021 moves a flag's "[code] " prefix out of ``reason`` into its own ``reason_code`` column, and its
downgrade writes the code back as the prefix."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from listings.flagging import FLAG_REASONS
from listings.models import ListingFlag
from marketplace.cli import _alembic_config
from tests.conftest import _admin, _with_database

OLD_ROWS = {
    "prohibited": "[prohibited_item] sells ivory",
    "code_only": "[not_a_real_company]",
    "words_only": "looks fake",
    "unknown_code": "[made_up] odd words",
}


@pytest.fixture
async def at_0020(server_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A fresh database migrated to 0020, with flags as the code before 0021 stored them."""
    name = f"mk_mig21_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        await _migrate(url, "0020")
        async with engine.begin() as conn:
            await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # no listing needed (FK)
            for key, reason in OLD_ROWS.items():
                await conn.execute(
                    sa.text(
                        "INSERT INTO listing_flags (id, asset_id, reason, status) VALUES (:id, :asset, :r, 'open')"
                    ),
                    {"id": _flag_id(key), "asset": uuid.uuid4(), "r": reason},
                )
        yield engine, url
    finally:
        await engine.dispose()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _flag_id(key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"flag/{key}")


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    cfg = _alembic_config(url)
    cfg.attributes["configure_logger"] = False
    await asyncio.to_thread(command.downgrade if down else command.upgrade, cfg, revision)


async def _flags(engine: AsyncEngine, columns: str) -> dict[str, tuple[str, ...]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(f"SELECT id, {columns} FROM listing_flags"))).all()
    by_id = {row[0]: tuple(row[1:]) for row in rows}
    return {key: by_id[_flag_id(key)] for key in OLD_ROWS}


async def test_upgrade_moves_a_known_prefix_into_the_code_and_downgrade_puts_it_back(
    at_0020: tuple[AsyncEngine, str],
) -> None:
    engine, url = at_0020
    await _migrate(url, "0021")
    assert await _flags(engine, "reason_code, reason") == {
        "prohibited": ("prohibited_item", "sells ivory"),
        "code_only": ("not_a_real_company", ""),
        "words_only": ("other", "looks fake"),
        "unknown_code": ("other", "[made_up] odd words"),  # not one of ours: the person's words, untouched
    }

    await _migrate(url, "0020", down=True)
    assert await _flags(engine, "reason") == {
        "prohibited": ("[prohibited_item] sells ivory",),
        "code_only": ("[not_a_real_company]",),
        "words_only": ("[other] looks fake",),  # read as "other" with the same words by the code before 0021
        "unknown_code": ("[other] [made_up] odd words",),
    }


async def test_after_the_upgrade_the_database_refuses_an_unknown_reason_code(
    at_0020: tuple[AsyncEngine, str],
) -> None:
    engine, url = at_0020
    await _migrate(url, "0021")
    with pytest.raises(IntegrityError, match="ck_listing_flags_reason_code"):
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE listing_flags SET reason_code = 'made_up'"))


def test_the_model_allows_exactly_the_reasons_a_reporter_can_choose() -> None:
    checks = [str(c.sqltext) for c in ListingFlag.__table__.constraints if isinstance(c, sa.CheckConstraint)]  # type: ignore[attr-defined]
    allowed = next(re.findall(r"'([a-z_]+)'", text) for text in checks if text.startswith("reason_code IN"))
    assert tuple(allowed) == FLAG_REASONS
