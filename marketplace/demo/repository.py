"""SQL of the demo room: the COPY loader of the synthetic market and the demo data's emptiness check.

The loader runs on the raw asyncpg connection (``copy_records_to_table``) of the caller's SQLAlchemy
connection, so the COPYs join the caller's transaction; the caller commits.
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from marketplace.demo import rows as r
from marketplace.demo.rows import GeneratedMarket
from marketplace.orgs.models import Organisation


async def count_organisations(session: AsyncSession) -> int:
    return int((await session.execute(sa.select(sa.func.count()).select_from(Organisation))).scalar_one())


async def asyncpg_connection(conn: AsyncConnection | AsyncSession) -> tuple[AsyncConnection, Any]:
    """The SQLAlchemy connection behind ``conn`` and its raw asyncpg connection (for COPY)."""
    sa_conn = await conn.connection() if isinstance(conn, AsyncSession) else conn
    raw = await sa_conn.get_raw_connection()
    return sa_conn, raw.driver_connection


async def first_user_in_domain(sa_conn: AsyncConnection, domain: str) -> str | None:
    """Any user e-mail in ``domain``. Runs through SQLAlchemy, which also opens the transaction the COPYs join."""
    return (
        await sa_conn.execute(
            sa.text("SELECT email FROM users WHERE lower(email) LIKE :pattern LIMIT 1"),
            {"pattern": f"%@{domain}"},
        )
    ).scalar_one_or_none()


async def copy_market(apg: Any, market: GeneratedMarket) -> None:
    """COPY every table of ``market``, parents first."""
    for table, rows, columns in (
        ("organisations", market.organisations, r.ORG_COLUMNS),
        ("users", market.users, r.USER_COLUMNS),
        ("memberships", market.memberships, r.MEMBERSHIP_COLUMNS),
        ("sites", market.sites, r.SITE_COLUMNS),
        ("certificates", market.certificates, r.CERTIFICATE_COLUMNS),
        ("assets", market.assets, r.ASSET_COLUMNS),
        ("asset_status_events", market.status_events, r.STATUS_EVENT_COLUMNS),
    ):
        if rows:
            await apg.copy_records_to_table(table, records=rows, columns=list(columns))


async def seed_requests(apg: Any, market: GeneratedMarket, *, n: int, rng: random.Random) -> int:
    """HOOK for the requests issue: generate and COPY ``n`` buyer requests for ``market``.

    Requests do not exist yet, so this is a no-op that seeds nothing and returns 0. When the requests table
    lands, generate rows from ``rng`` (seeded from the market seed, so output stays deterministic) using the
    buyers in ``market.organisations`` and process codes present in ``market.assets``, then
    ``await apg.copy_records_to_table("requests", records=rows, columns=REQUEST_COLUMNS)``."""
    return 0


async def analyze_seeded_tables(sa_conn: AsyncConnection) -> None:
    """Fresh statistics so search plans use the new indexes right away."""
    await sa_conn.execute(
        sa.text("ANALYZE organisations, users, sites, certificates, assets, matchable_assets, matchable_processes")
    )
