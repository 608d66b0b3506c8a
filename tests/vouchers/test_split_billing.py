"""Split billing through the API (issue #18, item 2): a booking placed with an advance-paid voucher is invoiced in
full, with the voucher's share on the programme's receivable and only the buyer's share due; a cancellation gives
the voucher's part back in proportion (the same rule as the redemption's), and the ledger stays balanced."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from payments import ledger
from tests.vouchers.conftest import book, lab_booking_body, voucher_market


async def _booking_balances(db: AsyncSession, booking_id: str) -> dict[tuple[str, str | None], int]:
    rows = await db.execute(
        sa.text(
            "SELECT e.account, e.org_id::text, sum(e.amount) FROM journal_entries e JOIN journals j"
            " ON j.id = e.journal_id WHERE j.booking_id = :b GROUP BY e.account, e.org_id"
        ),
        {"b": uuid.UUID(booking_id)},
    )
    return {(account, org): int(total) for account, org, total in rows.all() if total}


async def _invoice(client: AsyncClient, headers: dict[str, str], booking_id: str) -> dict[str, Any]:
    payment = await client.get(f"/api/v1/bookings/{booking_id}/payment", headers=headers)
    assert payment.status_code == 200, payment.text
    resp = await client.get(f"/api/v1/invoices/{payment.json()['invoice_id']}", headers=headers)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_the_invoice_shows_the_full_price_the_voucher_share_and_the_buyers_share(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db, rate_bp=4000, cap_per_booking=100_000)
    booking = await book(client, m["buyer"], lab_booking_body(m["lab"]["id"], samples=4, voucher_id=m["voucher"]["id"]))
    amount = booking["amount"]
    share = min(ledger.round_half_up_div(amount * 4000, 10_000), 100_000)
    assert booking["voucher_id"] == m["voucher"]["id"] and booking["voucher_share"] == share > 0

    invoice = await _invoice(client, m["buyer"], booking["id"])
    assert invoice["total"] == amount  # the supplier sells the whole service
    assert invoice["voucher_share"] == share and invoice["buyer_share"] == amount - share
    assert invoice["amount_due"] == amount - share
    assert invoice["voucher_payer"]["id"] == m["programme_org"]

    balances = await _booking_balances(db, booking["id"])
    assert balances[(ledger.BUYER_RECEIVABLE, m["buyer_org"])] == amount - share
    assert balances[(ledger.PROGRAMME_RECEIVABLE, m["programme_org"])] == share
    assert balances[(ledger.FUNDS_HELD, None)] == -amount

    html = await client.get(f"/api/v1/invoices/{invoice['id']}", headers={**m["buyer"], "Accept": "text/html"})
    assert "创新券" in html.text and "购买方应付" in html.text


async def test_a_cancellation_gives_the_voucher_its_part_back_in_proportion(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db, rate_bp=5000, cap_per_booking=1_000_000)
    booking = await book(client, m["buyer"], lab_booking_body(m["lab"]["id"], samples=2, voucher_id=m["voucher"]["id"]))
    amount, share = booking["amount"], booking["voucher_share"]
    for action, headers in (("payment/accept-terms", m["buyer"]), ("accept", m["supplier"])):
        resp = await client.post(f"/api/v1/bookings/{booking['id']}/{action}", headers=headers)
        assert resp.status_code == 200, resp.text
    resp = await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=m["buyer"], json={"reason": "plans"})
    assert resp.status_code == 200, resp.text
    refund = resp.json()["refund_amount"]
    kept = amount - refund
    still_owed = ledger.subsidy_share(share, amount, kept)

    balances = await _booking_balances(db, booking["id"])
    assert balances.get((ledger.PROGRAMME_RECEIVABLE, m["programme_org"]), 0) == still_owed
    assert balances.get((ledger.FUNDS_HELD, None), 0) == 0
    # The buyer owes its part of what is kept, no more (nothing was paid yet).
    assert balances.get((ledger.BUYER_RECEIVABLE, m["buyer_org"]), 0) == kept - still_owed
    redemption = (
        await db.execute(
            sa.text("SELECT amount, status FROM voucher_redemptions WHERE booking_id = :b"),
            {"b": uuid.UUID(booking["id"])},
        )
    ).one()
    assert redemption.amount == still_owed  # the claim and the receivable agree
    assert redemption.status == ("settled" if still_owed else "released")
    trial = await db.execute(sa.text("SELECT currency, sum(amount) FROM journal_entries GROUP BY currency"))
    assert all(total == 0 for _currency, total in trial.all())


async def test_a_booking_without_a_voucher_is_billed_to_the_buyer_alone(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking = await book(client, m["buyer"], lab_booking_body(m["lab"]["id"], samples=1))
    assert booking["voucher_id"] is None and booking["voucher_share"] == 0
    invoice = await _invoice(client, m["buyer"], booking["id"])
    assert invoice["voucher_share"] == 0 and invoice["voucher_payer"] is None
    assert invoice["amount_due"] == invoice["buyer_share"] == booking["amount"]
