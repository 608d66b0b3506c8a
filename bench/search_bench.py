"""Search benchmark: the public listing search on a seeded market of about ``--assets`` listings.

    python bench/search_bench.py --assets 100000

Seeds a fresh database (see bench/seed_bench.py), then for representative searches measures the latency of
``listings.service.search`` (the endpoint's code path, in-process), records ``EXPLAIN (ANALYZE, BUFFERS)``
of the SQL, and — in the same run, as the baseline — the same SQL with the search indexes dropped (in a
transaction that is rolled back). Writes
``bench/results/search.json`` and ``bench/results/search_plans.txt`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seed_bench import _admin, _cpu_model, _seed, _server_url  # noqa: E402

from listings import service  # noqa: E402
from listings.read_model_repository import few_listings_serve  # noqa: E402
from listings.repository import ListingsRepository  # noqa: E402
from marketplace.bookings.service import BookingsBlockedTime  # noqa: E402
from marketplace.cli import migrate_database  # noqa: E402
from marketplace.demo.seeding import AVG_MACHINES_PER_SUPPLIER, AVG_SERVICES_PER_LAB  # noqa: E402

QUERIES: dict[str, dict[str, Any]] = {
    "process_3axis_next_free": {"process": "machining.milling.cnc_3axis"},
    "process_material_envelope_price": {
        "process": "machining.milling.cnc_3axis",
        "material": "al_6061",
        "min_x": 300,
        "min_y": 200,
        "min_z": 100,
        "sort": "price",
    },
    "near_suzhou_150km_distance": {
        "process": "machining.milling",
        "lat": 31.3,
        "lon": 120.6,
        "radius_km": 150,
        "sort": "distance",
    },
    "region_prefix_iso9001": {"region": ["3205"], "certificate": "ISO 9001", "kind": "machine"},
    "tensile_labs": {"process": "testing.mechanical.tensile", "kind": "lab_service", "sort": "price"},
    "free_4h_next_week": {"process": "machining.milling.cnc_3axis", "free_minutes": 240, "free_days": (7, 14)},
}


SEARCH_INDEXES = (
    "ix_assets_search_next_free",
    "ix_assets_search_price",
    "ix_assets_process_codes",
    "ix_assets_materials",
    "ix_sites_earth",
    "ix_sites_region_code",
)


def _query(spec: dict[str, Any]) -> service.SearchQuery:
    spec = dict(spec)
    days = spec.pop("free_days", None)
    q = service.SearchQuery(**spec, limit=20)
    if days:
        now = datetime.now(UTC)
        q.free_from, q.free_to = now + timedelta(days=days[0]), now + timedelta(days=days[1])
    return q


async def _measure(url: str, repeats: int) -> tuple[dict[str, Any], str]:
    engine = create_async_engine(url, pool_size=2)
    config = service.ListingsConfig()
    blocked = BookingsBlockedTime()
    results: dict[str, Any] = {}
    plans: list[str] = []
    try:
        for name, spec in QUERIES.items():
            timings = []
            hits = 0
            for _ in range(repeats):
                async with AsyncSession(engine) as session:
                    started = time.perf_counter()
                    found, _ = await service.search(session, _query(spec), config=config, blocked=blocked)
                    timings.append((time.perf_counter() - started) * 1000)
                    hits = len(found)
            # The SQL part alone, with and without indexes (baseline in the same run).
            async with AsyncSession(engine) as session:
                q = _query(spec)
                repo = ListingsRepository(session)
                f = service._filters(q)
                # As the service plans it: a rare process's price sort is driven from the read model.
                rare = q.sort == "price" and f.serving_codes is not None
                rare = rare and await few_listings_serve(session, f.serving_codes or [])
                stmt, sort_expr = repo.search_statement(f, q.sort, from_read_model=rare)
                if q.sort == "distance":
                    await repo.prefer_knn_scans()  # as the service plans it (for the rest of this transaction)
                sql = str(
                    stmt.order_by(sort_expr)
                    .limit(q.limit)
                    .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
                )
                plan = "\n".join(
                    r[0] for r in (await session.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))).all()
                )
                indexed = await _time_sql(session, sql, repeats)
                # Baseline: the same SQL with the search indexes dropped inside this transaction (DDL is
                # transactional in PostgreSQL, so the rollback below restores them).
                await session.execute(sa.text("DROP INDEX " + ", ".join(SEARCH_INDEXES)))
                seq = await _time_sql(session, sql, max(3, repeats // 4))
                await session.rollback()
            timings.sort()
            results[name] = {
                "results": hits,
                "service_p50_ms": round(statistics.median(timings), 2),
                "service_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 2),
                "sql_indexed_ms": round(indexed, 2),
                "sql_without_search_indexes_ms": round(seq, 2),
                "index_speedup": round(seq / indexed, 1) if indexed else None,
            }
            plans.append(f"== {name}: {json.dumps({k: v for k, v in spec.items()}, default=str)}\n{plan}\n")
            print(name, results[name])
    finally:
        await engine.dispose()
    return results, "\n".join(plans)


async def _time_sql(session: AsyncSession, sql: str, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        await session.execute(sa.text(sql))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    per_supplier = AVG_MACHINES_PER_SUPPLIER + AVG_SERVICES_PER_LAB / 20
    suppliers = max(1, round(args.assets / per_supplier))
    server = _server_url()
    name = f"mk_search_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        migrate_database(url)
        counts, seconds = asyncio.run(_seed(url, suppliers, max(1, suppliers // 20), max(1, suppliers // 5), 1))
        print(f"seeded {counts['assets']} assets in {seconds:.1f} s")
        results, plans = asyncio.run(_measure(url, args.repeats))
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(
        json.dumps(
            {
                "benchmark": "search",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"nproc": os.cpu_count(), "cpu_model": _cpu_model(), "python": platform.python_version()},
                "assets": counts["assets"],
                "repeats": args.repeats,
                "queries": results,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "search_plans.txt").write_text(plans)
    print(f"wrote {out / 'search.json'} and {out / 'search_plans.txt'}")


if __name__ == "__main__":
    main()
