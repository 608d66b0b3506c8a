"""Quotes and counter-offers through the API: the full negotiation, who may do what, validation, labs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN, slot
from tests.factories import admin_headers, published_asset, signed_up


def request_body(kind: str = "machine", **overrides: Any) -> dict[str, Any]:
    """A request the factories' standard listings (tests/factories.py, at SUZHOU) can serve."""
    now = datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "kind": kind,
        "earliest_start": (now + timedelta(days=1)).isoformat(),
        "deadline": (now + timedelta(days=15)).isoformat(),
        "location": {"latitude": 31.3, "longitude": 120.6},
        "max_distance_km": 150,
        "currency": "CNY",
    }
    if kind == "machine":
        body.update(
            process_code="machining.milling.cnc_5axis",
            material="al_6061",
            duration_minutes=120,
            part_envelope_mm={"x": 300, "y": 200, "z": 100},
            tolerance_mm=0.05,
        )
    else:
        body.update(process_code="testing.mechanical.tensile", material="q235", samples=5)
    body.update(overrides)
    return body


def machine_quote(asset_id: str, hours_from_now: float = 48, amount: int = 50_000, **overrides: Any) -> dict[str, Any]:
    start, end = slot(hours_from_now)
    body: dict[str, Any] = {
        "asset_id": asset_id,
        "amount": amount,
        "currency": "CNY",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "valid_until": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        "note": "fixture included",
    }
    body.update(overrides)
    return body


def lab_day(weekdays: int = 3) -> str:
    """The ``weekdays``-th working day (Monday to Friday, when the test lab takes samples) after today in Shanghai:
    a plain day count failed whenever it landed on a weekend."""
    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    while weekdays:
        day += timedelta(days=1)
        weekdays -= day.weekday() < 5
    return day.isoformat()


async def post_request(client: AsyncClient, buyer: dict[str, str], **overrides: Any) -> str:
    resp = await client.post("/api/v1/requests", json=request_body(**overrides), headers=buyer)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def quote(client: AsyncClient, headers: dict[str, str], request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(f"/api/v1/requests/{request_id}/quotes", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    asset, supplier, _ = await published_asset(client, db, admin, weekly=ALWAYS_OPEN)
    asset2, supplier2, _ = await published_asset(client, db, admin, weekly=ALWAYS_OPEN)
    buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN")
    _third_reg, third = await signed_up(client, roles=("buyer", "supplier"), country="CN")
    return {
        "admin": admin,
        "asset": asset,
        "supplier": supplier,
        "asset2": asset2,
        "supplier2": supplier2,
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
        "third": third,
    }


async def _kinds(db: AsyncSession, org_id: str) -> list[str]:
    rows = await db.execute(
        sa.text(
            "SELECT n.kind FROM notifications n JOIN memberships m ON m.user_id = n.user_id "
            "WHERE m.org_id = :org ORDER BY n.created_at, n.kind"
        ),
        {"org": org_id},
    )
    return [r[0] for r in rows]


async def test_full_negotiation_quote_counter_counter_accept(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    buyer, supplier, supplier2 = market["buyer"], market["supplier"], market["supplier2"]
    rid = await post_request(client, buyer)
    first = await quote(client, supplier, rid, machine_quote(market["asset"]["id"]))
    assert first["status"] == "submitted" and first["version"] == 1 and first["latest_by"] == "supplier"
    assert first["buyer_org_id"] is None  # the supplier does not learn who the buyer is yet
    other = await quote(client, supplier2, rid, machine_quote(market["asset2"]["id"], amount=40_000))

    # The buyer sees both quotes (with its own id); each supplier only its own, without the buyer's id.
    listed = (await client.get(f"/api/v1/requests/{rid}/quotes", headers=buyer)).json()["items"]
    assert {q["id"] for q in listed} == {first["id"], other["id"]}
    assert all(q["buyer_org_id"] == market["buyer_org"] for q in listed)
    own = (await client.get(f"/api/v1/requests/{rid}/quotes", headers=supplier)).json()["items"]
    assert [q["id"] for q in own] == [first["id"]] and own[0]["buyer_org_id"] is None

    # Buyer counters (another slot, lower price), supplier counters back, buyer accepts.
    start, end = slot(50)
    countered = await client.post(
        f"/api/v1/quotes/{first['id']}/counter",
        json={"amount": 45_000, "start": start.isoformat(), "end": end.isoformat(), "note": "a bit cheaper?"},
        headers=buyer,
    )
    assert countered.status_code == 200, countered.text
    body = countered.json()
    assert (body["status"], body["version"], body["latest_by"], body["amount"]) == ("countered", 2, "buyer", 45_000)
    assert body["valid_until"] == first["valid_until"]  # defaults to the previous version's
    back = await client.post(
        f"/api/v1/quotes/{first['id']}/counter",
        json={"amount": 47_000, "start": start.isoformat(), "end": end.isoformat(), "note": "meet halfway"},
        headers=supplier,
    )
    assert back.status_code == 200, back.text
    assert [(v["number"], v["party"], v["amount"]) for v in back.json()["versions"]] == [
        (1, "supplier", 50_000),
        (2, "buyer", 45_000),
        (3, "supplier", 47_000),
    ]
    accepted = await client.post(f"/api/v1/quotes/{first['id']}/accept", headers=buyer)
    assert accepted.status_code == 201, accepted.text
    booking = accepted.json()
    assert booking["amount"] == 47_000 and booking["status"] == "held"
    assert datetime.fromisoformat(booking["start"]) == start and datetime.fromisoformat(booking["end"]) == end
    assert booking["buyer_org_id"] == market["buyer_org"] and booking["request_id"] == rid
    assert booking["your_role"] == "buyer" and booking["timeline"][0]["action"] == "book"

    stored = await db.execute(sa.text("SELECT quote_id FROM bookings WHERE id = :id"), {"id": booking["id"]})
    assert str(stored.scalar_one()) == first["id"]
    after = {q["id"]: q for q in (await client.get(f"/api/v1/requests/{rid}/quotes", headers=buyer)).json()["items"]}
    assert after[first["id"]]["status"] == "accepted" and after[other["id"]]["status"] == "closed"
    assert (await client.get(f"/api/v1/requests/{rid}", headers=buyer)).json()["status"] == "booked"
    # Every version stays visible to both parties; now accepted, the supplier sees the buyer.
    own = (await client.get(f"/api/v1/requests/{rid}/quotes", headers=supplier)).json()["items"]
    assert len(own[0]["versions"]) == 3 and own[0]["buyer_org_id"] == market["buyer_org"]
    # Closed quotes cannot be accepted any more.
    late = await client.post(f"/api/v1/quotes/{other['id']}/accept", headers=buyer)
    assert late.status_code == 409 and late.json()["error"] == "quote_not_open"

    supplier_org = market["asset"]["org_id"]
    assert await _kinds(db, market["buyer_org"]) == ["quote.submitted", "quote.submitted", "quote.countered"]
    assert [k for k in await _kinds(db, supplier_org) if k.startswith("quote.")] == [
        "quote.countered",
        "quote.accepted",
    ]
    assert "quote.closed" in await _kinds(db, market["asset2"]["org_id"])
    actions = await db.execute(
        sa.text("SELECT action FROM audit_log WHERE target_type = 'quote' AND target_id = :id ORDER BY id"),
        {"id": first["id"]},
    )
    assert [a[0] for a in actions] == ["quote.submitted", "quote.countered", "quote.countered", "quote.accepted"]


async def test_who_may_do_what(client: AsyncClient, market: dict[str, Any]) -> None:
    buyer, supplier, third = market["buyer"], market["supplier"], market["third"]
    rid = await post_request(client, buyer)
    q = await quote(client, supplier, rid, machine_quote(market["asset"]["id"]))
    url = f"/api/v1/quotes/{q['id']}"
    start, end = slot(48)
    terms = {"amount": 1000, "start": start.isoformat(), "end": end.isoformat()}

    # A third organisation sees nothing and can do nothing: 404 everywhere.
    assert (await client.get(f"/api/v1/requests/{rid}/quotes", headers=third)).status_code == 404
    assert (await client.get(f"/api/v1/requests/{rid}/quotes", headers=market["supplier2"])).status_code == 404
    for path, body in (("counter", terms), ("accept", None), ("decline", {"reason": "no"}), ("withdraw", None)):
        resp = await client.post(f"{url}/{path}", json=body, headers=third)
        assert resp.status_code == 404, (path, resp.text)
    # A supplier cannot quote with another organisation's listing, nor on a request that does not exist.
    stolen = await client.post(
        f"/api/v1/requests/{rid}/quotes", json=machine_quote(market["asset2"]["id"]), headers=supplier
    )
    assert stolen.status_code == 404
    missing = await client.post(
        "/api/v1/requests/00000000-0000-0000-0000-000000000000/quotes",
        json=machine_quote(market["asset"]["id"]),
        headers=supplier,
    )
    assert missing.status_code == 404
    # One open quote per request, supplier and listing.
    again = await client.post(
        f"/api/v1/requests/{rid}/quotes", json=machine_quote(market["asset"]["id"]), headers=supplier
    )
    assert again.status_code == 409 and again.json()["error"] == "quote_exists"

    # The supplier made the latest version: it may not accept, counter or decline it; the buyer may not withdraw.
    for path, body in (("accept", None), ("counter", terms), ("decline", {"reason": "no"})):
        resp = await client.post(f"{url}/{path}", json=body, headers=supplier)
        assert resp.status_code == 409 and resp.json()["error"] == "not_your_turn", (path, resp.text)
    refused = await client.post(f"{url}/withdraw", headers=buyer)
    assert refused.status_code == 409 and refused.json()["error"] == "not_your_turn"
    # The buyer counters; now the supplier may withdraw (the supplier may at any time while open).
    assert (await client.post(f"{url}/counter", json=terms, headers=buyer)).status_code == 200
    withdrawn = await client.post(f"{url}/withdraw", headers=supplier)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    for path, body in (("counter", terms), ("accept", None), ("withdraw", None)):
        resp = await client.post(f"{url}/{path}", json=body, headers=buyer)
        assert resp.status_code == 409 and resp.json()["error"] == "quote_not_open", (path, resp.text)

    # After a withdrawal the supplier may quote again; the buyer declines with a reason.
    fresh = await quote(client, supplier, rid, machine_quote(market["asset"]["id"], amount=60_000))
    assert (await client.post(f"/api/v1/quotes/{fresh['id']}/decline", json={}, headers=buyer)).status_code == 422
    declined = await client.post(
        f"/api/v1/quotes/{fresh['id']}/decline", json={"reason": "Over budget."}, headers=buyer
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined" and declined.json()["decline_reason"] == "Over budget."


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 0},
        {"amount": -5},
        {"currency": "USD"},
        {"valid_until": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
        {"valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat()},
        {"start": (datetime.now(UTC) + timedelta(days=20)).isoformat(), "end": None},
        {"drop_off_date": "2030-01-01", "samples": 3},
        {"start": None, "end": None, "drop_off_date": "2030-01-01", "samples": 3},
        {"surprise": 1},
        {"note": "bad\u0000note"},
        {"valid_until": "tomorrow"},
    ],
)
async def test_invalid_quotes_are_422(client: AsyncClient, market: dict[str, Any], overrides: dict[str, Any]) -> None:
    rid = await post_request(client, market["buyer"])
    body = {k: v for k, v in {**machine_quote(market["asset"]["id"]), **overrides}.items() if v is not None}
    resp = await client.post(f"/api/v1/requests/{rid}/quotes", json=body, headers=market["supplier"])
    assert resp.status_code == 422, resp.text
    assert set(resp.json()) >= {"error", "detail", "request_id"}


async def test_slots_outside_the_request_window_are_422(client: AsyncClient, market: dict[str, Any]) -> None:
    rid = await post_request(client, market["buyer"])
    for hours in (2, 24 * 16):  # before earliest_start (1 day ahead), after the deadline (15 days ahead)
        resp = await client.post(
            f"/api/v1/requests/{rid}/quotes",
            json=machine_quote(market["asset"]["id"], hours),
            headers=market["supplier"],
        )
        assert resp.status_code == 422, resp.text
    q = await quote(client, market["supplier"], rid, machine_quote(market["asset"]["id"]))
    start, end = slot(24 * 16)
    resp = await client.post(
        f"/api/v1/quotes/{q['id']}/counter",
        json={"amount": 1, "start": start.isoformat(), "end": end.isoformat()},
        headers=market["buyer"],
    )
    assert resp.status_code == 422, resp.text


async def test_lab_quote_countered_by_the_buyer_and_accepted_by_the_supplier(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    lab, lab_owner, _ = await published_asset(client, db, market["admin"], kind="lab_service")
    rid = await post_request(client, market["buyer"], kind="lab_service")
    body = {
        "asset_id": lab["id"],
        "amount": 70_000,
        "currency": "CNY",
        "drop_off_date": lab_day(3),
        "samples": 5,
        "valid_until": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    # Machine terms on a lab listing are refused.
    wrong = await client.post(f"/api/v1/requests/{rid}/quotes", json=machine_quote(lab["id"]), headers=lab_owner)
    assert wrong.status_code == 422, wrong.text
    q = await quote(client, lab_owner, rid, body)
    assert q["kind"] == "lab_service" and q["versions"][0]["samples"] == 5
    countered = await client.post(
        f"/api/v1/quotes/{q['id']}/counter",
        json={"amount": 65_000, "drop_off_date": lab_day(4), "samples": 6, "note": "one more sample"},
        headers=market["buyer"],
    )
    assert countered.status_code == 200, countered.text
    accepted = await client.post(f"/api/v1/quotes/{q['id']}/accept", headers=lab_owner)
    assert accepted.status_code == 201, accepted.text
    booking = accepted.json()
    assert booking["kind"] == "lab_service" and booking["amount"] == 65_000
    assert (booking["drop_off_date"], booking["samples"]) == (lab_day(4), 6)
    assert booking["buyer_org_id"] == market["buyer_org"] and booking["your_role"] == "supplier"
    assert [(e["action"], e["actor_kind"]) for e in booking["timeline"]] == [("book", "supplier")]
    assert (await client.get(f"/api/v1/requests/{rid}", headers=market["buyer"])).json()["status"] == "booked"


async def test_a_taken_slot_answers_409_and_the_quote_stays_open(client: AsyncClient, market: dict[str, Any]) -> None:
    rid = await post_request(client, market["buyer"])
    q = await quote(client, market["supplier"], rid, machine_quote(market["asset"]["id"], 48))
    start, end = slot(48)
    _other_reg, other_buyer = await signed_up(client, roles=("buyer",), country="CN")
    taken = await client.post(
        "/api/v1/bookings",
        headers={**other_buyer, "Idempotency-Key": "take-the-slot"},
        json={"asset_id": market["asset"]["id"], "start": start.isoformat(), "end": end.isoformat()},
    )
    assert taken.status_code == 201, taken.text
    refused = await client.post(f"/api/v1/quotes/{q['id']}/accept", headers=market["buyer"])
    assert refused.status_code == 409 and refused.json()["error"] == "slot_unavailable", refused.text
    listed = (await client.get(f"/api/v1/requests/{rid}/quotes", headers=market["buyer"])).json()["items"]
    assert listed[0]["status"] == "submitted"
    assert (await client.get(f"/api/v1/requests/{rid}", headers=market["buyer"])).json()["status"] == "open"


async def test_a_quoted_booking_is_confirmed_once_paid_without_a_second_acceptance(
    client: AsyncClient, db: AsyncSession, market: dict[str, Any]
) -> None:
    """The supplier agreed to the terms in its quote: accepting the invoice terms confirms the booking at once
    (the system accepts it on the timeline), and the supplier is not asked to accept it again."""
    buyer, supplier = market["buyer"], market["supplier"]
    rid = await post_request(client, buyer)
    offer = await quote(client, supplier, rid, machine_quote(market["asset"]["id"]))
    booking = (await client.post(f"/api/v1/quotes/{offer['id']}/accept", headers=buyer)).json()
    paid = await client.post(f"/api/v1/bookings/{booking['id']}/payment/accept-terms", headers=buyer)
    assert paid.status_code == 200, paid.text
    seen = (await client.get(f"/api/v1/bookings/{booking['id']}", headers=buyer)).json()
    assert seen["status"] == "confirmed"
    assert [(e["action"], e["to_status"]) for e in seen["timeline"]][-2:] == [
        ("pay", "requested"),
        ("accept", "confirmed"),
    ]
    supplier_kinds = await _kinds(db, market["asset"]["org_id"])
    assert "booking.requested" not in supplier_kinds
    assert "booking.confirmed" in await _kinds(db, market["buyer_org"])


async def test_control_a_booking_without_a_quote_still_waits_for_the_supplier(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    start, end = slot(72)
    made = await client.post(
        "/api/v1/bookings",
        json={"asset_id": market["asset"]["id"], "start": start.isoformat(), "end": end.isoformat()},
        headers={**market["buyer"], "Idempotency-Key": f"control-{start.timestamp()}"},
    )
    assert made.status_code == 201, made.text
    paid = await client.post(f"/api/v1/bookings/{made.json()['id']}/payment/accept-terms", headers=market["buyer"])
    assert paid.status_code == 200, paid.text
    seen = (await client.get(f"/api/v1/bookings/{made.json()['id']}", headers=market["buyer"])).json()
    assert seen["status"] == "requested"
