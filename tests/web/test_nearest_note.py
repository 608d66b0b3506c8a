"""A buyer whose request more listings can serve than matching ranks is told, in their language, that only the
nearest ones were ranked (matching.prefilter.NEAREST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from matching.prefilter import NEAREST
from tests.factories import invoiced_market, web_sign_in

# Copies of one listing under new ids, each on a site of its own a little further east (the read model's triggers
# add them as the API would).
_CLONE = """
WITH copies AS (
    SELECT s.*, n FROM sites s, generate_series(1, :n) AS n WHERE s.id = :site
), new_sites AS (
    INSERT INTO sites SELECT (jsonb_populate_record(NULL::sites, to_jsonb(c) - 'n' || jsonb_build_object(
        'id', md5(c.id::text || c.n)::uuid, 'longitude', c.longitude + c.n * 0.001))).* FROM copies c
    RETURNING id
)
INSERT INTO assets SELECT (jsonb_populate_record(NULL::assets, to_jsonb(a) || jsonb_build_object(
    'id', gen_random_uuid(), 'site_id', md5(a.site_id::text || n)::uuid))).*
FROM assets a, generate_series(1, :n) AS n WHERE a.id = :asset
"""


async def _page(client: AsyncClient, email: str, url: str, locale: str) -> str:
    await web_sign_in(client, email, locale=locale)
    page = await client.get(url)
    assert page.status_code == 200, page.text
    return page.text


async def test_the_request_page_says_when_only_the_nearest_listings_were_ranked(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db, bookings=0)
    asset = m["asset"]
    site = (
        await db.execute(sa.text("SELECT latitude, longitude FROM sites WHERE id = :id"), {"id": asset["site_id"]})
    ).one()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    req = await client.post(
        "/api/v1/requests",
        headers=m["buyer"],
        json={
            "kind": "machine",
            "process_code": asset["process_codes"][0],
            "quantity": 1,
            "duration_minutes": 120,
            "earliest_start": (now + timedelta(days=1)).isoformat(),
            "deadline": (now + timedelta(days=20)).isoformat(),
            "currency": "CNY",
            "location": {"latitude": site.latitude, "longitude": site.longitude},
        },
    )
    assert req.status_code == 201, req.text
    url = f"/buyer/{m['buyer_org']}/requests/{req.json()['id']}"
    # The control: one listing serves the request, so everything that passes is ranked and nothing is said.
    few = await _page(client, m["buyer_reg"]["email"], url, "en")
    assert 'id="nearest-note"' not in few and "results" in few

    await db.execute(sa.text(_CLONE), {"n": NEAREST, "site": asset["site_id"], "asset": asset["id"]})
    api = await client.get(f"/api/v1/requests/{req.json()['id']}/matches", headers=m["buyer"])
    assert api.status_code == 200, api.text
    assert api.json()["nearest"] == NEAREST and api.json()["prefiltered"] == NEAREST

    en = await _page(client, m["buyer_reg"]["email"], url, "en")
    assert f"Only the {NEAREST:,} listings nearest to you that offer this process were checked and ranked." in en
    zh = await _page(client, m["buyer_reg"]["email"], url, "zh-CN")
    assert f"仅核查并排序了提供该工艺、离您最近的 {NEAREST:,} 项产能。" in zh
