"""Helpers every benchmark script shares: which PostgreSQL server to use, one-off admin statements, and
the machine description recorded next to the figures."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.analytics import service as analytics
from marketplace.core.db import normalise_url

ROOT = Path(__file__).resolve().parent.parent
# The columns the benchmarks COPY booked time into, and the cancellation policy those bookings carry.
BOOKING_COLUMNS = (
    "id", "asset_id", "kind", "supplier_org_id", "buyer_org_id", "status", "start_at", "end_at", "period",
    "currency", "unit_price", "setup_fee", "amount", "commission_rate_bp", "cancellation_policy", "site_timezone",
    "refund_amount", "completed_at", "payment_method", "created_at", "updated_at",
)  # fmt: skip
POLICY = json.dumps({"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50})


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


async def copy_bookings(engine: AsyncEngine, rows: Sequence[Sequence[Any]], *, analyze: str) -> None:
    """COPY ``rows`` (``BOOKING_COLUMNS``) into ``bookings``, then run ``analyze`` (e.g. ``VACUUM ANALYZE``)."""
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        await raw.driver_connection.copy_records_to_table("bookings", records=rows, columns=list(BOOKING_COLUMNS))
    async with engine.connect() as conn:
        await conn.execute(sa.text("COMMIT"))
        await conn.execute(sa.text(analyze))


def write_result(output: Path, benchmark: str, args: argparse.Namespace, figures: Mapping[str, Any]) -> None:
    """Write ``figures`` as JSON to ``output``, with the date, the machine, the database kind and the arguments."""
    result = {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "python": platform.python_version()},
        "database": "embedded" if not os.environ.get("MARKETPLACE_TEST_DATABASE_URL") else "server",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **figures,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"wrote {output}")


async def timed_rollups(
    engine: AsyncEngine, year: int, month: int, *, runs: int = 2
) -> tuple[list[float], dict[str, Any]]:
    """``analytics.rollup_month`` of ``year``-``month`` ``runs`` times, each in its own committed transaction: the
    seconds of each run (the second shows the cost with warm caches and rows to replace) and the last result."""
    seconds: list[float] = []
    result: dict[str, Any] = {}
    for _ in range(runs):
        async with AsyncSession(engine) as session:
            t = time.perf_counter()
            result = await analytics.rollup_month(session, year, month)
            await session.commit()
            seconds.append(round(time.perf_counter() - t, 2))
    return seconds, result
