"""A programme's statistics: budget, what counting redemptions hold (released and rejected ones count for
nothing), what the programme paid on its claims, firms served, and breakdowns by kind, family and month."""

from __future__ import annotations

from datetime import UTC, datetime

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.vouchers import claims
from marketplace.vouchers.claim_schemas import ClaimPayment, LineDecision
from tests.vouchers.test_claims import CHINA, china, claim_market, lines_of, redeem


async def test_statistics_count_what_holds_budget_and_what_was_paid(client: AsyncClient, db: AsyncSession) -> None:
    m = await claim_market(client, db, bookings=4)
    b, op, pid = m["bookings"], m["operator"], m["programme"].id
    await redeem(db, m, b[0], amount=40_000, settled_at=china(2025, 2, 3))
    await redeem(db, m, b[1], amount=30_000, settled_at=china(2025, 2, 4))
    await redeem(db, m, b[2], amount=20_000, settled_at=None, status="active")
    await redeem(db, m, b[3], amount=10_000, settled_at=china(2025, 2, 5), status="released")
    claim, _ = await claims.build_claim(db, op, programme_id=pid, month="2025-02")
    first, second = sorted(await lines_of(db, claim.id), key=lambda line: -line.amount)
    await claims.decide_line(
        db, op, programme_id=pid, claim_id=claim.id, line_id=first.id, data=LineDecision(decision="approve")
    )
    await claims.decide_line(
        db,
        op,
        programme_id=pid,
        claim_id=claim.id,
        line_id=second.id,
        data=LineDecision(decision="reject", reason="no evidence"),
    )
    await claims.record_payment(
        db, op, programme_id=pid, claim_id=claim.id, data=ClaimPayment(amount=40_000, reference="BANK-9")
    )
    await db.commit()

    resp = await client.get(f"/api/v1/programmes/{pid}/statistics", headers=m["programme_headers"])

    assert resp.status_code == 200, resp.text
    s = resp.json()
    # Counting: the approved (claimed) 400 and the active 200; the rejected 300 and the released 100 are free.
    assert s["budget"] == 10_000_000 and s["used"] == 60_000 and s["remaining"] == 10_000_000 - 60_000
    assert s["paid"] == 40_000 and s["bookings"] == 2 and s["firms_served"] == 1
    assert s["by_kind"] == [{"key": "machine", "bookings": 2, "amount": 60_000}]
    assert s["by_family"] == [{"key": "machining", "bookings": 2, "amount": 60_000}]
    this_month = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m")  # the rows were inserted now
    assert s["by_month"] == [{"key": this_month, "bookings": 2, "amount": 60_000}]
    assert (await client.get(f"/api/v1/programmes/{pid}/statistics", headers=m["admin"])).status_code == 200


async def test_a_new_programme_has_its_whole_budget_left(client: AsyncClient, db: AsyncSession) -> None:
    m = await claim_market(client, db, bookings=1)
    resp = await client.get(f"/api/v1/programmes/{m['programme'].id}/statistics", headers=m["programme_headers"])
    assert resp.json() | {"programme_id": None} == {
        "programme_id": None,
        "currency": "CNY",
        "budget": 10_000_000,
        "used": 0,
        "paid": 0,
        "remaining": 10_000_000,
        "bookings": 0,
        "firms_served": 0,
        "by_kind": [],
        "by_family": [],
        "by_month": [],
    }
