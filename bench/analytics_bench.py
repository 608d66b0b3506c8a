"""Observatory rollup benchmark: ``analytics.rollup_month`` over a month holding ~1,000,000 bookings.

    python bench/analytics_bench.py [--assets 100000 --bookings 1000000]

Uses the server of ``MARKETPLACE_TEST_DATABASE_URL`` (or the embedded PostgreSQL under ``.data/bench``), creates a
throw-away database, migrates, seeds ~``--assets`` listings with ``seed_market``, COPYs ~``--bookings``
non-overlapping machine bookings (all statuses, a few lab bookings) into last month plus one balanced bank-receipt
journal for every tenth booking, ANALYZEs, then times ``service.rollup_month`` (run twice: the second run shows the
idempotent re-run) and an on-demand ``compute_month``. Writes ``bench/results/analytics.json`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BOOKING_COLUMNS, POLICY, timed_rollups, write_result  # noqa: E402
from common import admin as _admin  # noqa: E402
from common import server_url as _server_url  # noqa: E402

from marketplace.analytics import service  # noqa: E402
from marketplace.cli import migrate_database  # noqa: E402
from marketplace.demo.seeding import AVG_MACHINES_PER_SUPPLIER, AVG_SERVICES_PER_LAB, seed_market  # noqa: E402

STATUSES = (("confirmed", 30), ("completed", 25), ("settled", 25), ("cancelled", 8), ("in_progress", 4),
            ("declined", 3), ("expired", 3), ("requested", 2))  # fmt: skip


async def _load(
    engine: AsyncEngine, *, assets: int, target: int, seed: int, m0: datetime, m1: datetime
) -> dict[str, Any]:
    rng = random.Random(seed)
    per_supplier = AVG_MACHINES_PER_SUPPLIER + AVG_SERVICES_PER_LAB / 20
    suppliers = max(1, round(assets / per_supplier))
    async with AsyncSession(engine) as session:
        summary = await seed_market(session, suppliers=suppliers, labs=max(1, suppliers // 20),
                                    buyers=max(1, suppliers // 5), seed=seed, now=m0)  # fmt: skip
        await session.commit()
    async with engine.connect() as conn:
        machines = (await conn.execute(sa.text(
            "SELECT a.id, a.org_id, a.currency, a.hourly_rate, s.timezone FROM assets a"
            " JOIN sites s ON s.id = a.site_id WHERE a.kind = 'machine' ORDER BY a.id"))).all()  # fmt: skip
        buyers = list(
            (await conn.execute(sa.text("SELECT id FROM organisations WHERE 'buyer' = ANY(roles)"))).scalars()
        )
    per_asset = max(1, math.ceil(target / len(machines)))  # at least --bookings in total
    segment = (m1 - m0) / per_asset
    names, weights = zip(*STATUSES, strict=True)
    rows, journals, entries = [], [], []
    for asset_id, org_id, currency, rate, tz in machines:
        for k in range(per_asset):
            hours = rng.choice([2, 4, 4, 8, 8, 16, 24])
            length = min(timedelta(hours=hours), segment - timedelta(hours=1))
            start = (m0 + segment * k).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            end = start + length
            status = rng.choices(names, weights=weights)[0]
            buyer = rng.choice(buyers)
            while buyer == org_id:
                buyer = rng.choice(buyers)
            amount = (rate or 0) * hours
            bid = uuid.uuid4()
            rows.append((bid, asset_id, "machine", org_id, buyer, status, start, end,
                         asyncpg.Range(start, end, upper_inc=False), currency, rate or 0, 0, amount, 800, POLICY, tz,
                         0, end if status in ("completed", "settled") else None, "invoice", start - timedelta(days=3),
                         start))  # fmt: skip
            if len(rows) % 10 == 0:
                jid = uuid.uuid4()
                journals.append((jid, f"bench:{bid}", "payment_received", bid, "bench", end))
                entries.append((jid, "clearing_bank", None, currency, amount))
                entries.append((jid, "buyer_receivable", buyer, currency, -amount))
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        apg = raw.driver_connection
        await apg.copy_records_to_table("bookings", records=rows, columns=list(BOOKING_COLUMNS))
        await apg.copy_records_to_table("journals", records=journals,
                                        columns=["id", "key", "kind", "booking_id", "memo", "created_at"])  # fmt: skip
        await apg.copy_records_to_table("journal_entries", records=entries,
                                        columns=["journal_id", "account", "org_id", "currency", "amount"])  # fmt: skip
    async with engine.connect() as conn:
        await conn.execute(sa.text("COMMIT"))
        await conn.execute(sa.text("VACUUM ANALYZE"))
    return {"machines": summary.machines, "lab_services": summary.lab_services, "bookings": len(rows),
            "payment_journals": len(journals)}  # fmt: skip


async def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    first = datetime.now(UTC).date().replace(day=1)
    month = (first - timedelta(days=1)).replace(day=1)
    m0, m1 = service.utc_midnight(month), service.utc_midnight(first)
    engine = create_async_engine(url, pool_size=2)
    try:
        t0 = time.perf_counter()
        data = await _load(engine, assets=args.assets, target=args.bookings, seed=args.seed, m0=m0, m1=m1)
        setup = time.perf_counter() - t0
        print(f"loaded {json.dumps(data)} in {setup:.0f} s", flush=True)
        runs, result = await timed_rollups(engine, month.year, month.month)
        print(f"rollup {month:%Y-%m}: {runs} s, {result['rows']} rows", flush=True)
        async with AsyncSession(engine) as session:
            t = time.perf_counter()
            live = await service.compute_month(session, month)
            on_demand = round(time.perf_counter() - t, 2)
            counts = {k: len(v) for k, v in live.items()}
            ledger = await service.AnalyticsRepository(session).ledger_buyer_payments(m0, m1)
            gmv = (await session.execute(sa.text(
                "SELECT currency, sum(amount) FROM observatory_gmv WHERE month = :m GROUP BY currency"),
                {"m": month})).all()  # fmt: skip
        print(f"on-demand compute: {on_demand} s {counts}", flush=True)
    finally:
        await engine.dispose()
    return {
        "month": f"{month:%Y-%m}",
        "data": {**data, "setup_seconds": round(setup, 1)},
        "rollup_seconds": runs[0],
        "rerun_seconds": runs[1],
        "on_demand_seconds": on_demand,
        "rows": result["rows"],
        "rows_by_table": counts,
        "gmv_equals_ledger": {c: int(a) for c, a in gmv} == ledger,
        "target_seconds": 120,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "analytics.json")
    args = parser.parse_args()
    server = _server_url()
    name = f"mk_analytics_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        migrate_database(url)
        figures = asyncio.run(_run(url, args))
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    write_result(args.output, "analytics_rollup", args, figures)


if __name__ == "__main__":
    main()
