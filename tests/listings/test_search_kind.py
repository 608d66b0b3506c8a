"""Search states the listing kind a process implies: the same listings, and the next-free sort of a machine
process walks machines only (``ix_assets_search_next_free_kind``) instead of passing every lab service first."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from listings.repository import ListingsRepository
from listings.search import SearchQuery, _filters
from marketplace.demo.seeding import seed_market
from tests.listings.search_plans import first_page_plan


@pytest.fixture
async def market(db: AsyncSession) -> None:
    await seed_market(db, suppliers=40, labs=6, buyers=5, seed=3, now=datetime(2026, 12, 1, tzinfo=UTC))
    # Lab services free before every machine: the case the kind-less index walked through one by one.
    await db.execute(
        sa.update(Asset)
        .where(Asset.kind == "lab_service")  # type: ignore[arg-type]
        .values(next_free_at=datetime(2026, 1, 1, tzinfo=UTC))
    )


async def _ids(db: AsyncSession, q: SearchQuery, sort: str, *, stated: bool = True) -> list[uuid.UUID]:
    f = _filters(q) if stated else replace(_filters(q), kind=None)
    rows = await ListingsRepository(db).search_page(f, sort, after=[], limit=10_000)
    return [r[0].id for r in rows]


@pytest.mark.parametrize(
    ("process", "kind"),
    [("machining.milling", "machine"), ("machining.turning.cnc_lathe", "machine"), ("testing", "lab_service")],
)
async def test_a_process_search_states_its_kind(process: str, kind: str) -> None:
    assert _filters(SearchQuery(process=process)).kind == kind
    assert _filters(SearchQuery(process=process, kind="lab_service")).kind == "lab_service"  # the caller's wins
    assert _filters(SearchQuery()).kind is None


@pytest.mark.parametrize("sort", ["next_free", "price"])
async def test_the_stated_kind_keeps_the_same_listings_in_the_same_order(
    db: AsyncSession, market: None, sort: str
) -> None:
    for spec in ({"process": "machining.milling"}, {"process": "testing"}, {"process": "machining", "radius_km": 900}):
        q = SearchQuery(sort=sort, lat=31.3, lon=120.6, **spec)  # type: ignore[arg-type]
        stated = await _ids(db, q, sort)
        assert stated, spec
        assert stated == await _ids(db, q, sort, stated=False)


async def test_next_free_sort_of_a_machine_process_walks_machines_only(db: AsyncSession, market: None) -> None:
    text = await first_page_plan(db, SearchQuery(process="machining.milling.cnc_3axis"))
    assert "ix_assets_search_next_free_kind" in text and "Index Cond: ((kind)::text = 'machine'" in text, text
