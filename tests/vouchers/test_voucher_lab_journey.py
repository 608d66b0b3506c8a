"""Issue #18's headline: a voucher-funded lab test from the grant to the programme's payment, through the public
API. The bureau (a verified programme organisation) opens a programme and grants a Suzhou buyer a voucher; the
buyer books a Suzhou lab with it; the invoice shows the split; the admin records the buyer's share; the lab's
booking settles; last month's claim is built; the programme approves the line and pays; then the booking owes the
platform nothing, the books balance and the lab can be paid out in full."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.vouchers import claims
from payments import ledger
from tests.vouchers.conftest import CHINA, book, lab_booking_body, voucher_market

PRICE = 15_000  # tests.factories.lab_payload: 150.00 CNY a sample


async def _move(client: AsyncClient, booking_id: str, action: str, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    body = {"reason": "samples tested ahead of the due day (test)"} if action == "complete" else None
    resp = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=headers, json=body)
    assert resp.status_code == 200, (action, resp.text)
    out: dict = resp.json()  # type: ignore[type-arg]
    return out


async def test_a_voucher_funded_lab_test_from_grant_to_programme_payment(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)  # 50 %, advance mode: the programme pays its share to the platform
    programme, p_headers = m["programme"], m["programme_headers"]
    amount = 2 * PRICE
    share = amount // 2

    # The buyer books the lab with its voucher: the booking and its invoice show the split.
    booking = await book(
        client, m["buyer"], lab_booking_body(m["lab"]["id"], samples=2, voucher_id=m["voucher"]["id"], days_ahead=1)
    )
    assert booking["amount"] == amount and booking["voucher_id"] == m["voucher"]["id"]
    assert booking["voucher_share"] == share
    pay = (await client.get(f"/api/v1/bookings/{booking['id']}/payment", headers=m["buyer"])).json()
    invoice_url = f"/api/v1/invoices/{pay['invoice_id']}"
    invoice = (await client.get(invoice_url, headers=m["buyer"])).json()
    assert invoice["total"] == amount
    printed = (await client.get(invoice_url, headers={**m["buyer"], "Accept": "text/html"})).text
    assert "Innovation voucher 创新券" in printed and "-150.00 CNY" in printed
    assert "Buyer's share 购买方应付" in printed and printed.count("150.00 CNY") >= 2

    # The buyer's share arrives by bank transfer (recorded by the admin); the lab does the test.
    paid = await client.post(
        f"/api/v1/admin/invoices/{pay['invoice_id']}/payments",
        headers=m["admin"],
        json={"amount": amount - share, "reference": "ICBC-BUYER-1"},
    )
    assert paid.status_code == 201, paid.text
    await _move(client, booking["id"], "payment/accept-terms", m["buyer"])
    for action in ("accept", "start", "complete"):
        await _move(client, booking["id"], action, m["supplier"])
    settled = await _move(client, booking["id"], "confirm", m["buyer"])
    assert settled["status"] == "settled"

    booking_id = uuid.UUID(booking["id"])
    fee = ledger.commission(amount, 800)
    payouts = f"/api/v1/admin/invoices/{pay['invoice_id']}/payouts"
    early = await client.post(payouts, headers=m["admin"], json={"amount": amount - fee, "reference": "OUT-EARLY"})
    assert early.status_code == 409, early.text  # the programme's share is not in the bank yet

    # On the first of next month (China time) the scheduled task builds this month's claim.
    now = datetime.now(UTC).astimezone(CHINA)
    first_of_next = date(now.year + (now.month == 12), now.month % 12 + 1, 1)
    built = await claims.build_due_claims(db, today=first_of_next)
    await db.commit()
    assert built["claims_built"] >= 1
    base = f"/api/v1/programmes/{programme['id']}/claims"
    (summary,) = (await client.get(base, headers=p_headers)).json()
    assert summary["month"] == now.strftime("%Y-%m") and summary["total"] == share and summary["status"] == "open"
    claim = (await client.get(f"{base}/{summary['id']}", headers=p_headers)).json()
    (line,) = claim["lines"]
    assert line["booking_id"] == booking["id"] and line["amount"] == share
    assert line["evidence"]["service"]["kind"] == "lab_service"
    assert line["evidence"]["invoice_number"] == invoice["number"]

    # The programme approves the line and pays exactly what it approved.
    decided = await client.post(
        f"{base}/{claim['id']}/lines/{line['id']}/decision", json={"decision": "approve"}, headers=p_headers
    )
    assert decided.status_code == 200 and decided.json()["status"] == "decided", decided.text
    payment = await client.post(
        f"{base}/{claim['id']}/payment", json={"amount": share, "reference": "SZ-TREASURY-0001"}, headers=p_headers
    )
    assert payment.status_code == 200 and payment.json()["status"] == "paid", payment.text

    # The books: nothing owed on the booking by the programme or the buyer, balanced, the lab paid out in full.
    balances = await ledger.booking_balances(db, booking_id)
    assert balances.get(ledger.PROGRAMME_RECEIVABLE, 0) == 0
    assert balances.get(ledger.BUYER_RECEIVABLE, 0) == 0
    assert (await ledger.trial_balance(db))["balanced"] is True
    payout = await client.post(payouts, headers=m["admin"], json={"amount": amount - fee, "reference": "OUT-1"})
    assert payout.status_code == 201, payout.text
    redemption_status = await db.scalar(
        sa.text("SELECT status FROM voucher_redemptions WHERE booking_id = :id"), {"id": booking_id}
    )
    assert redemption_status == "claimed"
    stats = (await client.get(f"/api/v1/programmes/{programme['id']}/statistics", headers=p_headers)).json()
    assert stats["used"] == share and stats["paid"] == share and stats["firms_served"] == 1
    assert stats["by_kind"] == [{"key": "lab_service", "bookings": 1, "amount": share}]
    assert stats["by_family"] == [{"key": "testing", "bookings": 1, "amount": share}]
