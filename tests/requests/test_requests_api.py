"""Buyer requests, matches, supplier views, batch suggestions and the request lifecycle through the API."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.core.pagination import encode_cursor
from marketplace.requests import service
from tests.bookings.helpers import ALWAYS_OPEN, slot
from tests.factories import SUZHOU, admin_headers, published_asset, signed_up

MILL: dict[str, Any] = {
    "process_codes": ["machining.milling.cnc_3axis"],
    "materials": ["al_6061", "ss_304"],
    "envelope_mm": {"x": 1000, "y": 600, "z": 300},
    "tolerance_mm": 0.02,
    "hourly_rate": 12000,
    "setup_fee": 5000,
    "title": "Haas VF-2",
    "weekly": ALWAYS_OPEN,
}


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def request_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "kind": "machine",
        "process_code": "machining.milling.cnc_3axis",
        "material": "al_6061",
        "quantity": 50,
        "duration_minutes": 240,
        "part_envelope_mm": {"x": 300, "y": 200, "z": 100},
        "tolerance_mm": 0.05,
        "required_certificates": [],
        "earliest_start": _iso(now + timedelta(days=1)),
        "deadline": _iso(now + timedelta(days=15)),
        "location": {"latitude": 31.3, "longitude": 120.6},
        "max_distance_km": 150,
        "region_prefixes": [],
        "budget_max": 500000,
        "currency": "CNY",
        "weights": {"price": 0.4, "distance": 0.2, "start": 0.2, "quality": 0.2},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    good, good_owner, _ = await published_asset(client, db, admin, site=SUZHOU, **MILL)
    coarse, _, _ = await published_asset(client, db, admin, site=SUZHOU, **{**MILL, "tolerance_mm": 0.1})
    buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN")
    _other_reg, other = await signed_up(client, roles=("buyer",), country="CN")
    return {
        "admin": admin,
        "good": good,
        "good_owner": good_owner,
        "coarse": coarse,
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
        "other": other,
    }


async def _post(client: AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/requests", json=request_body(**overrides), headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_the_request_list_rejects_a_malformed_keyset_cursor_with_a_400(client: AsyncClient) -> None:
    _, headers = await signed_up(client)
    for cursor in ("%%%garbage", encode_cursor([]), encode_cursor(["yesterday", str(uuid.uuid4())])):
        bad = await client.get("/api/v1/requests", params={"cursor": cursor}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request", cursor
        assert bad.json()["detail"] == "Malformed cursor.", cursor
    good = encode_cursor([datetime.now(UTC).isoformat(), str(uuid.uuid4())])
    assert (await client.get("/api/v1/requests", params={"cursor": good}, headers=headers)).status_code == 200


async def test_post_read_list_and_match_a_request(client: AsyncClient, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    assert created["status"] == "open" and uuid.UUID(created["id"])
    assert created["buyer_org_id"] == market["buyer_org"]

    got = await client.get(f"/api/v1/requests/{created['id']}", headers=market["buyer"])
    assert got.status_code == 200 and got.json()["part_envelope_mm"] == {"x": 300, "y": 200, "z": 100}
    listed = await client.get("/api/v1/requests?status=open", headers=market["buyer"])
    assert [r["id"] for r in listed.json()["items"]] == [created["id"]]
    assert (await client.get("/api/v1/requests?status=booked", headers=market["buyer"])).json()["items"] == []

    resp = await client.get(
        f"/api/v1/requests/{created['id']}/matches?limit=20&explain_rejections=true", headers=market["buyer"]
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ids = [m["asset_id"] for m in body["items"]]
    assert ids == [market["good"]["id"]]
    assert body["rejections"].get("tolerance") == 1
    top = body["items"][0]
    assert top["price"] == {
        "amount": 12000 * 4 + 5000,
        "currency": "CNY",
        "breakdown": {"work": 48000, "setup_fee": 5000, "billed_minutes": 240, "samples": None},
    }
    start, end = datetime.fromisoformat(top["slot"]["start"]), datetime.fromisoformat(top["slot"]["end"])
    assert end - start == timedelta(minutes=240)
    assert start >= datetime.fromisoformat(created["earliest_start"])
    assert top["distance_km"] < 5
    components = {c["component"] for c in top["explanation"]}
    assert components == {"price", "distance", "start", "quality", "idle"}
    assert math.isclose(sum(c["contribution"] for c in top["explanation"]), top["score"], abs_tol=1e-9)


async def test_another_organisation_cannot_see_a_request(client: AsyncClient, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    for path in ("", "/matches", "/suggestion"):
        resp = await client.get(f"/api/v1/requests/{created['id']}{path}", headers=market["other"])
        assert resp.status_code == 404, path
        assert set(resp.json()) >= {"error", "detail", "request_id"}
    assert (await client.post(f"/api/v1/requests/{created['id']}/cancel", headers=market["other"])).status_code == 404
    patched = await client.patch(f"/api/v1/requests/{created['id']}", json={"quantity": 2}, headers=market["other"])
    assert patched.status_code == 404
    assert (await client.get("/api/v1/requests", headers=market["other"])).json()["items"] == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"earliest_start": "2027-03-15T00:00:00+08:00", "deadline": "2027-03-01T00:00:00+08:00"}, "deadline"),
        ({"process_code": "machining.milling.warp_drive"}, "process"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"earliest_start": "2027-03-01T00:00:00", "deadline": "2027-03-15T00:00:00"}, "timezone"),
        ({"weights": {"price": -0.1, "distance": 0.2, "start": 0.2, "quality": 0.2}}, "weights"),
        ({"weights": {"price": 0, "distance": 0, "start": 0, "quality": 0}}, "weight"),
        ({"kind": "lab_service", "process_code": "testing.mechanical.tensile"}, "samples"),
        ({"location": None}, "location"),
        ({"currency": "cny"}, "currency"),
    ],
)
async def test_bad_requests_are_rejected(
    client: AsyncClient, market: dict[str, Any], overrides: dict[str, Any], fragment: str
) -> None:
    resp = await client.post("/api/v1/requests", json=request_body(**overrides), headers=market["buyer"])
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "validation_error" and body["request_id"] is not None
    assert fragment in body["detail"].lower()


async def test_only_buyer_organisations_post_but_anyone_signed_in_can_preview(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    denied = await client.post("/api/v1/requests", json=request_body(), headers=market["good_owner"])
    assert denied.status_code == 422
    preview = await client.post(
        "/api/v1/matches/preview?explain_rejections=true", json=request_body(), headers=market["good_owner"]
    )
    assert preview.status_code == 200, preview.text
    assert [m["asset_id"] for m in preview.json()["items"]] == [market["good"]["id"]]
    assert preview.json()["rejections"] == {"tolerance": 1}
    assert (await client.post("/api/v1/matches/preview", json=request_body())).status_code == 401
    # Nothing was saved.
    assert (await client.get("/api/v1/requests", headers=market["buyer"])).json()["items"] == []


async def test_patch_and_cancel(client: AsyncClient, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    url = f"/api/v1/requests/{created['id']}"
    patched = await client.patch(url, json={"tolerance_mm": 0.2}, headers=market["buyer"])
    assert patched.status_code == 200, patched.text
    assert patched.json()["tolerance_mm"] == 0.2
    matches = (await client.get(f"{url}/matches", headers=market["buyer"])).json()["items"]
    assert {m["asset_id"] for m in matches} == {market["good"]["id"], market["coarse"]["id"]}
    bad = await client.patch(url, json={"deadline": "2020-01-01T00:00:00+00:00"}, headers=market["buyer"])
    assert bad.status_code == 422
    cancelled = await client.post(f"{url}/cancel", headers=market["buyer"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await client.patch(url, json={"quantity": 3}, headers=market["buyer"])).status_code == 409


async def test_supplier_sees_the_requests_an_asset_can_serve(client: AsyncClient, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    await _post(client, market["buyer"], material="ti_tc4")  # the mill does not offer titanium
    good = market["good"]["id"]
    resp = await client.get(f"/api/v1/assets/{good}/matching-requests", headers=market["good_owner"])
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [i["request"]["id"] for i in items] == [created["id"]]
    assert items[0]["price"]["amount"] == 53000
    assert (await client.get(f"/api/v1/assets/{good}/matching-requests", headers=market["buyer"])).status_code == 404
    coarse = market["coarse"]["id"]
    owner_of_coarse = await client.get(f"/api/v1/assets/{coarse}/matching-requests", headers=market["good_owner"])
    assert owner_of_coarse.status_code == 404


async def test_suggestion_after_an_admin_batch(
    client: AsyncClient, market: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from marketplace.requests.tasks import run_batch_plan_job

    created = await _post(client, market["buyer"])
    url = f"/api/v1/requests/{created['id']}/suggestion"
    assert (await client.get(url, headers=market["buyer"])).status_code == 404
    now = datetime.now(UTC)
    body = {"horizon_start": _iso(now), "horizon_end": _iso(now + timedelta(days=30)), "objective": "hours"}
    assert (await client.post("/api/v1/admin/matching/batch", json=body, headers=market["buyer"])).status_code == 403
    resp = await client.post("/api/v1/admin/matching/batch", json=body, headers=market["admin"])
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "queued"
    # The job a worker runs (tests/requests/test_batch_job.py runs it in a real worker).
    assert await run_batch_plan_job(sessionmaker, plan_id=uuid.UUID(resp.json()["id"])) == "done"
    got_plan = await client.get(resp.headers["location"], headers=market["admin"])
    assert got_plan.status_code == 200, got_plan.text
    plan = got_plan.json()
    assert plan["status"] == "done"
    assert plan["method"] in ("milp", "greedy") and plan["requests"] == 1
    assert [a["request_id"] for a in plan["assignments"]] == [created["id"]]
    assert plan["matched_hours"] == 4.0 and plan["objective"] <= plan["bound"] + 1e-6
    got = await client.get(url, headers=market["buyer"])
    assert got.status_code == 200, got.text
    assert got.json()["asset_id"] == market["good"]["id"]
    assert got.json()["plan_id"] == plan["id"]


async def test_booking_with_request_id_marks_the_request_booked(client: AsyncClient, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    start, end = slot(30, minutes=240)

    async def book(request_id: str, key: str) -> Any:
        return await client.post(
            "/api/v1/bookings",
            headers={**market["buyer"], "Idempotency-Key": key},
            json={"asset_id": market["good"]["id"], "start": _iso(start), "end": _iso(end), "request_id": request_id},
        )

    unknown = await book(str(uuid.uuid4()), "k1")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "Request not found."
    foreign = await _post(client, market["other"])
    assert (await book(foreign["id"], "k2")).status_code == 404
    ok = await book(created["id"], "k3")
    assert ok.status_code == 201, ok.text
    got = await client.get(f"/api/v1/requests/{created['id']}", headers=market["buyer"])
    assert got.json()["status"] == "booked"
    assert (await client.get("/api/v1/requests?status=booked", headers=market["buyer"])).json()["items"]


async def test_expiry_job_marks_past_deadline_requests_expired(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    created = await _post(client, market["buyer"])
    keep = await _post(client, market["buyer"])
    past = datetime.now(UTC) - timedelta(hours=1)
    await db.execute(
        sa.text("UPDATE requests SET earliest_start = :s, deadline = :d WHERE id = :id"),
        {"s": past - timedelta(days=1), "d": past, "id": created["id"]},
    )
    assert await service.expire_due(db) == 1
    await db.commit()
    assert (await client.get(f"/api/v1/requests/{created['id']}", headers=market["buyer"])).json()[
        "status"
    ] == "expired"
    assert (await client.get(f"/api/v1/requests/{keep['id']}", headers=market["buyer"])).json()["status"] == "open"


async def test_notification_jobs(client: AsyncClient, db: AsyncSession, market: dict[str, Any]) -> None:
    created = await _post(client, market["buyer"])
    await _notifications(client, db, market, created)


async def _notifications(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any], created: dict[str, Any]
) -> None:
    assert await service.notify_suppliers(db, uuid.UUID(created["id"])) == 1
    assert await service.notify_suppliers(db, uuid.UUID(created["id"])) == 0  # idempotent
    kinds = (
        await db.execute(
            sa.text(
                "SELECT n.kind FROM notifications n JOIN memberships m ON m.user_id = n.user_id"
                " WHERE m.org_id = :org AND n.kind = 'request.matched'"
            ),
            {"org": market["good"]["org_id"]},
        )
    ).scalars()
    assert list(kinds) == ["request.matched"]
    # A newly published listing tells the buyer about it.
    admin = market["admin"]
    fresh, _, _ = await published_asset(client, db, admin, site=SUZHOU, **MILL)
    assert await service.notify_buyers(db, uuid.UUID(fresh["id"])) == 1
    assert await service.notify_buyers(db, uuid.UUID(fresh["id"])) == 0  # idempotent: the job may come twice
    count = (
        await db.execute(
            sa.text(
                "SELECT count(*) FROM notifications n JOIN memberships m ON m.user_id = n.user_id"
                " WHERE m.org_id = :org AND n.kind = 'capacity.published'"
            ),
            {"org": market["buyer_org"]},
        )
    ).scalar_one()
    assert count == 1
