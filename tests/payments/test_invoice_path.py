"""The invoice / bank-transfer path end to end through the API (the default gateway, no configuration)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from payments import invoices, ledger
from tests.bookings.helpers import book, market, slot
from tests.factories import signed_up

AMOUNT = 30000 * 2 + 20000  # 2 h at 300.00 + setup 200.00


async def _walk(client: AsyncClient, m: dict[str, Any], booking_id: str, steps: list[tuple[str, str]]) -> None:
    for action, who in steps:
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None  # before the start
        r = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, (action, r.text)


async def _trial(client: AsyncClient, m: dict[str, Any]) -> dict[str, Any]:
    r = await client.get("/api/v1/admin/ledger/trial-balance", headers=m["admin"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["balanced"] is True
    for cur in body["currencies"].values():
        assert cur["debits"] == cur["credits"]
        assert sum(a["balance"] for a in cur["accounts"]) == 0
    return body


async def test_invoice_path_end_to_end(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    assert b["amount"] == AMOUNT and b["payment_method"] == "invoice"

    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["method"] == "invoice" and pay["status"] == "awaiting_payment"
    assert pay["amount_due"] == AMOUNT and pay["currency"] == "CNY" and pay["invoice_id"]
    assert pay["payment_intent_id"] is None and pay["client_secret"] is None
    supplier_view = await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["supplier"])
    assert supplier_view.status_code == 200
    _, stranger = await signed_up(client, roles=("buyer",))
    assert (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=stranger)).status_code == 404

    inv_url = f"/api/v1/invoices/{pay['invoice_id']}"
    inv = (await client.get(inv_url, headers=m["buyer"])).json()
    assert inv["number"].startswith("INV-") and inv["total"] == AMOUNT
    assert inv["tax_rate_bp"] == 600 and inv["tax"] == invoices.tax_included(AMOUNT, 600) == 4528
    assert inv["subtotal"] + inv["tax"] == inv["total"]
    assert [i["amount"] for i in inv["line_items"]] == [60000, 20000]
    assert (await client.get(inv_url, headers=stranger)).status_code == 404
    page = await client.get(inv_url, headers={**m["buyer"], "Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<meta charset="utf-8">' in page.text and "Noto Sans CJK SC" in page.text
    assert "发票" in page.text and "价税合计" in page.text

    await _walk(
        client,
        m,
        b["id"],
        [("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier"), ("complete", "supplier")],
    )
    admin_pay = f"/api/v1/admin/invoices/{pay['invoice_id']}/payments"
    assert (await client.post(admin_pay, headers=m["buyer"], json={"amount": 1, "reference": "x"})).status_code == 403
    r = await client.post(admin_pay, headers=m["admin"], json={"amount": 50000, "reference": "ICBC-001"})
    assert r.status_code == 201, r.text
    again = await client.post(admin_pay, headers=m["admin"], json={"amount": 100, "reference": "ICBC-001"})
    assert again.status_code == 409
    over = await client.post(admin_pay, headers=m["admin"], json={"amount": 30001, "reference": "ICBC-002"})
    assert over.status_code == 409 and over.json()["error"] == "amount_exceeds_outstanding"
    assert (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()["status"] == (
        "partially_paid"
    )
    r = await client.post(admin_pay, headers=m["admin"], json={"amount": 30000, "reference": "ICBC-002"})
    assert r.status_code == 201
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["status"] == "paid" and pay["amount_due"] == 0

    # Payout before settlement: nothing is owed to the supplier yet.
    payouts = f"/api/v1/admin/invoices/{pay['invoice_id']}/payouts"
    early = await client.post(payouts, headers=m["admin"], json={"amount": 1, "reference": "OUT-0"})
    assert early.status_code == 409
    await _walk(client, m, b["id"], [("confirm", "buyer")])
    fee = ledger.commission(AMOUNT, 800)
    assert fee == 6400
    too_much = await client.post(payouts, headers=m["admin"], json={"amount": AMOUNT - fee + 1, "reference": "OUT-1"})
    assert too_much.status_code == 409
    r = await client.post(payouts, headers=m["admin"], json={"amount": AMOUNT - fee, "reference": "OUT-1"})
    assert r.status_code == 201, r.text
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["supplier"])).json()
    assert pay["status"] == "settled"

    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.CLEARING_BANK] == fee  # the platform keeps exactly its commission
    assert balances[ledger.COMMISSION_REVENUE] == -fee
    assert balances.get(ledger.BUYER_RECEIVABLE, 0) == 0 and balances.get(ledger.SUPPLIER_PAYABLE, 0) == 0
    assert balances.get(ledger.FUNDS_HELD, 0) == 0
    await _trial(client, m)

    # Statements: own entries only.
    supplier_org = m["asset"]["org_id"]
    st = (await client.get(f"/api/v1/orgs/{supplier_org}/statement", headers=m["supplier"])).json()
    assert {e["account"] for e in st["items"]} == {ledger.SUPPLIER_PAYABLE}
    assert st["balances"]["CNY"][ledger.SUPPLIER_PAYABLE] == 0
    assert (await client.get(f"/api/v1/orgs/{supplier_org}/statement", headers=m["buyer"])).status_code == 404
    bst = (await client.get(f"/api/v1/orgs/{m['buyer_org']}/statement", headers=m["buyer"])).json()
    assert {e["account"] for e in bst["items"]} == {ledger.BUYER_RECEIVABLE}

    actions = set((await db.execute(sa.text("SELECT action FROM audit_log WHERE target_type = 'invoice'"))).scalars())
    assert {"invoice.payment", "invoice.payout"} <= actions


async def test_cancellation_issues_a_credit_note_and_the_refund_is_recorded(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    start, end = slot(30)  # between 24 and 72 h: the default policy refunds 50 % to a cancelling buyer
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _walk(client, m, b["id"], [("payment/accept-terms", "buyer"), ("accept", "supplier")])
    invoice_id = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()["invoice_id"]
    r = await client.post(
        f"/api/v1/admin/invoices/{invoice_id}/payments", headers=m["admin"], json={"amount": AMOUNT, "reference": "P1"}
    )
    assert r.status_code == 201
    r = await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=m["buyer"])
    assert r.status_code == 200, r.text
    refund = r.json()["refund_amount"]
    assert refund == AMOUNT // 2
    inv = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=m["buyer"])).json()
    assert [n["amount"] for n in inv["credit_notes"]] == [refund] and inv["credit_notes"][0]["number"].startswith("CN-")
    assert inv["status"] == "refund_due"
    refunds = f"/api/v1/admin/invoices/{invoice_id}/refunds"
    assert (
        await client.post(refunds, headers=m["admin"], json={"amount": refund + 1, "reference": "R1"})
    ).status_code == 409
    assert (
        await client.post(refunds, headers=m["admin"], json={"amount": refund, "reference": "R1"})
    ).status_code == 201
    kept = AMOUNT - refund
    fee = ledger.commission(kept, 800)
    r = await client.post(
        f"/api/v1/admin/invoices/{invoice_id}/payouts",
        headers=m["admin"],
        json={"amount": kept - fee, "reference": "O"},
    )
    assert r.status_code == 201, r.text
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.CLEARING_BANK] == fee
    # buyer payments = supplier payouts + platform commission + refunds
    assert AMOUNT == (kept - fee) + fee + refund
    await _trial(client, m)


async def test_expired_hold_voids_the_invoice(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(100)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    r = await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=m["buyer"])
    assert r.status_code == 200
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["status"] == "void" and pay["amount_due"] == 0
    inv = (await client.get(f"/api/v1/invoices/{pay['invoice_id']}", headers=m["buyer"])).json()
    assert inv["document_status"] == "void" and inv["credit_notes"][0]["amount"] == AMOUNT
    assert await ledger.booking_balances(db, uuid.UUID(b["id"])) == {
        ledger.BUYER_RECEIVABLE: 0,
        ledger.FUNDS_HELD: 0,
    }


async def test_commission_override_is_snapshotted_on_new_bookings(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    supplier_org = m["asset"]["org_id"]
    url = f"/api/v1/admin/orgs/{supplier_org}/commission"
    assert (await client.put(url, headers=m["supplier"], json={"rate_bp": 1})).status_code == 403
    r = await client.put(url, headers=m["admin"], json={"rate_bp": 500, "reason": "launch partner"})
    assert r.status_code == 200 and r.json()["effective_rate_bp"] == 500
    start, end = slot(50)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    assert b["commission_rate_bp"] == 500
    r = await client.put(url, headers=m["admin"], json={"rate_bp": None})
    assert r.json()["effective_rate_bp"] == 800
    assert (await client.put(url, headers=m["admin"], json={"rate_bp": 10001})).status_code == 422


async def test_overdue_invoices_are_flagged(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(60)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    inv = (await client.get(f"/api/v1/invoices/{pay['invoice_id']}", headers=m["buyer"])).json()
    from datetime import date

    due = date.fromisoformat(inv["due_date"])
    assert await invoices.flag_overdue(db, today=due) == []
    flagged = await invoices.flag_overdue(db, today=due + timedelta(days=1))
    assert str(flagged[0]) == pay["invoice_id"] if flagged else False
    assert await invoices.flag_overdue(db, today=due + timedelta(days=2)) == []  # flagged once
    assert (await client.get(f"/api/v1/invoices/{pay['invoice_id']}", headers=m["buyer"])).json()["overdue"] is True


async def test_unbalanced_journals_are_refused_in_code_and_by_the_database(db: AsyncSession) -> None:
    from payments.errors import UnbalancedJournal

    with pytest.raises(UnbalancedJournal):
        await ledger.post(
            db,
            key=f"test:{uuid.uuid4()}",
            kind="test",
            lines=[
                ledger.Line(ledger.CLEARING_BANK, None, "CNY", 100),
                ledger.Line(ledger.COMMISSION_REVENUE, None, "CNY", -99),
            ],
        )
    # Bypass the code: the deferred constraint trigger refuses it at commit (forced here).
    journal_id = uuid.uuid4()
    with pytest.raises(DBAPIError, match="does not balance"):
        async with db.begin_nested():
            await db.execute(
                sa.text("INSERT INTO journals (id, key, kind, memo) VALUES (:id, :key, 'test', '')"),
                {"id": journal_id, "key": f"raw:{journal_id}"},
            )
            await db.execute(
                sa.text(
                    "INSERT INTO journal_entries (journal_id, account, currency, amount) VALUES"
                    " (:id, 'clearing_bank', 'CNY', 100), (:id, 'commission_revenue', 'CNY', -99)"
                ),
                {"id": journal_id},
            )
            await db.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))
    # Balanced per currency is fine; append-only afterwards.
    ok = await ledger.post(
        db,
        key=f"test:{uuid.uuid4()}",
        kind="test",
        lines=[
            ledger.Line(ledger.CLEARING_BANK, None, "CNY", 100),
            ledger.Line(ledger.COMMISSION_REVENUE, None, "CNY", -100),
        ],
    )
    async with db.begin_nested():
        await db.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(sa.text("UPDATE journal_entries SET amount = 1 WHERE journal_id = :id"), {"id": ok})


async def test_a_journal_is_posted_once_per_key_with_its_lines_in_order(db: AsyncSession) -> None:
    """``ledger.post`` writes the journal and its entries in one statement: entries with and without an
    organisation, in the order of the lines; a second post of the same key writes nothing."""
    buyer, supplier = uuid.uuid4(), uuid.uuid4()
    key = f"test:{uuid.uuid4()}"
    lines = [
        ledger.Line(ledger.FUNDS_HELD, None, "CNY", 10_000),
        ledger.Line(ledger.SUPPLIER_PAYABLE, supplier, "CNY", -9_200),
        ledger.Line(ledger.COMMISSION_REVENUE, None, "CNY", -800),
        ledger.Line(ledger.BUYER_RECEIVABLE, buyer, "EUR", 5),
        ledger.Line(ledger.FUNDS_HELD, None, "EUR", -5),
    ]
    journal_id = await ledger.post(db, key=key, kind="test", lines=lines, memo="m" * 600)
    assert journal_id is not None
    rows = (
        await db.execute(
            sa.text("SELECT account, org_id, currency, amount FROM journal_entries WHERE journal_id = :id ORDER BY id"),
            {"id": journal_id},
        )
    ).all()
    assert [tuple(r) for r in rows] == [(x.account, x.org_id, x.currency, x.amount) for x in lines]
    memo = (await db.execute(sa.text("SELECT memo FROM journals WHERE id = :id"), {"id": journal_id})).scalar_one()
    assert memo == "m" * 500
    # Posted once: the same key again inserts neither a journal nor entries.
    assert await ledger.post(db, key=key, kind="test", lines=lines) is None
    count = (
        await db.execute(
            sa.text("SELECT count(*) FROM journal_entries e JOIN journals j ON j.id = e.journal_id WHERE j.key = :k"),
            {"k": key},
        )
    ).scalar_one()
    assert count == len(lines)
    async with db.begin_nested():
        await db.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))  # and it balances per currency
