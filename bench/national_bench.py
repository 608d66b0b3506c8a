"""National scale, measured as growth (issue #19 item 3): the 1x market (100k listings, 1M bookings) against the
10x market (1M listings, 10M bookings), measured in the same run with the same request generator and seed.

    python bench/national_bench.py [--scale 1.0] [--stages match,search,naive,rollup,batch]

Creates two throw-away databases on the server of ``MARKETPLACE_TEST_DATABASE_URL``, migrates both, seeds each
(bench/national_seed.py: listings by ``seed_market``'s COPY, matching's per-process GiST index built after them, 10
machine bookings per machine over 60 days from the first day of the previous month, generated set-based in
PostgreSQL with the secondary indexes, the exclusion constraint and the foreign keys of ``bookings`` re-created
after the load; the 10x seeding is timed), then on each market measures, with the 1-minute load average at every
stage:

* ``match``: 200 requests of bench/matching_bench.py's generator through ``run_match`` (its ``_latency``);
* ``search``: bench/search_bench.py's representative searches through ``listings.service.search``, p50/p95, and
  the plan of the distance-sorted one (a KNN scan of ``ix_sites_earth``);
* ``naive``: matching_bench's naive scan (every listing loaded with calendars) on ``--naive-requests`` requests;
* ``rollup``: ``analytics.rollup_month`` of the previous month (half of the bookings' span), twice;
* ``batch``: ``matching_batch_stage.batch_stage`` (5,000 x 20,000 at 1x, 20,000 x 100,000 at 10x); an
  error there is recorded in the JSON;
* database size, biggest tables and indexes, shared buffers and the buffer-cache hit ratio during the measurement.

``--scale`` shrinks both markets (0.05 for development). Writes ``--output`` and drops both databases unless
``--keep-database PREFIX`` (databases ``PREFIX_1x`` and ``PREFIX_10x``); ``--reuse`` measures those again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


from common import admin, server_url, timed_rollups, write_result  # noqa: E402
from matching_batch_stage import batch_stage  # noqa: E402
from matching_bench import _asset_sample, _latency, _naive, _pct, _request  # noqa: E402
from national_seed import load_bookings, seed_listings  # noqa: E402
from search_bench import QUERIES, _query  # noqa: E402

from listings import service as listings_service  # noqa: E402
from listings.repository import ListingsRepository  # noqa: E402
from marketplace.bookings.service import BookingsBlockedTime  # noqa: E402
from marketplace.cli import migrate_database  # noqa: E402

PER_MACHINE = 10  # bookings per machine, over SPAN_DAYS (matching_bench's density)
SPAN_DAYS = 60
MARKETS = {"1x": (100_000, 5_000, 20_000), "10x": (1_000_000, 20_000, 100_000)}  # listings, batch requests x assets


def _load() -> float:
    return round(os.getloadavg()[0], 2)


async def _stats(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text("SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()")
            )
        ).one()
    return int(row[0]), int(row[1])


async def _timed(engine: AsyncEngine, name: str, coro: Any) -> dict[str, Any]:
    """Run one stage, with the load average at start and end and the buffer-cache hit ratio during it."""
    hit0, read0 = await _stats(engine)
    load0, t0 = _load(), time.perf_counter()
    try:
        out = await coro
    except Exception as exc:  # a failed stage is a figure too
        out = {"error": repr(exc), "traceback": traceback.format_exc(limit=5)}
    hit1, read1 = await _stats(engine)
    hits, reads = hit1 - hit0, read1 - read0
    out = {
        "load_avg_1m_start": load0,
        "load_avg_1m_end": _load(),
        "stage_seconds": round(time.perf_counter() - t0, 1),
        "buffer_hit_ratio": round(hits / (hits + reads), 4) if hits + reads else None,
        "blocks_read": reads,
        **out,
    }
    print(f"  {name}: {json.dumps(out, default=str)[:600]}", flush=True)
    return out


async def _search(engine: AsyncEngine, repeats: int) -> dict[str, Any]:
    config = listings_service.ListingsConfig()
    blocked = BookingsBlockedTime()
    results: dict[str, Any] = {}
    for name, spec in QUERIES.items():
        timings, hits = [], 0
        for _ in range(repeats + 2):  # 2 warm-up runs
            async with AsyncSession(engine) as session:
                started = time.perf_counter()
                found, _ = await listings_service.search(session, _query(spec), config=config, blocked=blocked)
                timings.append((time.perf_counter() - started) * 1000)
                hits = len(found)
        timings = timings[2:]
        results[name] = {"results": hits, "p50_ms": _pct(timings, 50), "p95_ms": _pct(timings, 95)}
        if "distance" in name:
            async with AsyncSession(engine) as session:
                q = _query(spec)
                repo = ListingsRepository(session)
                stmt, sort_expr = repo.search_statement(listings_service._filters(q), q.sort)
                await repo.prefer_knn_scans()  # as the service plans a distance sort
                sql = str(
                    stmt.order_by(sort_expr, sa.text("assets.id"))
                    .limit(q.limit)
                    .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
                )
                plan = await session.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))
                results[name]["plan"] = [r[0] for r in plan.all()]
    return results


async def _rollup(engine: AsyncEngine, month: datetime) -> dict[str, Any]:
    m0 = month
    m1 = (m0 + timedelta(days=32)).replace(day=1)
    async with engine.connect() as conn:
        in_month = (
            await conn.execute(
                sa.text("SELECT count(*) FROM bookings WHERE start_at >= :a AND start_at < :b"), {"a": m0, "b": m1}
            )
        ).scalar_one()
    runs, result = await timed_rollups(engine, m0.year, m0.month)
    return {"month": f"{m0:%Y-%m}", "bookings_starting_in_month": in_month, "rollup_seconds": runs[0],
            "rerun_seconds": runs[1], "rows": result["rows"]}  # fmt: skip


async def _size(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:

        async def rows(sql: str) -> list[Any]:
            return [list(r) for r in (await conn.execute(sa.text(sql))).all()]

        db = (await conn.execute(sa.text("SELECT pg_database_size(current_database())"))).scalar_one()
        settings = await rows(
            "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'effective_cache_size',"
            " 'work_mem', 'maintenance_work_mem', 'max_wal_size')"
        )
        tables = await rows(
            "SELECT relname, pg_total_relation_size(oid) / 1048576, pg_relation_size(oid) / 1048576, reltuples::bigint"
            " FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            " ORDER BY pg_total_relation_size(oid) DESC LIMIT 8"
        )
        indexes = await rows(
            "SELECT c.relname, t.relname, pg_relation_size(c.oid) / 1048576 FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE c.relnamespace = 'public'::regnamespace ORDER BY pg_relation_size(c.oid) DESC LIMIT 10"
        )
    return {
        "database_mb": round(db / 1048576),
        "settings": {n: f"{s} {u or ''}".strip() for n, s, u in settings},
        "biggest_tables_mb": [{"table": n, "total_mb": t, "heap_mb": h, "rows": r} for n, t, h, r in tables],
        "biggest_indexes_mb": [{"index": n, "table": t, "mb": m} for n, t, m in indexes],
    }


async def _measure(url: str, label: str, args: argparse.Namespace, *, now: datetime, out: dict[str, Any]) -> None:
    """Fill ``out`` stage by stage (an interrupted run keeps the stages already measured)."""
    stages = set(args.stages.split(","))
    _, batch_requests, batch_assets = MARKETS[label]
    engine = create_async_engine(url, pool_size=2)
    try:
        rng = random.Random(args.seed)
        sample = await _asset_sample(engine, args.requests, rng)
        requests = [_request(rng, a, now) for a in sample]
        m0 = _month_start(now)
        if "match" in stages:
            out["match"] = await _timed(engine, "match", _latency(engine, requests, now))
        if "search" in stages:
            out["search"] = await _timed(engine, "search", _search(engine, args.repeats))
        if "naive" in stages:
            out["naive"] = await _timed(engine, "naive", _naive(engine, requests[: args.naive_requests], now))
        if "rollup" in stages:
            out["rollup"] = await _timed(engine, "rollup", _rollup(engine, m0))
        out["size"] = await _size(engine)
        print(f"  size: {json.dumps(out['size'])}", flush=True)
        if "batch" in stages:
            n_req, n_assets = max(1, round(batch_requests * args.scale)), max(1, round(batch_assets * args.scale))
            coro = batch_stage(
                engine, n_requests=n_req, n_assets=n_assets, rng=random.Random(args.seed), now=now,
                time_limit=args.time_limit,
            )  # fmt: skip
            out["batch"] = await _timed(engine, "batch", coro)
    finally:
        await engine.dispose()


def _month_start(now: datetime) -> datetime:
    """The first day (00:00 UTC) of the month before ``now``'s: the bookings' span starts there."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


async def _seed(url: str, label: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    engine = create_async_engine(url, pool_size=2)
    try:
        t0 = time.perf_counter()
        listings = await seed_listings(engine, assets=round(MARKETS[label][0] * args.scale), seed=args.seed, now=now)
        print(f"[{label}] listings {listings}", flush=True)
        bookings = await load_bookings(
            engine, per_machine=PER_MACHINE, m0=_month_start(now), span_days=SPAN_DAYS, now=now
        )
        total = round(time.perf_counter() - t0, 1)
        print(f"[{label}] bookings {bookings}; seeding {total} s", flush=True)
        async with engine.connect() as conn:
            await conn.execute(sa.text("COMMIT"))
            name = make_url(url).database
            await conn.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS 'national_bench now={now.isoformat()}'"))
    finally:
        await engine.dispose()
    return {**listings, **bookings, "seeding_seconds": total}


async def _stored_now(url: str) -> datetime:
    engine = create_async_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            text = (
                await conn.execute(
                    sa.text(
                        "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                        " WHERE datname = current_database()"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return datetime.fromisoformat(text.split("now=", 1)[1])


def _growth(one: dict[str, Any], ten: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: Any, b: Any) -> float | None:
        return round(b / a, 2) if isinstance(a, int | float) and isinstance(b, int | float) and a else None

    g: dict[str, Any] = {}
    if "p95_ms" in one.get("match", {}) and "p95_ms" in ten.get("match", {}):
        g["match_p95"] = ratio(one["match"]["p95_ms"], ten["match"]["p95_ms"])
        g["match_p50"] = ratio(one["match"]["p50_ms"], ten["match"]["p50_ms"])
    for name, q in one.get("search", {}).items():
        if isinstance(q, dict) and name in ten.get("search", {}):
            g[f"search_{name}_p95"] = ratio(q["p95_ms"], ten["search"][name]["p95_ms"])
    if "speedup" in ten.get("naive", {}):
        g["naive_over_service_10x"] = ten["naive"]["speedup"]
    if "rollup_seconds" in one.get("rollup", {}) and "rollup_seconds" in ten.get("rollup", {}):
        g["rollup_seconds"] = ratio(one["rollup"]["rollup_seconds"], ten["rollup"]["rollup_seconds"])
        g["rollup_bookings_in_month"] = ratio(
            one["rollup"]["bookings_starting_in_month"], ten["rollup"]["bookings_starting_in_month"]
        )
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink both markets (0.05 for development)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="runs of each representative search")
    parser.add_argument("--naive-requests", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=20.0, help="batch optimiser time limit")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stages", default="match,search,naive,rollup,batch", help="comma-separated subset")
    parser.add_argument("--markets", default="1x,10x", help="comma-separated subset of 1x,10x")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "national.json")
    parser.add_argument("--keep-database", help="(development) database name prefix; keep PREFIX_1x, PREFIX_10x")
    parser.add_argument("--reuse", action="store_true", help="measure the --keep-database databases again")
    args = parser.parse_args()
    if args.reuse and not args.keep_database:
        parser.error("--reuse needs --keep-database")
    server = server_url()
    prefix = args.keep_database or f"mk_national_{uuid.uuid4().hex[:8]}"
    labels = args.markets.split(",")
    urls = {lb: make_url(server).set(database=f"{prefix}_{lb}").render_as_string(hide_password=False) for lb in labels}
    now = datetime.now(UTC).replace(microsecond=0)
    figures: dict[str, Any] = {"scale": args.scale, "seeding": {}, "markets": {}}
    try:
        for label in labels:
            if args.reuse:
                figures["seeding"][label] = "reused"
                continue
            asyncio.run(admin(server, f'CREATE DATABASE "{prefix}_{label}"'))
            migrate_database(urls[label])
            figures["seeding"][label] = {
                "load_avg_1m_start": _load(),
                **asyncio.run(_seed(urls[label], label, args, now)),
            }
        for label in labels:
            market_now = asyncio.run(_stored_now(urls[label])) if args.reuse else now
            print(f"[{label}] measuring (load {_load()})", flush=True)
            figures["markets"][label] = {}
            asyncio.run(_measure(urls[label], label, args, now=market_now, out=figures["markets"][label]))
        if len(labels) == 2:
            figures["growth_10x_over_1x"] = _growth(figures["markets"]["1x"], figures["markets"]["10x"])
            print(f"growth: {json.dumps(figures['growth_10x_over_1x'])}", flush=True)
    finally:
        if not args.keep_database:
            for label in labels:
                asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{prefix}_{label}" WITH (FORCE)'))
        write_result(args.output, "national", args, figures)


if __name__ == "__main__":
    main()
