"""A price sort of a rarely offered process (a kind of lab test) is driven from the read model's listings of that
process, cheapest first, instead of walking every published listing in price order: the same pages, in the same
order, with the same cursors, whichever way it runs."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from listings.read_model_repository import few_listings_serve
from listings.repository import ListingsRepository, SearchFilters
from tests.factories import DONGGUAN, admin_headers, published_asset

TENSILE = "testing.mechanical.tensile"


async def _market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """Tensile labs at five prices (two share one, so the id breaks the tie), one of them in Dongguan; a lab whose
    organisation lost its verification; a hardness lab and a machine, which the process filter leaves out."""
    admin = await admin_headers(client, db)
    labs: list[dict[str, Any]] = []
    for price, site in ((30000, None), (12000, None), (45000, DONGGUAN), (12000, None), (8000, None)):
        lab, _, _ = await published_asset(client, db, admin, kind="lab_service", site=site, price_per_sample=price)
        labs.append(lab)
    suspended, _, _ = await published_asset(client, db, admin, kind="lab_service", price_per_sample=1000)
    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'pending' WHERE id = :id"),
        {"id": suspended["org_id"]},
    )
    await db.commit()
    await published_asset(
        client, db, admin, kind="lab_service", price_per_sample=500, process_codes=["testing.hardness.vickers"]
    )
    await published_asset(client, db, admin)  # a machine
    # The choice between the two plans reads the read model's statistics, as autovacuum keeps them.
    await db.execute(sa.text("ANALYZE matchable_assets"))
    await db.commit()
    return {"labs": labs, "suspended": suspended}


async def _all_pages(db: AsyncSession, f: SearchFilters, *, from_read_model: bool) -> list[tuple[Any, uuid.UUID]]:
    repo = ListingsRepository(db)
    seen: list[tuple[Any, uuid.UUID]] = []
    after: list[tuple[Any, uuid.UUID]] = []
    while True:
        rows = await repo.search_page(f, "price", after=after, limit=2, from_read_model=from_read_model)
        seen += [(r.sort_value, r[0].id) for r in rows]
        if len(rows) < 2:
            return seen
        after = [seen[-1]]


async def test_both_ways_page_a_rare_process_identically(client: AsyncClient, db: AsyncSession) -> None:
    m = await _market(client, db)
    cases = [
        SearchFilters(serving_codes=[TENSILE], kind="lab_service"),
        SearchFilters(serving_codes=[TENSILE]),
        SearchFilters(serving_codes=[TENSILE], kind="lab_service", max_price_per_sample=30000),
        SearchFilters(serving_codes=[TENSILE], kind="lab_service", region_prefixes=[DONGGUAN["region_code"][:4]]),
    ]
    for f in cases:
        driven = await _all_pages(db, f, from_read_model=True)
        walked = await _all_pages(db, f, from_read_model=False)
        assert driven == walked, f
    everything = await _all_pages(db, cases[0], from_read_model=True)
    expected = sorted((lab["price_per_sample"], uuid.UUID(lab["id"])) for lab in m["labs"])
    assert everything == expected  # cheapest first, the id breaking the tie; no suspended, hardness or machine
    assert uuid.UUID(m["suspended"]["id"]) not in {i for _, i in everything}


async def test_a_rare_process_is_sorted_from_the_read_model(client: AsyncClient, db: AsyncSession) -> None:
    await _market(client, db)
    repo = ListingsRepository(db)
    assert await few_listings_serve(db, [TENSILE])
    plans = {}
    for driven in (True, False):
        stmt, sort_expr = repo.search_statement(SearchFilters(serving_codes=[TENSILE]), "price", from_read_model=driven)
        sql = (
            stmt.order_by(sort_expr)
            .limit(20)
            .compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        plans[driven] = "\n".join(r[0] for r in (await db.execute(sa.text(f"EXPLAIN {sql}"))).all())
    assert "matchable_assets" in plans[True], plans[True]
    assert "matchable_assets" not in plans[False], plans[False]


async def test_the_api_pages_tensile_labs_cheapest_first(client: AsyncClient, db: AsyncSession) -> None:
    m = await _market(client, db)
    got: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"process": TENSILE, "sort": "price", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get("/api/v1/assets", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        got += [item["id"] for item in body["items"]]
        cursor = body.get("next_cursor")
        if not cursor:
            break
    expected = [lab["id"] for lab in sorted(m["labs"], key=lambda lab: (lab["price_per_sample"], uuid.UUID(lab["id"])))]
    assert got == expected
