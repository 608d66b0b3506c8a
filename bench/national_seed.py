"""Seeding for bench/national_bench.py: a market of ``assets`` listings (``seed_market``, COPY) and ``per_machine``
machine bookings per machine over ``span_days`` from ``m0`` (the first day of the previous month), generated set-based
inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``, one statement per half of the machines, both at
once) with the secondary indexes, the exclusion constraint and the foreign keys of ``bookings`` dropped around the
load and re-created from their own catalog definitions afterwards (the final schema is checked against the one before
the load)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from common import POLICY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from marketplace.demo.seeding import AVG_MACHINES_PER_SUPPLIER, AVG_SERVICES_PER_LAB, seed_market

# The bookings' layout: the same per-machine density and time span in every market, so a month at 10x holds
# 10x the bookings of a month at 1x. Ends before ``now`` are past bookings (completed, settled, some cancelled).
BOOKINGS_SQL = """
WITH b AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM organisations WHERE 'buyer' = ANY(roles)),
nb AS (SELECT count(*) AS n FROM b),
m AS (
    SELECT a.id, a.org_id, a.currency, coalesce(a.hourly_rate, 0) AS rate, s.timezone
    FROM assets a JOIN sites s ON s.id = a.site_id
    WHERE a.kind = 'machine' AND mod(abs(hashtext(CAST(a.id AS text))), CAST(:parts AS int)) = CAST(:part AS int)
),
g AS (
    SELECT m.*, k, (ARRAY[2, 4, 4, 8, 8, 16, 24])[1 + floor(random() * 7)::int] AS hours,
           CAST(:m0 AS timestamptz) + CAST(:span AS interval) * k / CAST(:per AS int) AS seg_start,
           CAST(:m0 AS timestamptz) + CAST(:span AS interval) * (k + 1) / CAST(:per AS int) AS seg_end, random() AS r1,
           random() AS r2, 1 + floor(random() * nb.n)::int AS bi, nb.n AS nbuyers
    FROM m, nb, generate_series(0, CAST(:per AS int) - 1) AS k
),
t AS (
    SELECT g.*, least(make_interval(hours => hours), (seg_end - seg_start) - interval '30 minutes') AS len,
           CASE WHEN b1.id = g.org_id THEN b2.id ELSE b1.id END AS buyer
    FROM g JOIN b AS b1 ON b1.n = g.bi JOIN b AS b2 ON b2.n = 1 + g.bi % g.nbuyers
),
u AS (
    SELECT t.*, date_trunc('hour', seg_start + r1 * ((seg_end - seg_start) - len)) + interval '1 hour' AS s0
    FROM t
),
v AS (SELECT u.*, least(s0 + len, seg_end) AS e0 FROM u)
INSERT INTO bookings (id, asset_id, kind, supplier_org_id, buyer_org_id, status, start_at, end_at, period, currency,
                      unit_price, setup_fee, amount, commission_rate_bp, cancellation_policy, site_timezone,
                      refund_amount, completed_at, payment_method, created_at, updated_at)
SELECT gen_random_uuid(), id, 'machine', org_id, buyer, st, s0, e0, tstzrange(s0, e0, '[)'), currency, rate, 0,
       rate * hours, 800, CAST(:policy AS jsonb), timezone, 0,
       CASE WHEN st IN ('completed', 'settled') THEN e0 END, 'invoice', s0 - interval '3 days', s0
FROM (
    SELECT v.*, CASE
        WHEN e0 <= CAST(:now AS timestamptz)
            THEN (CASE WHEN r2 < 0.6 THEN 'completed' WHEN r2 < 0.9 THEN 'settled' ELSE 'cancelled' END)
        ELSE (CASE WHEN r2 < 0.8 THEN 'confirmed' WHEN r2 < 0.9 THEN 'in_progress' ELSE 'completed' END)
    END AS st FROM v
) AS x
"""


# Built once after the listings' load instead of row by row during it (a GiST index: a bulk build is several times
# cheaper than a million inserts).
BULK_BUILT = ("ix_matchable_processes_near",)


async def seed_listings(engine: AsyncEngine, *, assets: int, seed: int, now: datetime) -> dict[str, Any]:
    """``seed_market`` at ``assets`` listings (the supplier mix of bench/matching_bench.py), with the
    ``BULK_BUILT`` indexes dropped for the load and re-created from their own definitions afterwards."""
    per_supplier = AVG_MACHINES_PER_SUPPLIER + AVG_SERVICES_PER_LAB / 20
    suppliers = max(1, round(assets / per_supplier))
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        definitions = [
            str((await conn.execute(sa.text("SELECT pg_get_indexdef(CAST(:n AS regclass))"), {"n": n})).scalar_one())
            for n in BULK_BUILT
        ]
        for name in BULK_BUILT:
            await conn.execute(sa.text(f'DROP INDEX "{name}"'))
        await conn.commit()
    async with AsyncSession(engine) as session:
        labs, buyers = max(1, suppliers // 20), max(1, suppliers // 5)
        summary = await seed_market(session, suppliers=suppliers, labs=labs, buyers=buyers, seed=seed, now=now)
        await session.commit()
    loaded = time.perf_counter()
    async with engine.connect() as conn:
        for definition in definitions:
            await conn.execute(sa.text(definition))
        await conn.commit()
    return {
        "machines": summary.machines,
        "lab_services": summary.lab_services,
        "listings_seconds": round(time.perf_counter() - t0, 1),
        "listings_index_build_seconds": round(time.perf_counter() - loaded, 1),
    }


_DEFINITIONS = """
SELECT 'index' AS what, c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'bookings'::regclass AND NOT i.indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
UNION ALL
SELECT CASE contype WHEN 'x' THEN 'exclusion' ELSE 'foreign_key' END, conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid = 'bookings'::regclass AND contype IN ('x', 'f')
ORDER BY 1, 2
"""


def _as_written(what: str, definition: str) -> str:
    """The exclusion constraint as migration 0009 writes it (``status IN (...)``): re-adding the catalog's text
    (``status::text = ANY (ARRAY[...]::text[])``) would store a differently shaped predicate."""
    if what != "exclusion":
        return definition
    head, _ = definition.split(" WHERE ", 1)
    statuses = re.findall(r"'(\w+)'::character varying", definition)
    return f"{head} WHERE (status IN ({', '.join(repr(x) for x in statuses)}))"


async def _schema(apg: Any) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in await apg.fetch(_DEFINITIONS)]


PARTS = 2  # the bookings' insert runs as this many statements at once, each on its own connection (one per core)


async def _insert_bookings(engine: AsyncEngine, sql: str, args: tuple[Any, ...]) -> int:
    """``BOOKINGS_SQL`` for each of ``PARTS`` disjoint sets of machines (by a hash of their id), in parallel: one
    statement is one backend, so it keeps one core busy while the other waits."""

    async def part(i: int) -> int:
        async with engine.connect() as conn:
            apg: Any = (await conn.get_raw_connection()).driver_connection
            await conn.commit()
            await apg.execute("SET synchronous_commit = off")
            status = await apg.execute(sql, *args, PARTS, i)
            return int(status.split()[-1])

    return sum(await asyncio.gather(*(part(i) for i in range(PARTS))))


async def load_bookings(
    engine: AsyncEngine, *, per_machine: int, m0: datetime, span_days: int, now: datetime
) -> dict[str, Any]:
    """Load ``per_machine`` bookings for every machine; returns the count and a timing breakdown."""
    times: dict[str, float] = {}
    sql = BOOKINGS_SQL
    for i, name in enumerate(("m0", "span", "per", "now", "policy", "parts", "part"), start=1):
        sql = sql.replace(f":{name}", f"${i}")
    async with engine.connect() as conn:
        apg: Any = (await conn.get_raw_connection()).driver_connection
        await conn.commit()
        await apg.execute("SET maintenance_work_mem = '1GB'; SET synchronous_commit = off")
        before = await _schema(apg)
        t = time.perf_counter()
        async with apg.transaction():
            for what, name, _ in before:
                if what == "index":
                    await apg.execute(f'DROP INDEX "{name}"')
                else:
                    await apg.execute(f'ALTER TABLE bookings DROP CONSTRAINT "{name}"')
        times["drop_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        count = await _insert_bookings(engine, sql, (m0, timedelta(days=span_days), per_machine, now, POLICY))
        times["insert_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        for what, name, definition in before:  # one statement (and transaction) each; the exclusion check runs here
            t1 = time.perf_counter()
            if what == "index":
                await apg.execute(definition)
            else:
                await apg.execute(f'ALTER TABLE bookings ADD CONSTRAINT "{name}" {_as_written(what, definition)}')
            times[f"create_{name}_seconds"] = time.perf_counter() - t1
        times["recreate_seconds"] = time.perf_counter() - t
        after = await _schema(apg)
        if after != before:
            raise RuntimeError(f"bookings schema differs after the load: {set(before) ^ set(after)}")
        t = time.perf_counter()
        await apg.execute("VACUUM ANALYZE")
        times["vacuum_analyze_seconds"] = time.perf_counter() - t
        await apg.execute("RESET maintenance_work_mem; RESET synchronous_commit")
    return {"bookings": count, **{k: round(v, 1) for k, v in times.items()}}
