"""Matching benchmark: per-request matching latency, a naive baseline, and the batch optimiser.

    python bench/matching_bench.py [--assets 100000 --requests 200 --bookings 1000000]

Uses the server of ``MARKETPLACE_TEST_DATABASE_URL`` (or the embedded PostgreSQL under ``.data/bench``), creates
a throw-away database, migrates, seeds ~``--assets`` listings with ``seed_market``, COPYs ~``--bookings``
non-overlapping machine bookings (confirmed / in progress / completed, spread over the next 60 days), ANALYZEs,
then measures:

(a) ``--requests`` random requests matched through ``marketplace.requests.service.run_match`` (the endpoint's
    code path, in-process): p50/p95/p99 latency;
(b) the naive baseline in the same run (every published listing loaded with calendars, filtered by the same
    engine) on a few of those requests, the speed ratio, and how often the capped top 20 equals the naive one;
(c) the batch optimiser on ``--batch-requests`` requests x ``--batch-assets`` machines in a busy week: the pool is
    the machines of the four biggest clusters, whose free time in the one-week horizon is first booked at
    ``BUSY_FILL`` by extra confirmed bookings (removed again afterwards); demand concentrates on the most common
    processes around a few hot spots, with mixed job lengths. Reports time, objective vs LP bound and matched
    hours vs greedy first-come-first-served over the same options.

``--via-pgbouncer`` measures (a) a second time in the same run, through Debian's ``pgbouncer`` in transaction
pooling mode started by the bench (the app's engine factory with ``database_pgbouncer`` on).

Writes ``bench/results/matching.json`` and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
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

from common import POLICY, copy_bookings, write_result  # noqa: E402
from common import admin as _admin  # noqa: E402
from common import server_url as _server_url  # noqa: E402

from marketplace.cli import migrate_database  # noqa: E402
from marketplace.core.observability import freeze_startup_heap  # noqa: E402

DEFAULT_GC_THRESHOLDS = gc.get_threshold()
from matching_batch_stage import batch_stage  # noqa: E402

from marketplace.demo.seeding import AVG_MACHINES_PER_SUPPLIER, AVG_SERVICES_PER_LAB, seed_market  # noqa: E402
from marketplace.requests import service  # noqa: E402
from matching import adapter  # noqa: E402
from matching.engine import match  # noqa: E402
from matching.types import MatchRequest  # noqa: E402


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return round(s[k], 2)


# -- data --------------------------------------------------------------------------------------------------


async def _seed(engine: AsyncEngine, assets: int, seed: int, now: datetime) -> dict[str, Any]:
    per_supplier = AVG_MACHINES_PER_SUPPLIER + AVG_SERVICES_PER_LAB / 20
    suppliers = max(1, round(assets / per_supplier))
    async with AsyncSession(engine) as session:
        labs, buyers = max(1, suppliers // 20), max(1, suppliers // 5)
        summary = await seed_market(session, suppliers=suppliers, labs=labs, buyers=buyers, seed=seed, now=now)
        await session.commit()
    return {"machines": summary.machines, "lab_services": summary.lab_services, "seconds": summary.elapsed_seconds}


async def _bookings(engine: AsyncEngine, target: int, rng: random.Random, now: datetime) -> int:
    async with engine.connect() as conn:
        machines = (
            await conn.execute(
                sa.text(
                    "SELECT a.id, a.org_id, a.currency, a.hourly_rate, s.timezone FROM assets a"
                    " JOIN sites s ON s.id = a.site_id WHERE a.kind = 'machine' ORDER BY a.id"
                )
            )
        ).all()
        buyers = list(
            (await conn.execute(sa.text("SELECT id FROM organisations WHERE 'buyer' = ANY(roles)"))).scalars()
        )
    per_asset = max(1, round(target / len(machines)))
    horizon = timedelta(days=60)
    segment = horizon / per_asset
    rows = []
    for asset_id, org_id, currency, rate, tz in machines:
        for k in range(per_asset):
            hours = rng.choice([2, 4, 4, 8, 8, 16, 24])
            length = min(timedelta(hours=hours), segment - timedelta(minutes=30))
            slack = (segment - length).total_seconds()
            start = now + segment * k + timedelta(seconds=rng.uniform(0, slack))
            start = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            end = start + length
            if end > now + segment * (k + 1):
                end = now + segment * (k + 1)
            status = rng.choices(["confirmed", "in_progress", "completed"], weights=[8, 1, 1])[0]
            amount = (rate or 0) * hours
            buyer = rng.choice(buyers)
            while buyer == org_id:
                buyer = rng.choice(buyers)
            rows.append(
                (
                    uuid.uuid4(), asset_id, "machine", org_id, buyer, status, start, end,
                    asyncpg.Range(start, end, upper_inc=False), currency, rate or 0, 0, amount, 800, POLICY, tz, 0,
                    end if status == "completed" else None, "invoice", now, now,
                )
            )  # fmt: skip
    await copy_bookings(engine, rows, analyze="VACUUM ANALYZE")
    return len(rows)


async def _existing(engine: AsyncEngine) -> tuple[dict[str, Any], int, datetime]:
    """(--reuse) Figures of an already seeded database, and the seeding time as ``now``."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE kind = 'machine'), count(*) FILTER (WHERE kind <> 'machine'),"
                    " (SELECT min(created_at) FROM bookings), (SELECT count(*) FROM bookings) FROM assets"
                )
            )
        ).one()
    return {"machines": row[0], "lab_services": row[1], "seconds": None}, int(row[3]), row[2]


async def _asset_sample(engine: AsyncEngine, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` random published listings, the same ones for the same ``rng`` state and data (a re-run of a kept
    database measures the same requests)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT a.id, a.kind, a.process_codes, a.materials, a.currency, a.envelope_x_mm, a.envelope_y_mm,"
                    " a.envelope_z_mm, a.tolerance_mm, a.hourly_rate, a.setup_fee, a.price_per_sample, s.latitude,"
                    " s.longitude, s.region_code FROM assets a JOIN sites s ON s.id = a.site_id"
                    " WHERE a.status = 'published' ORDER BY md5(a.id::text || :salt) LIMIT :n"
                ),
                {"n": n, "salt": str(rng.random())},  # not random(): parallel workers would not share a seed
            )
        ).mappings()
        return [dict(r) for r in rows]


def _request(rng: random.Random, a: dict[str, Any], now: datetime, request_id: str | None = None) -> MatchRequest:
    """A plausible request that the sampled listing (and usually its neighbours) could serve."""
    machine = a["kind"] == "machine"
    code = rng.choice(a["process_codes"])
    start = now + timedelta(hours=rng.uniform(2, 72))
    end = start + timedelta(days=rng.choice([3, 7, 14]))
    part = None
    if machine and a["envelope_x_mm"] and rng.random() < 0.7:
        env = sorted([a["envelope_x_mm"], a["envelope_y_mm"], a["envelope_z_mm"]])
        part = tuple(round(rng.uniform(0.2, 0.8) * e, 1) for e in env)
    duration = rng.choice([60, 120, 240, 480]) if machine else None
    samples = rng.choice([1, 5, 20]) if not machine else None
    price = (
        (2 * a["hourly_rate"] * duration + 60) // 120 + (a["setup_fee"] or 0)
        if machine
        else a["price_per_sample"] * samples
    )
    return MatchRequest(
        kind="machine" if machine else "lab_service",
        process_code=code,
        earliest_start=start,
        deadline=end,
        currency=a["currency"],
        material=rng.choice(a["materials"]) if a["materials"] and rng.random() < 0.8 else None,
        duration_minutes=duration,
        samples=samples,
        part_size_mm=part,  # type: ignore[arg-type]
        tolerance_mm=a["tolerance_mm"] * rng.choice([1, 2, 4]) if a["tolerance_mm"] and rng.random() < 0.5 else None,
        lat=a["latitude"] + rng.uniform(-0.3, 0.3),
        lon=a["longitude"] + rng.uniform(-0.3, 0.3),
        max_distance_km=rng.choice([50.0, 150.0, 300.0, None]),
        budget_max=int(price * rng.uniform(1.2, 3.0)),
        request_id=request_id,
    )


# -- (a) + (b) ----------------------------------------------------------------------------------------------


async def _latency_run(
    engine: AsyncEngine, requests: list[MatchRequest], now: datetime
) -> tuple[list[float], list[Any]]:
    times: list[float] = []
    outs: list[Any] = []
    for i, mr in enumerate([*requests[:10], *requests]):  # 10 warm-up runs
        async with AsyncSession(engine) as session:
            t0 = time.perf_counter()
            out = await service.run_match(session, mr, limit=20, now=now)
            elapsed = (time.perf_counter() - t0) * 1000
            await session.rollback()
        if i >= 10:
            times.append(elapsed)
            outs.append(out)
    return times, outs


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": _pct(times, 50),
        "p95_ms": _pct(times, 95),
        "p99_ms": _pct(times, 99),
        "mean_ms": round(statistics.fmean(times), 2),
        "max_ms": round(max(times), 2),
    }


async def _latency(engine: AsyncEngine, requests: list[MatchRequest], now: datetime) -> dict[str, Any]:
    """The requests three times, each with an empty scorecard cache:

    1. ``first_pass``: straight after seeding, the first time these requests' bookings, calendars and
       scorecard index pages are read (from the OS cache into PostgreSQL's 128 MB of shared buffers);
    2. the reported figures: as the API server runs them in steady traffic, with its start-up heap frozen
       (:func:`marketplace.core.observability.freeze_startup_heap`, called by ``main_app``);
    3. ``default_gc``: the same with the interpreter's default garbage collection, whose full collections of
       the large start-up heap (~80-90 ms) land in a few per cent of requests."""
    freeze_startup_heap()
    try:
        service.STATS.clear()
        first, _ = await _latency_run(engine, requests, now)
        service.STATS.clear()
        times, outs = await _latency_run(engine, requests, now)
    finally:
        gc.unfreeze()
        gc.set_threshold(*DEFAULT_GC_THRESHOLDS)
    service.STATS.clear()
    default_gc, _ = await _latency_run(engine, requests, now)
    prefiltered = [o.prefiltered for o in outs]
    return {
        "requests": len(times),
        **_summary(times),
        "gc": "start-up heap frozen, as the API server (main_app)",
        "first_pass": _summary(first),
        "default_gc": _summary(default_gc),
        "target_p95_ms": 50,
        "median_prefiltered_candidates": statistics.median(prefiltered),
        "max_prefiltered_candidates": max(prefiltered),
        "requests_hitting_cap": sum(o.prefiltered > o.examined for o in outs),
        "cap": adapter.DEFAULT_CAP,
        "requests_ranking_only_the_nearest": sum(o.nearest is not None for o in outs),
        "nearest": adapter.NEAREST,
        "median_feasible_examined": statistics.median([o.feasible for o in outs]),
    }


async def _naive(engine: AsyncEngine, requests: list[MatchRequest], now: datetime) -> dict[str, Any]:
    naive_ms: list[float] = []
    fast_ms: list[float] = []
    same_top = 0
    overlap: list[float] = []
    for mr in requests:
        codes = service.serving_codes(mr.process_code)
        async with AsyncSession(engine) as session:
            t0 = time.perf_counter()
            everything = await adapter.load_assets(
                session, mr.earliest_start, mr.deadline, blocked=service.BLOCKED, stats=service.STATS, now=now
            )
            naive = match(mr, everything, codes, limit=20)
            naive_ms.append((time.perf_counter() - t0) * 1000)
            del everything
            t0 = time.perf_counter()
            fast = await service.run_match(session, mr, limit=20, now=now)
            fast_ms.append((time.perf_counter() - t0) * 1000)
            await session.rollback()
        want = [r.asset_id for r in naive.items]
        got = [str(m.asset_id) for m in fast.items]
        same_top += got == want
        overlap.append(len(set(got) & set(want)) / len(want) if want else 1.0)
    return {
        "requests": len(requests),
        "naive_mean_ms": round(statistics.fmean(naive_ms), 1),
        "service_mean_ms_same_requests": round(statistics.fmean(fast_ms), 2),
        "speedup": round(statistics.fmean(naive_ms) / statistics.fmean(fast_ms), 1),
        "target_speedup": 20,
        "identical_top20": same_top,
        "mean_top20_overlap": round(statistics.fmean(overlap), 3),
    }


async def _quiet(max_load: float, wait_seconds: float) -> float:
    """Wait (up to ``wait_seconds``) for the 1-minute load average to drop below ``max_load``; returns it."""
    for _ in range(int(wait_seconds // 10)):
        if os.getloadavg()[0] < max_load:
            break
        await asyncio.sleep(10)
    return round(os.getloadavg()[0], 2)


async def _latency_via_pgbouncer(url: str, requests: list[MatchRequest], now: datetime) -> dict[str, Any]:
    """Stage (a) again, on the same data in the same run, through a PgBouncer in transaction pooling mode
    (started here) with the app's engine factory and ``database_pgbouncer`` on."""
    from marketplace.core.db import create_engine
    from marketplace.core.settings import Settings
    from tests.pgbouncer_support import PgBouncer, find_pgbouncer

    exe = find_pgbouncer()
    if exe is None:
        raise SystemExit("pgbouncer not found (apt-get install pgbouncer)")
    settings = Settings(database_pgbouncer=True, database_pool_size=2, database_max_overflow=0)
    with PgBouncer(exe, url, pool_size=2) as bouncer:
        engine = create_engine(bouncer.url_for(url), settings)
        try:
            return {"load_avg_1m_at_start": round(os.getloadavg()[0], 2), **await _latency(engine, requests, now)}
        finally:
            await engine.dispose()


async def _run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    engine = create_async_engine(url, pool_size=2)
    try:
        t0 = time.perf_counter()
        if args.reuse:
            seeded, n_bookings, now = await _existing(engine)
        else:
            seeded = await _seed(engine, args.assets, args.seed, now)
            print(f"seeded {seeded['machines']} machines + {seeded['lab_services']} lab services", flush=True)
            n_bookings = await _bookings(engine, args.bookings, rng, now)
        setup_seconds = time.perf_counter() - t0
        print(f"loaded {n_bookings} bookings; setup {setup_seconds:.0f} s", flush=True)
        stages = set(args.stages.split(","))
        latency = naive = batch = via_pgbouncer = {}
        sample = await _asset_sample(engine, args.requests, rng)
        requests = [_request(rng, a, now) for a in sample]
        if "latency" in stages:
            load = await _quiet(args.max_load, args.load_wait)
            latency = {"load_avg_1m_at_start": load, **await _latency(engine, requests, now)}
            print(f"(a) {json.dumps(latency)}", flush=True)
            if args.via_pgbouncer:
                via_pgbouncer = await _latency_via_pgbouncer(url, requests, now)
                print(f"(a) via PgBouncer {json.dumps(via_pgbouncer)}", flush=True)
        if "naive" in stages:
            naive = await _naive(engine, requests[: args.naive_requests], now)
            print(f"(b) {json.dumps(naive)}", flush=True)
        if "batch" in stages:
            batch = await batch_stage(
                engine,
                n_requests=args.batch_requests,
                n_assets=args.batch_assets,
                rng=rng,
                now=now,
                time_limit=args.time_limit,
            )
            print(f"(c) {json.dumps(batch, default=str)}", flush=True)
    finally:
        await engine.dispose()
    return {
        "data": {**seeded, "bookings": n_bookings, "setup_seconds": round(setup_seconds, 1)},
        "match_latency": latency,
        **({"match_latency_via_pgbouncer": via_pgbouncer} if via_pgbouncer else {}),
        "naive_baseline": naive,
        "batch": batch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--naive-requests", type=int, default=3)
    parser.add_argument("--batch-requests", type=int, default=5000)
    parser.add_argument("--batch-assets", type=int, default=20_000)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "matching.json")
    parser.add_argument("--keep-database", help="(profiling) seed into this database name and keep it")
    parser.add_argument(
        "--reuse", action="store_true", help="(profiling) measure on an existing --keep-database without re-seeding"
    )
    parser.add_argument(
        "--via-pgbouncer", action="store_true", help="also measure (a) through PgBouncer (transaction pooling)"
    )
    parser.add_argument("--stages", default="latency,naive,batch", help="comma-separated subset to run")
    parser.add_argument("--max-load", type=float, default=2.0, help="wait for a 1-min load below this to measure (a)")
    parser.add_argument("--load-wait", type=float, default=600.0, help="seconds to wait for --max-load at most")
    args = parser.parse_args()
    if args.reuse and not args.keep_database:
        parser.error("--reuse needs --keep-database")

    server = _server_url()
    name = args.keep_database or f"mk_match_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    if not args.reuse:
        asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        if not args.reuse:
            migrate_database(url)
        figures = asyncio.run(_run(url, args))
    finally:
        if not args.keep_database:
            asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    write_result(args.output, "matching", args, figures)


if __name__ == "__main__":
    main()
