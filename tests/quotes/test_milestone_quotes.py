"""Quotes with payment milestones (issue #18 item 4): the accepted version's milestones become the booking's
schedule; the first is invoiced on confirmation, the middle ones when the supplier marks them reached (in order,
once), the last on completion; the booking then settles as a whole. Only the supplier marks milestones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from payments import ledger
from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import admin_headers, published_asset, signed_up
from tests.quotes.test_quotes_api import machine_quote, post_request, quote

AMOUNT = 50_001  # odd: the rounding of every instalment but the last shows
MILESTONES = [
    {"label": "Fixture made", "percent": 30},
    {"label": "First article approved", "percent": 40},
    {"label": "Lot delivered", "percent": 30},
]


async def _market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    asset, supplier, _ = await published_asset(client, db, admin, weekly=ALWAYS_OPEN)
    _buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN")
    _stranger_reg, stranger = await signed_up(client, roles=("buyer", "supplier"), country="CN")
    return {"admin": admin, "asset": asset, "supplier": supplier, "buyer": buyer, "stranger": stranger}


async def _invoices(db: AsyncSession, booking_id: str) -> list[tuple[int, int, str]]:
    rows = await db.execute(
        sa.text("SELECT instalment, total, status FROM invoices WHERE booking_id = :b ORDER BY instalment"),
        {"b": uuid.UUID(booking_id)},
    )
    return [(int(n), int(t), str(s)) for n, t, s in rows.all()]


async def _ok(client: AsyncClient, headers: dict[str, str], url: str, body: Any = None) -> dict[str, Any]:
    r = await client.post(f"/api/v1{url}", headers=headers, json=body)
    assert r.status_code in (200, 201), (url, r.text)
    out: dict[str, Any] = r.json()
    return out


async def _balanced(db: AsyncSession) -> None:
    assert (await ledger.trial_balance(db))["balanced"] is True


async def test_a_milestone_quote_is_invoiced_milestone_by_milestone_and_settles_whole(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _market(client, db)
    rid = await post_request(client, m["buyer"], earliest_start=datetime.now(UTC).isoformat())
    q = await quote(client, m["supplier"], rid, machine_quote(m["asset"]["id"], 3, AMOUNT, milestones=MILESTONES))
    assert q["milestones"] == MILESTONES and q["versions"][0]["milestones"] == MILESTONES

    booking = await _ok(client, m["buyer"], f"/quotes/{q['id']}/accept")
    first, second = 15_000, 20_000  # round half up of 50 001 x 30 % = 15 000.3 and x 40 % = 20 000.4
    amounts = [first, second, AMOUNT - first - second]
    expected = [
        {**ms, "n": n, "amount": a, "due": due, "invoiced": False}
        for n, (ms, a, due) in enumerate(
            zip(MILESTONES, amounts, ("confirmation", "milestone", "completion"), strict=True), 1
        )
    ]
    assert booking["instalments"] == expected
    assert await _invoices(db, booking["id"]) == []
    bid = booking["id"]
    reached = f"/api/v1/bookings/{bid}/milestones/2/reached"
    early = await client.post(reached, headers=m["supplier"])
    assert early.status_code == 409 and early.json()["error"] == "milestone_not_due"  # not confirmed yet

    # Accepting the terms confirms a quoted booking at once: the first milestone is invoiced.
    paid = await _ok(client, m["buyer"], f"/bookings/{bid}/payment/accept-terms")
    assert paid["status"] == "confirmed"
    assert await _invoices(db, bid) == [(1, first, "open")]
    await _balanced(db)

    for who in ("buyer", "stranger"):
        refused = await client.post(reached, headers=m[who])
        assert refused.status_code == (403 if who == "buyer" else 404), refused.text
    for n in (1, 3, 4):  # the deposit-like first, the completion one, one that does not exist
        wrong = await client.post(f"/api/v1/bookings/{bid}/milestones/{n}/reached", headers=m["supplier"])
        assert wrong.status_code == 409 and wrong.json()["error"] == "milestone_not_due", (n, wrong.text)

    marked = await _ok(client, m["supplier"], f"/bookings/{bid}/milestones/2/reached")
    assert marked["status"] == "confirmed" and [i["invoiced"] for i in marked["instalments"]] == [True, True, False]
    last = marked["timeline"][-1]
    assert (last["action"], last["reason"], last["from_status"], last["to_status"]) == (
        "milestone",
        "First article approved",
        "confirmed",
        "confirmed",
    )
    assert await _invoices(db, bid) == [(1, first, "open"), (2, second, "open")]
    again = await client.post(reached, headers=m["supplier"])
    assert again.status_code == 409 and again.json()["error"] == "milestone_not_due"
    assert len(await _invoices(db, bid)) == 2
    await _balanced(db)

    await _ok(client, m["supplier"], f"/bookings/{bid}/start")
    done = await _ok(client, m["supplier"], f"/bookings/{bid}/complete", {"reason": "ahead of the slot (test)"})
    assert all(i["invoiced"] for i in done["instalments"])
    assert await _invoices(db, bid) == [(1, first, "open"), (2, second, "open"), (3, AMOUNT - first - second, "open")]
    balances = await ledger.booking_balances(db, uuid.UUID(bid))
    assert balances[ledger.BUYER_RECEIVABLE] == AMOUNT and balances[ledger.FUNDS_HELD] == -AMOUNT
    await _balanced(db)

    await _ok(client, m["buyer"], f"/bookings/{bid}/confirm")
    fee = ledger.commission(AMOUNT, 800)
    balances = await ledger.booking_balances(db, uuid.UUID(bid))
    assert balances[ledger.SUPPLIER_PAYABLE] == -(AMOUNT - fee) and balances.get(ledger.FUNDS_HELD, 0) == 0
    assert [s for _, _, s in await _invoices(db, bid)] == ["closed"] * 3
    await _balanced(db)


async def test_milestones_must_be_2_to_6_summing_to_100_and_a_counter_may_change_them(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _market(client, db)
    rid = await post_request(client, m["buyer"])
    bad = [
        [{"label": "All", "percent": 100}],
        [{"label": "A", "percent": 50}, {"label": "B", "percent": 40}],
        [{"label": "", "percent": 50}, {"label": "B", "percent": 50}],
        [{"label": "A", "percent": 0}, {"label": "B", "percent": 100}],
        [{"label": f"M{i}", "percent": 10} for i in range(7)] + [{"label": "rest", "percent": 30}],
    ]
    for milestones in bad:
        body = machine_quote(m["asset"]["id"], 48, AMOUNT, milestones=milestones)
        r = await client.post(f"/api/v1/requests/{rid}/quotes", json=body, headers=m["supplier"])
        assert r.status_code == 422, (milestones, r.text)
    q = await quote(client, m["supplier"], rid, machine_quote(m["asset"]["id"], 48, AMOUNT, milestones=MILESTONES))
    terms = {k: v for k, v in machine_quote(m["asset"]["id"], 48, AMOUNT).items() if k in ("amount", "start", "end")}
    halves = [{"label": "Half now", "percent": 50}, {"label": "Half on delivery", "percent": 50}]
    countered = await _ok(client, m["buyer"], f"/quotes/{q['id']}/counter", {**terms, "milestones": halves})
    assert countered["milestones"] == halves and countered["versions"][0]["milestones"] == MILESTONES
    plain = await _ok(client, m["supplier"], f"/quotes/{q['id']}/counter", terms)
    assert plain["milestones"] is None  # a counter without milestones drops them
    booking = await _ok(client, m["buyer"], f"/quotes/{q['id']}/accept")
    assert booking["instalments"] is None
