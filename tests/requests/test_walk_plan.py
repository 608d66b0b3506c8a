"""A located request's walk reads each serving process's listings nearest first from the GiST index, and stops,
even where the planner expects a process to have few listings. It estimates a process's listings as the average
over all codes (the code comes from the request's list), so for a common process it preferred to read them all and
sort them by distance: at 100k listings the walk of a 3-axis milling request took 100-115 ms (docs/performance.md)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.requests import service
from matching import adapter, repository
from matching.conditions_repository import Binder
from matching.prefilter import request_values
from tests.requests.test_adapter import _random_request, _seed

_KNN = "Index Scan using ix_matchable_processes_near on matchable_processes"


async def _planner_expects_every_listing_of_the_code(db: AsyncSession) -> None:
    """The planner's choice at 100k listings in a small table: it expects the code's listings to be few enough to
    read them all (here: every row, one code for all; rolled back with the test)."""
    await db.execute(sa.text("ALTER TABLE matchable_processes ALTER COLUMN process_code SET (n_distinct = 1)"))
    await db.execute(sa.text("ANALYZE matchable_processes"))


async def test_the_walk_reads_nearest_first_where_the_planner_would_read_every_listing(db: AsyncSession) -> None:
    rng = random.Random(8)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    await _planner_expects_every_listing_of_the_code(db)
    a = max(assets, key=lambda x: sum(x["process_codes"][0] in y["process_codes"] for y in assets))
    mr = replace(_random_request(rng, a, now), lat=a["latitude"], lon=a["longitude"], max_distance_km=None)
    values = request_values(mr, service.serving_codes(mr.process_code), now=now, cap=adapter.DEFAULT_CAP)
    stmt = repository.candidate_statement(mr, Binder(values), capped=True, with_hours=True)
    explain = sa.text(f"EXPLAIN {stmt.compile(dialect=postgresql.dialect(), compile_kwargs={'literal_binds': True})}")

    # The control: planned freely, the walk reads every listing of the code and sorts them.
    chosen = "\n".join(r[0] for r in (await db.execute(explain)).all())
    assert _KNN not in chosen, chosen
    # As matching plans it: the index walked in distance order, with the limit on top.
    walked = "\n".join(r[0] for r in await repository.custom_plan(db, explain, walk=True))
    assert _KNN in walked and "Order By:" in walked, walked
    # The settings are the walk's only: given back for the rest of the transaction.
    assert (await db.execute(sa.text("SELECT current_setting('enable_bitmapscan')"))).scalar_one() == "on"


async def test_matching_plans_a_located_capped_request_as_a_walk_and_no_other(db: AsyncSession) -> None:
    rng = random.Random(9)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = await _seed(db, rng, now)
    a = assets[0]
    located = replace(_random_request(rng, a, now), lat=a["latitude"], lon=a["longitude"])
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append(f"{statement} {parameters}")  # the settings' names are parameters

    sync = (await db.connection()).sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", record)
    try:
        for mr, cap, walks in (
            (located, adapter.DEFAULT_CAP, True),
            (located, None, False),  # uncapped: no walk
            (replace(located, lat=None, lon=None, max_distance_km=None), adapter.DEFAULT_CAP, False),
        ):
            sent.clear()
            await adapter.select_rows(db, mr, serving_codes=service.serving_codes(mr.process_code), cap=cap)
            assert any("enable_bitmapscan" in s for s in sent) is walks, sent
    finally:
        event.remove(sync, "before_cursor_execute", record)
    assert (await db.execute(sa.text("SELECT current_setting('enable_seqscan')"))).scalar_one() == "on"
