"""Deposits (issue #18 item 4) on the invoice path: a listing asks 30 % on confirmation and the balance on
completion. Nothing is invoiced when booked; the deposit is invoiced when the supplier accepts, the balance when
the work is completed; a cancellation applies the policy band to the deposit only; payouts wait for settlement;
the ledger balances at every step. An unscheduled booking is placed exactly as before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from payments import ledger
from tests.bookings.helpers import book, market, slot
from tests.vouchers.conftest import china_today, listing, voucher_market

AMOUNT = 30000 * 2 + 20000  # 2 h at 300.00 + setup 200.00
DEPOSIT = 24000  # 30 %
BALANCE = AMOUNT - DEPOSIT


async def _trial(db: AsyncSession) -> None:
    trial = await ledger.trial_balance(db)
    assert trial["balanced"] is True
    for cur in trial["currencies"].values():
        assert sum(a["balance"] for a in cur["accounts"]) == 0


async def _invoices(db: AsyncSession, booking_id: str) -> list[dict[str, Any]]:
    rows = await db.execute(
        sa.text(
            "SELECT id, instalment, total, status, number, line_items FROM invoices WHERE booking_id = :b"
            " ORDER BY instalment"
        ),
        {"b": uuid.UUID(booking_id)},
    )
    return [dict(r) for r in rows.mappings()]


async def _post(client: AsyncClient, headers: dict[str, str], url: str, body: Any = None) -> dict[str, Any]:
    r = await client.post(f"/api/v1{url}", headers=headers, json=body)
    assert r.status_code in (200, 201), (url, r.text)
    out: dict[str, Any] = r.json()
    return out


async def _confirmed(client: AsyncClient, m: dict[str, Any], hours: float) -> dict[str, Any]:
    """A deposit booking starting in about ``hours``, its terms accepted by the buyer and accepted by the supplier."""
    start, end = slot(hours)
    made = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert made.status_code == 201, made.text
    b: dict[str, Any] = made.json()
    await _post(client, m["buyer"], f"/bookings/{b['id']}/payment/accept-terms")
    return await _post(client, m["supplier"], f"/bookings/{b['id']}/accept")


async def _receive(client: AsyncClient, m: dict[str, Any], invoice_id: Any, amount: int, ref: str) -> None:
    await _post(client, m["admin"], f"/admin/invoices/{invoice_id}/payments", {"amount": amount, "reference": ref})


async def test_a_deposit_booking_is_invoiced_30_percent_on_acceptance_and_nothing_before(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, deposit_percent=30)
    assert m["asset"]["deposit_percent"] == 30
    start, end = slot(100)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    assert b["amount"] == AMOUNT
    assert b["instalments"] == [
        {"n": 1, "label": "deposit", "percent": 30, "amount": DEPOSIT, "due": "confirmation", "invoiced": False},
        {"n": 2, "label": "balance", "percent": 70, "amount": BALANCE, "due": "completion", "invoiced": False},
    ]
    assert await _invoices(db, b["id"]) == []  # booked: nothing is due yet
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["status"] == "no_invoice" and pay["amount_due"] == 0
    await _post(client, m["buyer"], f"/bookings/{b['id']}/payment/accept-terms")
    assert await _invoices(db, b["id"]) == []
    await _trial(db)

    accepted = await _post(client, m["supplier"], f"/bookings/{b['id']}/accept")
    assert [i["invoiced"] for i in accepted["instalments"]] == [True, False]
    (deposit,) = await _invoices(db, b["id"])
    assert deposit["instalment"] == 1 and deposit["total"] == DEPOSIT and deposit["status"] == "open"
    assert deposit["number"].startswith("INV-")
    (line,) = deposit["line_items"]
    assert (line["kind"], line["n"], line["label"], line["percent"], line["amount"]) == (
        "instalment",
        1,
        "deposit",
        30,
        DEPOSIT,
    )
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.BUYER_RECEIVABLE] == DEPOSIT and balances[ledger.FUNDS_HELD] == -DEPOSIT
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["amount_due"] == DEPOSIT and pay["invoice_id"] == str(deposit["id"])
    doc = (await client.get(f"/api/v1/invoices/{deposit['id']}", headers=m["buyer"])).json()
    assert doc["total"] == DEPOSIT and doc["amount_due"] == DEPOSIT
    await _trial(db)


# (hours before the start, who cancels, refund of the paid deposit, the kept part of it)
BANDS = [
    pytest.param(100, "buyer", DEPOSIT, 0, id="buyer-full-refund-notice"),
    pytest.param(30, "buyer", DEPOSIT // 2, DEPOSIT // 2, id="buyer-partial-band-half-kept"),
    pytest.param(10, "buyer", 0, DEPOSIT, id="buyer-late-whole-deposit-kept"),
    pytest.param(10, "supplier", DEPOSIT, 0, id="supplier-cancels-full-refund"),
]


@pytest.mark.parametrize(("hours", "who", "credited", "kept"), BANDS)
async def test_a_paid_deposit_follows_the_cancellation_policy_band(
    client: AsyncClient, db: AsyncSession, hours: int, who: str, credited: int, kept: int
) -> None:
    m = await market(client, db, deposit_percent=30)
    b = await _confirmed(client, m, hours)
    (deposit,) = await _invoices(db, b["id"])
    await _receive(client, m, deposit["id"], DEPOSIT, "DEP-1")
    await _trial(db)
    seen = (await client.get(f"/api/v1/bookings/{b['id']}", headers=m[who])).json()
    assert seen["refund_if_cancelled_now"] == BALANCE + credited

    cancelled = await _post(client, m[who], f"/bookings/{b['id']}/cancel")
    # The balance was never invoiced, so it is never owed: only the deposit follows the band.
    assert cancelled["refund_amount"] == BALANCE + credited
    invoices = await _invoices(db, b["id"])
    assert [i["instalment"] for i in invoices] == [1]  # no balance invoice after a cancellation
    assert invoices[0]["status"] == "closed"
    doc = (await client.get(f"/api/v1/invoices/{deposit['id']}", headers=m["buyer"])).json()
    assert [n["amount"] for n in doc["credit_notes"]] == ([credited] if credited else [])

    fee = ledger.commission(kept, 800)
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances.get(ledger.CLEARING_BANK, 0) == DEPOSIT
    assert balances.get(ledger.BUYER_RECEIVABLE, 0) == 0
    assert balances.get(ledger.FUNDS_HELD, 0) == 0
    assert balances.get(ledger.REFUNDS_PAYABLE, 0) == -credited
    assert balances.get(ledger.SUPPLIER_PAYABLE, 0) == -(kept - fee)
    assert balances.get(ledger.COMMISSION_REVENUE, 0) == -fee
    await _trial(db)


async def test_before_the_deposit_is_invoiced_a_cancellation_keeps_nothing(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, deposit_percent=30)
    start, end = slot(10)  # the late band: an unscheduled booking would keep everything
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _post(client, m["buyer"], f"/bookings/{b['id']}/payment/accept-terms")
    cancelled = await _post(client, m["buyer"], f"/bookings/{b['id']}/cancel")
    assert cancelled["refund_amount"] == AMOUNT
    assert await _invoices(db, b["id"]) == []
    assert await ledger.booking_balances(db, uuid.UUID(b["id"])) == {}
    await _trial(db)


async def test_the_balance_is_invoiced_on_completion_and_payouts_wait_for_settlement(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db, deposit_percent=30)
    b = await _confirmed(client, m, 3)
    (deposit,) = await _invoices(db, b["id"])
    await _receive(client, m, deposit["id"], DEPOSIT, "DEP-1")
    assert (await _invoices(db, b["id"]))[0]["status"] == "paid"
    # The deposit is in the bank, but nothing is paid out before the booking settles.
    early = await client.post(
        f"/api/v1/admin/invoices/{deposit['id']}/payouts", headers=m["admin"], json={"amount": 1, "reference": "O-0"}
    )
    assert early.status_code == 409, early.text
    await _trial(db)

    await _post(client, m["supplier"], f"/bookings/{b['id']}/start")
    done = await _post(client, m["supplier"], f"/bookings/{b['id']}/complete", {"reason": "ahead of the slot (test)"})
    assert [i["invoiced"] for i in done["instalments"]] == [True, True]
    deposit_row, balance = await _invoices(db, b["id"])
    assert balance["instalment"] == 2 and balance["total"] == BALANCE and balance["number"] != deposit_row["number"]
    assert balance["line_items"][0]["label"] == "balance" and balance["line_items"][0]["percent"] == 70
    keys = set((await db.execute(sa.text("SELECT key FROM journals WHERE booking_id = :b"), {"b": b["id"]})).scalars())
    assert {f"booking:{b['id']}:invoice:1", f"booking:{b['id']}:invoice:2"} <= keys
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["amount_due"] == BALANCE and pay["invoice_id"] == str(balance["id"])
    await _receive(client, m, balance["id"], BALANCE, "BAL-1")
    early = await client.post(
        f"/api/v1/admin/invoices/{balance['id']}/payouts", headers=m["admin"], json={"amount": 1, "reference": "O-1"}
    )
    assert early.status_code == 409  # completed, all paid, still not settled
    await _trial(db)

    await _post(client, m["buyer"], f"/bookings/{b['id']}/confirm")
    fee = ledger.commission(AMOUNT, 800)
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.SUPPLIER_PAYABLE] == -(AMOUNT - fee)  # the whole amount settles at once
    assert balances[ledger.COMMISSION_REVENUE] == -fee and balances.get(ledger.FUNDS_HELD, 0) == 0
    assert [i["status"] for i in await _invoices(db, b["id"])] == ["closed", "closed"]
    await _post(
        client, m["admin"], f"/admin/invoices/{balance['id']}/payouts", {"amount": AMOUNT - fee, "reference": "O-2"}
    )
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["supplier"])).json()
    assert pay["status"] == "settled"
    await _trial(db)
    # The fapiao data: one fapiao for the kept amount naming both instalment invoices, not one per invoice.
    supplier_org = m["asset"]["org_id"]
    fapiao = await client.get(f"/api/v1/orgs/{supplier_org}/fapiao", headers=m["supplier"])
    assert fapiao.status_code == 200, fapiao.text
    (item,) = [f for f in fapiao.json()["items"] if f["booking_id"] == b["id"]]
    assert sum(line["amount"] for line in item["lines"]) == AMOUNT
    assert item["platform_invoice_number"] == f"{deposit_row['number']}, {balance['number']}"


async def test_deposit_percent_is_validated_and_can_be_removed(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, deposit_percent=30)
    url = f"/api/v1/assets/{m['asset']['id']}"
    for bad in (0, 91, 100):
        r = await client.patch(url, headers=m["supplier"], json={"deposit_percent": bad})
        assert r.status_code == 422, (bad, r.text)
    r = await client.patch(url, headers=m["supplier"], json={"deposit_percent": 50})
    assert r.status_code == 200 and r.json()["deposit_percent"] == 50
    assert r.json()["status"] == "pending_review"  # a payment term, like the price: back to review
    r = await client.patch(url, headers=m["supplier"], json={"deposit_percent": None})
    assert r.status_code == 200 and r.json()["deposit_percent"] is None


async def test_advance_voucher_shares_of_the_instalment_invoices_add_up_to_the_voucher_share(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db, rate_bp=3333)
    lab, supplier, _site = await listing(client, db, m["admin"], deposit_percent=33)
    body = {"asset_id": lab["id"], "drop_off_date": str(china_today()), "samples": 3, "voucher_id": m["voucher"]["id"]}
    made = await client.post("/api/v1/bookings", json=body, headers={**m["buyer"], "Idempotency-Key": "vd-1"})
    assert made.status_code == 201, made.text
    b = made.json()
    share = b["voucher_share"]
    assert share > 0 and [i["amount"] for i in b["instalments"]] == [
        ledger.round_half_up_div(b["amount"] * 33, 100),
        b["amount"] - ledger.round_half_up_div(b["amount"] * 33, 100),
    ]
    await _post(client, m["buyer"], f"/bookings/{b['id']}/payment/accept-terms")
    await _post(client, supplier, f"/bookings/{b['id']}/accept")
    await _post(client, supplier, f"/bookings/{b['id']}/start")
    await _post(client, supplier, f"/bookings/{b['id']}/complete")
    invoices = await _invoices(db, b["id"])
    assert [i["instalment"] for i in invoices] == [1, 2]
    shares = []
    for inv in invoices:
        doc = (await client.get(f"/api/v1/invoices/{inv['id']}", headers=m["buyer"])).json()
        assert doc["voucher_share"] + doc["buyer_share"] == doc["total"]
        shares.append(doc["voucher_share"])
    first = ledger.subsidy_share(share, b["amount"], invoices[0]["total"])
    assert shares == [first, share - first] and sum(shares) == share
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.PROGRAMME_RECEIVABLE] == share
    assert balances[ledger.BUYER_RECEIVABLE] == b["amount"] - share
    await _trial(db)


async def test_an_unscheduled_booking_issues_its_invoice_when_booked_with_no_extra_statement(
    client: AsyncClient, db: AsyncSession, engine: AsyncEngine
) -> None:
    plain = await market(client, db)
    deposit = await market(client, db, deposit_percent=30)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    start, end = slot(100)
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        made = await book(client, plain["buyer"], plain["asset"]["id"], start, end)
        unscheduled = list(statements)
        statements.clear()
        scheduled = await book(client, deposit["buyer"], deposit["asset"]["id"], start, end)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert made.status_code == 201 and made.json()["instalments"] is None
    assert scheduled.status_code == 201 and scheduled.json()["instalments"] is not None
    (invoice,) = await _invoices(db, made.json()["id"])
    assert invoice["instalment"] == 0 and invoice["total"] == AMOUNT
    # The schedule costs no statement: the scheduled placement runs exactly the unscheduled one's statements
    # less the invoice's (its insert, its journal, its number at commit), which wait until something is due.
    invoicing = [s for s in unscheduled if "invoices" in s or "journal" in s]
    assert len(invoicing) == 3
    assert len(statements) == len(unscheduled) - len(invoicing)
    assert not [s for s in statements if "invoices" in s or "journal" in s]
