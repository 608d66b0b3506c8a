"""The distance sort is a KNN ordering (``ll_to_earth(site) <-> point`` on the GiST index ``ix_sites_earth``): its
order, page by page through the keyset cursor, equals a brute-force great-circle sort with the listing id as
tie-breaker (several listings share a site, so ties are common), with and without filters."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset, Certificate, Site
from listings.repository import ListingsRepository
from listings.search import SearchQuery, _filters
from marketplace.demo.seeding import seed_market
from tests.listings.search_plans import first_page_plan

SUZHOU = (31.3, 120.6)


def _great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(math.radians(x) for x in p) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6378.168 * math.asin(math.sqrt(h))


async def _brute_force(db: AsyncSession, q: SearchQuery) -> list[uuid.UUID]:
    """Every visible listing passing ``q``'s filters, sorted by great-circle distance then id, in Python."""
    f = _filters(q)
    orgs = sa.table("organisations", sa.column("id"), sa.column("verification_status"))
    rows = (
        await db.execute(
            sa.select(Asset, Site)
            .join(Site, Site.id == Asset.site_id)  # type: ignore[arg-type]
            .join(orgs, orgs.c.id == Asset.org_id)
            .where(Asset.status == "published", orgs.c.verification_status == "verified")  # type: ignore[arg-type]
        )
    ).all()
    certified: set[tuple[uuid.UUID, uuid.UUID | None]] = set()
    if f.certificate:
        today = date.today()
        for c in (await db.execute(sa.select(Certificate))).scalars():
            if c.standard == f.certificate and c.status == "verified" and c.valid_from <= today <= c.valid_until:
                certified.add((c.org_id, c.site_id))
    near = (q.lat, q.lon)
    keyed: list[tuple[float, uuid.UUID]] = []
    for asset, site in rows:
        km = _great_circle_km(near, (site.latitude, site.longitude))  # type: ignore[arg-type]
        if f.radius_km is not None and km > f.radius_km:
            continue
        if f.serving_codes is not None and not set(asset.process_codes) & set(f.serving_codes):
            continue
        if f.kind and asset.kind != f.kind:
            continue
        if f.material and f.material not in (asset.materials or []):
            continue
        if f.certificate and not ({(asset.org_id, None), (asset.org_id, asset.site_id)} & certified):
            continue
        keyed.append((km, asset.id))
    return [i for _, i in sorted(keyed)]


async def _paged(db: AsyncSession, q: SearchQuery, page: int) -> list[uuid.UUID]:
    """The repository's rows in sort order, fetched ``page`` at a time through the keyset cursor."""
    repo = ListingsRepository(db)
    f = _filters(q)
    out: list[uuid.UUID] = []
    after: list[tuple[Any, uuid.UUID]] = []
    while True:
        rows = await repo.search_page(f, "distance", after=after, limit=page)
        out += [r[0].id for r in rows]
        if len(rows) < page:
            return out
        after = [(rows[-1][3], rows[-1][0].id)]


@pytest.fixture
async def small_market(db: AsyncSession) -> None:
    await seed_market(db, suppliers=40, labs=3, buyers=5, seed=7, now=datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"radius_km": 300},
        {"process": "machining.milling", "radius_km": 1500},
        {"process": "machining.milling.cnc_3axis", "kind": "machine"},
        {"material": "al_6061", "radius_km": 800},
        {"certificate": "ISO 9001"},
    ],
)
async def test_distance_order_equals_brute_force(db: AsyncSession, small_market: None, spec: dict[str, Any]) -> None:
    q = SearchQuery(lat=SUZHOU[0], lon=SUZHOU[1], sort="distance", **spec)
    want = await _brute_force(db, q)
    assert len(want) >= 10, "the filter should leave enough listings to compare an order"
    assert await _paged(db, q, page=1000) == want
    assert await _paged(db, q, page=7) == want


async def test_ties_are_broken_by_id(db: AsyncSession, small_market: None) -> None:
    """Listings at one site have the same distance: they come in id order."""
    q = SearchQuery(lat=SUZHOU[0], lon=SUZHOU[1], sort="distance")
    sites: dict[uuid.UUID, uuid.UUID] = dict((await db.execute(sa.select(col(Asset.id), col(Asset.site_id)))).all())
    got = await _paged(db, q, page=5)
    shared = [(a, b) for a, b in itertools.pairwise(got) if sites[a] == sites[b]]
    assert shared, "the seeded market should put several listings on one site"
    assert all(a < b for a, b in shared)


async def test_distance_sort_is_an_index_ordered_scan(db: AsyncSession, small_market: None) -> None:
    """With sequential scans and sorts priced out, the plan orders by ``<->`` on ix_sites_earth (a KNN scan)."""
    plan = await first_page_plan(
        db, SearchQuery(lat=SUZHOU[0], lon=SUZHOU[1], sort="distance", process="machining.milling")
    )
    assert "ix_sites_earth" in plan and "Order By" in plan, plan


@pytest.fixture
async def dense_market(db: AsyncSession) -> None:
    """Enough sites (~2,000 within a few hundred km of each other) for PostgreSQL's plan to change."""
    await seed_market(db, suppliers=2000, labs=3, buyers=5, seed=7, now=datetime(2026, 12, 1, tzinfo=UTC))
    await db.execute(sa.text("ANALYZE sites"))


async def test_a_radius_search_is_planned_as_a_knn_walk_not_a_sorted_box(db: AsyncSession, dense_market: None) -> None:
    """PostgreSQL thinks a radius holds 0.1 % of the sites and would sort the whole box (204 ms for 28,000 sites at
    1M listings); the search turns bitmap scans off for its statement so the walk stops after a page."""
    q = SearchQuery(lat=SUZHOU[0], lon=SUZHOU[1], sort="distance", radius_km=2000, process="machining.milling")
    repo = ListingsRepository(db)
    default = await first_page_plan(db, q, priced_out=())
    assert "Bitmap Index Scan on ix_sites_earth" in default, default  # the control: the plan the search avoids
    previous = await repo.prefer_knn_scans()
    chosen = await first_page_plan(db, q, priced_out=())
    assert "Index Scan using ix_sites_earth" in chosen and "Order By" in chosen, chosen
    await db.execute(sa.select(sa.func.set_config("enable_bitmapscan", previous, True)))


async def test_the_search_plans_with_knn_scans_and_restores_the_setting(db: AsyncSession, small_market: None) -> None:
    repo = ListingsRepository(db)
    q = SearchQuery(lat=SUZHOU[0], lon=SUZHOU[1], sort="distance", radius_km=500)
    setting = sa.select(sa.func.current_setting("enable_bitmapscan"))
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = db.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", record)
    try:
        for value in ("on", "off"):
            await db.execute(sa.text(f"SET LOCAL enable_bitmapscan = {value}"))
            sent.clear()
            assert await repo.search_page(_filters(q), "distance", after=[], limit=5)
            assert (await db.execute(setting)).scalar_one() == value
            search = next(i for i, st in enumerate(sent) if "nearest_sites" in st)
            assert "set_config" in sent[search - 1] and "set_config" in sent[search + 1], sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
