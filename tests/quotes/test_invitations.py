"""Quote requests (invitations): the buyer asks a factory from its matches, the factory declines or quotes,
strangers see nothing; and the interface the quotes and messages rooms call (may_see, may_quote, on_quoted)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from marketplace.quotes import invitations
from marketplace.requests.models import BuyerRequest
from tests.quotes.test_invitations_helpers import build, post_request


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    return await build(client, db)


async def notes(db: AsyncSession, org_id: str, kind: str) -> list[tuple[str, str, str]]:
    rows = await db.execute(
        sa.text(
            "SELECT n.locale, n.subject, n.body FROM notifications n JOIN memberships m ON m.user_id = n.user_id "
            "WHERE m.org_id = :org AND n.kind = :kind"
        ),
        {"org": org_id, "kind": kind},
    )
    return [tuple(r) for r in rows.all()]


async def _invite(client: AsyncClient, market: dict[str, Any], request_id: str, asset: str) -> Any:
    return await client.post(
        f"/api/v1/requests/{request_id}/invitations", json={"asset_id": market[asset]["id"]}, headers=market["buyer"]
    )


async def test_the_buyer_invites_a_match_and_the_factory_is_notified(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"])
    resp = await _invite(client, market, req["id"], "dear")
    assert resp.status_code == 201, resp.text
    inv = resp.json()
    assert inv["status"] == "invited" and inv["via"] == "buyer" and inv["rank"] == 2
    assert inv["request_id"] == req["id"] and inv["asset_id"] == market["dear"]["id"]
    assert inv["supplier_org_id"] == market["dear"]["org_id"]
    invited_at, respond_by = datetime.fromisoformat(inv["invited_at"]), datetime.fromisoformat(inv["respond_by"])
    assert respond_by - invited_at == timedelta(hours=48)

    sent = await notes(db, market["dear"]["org_id"], "quote.invited")
    assert len(sent) == 1
    _locale, subject, body = sent[0]
    assert "DMG 3-axis" in body and "machining." not in subject + body
    buyer_name = (
        await db.execute(sa.text("SELECT name FROM organisations WHERE id = :id"), {"id": market["buyer_org"]})
    ).scalar_one()
    assert buyer_name not in body
    timer = (
        await db.execute(
            sa.text("SELECT due_at - created_at FROM outbox WHERE task = 'quotes.invitation_lapse' AND args->>0 = :id"),
            {"id": inv["id"]},
        )
    ).scalar_one()
    assert abs(timer - timedelta(hours=48)) < timedelta(minutes=1)

    listed = await client.get(f"/api/v1/requests/{req['id']}/invitations", headers=market["buyer"])
    assert listed.status_code == 200 and listed.json()["items"] == [inv]
    again = await _invite(client, market, req["id"], "dear")
    assert again.status_code == 409 and set(again.json()) >= {"error", "detail", "request_id"}


async def test_only_a_listing_among_the_matches_can_be_invited(client: AsyncClient, market: dict[str, Any]) -> None:
    req = await post_request(client, market["buyer"], tolerance_mm=0.015)  # finer than either mill
    for asset_id in (market["cheap"]["id"], str(uuid.uuid4())):
        resp = await client.post(
            f"/api/v1/requests/{req['id']}/invitations", json={"asset_id": asset_id}, headers=market["buyer"]
        )
        assert resp.status_code == 422 and "matches" in resp.json()["detail"], resp.text
    bad = await client.post(f"/api/v1/requests/{req['id']}/invitations", json={"asset": "x"}, headers=market["buyer"])
    assert bad.status_code == 422


async def test_strangers_get_404(client: AsyncClient, market: dict[str, Any]) -> None:
    req = await post_request(client, market["buyer"])
    assert (await _invite(client, market, req["id"], "cheap")).status_code == 201
    url = f"/api/v1/requests/{req['id']}"
    for headers in (market["stranger"], market["cheap_owner"], market["dear_owner"]):
        assert (await client.get(f"{url}/invitations", headers=headers)).status_code == 404
        posted = await client.post(f"{url}/invitations", json={"asset_id": market["cheap"]["id"]}, headers=headers)
        assert posted.status_code == 404
    for headers in (market["stranger"], market["dear_owner"], market["buyer"]):
        declined = await client.post(f"{url}/invitation/decline", json={"reason": "no"}, headers=headers)
        assert declined.status_code == 404, declined.text
    missing = await client.post(
        f"/api/v1/requests/{uuid.uuid4()}/invitation/decline", json={"reason": "no"}, headers=market["cheap_owner"]
    )
    assert missing.status_code == 404


async def test_the_factory_declines_and_the_buyer_hears_why(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"])
    assert (await _invite(client, market, req["id"], "cheap")).status_code == 201
    url = f"/api/v1/requests/{req['id']}/invitation/decline"
    assert (await client.post(url, json={}, headers=market["cheap_owner"])).status_code == 422
    resp = await client.post(url, json={"reason": "Fully booked that week"}, headers=market["cheap_owner"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "declined" and resp.json()["reason"] == "Fully booked that week"
    assert resp.json()["answered_at"] is not None
    again = await client.post(url, json={"reason": "again"}, headers=market["cheap_owner"])
    assert again.status_code == 409
    told = await notes(db, market["buyer_org"], "quote.invitation_declined")
    assert len(told) == 1 and "Fully booked that week" in told[0][2]
    listed = (await client.get(f"/api/v1/requests/{req['id']}/invitations", headers=market["buyer"])).json()
    assert [i["status"] for i in listed["items"]] == ["declined"]
    # Both steps are in the audit log on the request: who asked, who declined and why.
    audited = await db.execute(
        sa.text(
            "SELECT action, actor_user_id IS NOT NULL, reason FROM audit_log "
            "WHERE target_type = 'request' AND target_id = :id ORDER BY id"
        ),
        {"id": req["id"]},
    )
    assert [tuple(r) for r in audited] == [
        ("request.invited", True, None),
        ("request.invitation_declined", True, "Fully booked that week"),
    ]


async def _rows(db: AsyncSession, request_id: str, *asset_ids: str) -> tuple[BuyerRequest, list[Asset]]:
    request = await db.get(BuyerRequest, uuid.UUID(request_id), populate_existing=True)
    assert request is not None
    assets = [await db.get(Asset, uuid.UUID(a)) for a in asset_ids]
    return request, [a for a in assets if a is not None]


async def test_may_see_and_may_quote_for_an_open_request(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"])
    request, (cheap, dear) = await _rows(db, req["id"], market["cheap"]["id"], market["dear"]["id"])
    cheap_org, buyer_org = cheap.org_id, uuid.UUID(market["buyer_org"])
    assert await invitations.may_see(db, request=request, supplier_org_id=cheap_org)
    assert not await invitations.may_see(db, request=request, supplier_org_id=buyer_org)
    assert await invitations.may_quote(db, request=request, supplier_org_id=cheap_org, asset=cheap)
    assert not await invitations.may_quote(db, request=request, supplier_org_id=cheap_org, asset=dear)  # not its own

    unserved = await post_request(client, market["buyer"], material="ti_tc4")
    request2, _ = await _rows(db, unserved["id"])
    assert not await invitations.may_see(db, request=request2, supplier_org_id=cheap_org)
    assert not await invitations.may_quote(db, request=request2, supplier_org_id=cheap_org, asset=cheap)

    # Quoting from the board is recorded: the board says so, and the buyer's invitation list stays empty.
    await invitations.on_quoted(db, request_id=request.id, supplier_org_id=cheap_org)
    await invitations.on_quoted(db, request_id=request.id, supplier_org_id=cheap_org)  # idempotent
    await db.commit()
    board = (await client.get("/api/v1/opportunities", headers=market["cheap_owner"])).json()["items"]
    assert [(o["request_id"], o["quoted"], o["invited"]) for o in board] == [(req["id"], True, False)]
    listed = (await client.get(f"/api/v1/requests/{req['id']}/invitations", headers=market["buyer"])).json()
    assert listed["items"] == []


async def test_may_see_an_invited_only_request_needs_an_invitation_until_it_closes(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    req = await post_request(client, market["buyer"], audience="invited")
    request, (cheap,) = await _rows(db, req["id"], market["cheap"]["id"])
    assert not await invitations.may_see(db, request=request, supplier_org_id=cheap.org_id)
    assert not await invitations.may_quote(db, request=request, supplier_org_id=cheap.org_id, asset=cheap)
    assert (await _invite(client, market, req["id"], "cheap")).status_code == 201
    assert await invitations.may_see(db, request=request, supplier_org_id=cheap.org_id)
    assert await invitations.may_quote(db, request=request, supplier_org_id=cheap.org_id, asset=cheap)

    await invitations.on_quoted(db, request_id=request.id, supplier_org_id=cheap.org_id)
    await db.commit()
    listed = (await client.get(f"/api/v1/requests/{req['id']}/invitations", headers=market["buyer"])).json()
    assert [i["status"] for i in listed["items"]] == ["quoted"]

    # A closed request's waiting invitations are withdrawn at once (no sweep); a withdrawn one sees nothing.
    other = await post_request(client, market["buyer"], audience="invited")
    assert (await _invite(client, market, other["id"], "dear")).status_code == 201
    assert (await client.post(f"/api/v1/requests/{other['id']}/cancel", headers=market["buyer"])).status_code == 200
    request3, (dear,) = await _rows(db, other["id"], market["dear"]["id"])
    listed = (await client.get(f"/api/v1/requests/{other['id']}/invitations", headers=market["buyer"])).json()
    assert [i["status"] for i in listed["items"]] == ["withdrawn"]
    assert not await invitations.may_see(db, request=request3, supplier_org_id=dear.org_id)
