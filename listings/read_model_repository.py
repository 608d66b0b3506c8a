"""The read model of what search and matching may show: one narrow row per published listing of a verified
organisation, kept by triggers in the listing's own transaction (migration 0007; migration-only, so it has no ORM
class). Matching ranks from it; search drives the price sort of a rarely offered process from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

_TEXT_ARRAY = pg.ARRAY(sa.Text)

matchable = sa.table(
    "matchable_assets",
    sa.column("asset_id", sa.Uuid),
    sa.column("org_id", sa.Uuid),
    sa.column("site_id", sa.Uuid),
    sa.column("kind", sa.Text),
    sa.column("currency", sa.Text),
    sa.column("process_codes", _TEXT_ARRAY),
    sa.column("materials", _TEXT_ARRAY),
    sa.column("envelope_max_mm", sa.Float),
    sa.column("envelope_mid_mm", sa.Float),
    sa.column("envelope_min_mm", sa.Float),
    sa.column("tolerance_mm", sa.Float),
    sa.column("hourly_rate", sa.BigInteger),
    sa.column("setup_fee", sa.BigInteger),
    sa.column("price_per_sample", sa.BigInteger),
    sa.column("next_free_at", sa.DateTime(timezone=True)),
    sa.column("latitude", sa.Float),
    sa.column("longitude", sa.Float),
)

# One row per (read-model row, process code) with the listing's position (migration 0026): GiST on (process code,
# position) walks one process's listings nearest first.
matchable_processes = sa.table(
    "matchable_processes",
    sa.column("asset_id", sa.Uuid),
    sa.column("process_code", sa.Text),
    sa.column("latitude", sa.Float),
    sa.column("longitude", sa.Float),
)


def nearest_first(where: list[Any], columns: list[Any], p: Any, *, distance: list[Any]) -> Any:
    """A CTE ``matched`` (``id`` and ``columns``, which must include the distance ``d``): the ``p("nearest")``
    read-model rows nearest to (``p("lat")``, ``p("lon")``) that offer one of ``p("codes")`` and pass ``where`` (over
    ``matchable``) and ``distance`` (over ``matchable_processes``' position, so the index tests a radius).

    For each code, a walk of ``ix_matchable_processes_near`` (GiST on process code and position, migration 0026)
    meets that process's listings in distance order, tests each one's read-model row and stops after ``nearest``
    have passed. A listing with two of the codes is met by two walks and kept once, and the nearest ``nearest`` of
    the union are the nearest overall. The cost depends on ``nearest`` and on how many nearby listings fail the
    filters, not on the size of the market."""
    ma, mp = matchable.c, matchable_processes.c
    serving = sa.func.unnest(sa.cast(p("codes"), _TEXT_ARRAY)).table_valued("code").render_derived(name="serving")
    here = sa.func.ll_to_earth(p("lat"), p("lon"))
    walk = (
        sa.select(ma.asset_id.label("id"), *columns)
        .select_from(matchable_processes.join(matchable, ma.asset_id == mp.asset_id))
        .where(mp.process_code == serving.c.code, *distance, *where)
        .order_by(sa.func.ll_to_earth(mp.latitude, mp.longitude).op("<->")(here))
        .limit(p("nearest"))
        .lateral("walk")
    )
    w = walk.c
    names = [c.name for c in columns]
    return (
        sa.select(w.id, *[sa.func.min(w[name]).label(name) for name in names])
        .select_from(serving.join(walk, sa.true()))
        .group_by(w.id)
        .order_by(sa.func.min(w.d), w.id)
        .limit(p("nearest"))
        .cte("matched")
        .prefix_with("MATERIALIZED")
    )


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
    conditions: list[Any] = [matchable.c.process_codes.op("&&")(sa.cast(list(codes), _TEXT_ARRAY))]
    if kind:
        conditions.append(matchable.c.kind == kind)
    return (
        sa.select(matchable.c.asset_id, price.label("price"))
        .where(*conditions)
        .order_by(price, matchable.c.asset_id)
        .offset(0)
        .subquery("cheapest")
    )
