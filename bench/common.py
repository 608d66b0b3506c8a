"""Helpers every benchmark script shares: which PostgreSQL server to use, one-off admin statements, and
the machine description recorded next to the figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.core.db import normalise_url

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    """MARKETPLACE_TEST_DATABASE_URL's server, or the embedded PostgreSQL under .data/bench."""
    url = os.environ.get("MARKETPLACE_TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    from marketplace.core import embedded

    return embedded.start_postgres(ROOT / ".data" / "bench", database="postgres")


async def admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(statement))
    await engine.dispose()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
