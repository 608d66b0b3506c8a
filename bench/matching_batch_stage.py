"""Stage (c) of ``bench/matching_bench.py``: the batch optimiser on a busy week of a pool of machines."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
from common import POLICY, copy_bookings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from listings.taxonomy import get_taxonomy
from marketplace.requests import service
from matching import adapter
from matching.batch import generate_options, greedy_fcfs, plan_batch
from matching.types import Candidate, MatchRequest

# -- (c) -----------------------------------------------------------------------------------------------------


BUSY_FILL = 0.9  # share of the pool's free time in the horizon week taken by the extra "busy week" bookings
BUSY_LENGTHS_H = (2, 4, 4, 8, 8, 16, 24)
BATCH_DURATIONS_MIN = (60, 120, 240, 480, 960, 1440)  # mixed job lengths, so packing matters
BATCH_PROCESSES = 4  # demand concentrates on the most common processes of the pool ...
BATCH_HOT_SHARE = 0.05  # ... around 5 % of the pool's machines (the hot spots of the big clusters)
LOAD_IDS = 25_000  # pool ids per candidate query
POOL_CLUSTERS = 4  # the pool: machines of the 4 biggest clusters (more if they hold fewer than n_assets)


async def _pool(engine: AsyncEngine, n_assets: int) -> tuple[list[Any], int]:
    """The batch pool: ``n_assets`` published machines of the biggest clusters (region prefixes): the four
    biggest, or as many more (biggest first) as it takes to hold ``n_assets`` machines; and how many clusters."""
    async with engine.connect() as conn:
        clusters = list(
            (
                await conn.execute(
                    sa.text(
                        "WITH counts AS (SELECT left(s.region_code, 4) AS r, count(*) AS n FROM assets a"
                        " JOIN sites s ON s.id = a.site_id WHERE a.kind = 'machine' AND a.status = 'published'"
                        " GROUP BY 1),"
                        " ranked AS (SELECT r, row_number() OVER w AS i, sum(n) OVER w - n AS before FROM counts"
                        " WINDOW w AS (ORDER BY n DESC, r ROWS UNBOUNDED PRECEDING))"
                        " SELECT r FROM ranked WHERE i <= :k OR before < :n ORDER BY i"
                    ),
                    {"k": POOL_CLUSTERS, "n": n_assets},
                )
            ).scalars()
        )
        ids = list(
            (
                await conn.execute(
                    sa.text(
                        "SELECT a.id FROM assets a JOIN sites s ON s.id = a.site_id WHERE a.kind = 'machine'"
                        " AND a.status = 'published' AND left(s.region_code, 4) = ANY(:clusters)"
                        " ORDER BY md5(a.id::text) LIMIT :n"
                    ),
                    {"n": n_assets, "clusters": clusters},
                )
            ).scalars()
        )
    return ids, len(clusters)


async def _load(engine: AsyncEngine, ids: list[Any], *, lo: datetime, hi: datetime, now: datetime) -> list[Candidate]:
    """The pool's candidates ordered by id, loaded ``LOAD_IDS`` ids at a time (asyncpg takes at most 32,767 query
    parameters, so 100,000 ids cannot go in one IN list); sorted chunks keep the single query's order."""
    ids = sorted(ids)
    out: list[Candidate] = []
    async with AsyncSession(engine) as session:
        for i in range(0, len(ids), LOAD_IDS):
            out += await adapter.load_assets(
                session, lo, hi, blocked=service.BLOCKED, stats=service.STATS, now=now, asset_ids=ids[i : i + LOAD_IDS],
                kind="machine",
            )  # fmt: skip
    return out


async def _busy_week(
    engine: AsyncEngine, candidates: list[Candidate], rng: random.Random, now: datetime, marker: datetime
) -> int:
    """Book ``BUSY_FILL`` of the pool's free time in the horizon: each free interval is cut into pieces of 2-24 h
    and each piece becomes a confirmed booking with probability ``BUSY_FILL`` (pieces lie in free time, so they
    never overlap existing bookings). ``marker`` (created_at) lets ``--reuse`` runs remove them again."""
    buyers = await _buyers(engine)
    rows = []
    for c in candidates:
        for s, e in c.free:
            t = s
            while t < e:
                end = min(e, t + timedelta(hours=rng.choice(BUSY_LENGTHS_H)))
                if rng.random() < BUSY_FILL:
                    buyer = rng.choice(buyers)
                    while str(buyer) == c.org_id:
                        buyer = rng.choice(buyers)
                    hours = (end - t).total_seconds() / 3600
                    rows.append(
                        (
                            uuid.uuid4(), uuid.UUID(c.asset_id), "machine", uuid.UUID(c.org_id), buyer, "confirmed",
                            t, end, asyncpg.Range(t, end, upper_inc=False), c.currency, c.hourly_rate or 0, 0,
                            round((c.hourly_rate or 0) * hours), 800, POLICY, c.timezone, 0, None, "invoice", marker,
                            marker,
                        )
                    )  # fmt: skip
                t = end
    await copy_bookings(engine, rows, analyze="ANALYZE bookings")
    return len(rows)


async def _buyers(engine: AsyncEngine) -> list[uuid.UUID]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.text("SELECT id FROM organisations WHERE 'buyer' = ANY(roles)"))).scalars())


def _batch_requests(
    rng: random.Random, candidates: list[Candidate], n: int, lo: datetime, hi: datetime
) -> tuple[list[MatchRequest], dict[str, set[str]]]:
    """Demand of a busy week, concentrated where the capacity is: each request copies a machine among the hot
    spots (``BATCH_HOT_SHARE`` of the pool offering the ``BATCH_PROCESSES`` most common processes): its process,
    often its material, a part of 20-60 % of its envelope, its location with a 20-60 km radius; jobs of 1-24 h
    with windows of 1-3 days (+ the job) inside the week."""
    tax = get_taxonomy()
    counts: dict[str, int] = {}
    for c in candidates:
        for code in c.process_codes:
            counts[code] = counts.get(code, 0) + 1
    common = set(sorted(counts, key=lambda k: (-counts[k], k))[:BATCH_PROCESSES])
    eligible = [c for c in candidates if c.process_codes & common]
    hot = eligible[: max(1, int(len(eligible) * BATCH_HOT_SHARE))]
    requests: list[MatchRequest] = []
    codes: dict[str, set[str]] = {}
    for i in range(n):
        c = rng.choice(hot)
        rid = f"r{i}"
        code = rng.choice(sorted(c.process_codes & common))
        duration = rng.choice(BATCH_DURATIONS_MIN)
        window = timedelta(hours=rng.choice([24, 48, 72]), minutes=duration)
        start = lo + timedelta(seconds=rng.uniform(0, max(0.0, (hi - lo - window).total_seconds())))
        env = sorted(c.envelope_mm) if c.envelope_mm else None
        price = ((2 * (c.hourly_rate or 0) * duration + 60) // 120) + c.setup_fee
        requests.append(
            MatchRequest(
                kind="machine",
                process_code=code,
                earliest_start=start,
                deadline=min(hi, start + window),
                currency=c.currency,
                material=rng.choice(sorted(c.materials)) if c.materials and rng.random() < 0.5 else None,
                duration_minutes=duration,
                part_size_mm=tuple(round(e * rng.uniform(0.2, 0.6), 1) for e in env) if env else None,  # type: ignore[arg-type]
                lat=c.lat,
                lon=c.lon,
                max_distance_km=rng.choice([20.0, 40.0, 60.0]),
                budget_max=int(price * rng.uniform(1.5, 3.0)),
                request_id=rid,
            )
        )
        codes[rid] = tax.serving_codes(code)
    return requests, codes


async def batch_stage(
    engine: AsyncEngine, *, n_requests: int, n_assets: int, rng: random.Random, now: datetime, time_limit: float
) -> dict[str, Any]:
    """(c): the batch optimiser in a busy week (see ``bench/matching_bench.py``); the extra bookings are removed."""
    lo = (now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    hi = lo + timedelta(days=7)
    t0 = time.perf_counter()
    ids, n_clusters = await _pool(engine, n_assets)
    before = await _load(engine, ids, lo=lo, hi=hi, now=now)
    pool_seconds = time.perf_counter() - t0
    free_before = sum((e - s).total_seconds() for c in before for s, e in c.free) / 3600
    marker = now - timedelta(days=1, microseconds=1)
    busy = await _busy_week(engine, before, rng, now, marker)
    del before
    try:
        t0 = time.perf_counter()
        candidates = await _load(engine, ids, lo=lo, hi=hi, now=now)
        load_seconds = time.perf_counter() - t0
        free_after = sum((e - s).total_seconds() for c in candidates for s, e in c.free) / 3600
        requests, codes = _batch_requests(rng, candidates, n_requests, lo, hi)
        result = _solve(requests, candidates, codes, time_limit)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM bookings WHERE created_at = :m"), {"m": marker})
    return {
        "requests": len(requests),
        "assets": len(candidates),
        "pool": f"published machines of the {n_clusters} biggest clusters",
        "pool_seconds_first_load": round(pool_seconds, 2),
        "horizon_days": 7,
        "busy_week_bookings": busy,
        "busy_fill": BUSY_FILL,
        "pool_free_hours_before_busy_week": round(free_before),
        "pool_free_hours": round(free_after),
        "demand_hours": round(sum(r.duration_minutes or 0 for r in requests) / 60),
        "durations_h": [d / 60 for d in BATCH_DURATIONS_MIN],
        "processes": BATCH_PROCESSES,
        "hot_share": BATCH_HOT_SHARE,
        "candidate_load_seconds": round(load_seconds, 2),
        **result,
    }


def _solve(
    requests: list[MatchRequest], candidates: list[Candidate], codes: dict[str, set[str]], time_limit: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"requests_with_options": 0}
    for objective in ("hours", "score"):
        t0 = time.perf_counter()
        options = generate_options(requests, candidates, codes, objective=objective)  # type: ignore[arg-type]
        options_seconds = time.perf_counter() - t0
        plan = plan_batch(requests, candidates, codes, objective=objective, time_limit=time_limit, options=options)  # type: ignore[arg-type]
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        greedy = greedy_fcfs(requests, candidates, codes, objective=objective, options=options)  # type: ignore[arg-type]
        greedy_seconds = time.perf_counter() - t1
        out["requests_with_options"] = len({o.request_index for o in options})
        lp = plan.lp_bound if plan.lp_bound is not None else plan.bound
        out[objective] = {
            "seconds": round(total, 2),
            "options_seconds": round(options_seconds, 2),
            "solve_seconds": round(total - options_seconds, 2),
            "greedy_seconds": round(greedy_seconds, 2),
            "options": plan.option_count,
            "method": plan.method,
            "solver_status": plan.solver_status,
            "objective": round(plan.objective, 3),
            "lp_bound": round(lp, 3),
            "bound": round(plan.bound, 3),
            "objective_vs_lp_bound": round(plan.objective / lp, 5) if lp else 1.0,
            "assigned": len(plan.assignments),
            "matched_hours": round(plan.matched_hours, 1),
            "greedy_objective": round(greedy.objective, 3),
            "greedy_assigned": len(greedy.assignments),
            "greedy_matched_hours": round(greedy.matched_hours, 1),
            "hours_vs_greedy": (
                round(plan.matched_hours / greedy.matched_hours - 1, 4) if greedy.matched_hours else None
            ),
        }
    out["targets"] = {"seconds": 30, "objective_vs_lp_bound": 0.99, "hours_vs_greedy": 0.10}
    return out
