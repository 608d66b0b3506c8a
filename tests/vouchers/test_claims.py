"""A programme's monthly claims: which settled voucher shares a month's claim takes, gap-free numbers, one claim
per programme and month, deciding lines (a rejection frees the budget and, in advance mode, bills the buyer),
recording the payment (one journal per approved line), and who may do any of it.

Claims are built from redemption rows these tests insert (on real bookings made through the API), so each case
controls the settlement times; the whole journey through the booking API is test_voucher_lab_journey.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.principal import Principal
from marketplace.vouchers import claims
from marketplace.vouchers.claim_schemas import ClaimPayment, LineDecision
from marketplace.vouchers.models import (
    Voucher,
    VoucherClaim,
    VoucherClaimLine,
    VoucherProgramme,
    VoucherRedemption,
)
from payments import ledger
from tests.factories import invoiced_market, signed_up
from tests.vouchers.conftest import CHINA, buyer_in, programme_org


def china(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CHINA)


async def claim_market(
    client: AsyncClient, db: AsyncSession, *, bookings: int = 3, mode: str = "advance"
) -> dict[str, Any]:
    """``invoiced_market``'s factory and buyer with ``bookings`` bookings, plus a verified programme org, its
    programme (rows) and a granted voucher of the buyer. Keys of invoiced_market, and: programme_reg,
    programme_headers, programme (VoucherProgramme), voucher (Voucher), operator (a Principal)."""
    m = await invoiced_market(client, db, bookings=bookings)
    p_reg, p_headers = await programme_org(client, db)
    today = datetime.now(UTC).astimezone(CHINA).date()
    programme = VoucherProgramme(
        org_id=uuid.UUID(p_reg["org"]["id"]),
        name="苏州市科技创新券 Suzhou innovation vouchers",
        region_prefix="3205",
        eligible_kinds=["machine", "lab_service"],
        rate_bp=5000,
        cap_per_booking=100_000,
        cap_per_buyer_year=300_000,
        budget=10_000_000,
        valid_from=today - timedelta(days=400),
        valid_until=today + timedelta(days=365),
        payment_mode=mode,
    )
    db.add(programme)
    await db.flush()
    voucher = Voucher(programme_id=programme.id, buyer_org_id=uuid.UUID(m["buyer_org"]), status="granted")
    db.add(voucher)
    await db.commit()
    operator = Principal(
        user_id=uuid.UUID(p_reg["user"]["id"]), memberships={programme.org_id: "owner"}, email_verified=True
    )
    return {
        **m,
        "programme_reg": p_reg,
        "programme_headers": p_headers,
        "programme": programme,
        "voucher": voucher,
        "operator": operator,
    }


async def redeem(
    db: AsyncSession,
    m: dict[str, Any],
    booking: dict[str, Any],
    *,
    amount: int,
    settled_at: datetime | None,
    status: str = "settled",
) -> VoucherRedemption:
    """A redemption of ``booking`` (an API body) in the market's programme, as the redeemer and the after_move
    hook would leave it."""
    programme: VoucherProgramme = m["programme"]
    row = VoucherRedemption(
        voucher_id=m["voucher"].id,
        programme_id=programme.id,
        booking_id=uuid.UUID(booking["id"]),
        buyer_org_id=uuid.UUID(m["buyer_org"]),
        supplier_org_id=uuid.UUID(m["supplier_org"]),
        year=(settled_at or datetime.now(UTC)).astimezone(CHINA).year,
        currency=programme.currency,
        booked_amount=amount,
        amount=amount,
        payment_mode=programme.payment_mode,
        status=status,
        settled_at=settled_at,
    )
    db.add(row)
    await db.commit()
    return row


async def lines_of(db: AsyncSession, claim_id: uuid.UUID) -> list[VoucherClaimLine]:
    rows = await db.execute(sa.select(VoucherClaimLine).where(VoucherClaimLine.claim_id == claim_id))  # type: ignore[arg-type]
    return list(rows.scalars().all())


async def test_a_month_claims_the_shares_settled_before_its_end_in_china_time(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=4)
    b = m["bookings"]
    # 23:30 on 31 January in Shanghai is 15:30 UTC: January's. 00:10 on 1 February there is still 31 January in UTC.
    in_jan = await redeem(db, m, b[0], amount=40_000, settled_at=china(2025, 1, 31, 23, 30))
    in_feb = await redeem(db, m, b[1], amount=30_000, settled_at=china(2025, 2, 1, 0, 10))
    await redeem(db, m, b[2], amount=20_000, settled_at=None, status="active")  # not settled yet
    await redeem(db, m, b[3], amount=10_000, settled_at=china(2025, 1, 5), status="released")

    claim, created = await claims.build_claim(db, m["operator"], programme_id=m["programme"].id, month="2025-01")

    assert created is True
    assert claim.month == date(2025, 1, 1) and claim.total == 40_000 and claim.status == "open"
    assert claim.number.startswith("CLM-2025-") and len(claim.number) == len("CLM-2025-000001")
    lines = await lines_of(db, claim.id)
    assert [line.redemption_id for line in lines] == [in_jan.id]
    assert (await db.get(VoucherRedemption, in_jan.id)).status == "claimed"  # type: ignore[union-attr]
    assert (await db.get(VoucherRedemption, in_feb.id)).status == "settled"  # type: ignore[union-attr]

    feb, _ = await claims.build_claim(db, m["operator"], programme_id=m["programme"].id, month="2025-02")
    assert [line.redemption_id for line in await lines_of(db, feb.id)] == [in_feb.id]
    assert int(feb.number[-6:]) == int(claim.number[-6:]) + 1  # gap-free within the year's series


async def test_building_again_returns_the_same_claim_and_a_late_share_goes_on_the_next(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=2)
    await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 3, 10))
    first, created = await claims.build_claim(db, m["operator"], programme_id=m["programme"].id, month="2025-03")
    # Settled in March only now, after March's claim was built (e.g. a row corrected by hand): caught up in April.
    late = await redeem(db, m, m["bookings"][1], amount=25_000, settled_at=china(2025, 3, 20))

    again, created_again = await claims.build_claim(db, m["operator"], programme_id=m["programme"].id, month="2025-03")
    april, _ = await claims.build_claim(db, m["operator"], programme_id=m["programme"].id, month="2025-04")

    assert created and not created_again and again.id == first.id and again.total == 40_000
    assert [line.redemption_id for line in await lines_of(db, april.id)] == [late.id]


async def test_a_month_with_nothing_to_claim_is_refused_and_an_unfinished_month_too(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=1)
    pid = m["programme"].id
    with pytest.raises(claims.NothingToClaim):
        await claims.build_claim(db, m["operator"], programme_id=pid, month="2025-05")

    this_month = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m")
    resp = await client.post(
        f"/api/v1/programmes/{pid}/claims", json={"month": this_month}, headers=m["programme_headers"]
    )
    assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "month", resp.text
    bad = await client.post(
        f"/api/v1/programmes/{pid}/claims", json={"month": "2025-13"}, headers=m["programme_headers"]
    )
    assert bad.status_code == 422, bad.text
    none = await client.post(
        f"/api/v1/programmes/{pid}/claims", json={"month": "2025-05"}, headers=m["programme_headers"]
    )
    assert none.status_code == 409 and none.json()["error"] == "nothing_to_claim"


async def test_the_task_builds_last_months_claim_of_each_programme_once(client: AsyncClient, db: AsyncSession) -> None:
    m = await claim_market(client, db, bookings=2)
    await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 6, 30, 23, 59))
    await redeem(db, m, m["bookings"][1], amount=30_000, settled_at=china(2025, 7, 1, 0, 1))  # July's

    first = await claims.build_due_claims(db, today=date(2025, 7, 1))
    second = await claims.build_due_claims(db, today=date(2025, 7, 2))

    assert first["claims_built"] >= 1 and second["claims_built"] == 0
    june = (
        await db.execute(
            sa.select(VoucherClaim).where(
                VoucherClaim.programme_id == m["programme"].id  # type: ignore[arg-type]
            )
        )
    ).scalar_one()
    assert june.month == date(2025, 6, 1) and june.total == 40_000


async def test_the_api_builds_with_201_then_answers_200_with_the_evidence(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=1)
    booking = m["bookings"][0]
    await redeem(db, m, booking, amount=40_000, settled_at=china(2025, 8, 8))
    url = f"/api/v1/programmes/{m['programme'].id}/claims"

    made = await client.post(url, json={"month": "2025-08"}, headers=m["programme_headers"])
    again = await client.post(url, json={"month": "2025-08"}, headers=m["programme_headers"])

    assert made.status_code == 201, made.text
    assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
    body = made.json()
    assert body["month"] == "2025-08" and body["total"] == 40_000 and body["pending"] == 1
    evidence = body["lines"][0]["evidence"]
    assert evidence["booking_id"] == booking["id"]
    assert evidence["supplier"]["id"] == m["supplier_org"] and evidence["buyer"]["id"] == m["buyer_org"]
    assert evidence["service"] == {
        "title": "Invoice test mill",
        "kind": "machine",
        "process_codes": ["machining.milling.cnc_5axis"],
    }
    assert evidence["booking_amount"] == booking["amount"]
    assert evidence["invoice_number"] and not evidence["invoice_number"].startswith("DRAFT")
    assert evidence["lab_report"] is None
    listed = await client.get(url, headers=m["programme_headers"])
    assert [c["number"] for c in listed.json()] == [body["number"]]


async def test_deciding_lines_rejection_frees_budget_and_bills_the_buyer_in_advance_mode(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=2)
    ok = await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 9, 3))
    bad = await redeem(db, m, m["bookings"][1], amount=30_000, settled_at=china(2025, 9, 4))
    base = f"/api/v1/programmes/{m['programme'].id}/claims"
    claim = (await client.post(base, json={"month": "2025-09"}, headers=m["programme_headers"])).json()
    line_of = {line["redemption_id"]: line["id"] for line in claim["lines"]}
    h = m["programme_headers"]

    no_reason = await client.post(
        f"{base}/{claim['id']}/lines/{line_of[str(bad.id)]}/decision", json={"decision": "reject"}, headers=h
    )
    assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "reason"
    early = await client.post(f"{base}/{claim['id']}/payment", json={"amount": 40_000, "reference": "x"}, headers=h)
    assert early.status_code == 409 and early.json()["error"] == "claim_not_decided"

    approved = await client.post(
        f"{base}/{claim['id']}/lines/{line_of[str(ok.id)]}/decision", json={"decision": "approve"}, headers=h
    )
    assert approved.status_code == 200 and approved.json()["status"] == "open" and approved.json()["approved"] == 40_000
    rejected = await client.post(
        f"{base}/{claim['id']}/lines/{line_of[str(bad.id)]}/decision",
        json={"decision": "reject", "reason": "Service outside the programme's scope"},
        headers=h,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "decided" and rejected.json()["rejected"] == 30_000
    twice = await client.post(
        f"{base}/{claim['id']}/lines/{line_of[str(ok.id)]}/decision",
        json={"decision": "reject", "reason": "x"},
        headers=h,
    )
    assert twice.status_code == 409 and twice.json()["error"] == "line_decided"

    await db.refresh(bad)
    assert bad.status == "rejected"
    rebill = await ledger.booking_balances(db, bad.booking_id)
    assert rebill.get(ledger.PROGRAMME_RECEIVABLE) == -30_000  # the programme's share moved to the buyer
    assert rebill.get(ledger.BUYER_RECEIVABLE, 0) >= 30_000


async def test_the_payment_must_match_and_posts_one_journal_per_approved_line_once(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=2)
    r1 = await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 10, 3))
    r2 = await redeem(db, m, m["bookings"][1], amount=30_000, settled_at=china(2025, 10, 4))
    op, pid = m["operator"], m["programme"].id
    claim, _ = await claims.build_claim(db, op, programme_id=pid, month="2025-10")
    for line in await lines_of(db, claim.id):
        await claims.decide_line(
            db, op, programme_id=pid, claim_id=claim.id, line_id=line.id, data=LineDecision(decision="approve")
        )
    await db.commit()
    url = f"/api/v1/programmes/{pid}/claims/{claim.id}/payment"

    wrong = await client.post(url, json={"amount": 69_999, "reference": "BANK-1"}, headers=m["programme_headers"])
    paid = await client.post(url, json={"amount": 70_000, "reference": "BANK-1"}, headers=m["programme_headers"])
    again = await client.post(url, json={"amount": 70_000, "reference": "BANK-1"}, headers=m["programme_headers"])

    assert wrong.status_code == 422 and wrong.json()["error"] == "amount_mismatch"
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    assert paid.json()["payment_reference"] == "BANK-1"
    assert again.status_code == 409 and again.json()["error"] == "claim_paid"
    for r in (r1, r2):
        balances = await ledger.booking_balances(db, r.booking_id)
        assert balances[ledger.PROGRAMME_RECEIVABLE] == -r.amount  # credited by the programme's payment
        assert balances[ledger.CLEARING_BANK] == r.amount
    assert (await ledger.trial_balance(db))["balanced"]


async def test_after_use_claims_post_nothing_to_the_ledger(client: AsyncClient, db: AsyncSession) -> None:
    m = await claim_market(client, db, bookings=1, mode="after_use")
    r = await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 11, 3))
    op, pid = m["operator"], m["programme"].id
    claim, _ = await claims.build_claim(db, op, programme_id=pid, month="2025-11")
    (line,) = await lines_of(db, claim.id)
    await claims.decide_line(
        db, op, programme_id=pid, claim_id=claim.id, line_id=line.id, data=LineDecision(decision="approve")
    )
    before = await ledger.booking_balances(db, r.booking_id)

    view = await claims.record_payment(
        db, op, programme_id=pid, claim_id=claim.id, data=ClaimPayment(amount=40_000, reference="REIMB-7")
    )

    assert view.claim.status == "paid"
    assert await ledger.booking_balances(db, r.booking_id) == before


async def test_strangers_and_unverified_operators_get_404_and_admins_may_read(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=1)
    await redeem(db, m, m["bookings"][0], amount=40_000, settled_at=china(2025, 12, 3))
    pid = m["programme"].id
    claim, _ = await claims.build_claim(db, m["operator"], programme_id=pid, month="2025-12")
    await db.commit()
    _reg, stranger = await signed_up(client, roles=("buyer",))
    base = f"/api/v1/programmes/{pid}"

    for path in ("/claims", f"/claims/{claim.id}", f"/claims/{claim.id}.csv", f"/claims/{claim.id}.pdf", "/statistics"):
        assert (await client.get(base + path, headers=stranger)).status_code == 404, path
        assert (await client.get(base + path, headers=m["buyer"])).status_code == 404, path
    assert (await client.post(base + "/claims", json={"month": "2025-12"}, headers=stranger)).status_code == 404
    pay = await client.post(
        base + f"/claims/{claim.id}/payment", json={"amount": 0, "reference": "x"}, headers=stranger
    )
    assert pay.status_code == 404
    other_programme = await client.get(f"/api/v1/programmes/{uuid.uuid4()}/claims/{claim.id}", headers=m["admin"])
    assert other_programme.status_code == 404
    assert (await client.get(base + f"/claims/{claim.id}", headers=m["admin"])).status_code == 200

    # An operator whose organisation is not (or no longer) verified operates nothing.
    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'pending' WHERE id = :id"),
        {"id": m["programme"].org_id},
    )
    await db.commit()
    assert (await client.get(base + "/claims", headers=m["programme_headers"])).status_code == 404


async def test_a_buyer_outside_the_programme_cannot_see_its_claims_even_with_a_voucher(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await claim_market(client, db, bookings=1)
    _reg, other_buyer = await buyer_in(client)
    resp = await client.get(f"/api/v1/programmes/{m['programme'].id}/claims", headers=other_buyer)
    assert resp.status_code == 404
