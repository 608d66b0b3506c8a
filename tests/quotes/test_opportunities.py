"""The factories' job board: what a verified supplier sees, and everything it must not see."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import signed_up
from tests.quotes.test_invitations_helpers import build, post_request


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    return await build(client, db)


async def _board(client: AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/opportunities", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_a_verified_supplier_sees_a_matching_open_request_without_the_buyer(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"], nda_required=True)
    page = await _board(client, market["cheap_owner"])
    assert [o["request_id"] for o in page["items"]] == [req["id"]]
    item = page["items"][0]
    assert item["process_code"] == "machining.milling.cnc_3axis" and item["quantity"] == 50
    assert item["nda_required"] is True and item["invited"] is False and item["invitation"] is None
    assert item["quoted"] is False
    assert [(f["asset_id"], f["title"]) for f in item["listings"]] == [(market["cheap"]["id"], "Haas VF-2")]
    assert item["listings"][0]["distance_km"] == 0.0  # rounded to 10 km
    # Never who asks: no buyer organisation, no buyer site, no exact location.
    assert not {"buyer_org_id", "site_id", "location", "latitude", "longitude", "created_by"} & set(item)
    assert market["buyer_org"] not in str(page)


async def test_requests_no_listing_can_serve_and_closed_requests_are_hidden(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    await post_request(client, market["buyer"], material="ti_tc4")  # neither mill offers titanium
    await post_request(client, market["buyer"], tolerance_mm=0.005)  # finer than either mill
    closed = await post_request(client, market["buyer"])
    resp = await client.post(f"/api/v1/requests/{closed['id']}/cancel", headers=market["buyer"])
    assert resp.status_code == 200, resp.text
    assert (await _board(client, market["cheap_owner"]))["items"] == []


async def test_an_invited_only_request_shows_only_to_the_invited_factory(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"], audience="invited")
    for owner in ("cheap_owner", "dear_owner"):
        assert (await _board(client, market[owner]))["items"] == [], owner
    invited = await client.post(
        f"/api/v1/requests/{req['id']}/invitations", json={"asset_id": market["dear"]["id"]}, headers=market["buyer"]
    )
    assert invited.status_code == 201, invited.text
    assert (await _board(client, market["cheap_owner"]))["items"] == []
    items = (await _board(client, market["dear_owner"]))["items"]
    assert [o["request_id"] for o in items] == [req["id"]]
    assert items[0]["invited"] is True
    assert items[0]["invitation"] == {
        "id": invited.json()["id"],
        "status": "invited",
        "respond_by": invited.json()["respond_by"],
    }


async def test_an_unverified_organisation_sees_nothing(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    await post_request(client, market["buyer"])
    assert len((await _board(client, market["cheap_owner"]))["items"]) == 1
    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'pending' WHERE id = :id"),
        {"id": market["cheap"]["org_id"]},
    )
    await db.commit()
    assert (await _board(client, market["cheap_owner"]))["items"] == []


async def test_the_board_is_paged_newest_first(client: AsyncClient, market: dict[str, Any]) -> None:
    ids = [(await post_request(client, market["buyer"], quantity=q))["id"] for q in (1, 2, 3)]
    first = await _board(client, market["cheap_owner"], limit=2)
    assert [o["request_id"] for o in first["items"]] == ids[::-1][:2]
    assert first["next_cursor"]
    second = await _board(client, market["cheap_owner"], limit=2, cursor=first["next_cursor"])
    assert [o["request_id"] for o in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_who_may_ask_for_the_board(client: AsyncClient, market: dict[str, Any]) -> None:
    assert (await client.get("/api/v1/opportunities")).status_code == 401
    _reg, buyer_only = await signed_up(client, roles=("buyer",), country="CN")
    resp = await client.get("/api/v1/opportunities", headers=buyer_only)
    assert resp.status_code == 422 and "supplier" in resp.json()["detail"]
    other = await client.get(
        "/api/v1/opportunities", params={"org_id": market["dear"]["org_id"]}, headers=market["cheap_owner"]
    )
    assert other.status_code == 404 and set(other.json()) >= {"error", "detail", "request_id"}
    own = await client.get(
        "/api/v1/opportunities", params={"org_id": market["cheap"]["org_id"]}, headers=market["cheap_owner"]
    )
    assert own.status_code == 200
