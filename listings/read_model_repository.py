"""The read model of what search and matching may show: one narrow row per published listing of a verified
organisation, kept by triggers in the listing's own transaction (migration 0007; migration-only, so it has no ORM
class). Matching ranks from it; search drives the price sort of a rarely offered process from it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

TEXT_ARRAY = pg.ARRAY(sa.Text)  # a text[] bind parameter (process codes, materials)

_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("asset_id", sa.Uuid),
    ("org_id", sa.Uuid),
    ("site_id", sa.Uuid),
    ("kind", sa.Text),
    ("currency", sa.Text),
    ("process_codes", TEXT_ARRAY),
    ("materials", TEXT_ARRAY),
    ("envelope_max_mm", sa.Float),
    ("envelope_mid_mm", sa.Float),
    ("envelope_min_mm", sa.Float),
    ("tolerance_mm", sa.Float),
    ("hourly_rate", sa.BigInteger),
    ("setup_fee", sa.BigInteger),
    ("price_per_sample", sa.BigInteger),
    ("next_free_at", sa.DateTime(timezone=True)),
    ("latitude", sa.Float),
    ("longitude", sa.Float),
)

matchable = sa.table("matchable_assets", *[sa.column(name, type_) for name, type_ in _COLUMNS])

# The read model once per process code (migration 0026): the same columns and ``process_code``, with a GiST index
# on (process code, position) that walks one process's listings nearest first.
matchable_processes = sa.table(
    "matchable_processes", sa.column("process_code", sa.Text), *[sa.column(name, type_) for name, type_ in _COLUMNS]
)


def nearest_first(
    conditions: Callable[[Any], tuple[list[Any], list[Any]]], p: Any, *, distance: list[Any]
) -> tuple[Any, Any]:
    """A CTE ``matched`` (``id`` and the selected columns) of the read-model rows that pass a request's
    filters among the ``p("nearest")`` nearest to (``p("lat")``, ``p("lon")``) offering each of ``p("codes")``
    (within ``distance``: conditions over ``matchable_processes``, so the index tests a radius).
    ``conditions(src)`` gives the filters and the selected columns over the columns ``src`` of the walked rows.

    For each code a walk of ``ix_matchable_processes_near`` (GiST on process code and position, migration 0026)
    meets that process's listings in distance order and stops after ``nearest``; only those are filtered. Its cost
    depends on ``nearest``, not on the size of the market or on how many listings fail the filters (bounding the
    listings that *pass* instead walked 37,673 listings for 2,000 at 1M listings when 5 % passed). The second value
    is a scalar subquery: the most listings one code's walk met (``nearest`` when a walk stopped before the end)."""
    mp = matchable_processes.c
    serving = sa.func.unnest(sa.cast(p("codes"), TEXT_ARRAY)).table_valued("code").render_derived(name="serving")
    here = sa.func.ll_to_earth(p("lat"), p("lon"))
    walk = (
        sa.select(*[mp[name] for name, _ in _COLUMNS])
        .where(mp.process_code == serving.c.code, *distance)
        .order_by(sa.func.ll_to_earth(mp.latitude, mp.longitude).op("<->")(here))
        .limit(p("nearest"))
        .lateral("walk")
    )
    walked = (
        sa.select(serving.c.code, walk)
        .select_from(serving.join(walk, sa.true()))
        .cte("walked")
        .prefix_with("MATERIALIZED")
    )
    where, columns = conditions(walked.c)
    per_code = sa.select(sa.func.count().label("k")).select_from(walked).group_by(walked.c.code).subquery("per_code")
    longest = sa.select(sa.func.coalesce(sa.func.max(per_code.c.k), 0)).scalar_subquery()
    matched = (
        sa.select(walked.c.asset_id.label("id"), *columns)
        .where(*where)
        .ext(pg.distinct_on(walked.c.asset_id))  # a listing offering two of the codes: once
        .order_by(walked.c.asset_id)
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )
    return matched, longest


# Scans the planner would otherwise pick instead of :func:`nearest_first`'s walk: every listing of a process from
# the index's process column, then a sort by distance. It estimates a code's listings as the average over all codes
# (the code comes from the request's list): at 100k listings 1,361 rows against 5,006 on average for the four codes
# that serve 3-axis milling, and that plan read them all and took 100-115 ms (docs/performance.md, "Matching reads
# the nearest").
WALK_OFF = ("enable_bitmapscan", "enable_seqscan")  # see listings.planner_repository


# A price sort whose process codes the planner estimates at no more listings than this is driven from those
# listings, cheapest first (``cheapest_first``); a more common process walks ``ix_assets_search_price``.
READ_MODEL_PRICE_SORT_MAX = 5_000

# Planning only: the estimate comes from the statistics of ``process_codes`` (its most common elements).
_ESTIMATE = sa.text(
    "EXPLAIN (FORMAT JSON) SELECT 1 FROM matchable_assets WHERE process_codes && CAST(:codes AS text[])"
)
# Without those statistics (a table not analysed since a bulk load) PostgreSQL guesses 0.5 % of the rows for any
# code, which would make a common process look rare: then the price index is walked, as before.
_ANALYSED = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'matchable_assets'"
    " AND attname = 'process_codes' AND most_common_elems IS NOT NULL)"
)


async def few_listings_serve(session: AsyncSession, codes: Sequence[str]) -> bool:
    """Whether the planner estimates the listings that serve ``codes`` at ``READ_MODEL_PRICE_SORT_MAX`` or fewer.

    Walking the price index passes, for each listing shown, about (all listings / listings of the process) rows;
    sorting the process's listings costs about one narrow row each. The first wins for a common process (3-axis
    milling: 20 % of the market), the second for a rare one (one kind of lab test: 0.3 %). 5,000 is near where
    they cross at a million listings (docs/performance.md, "National scale")."""
    if not (await session.execute(_ANALYSED)).scalar_one():
        return False
    plan = (await session.execute(_ESTIMATE, {"codes": list(codes)})).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"]) <= READ_MODEL_PRICE_SORT_MAX


def cheapest_first(codes: Sequence[str], kind: str | None) -> Any:
    """The listings serving ``codes`` (of ``kind``) with their price, cheapest first, as a subquery to drive a
    price-sorted search from. ``OFFSET 0`` keeps it and its order as written: otherwise PostgreSQL joins every
    listing of the process to its site and organisation before it sorts (tensile tests at 1M listings: 2,985
    rows, 28 ms, against 6 ms this way). The price is the read model's copy of the listing's own."""
    price = sa.func.coalesce(matchable.c.hourly_rate, matchable.c.price_per_sample)
    conditions: list[Any] = [matchable.c.process_codes.op("&&")(sa.cast(list(codes), TEXT_ARRAY))]
    if kind:
        conditions.append(matchable.c.kind == kind)
    return (
        sa.select(matchable.c.asset_id, price.label("price"))
        .where(*conditions)
        .order_by(price, matchable.c.asset_id)
        .offset(0)
        .subquery("cheapest")
    )
