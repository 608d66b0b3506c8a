"""A voucher spent on a booking (POST /api/v1/bookings with ``voucher_id``): the share, every refusal, and the
redemption following the booking's moves (decline, expire, cancel, settle, resolve)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, Site
from marketplace.bookings import actions
from marketplace.bookings.models import Booking
from marketplace.vouchers import redemption
from marketplace.vouchers.eligibility import VoucherInvoiceOnly
from tests.vouchers.conftest import (
    SHANGHAI,
    book,
    buyer_in,
    china_today,
    granted_voucher,
    lab_booking_body,
    listing,
    voucher_market,
)

LAB_PRICE = 15_000  # tests.factories.lab_payload: 150 CNY a sample; two samples: 30 000, half of it 15 000


async def _redemption(db: AsyncSession, booking_id: str) -> dict[str, Any]:
    row = (
        (await db.execute(sa.text("SELECT * FROM voucher_redemptions WHERE booking_id = :b"), {"b": booking_id}))
        .mappings()
        .one()
    )
    return dict(row)


async def _budget_used(client: AsyncClient, m: dict[str, Any]) -> int:
    out = (await client.get(f"/api/v1/programmes/{m['programme']['id']}", headers=m["programme_headers"])).json()
    return int(out["budget_used"])


async def _spend(client: AsyncClient, m: dict[str, Any], **body: Any) -> Any:
    data = lab_booking_body(m["lab"]["id"], voucher_id=m["voucher"]["id"], **body)
    return await client.post(
        "/api/v1/bookings", json=data, headers={**m["buyer"], "Idempotency-Key": str(uuid.uuid4())}
    )


async def test_the_share_is_the_rate_of_the_amount_and_is_reserved(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking = await book(client, m["buyer"], lab_booking_body(m["lab"]["id"], voucher_id=m["voucher"]["id"]))
    assert booking["amount"] == 2 * LAB_PRICE
    assert booking["voucher_id"] == m["voucher"]["id"] and booking["voucher_share"] == LAB_PRICE
    row = await _redemption(db, booking["id"])
    assert row["status"] == "active" and row["booked_amount"] == row["amount"] == LAB_PRICE
    assert row["year"] == china_today().year and row["payment_mode"] == "advance"
    assert str(row["programme_id"]) == m["programme"]["id"]
    assert await _budget_used(client, m) == LAB_PRICE
    vouchers = (await client.get(f"/api/v1/orgs/{m['buyer_org']}/vouchers", headers=m["buyer"])).json()
    assert vouchers[0]["used_this_year"] == LAB_PRICE
    assert vouchers[0]["remaining_this_year"] == m["programme"]["cap_per_buyer_year"] - LAB_PRICE


async def test_the_share_is_at_most_the_per_booking_cap(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db, cap_per_booking=10_000)
    resp = await _spend(client, m)
    assert resp.status_code == 201 and resp.json()["voucher_share"] == 10_000, resp.text


async def test_the_share_is_at_most_the_buyers_yearly_cap_left_then_nothing_is_left(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db, cap_per_buyer_year=20_000)
    first, second = await _spend(client, m), await _spend(client, m)
    assert [first.json()["voucher_share"], second.json()["voucher_share"]] == [LAB_PRICE, 5_000]
    third = await _spend(client, m)
    assert third.status_code == 409 and third.json()["error"] == "voucher_exhausted", third.text
    assert third.json()["buyer_cap_left"] == 0


async def test_the_share_is_at_most_the_budget_left_across_buyers(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db, budget=20_000)
    assert (await _spend(client, m)).json()["voucher_share"] == LAB_PRICE
    other_reg, other = await buyer_in(client)
    voucher = await granted_voucher(client, m["programme_headers"], m["programme"]["id"], other_reg["org"]["id"])
    body = lab_booking_body(m["lab"]["id"], voucher_id=voucher["id"])
    assert (await book(client, other, body))["voucher_share"] == 5_000
    resp = await client.post("/api/v1/bookings", json=body, headers={**other, "Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 409 and resp.json()["error"] == "voucher_exhausted", resp.text


async def _bookings_of(db: AsyncSession, buyer_org: str) -> int:
    found = await db.execute(sa.text("SELECT count(*) FROM bookings WHERE buyer_org_id = :o"), {"o": buyer_org})
    return int(found.scalar_one())


async def test_a_voucher_that_is_not_the_buyers_is_not_found_and_nothing_is_booked(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    _reg, stranger = await buyer_in(client)
    for voucher_id in (m["voucher"]["id"], str(uuid.uuid4())):
        body = lab_booking_body(m["lab"]["id"], voucher_id=voucher_id)
        resp = await client.post(
            "/api/v1/bookings", json=body, headers={**stranger, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert resp.status_code == 404 and resp.json()["error"] == "voucher_not_found", resp.text
    assert await _bookings_of(db, _reg["org"]["id"]) == 0


async def test_an_applied_or_revoked_voucher_is_not_granted(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    url = f"/api/v1/programmes/{m['programme']['id']}/vouchers/{m['voucher']['id']}/decision"
    await client.post(url, json={"decision": "revoke"}, headers=m["programme_headers"])
    resp = await _spend(client, m)
    assert resp.status_code == 409 and resp.json()["error"] == "voucher_not_granted", resp.text
    assert await _bookings_of(db, m["buyer_org"]) == 0


async def _not_eligible(client: AsyncClient, m: dict[str, Any], why: str, **body: Any) -> None:
    resp = await _spend(client, m, **body)
    assert resp.status_code == 422, resp.text
    out = resp.json()
    assert out["error"] == "voucher_not_eligible" and why in out["detail"], out
    assert out["fields"][0]["field"] == "voucher_id"


async def test_a_service_of_another_kind_or_family_is_not_eligible(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db, eligible_kinds=["machine"])
    await _not_eligible(client, m, "does not pay for lab service bookings")
    m = await voucher_market(client, db, eligible_families=["machining", "sheet_metal"])
    await _not_eligible(client, m, "pays only for machining, sheet_metal services")
    m = await voucher_market(client, db, eligible_families=["testing"])
    assert (await _spend(client, m)).status_code == 201


async def test_a_supplier_outside_the_region_is_not_eligible(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    m["lab"], _headers, _site = await listing(client, db, m["admin"], site=SHANGHAI)
    await _not_eligible(client, m, "outside the programme's region")


async def test_a_closed_expired_not_yet_open_or_foreign_currency_programme_is_not_eligible(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    await client.patch(
        f"/api/v1/programmes/{m['programme']['id']}", json={"status": "closed"}, headers=m["programme_headers"]
    )
    await _not_eligible(client, m, "the programme is closed")
    today = china_today()
    m = await voucher_market(
        client, db, valid_from=str(today + timedelta(days=1)), valid_until=str(today + timedelta(days=9))
    )
    await _not_eligible(client, m, "the programme opens on")
    m = await voucher_market(
        client, db, valid_from=str(today - timedelta(days=9)), valid_until=str(today - timedelta(days=1))
    )
    await _not_eligible(client, m, "the programme ended on")
    m = await voucher_market(client, db, currency="USD")
    await _not_eligible(client, m, "the programme pays in USD")


async def test_an_advance_voucher_is_refused_with_the_card_gateway(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    asset = await db.get(Asset, uuid.UUID(m["lab"]["id"]))
    assert asset is not None
    site = await db.get(Site, asset.site_id)
    assert site is not None
    booking = Booking(
        asset_id=asset.id,
        kind=asset.kind,
        supplier_org_id=asset.org_id,
        buyer_org_id=uuid.UUID(m["buyer_org"]),
        currency="CNY",
        unit_price=LAB_PRICE,
        amount=2 * LAB_PRICE,
        cancellation_policy={},
        site_timezone=site.timezone,
        payment_method="stripe",
    )
    try:
        await redemption.redeem(db, booking, voucher_id=uuid.UUID(m["voucher"]["id"]), asset=asset, site=site)
    except VoucherInvoiceOnly as exc:
        assert exc.code == "voucher_invoice_only"
    else:
        raise AssertionError("an advance voucher was accepted for a card payment")


async def test_an_after_use_voucher_has_no_payer(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db, payment_mode="after_use")
    booking = (await _spend(client, m)).json()
    assert booking["voucher_share"] == LAB_PRICE
    row = await _redemption(db, booking["id"])
    assert row["payment_mode"] == "after_use"
    payer = await db.execute(sa.text("SELECT voucher_payer_org_id FROM bookings WHERE id = :b"), {"b": booking["id"]})
    assert payer.scalar_one() is None


# -- the redemption follows the booking ------------------------------------------------------------------------


async def _act(client: AsyncClient, headers: dict[str, str], booking_id: str, action: str, **body: Any) -> Any:
    path = "payment/accept-terms" if action == "pay" else action
    resp = await client.post(f"/api/v1/bookings/{booking_id}/{path}", json=body or None, headers=headers)
    assert resp.status_code == 200, (action, resp.text)
    return resp.json()


async def test_a_declined_booking_releases_the_budget(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking = (await _spend(client, m)).json()
    await _act(client, m["buyer"], booking["id"], "pay")
    await _act(client, m["supplier"], booking["id"], "decline", reason="fully booked")
    row = await _redemption(db, booking["id"])
    assert row["status"] == "released" and row["amount"] == 0 and row["booked_amount"] == LAB_PRICE
    assert await _budget_used(client, m) == 0


async def test_an_expired_hold_releases_the_budget(client: AsyncClient, db: AsyncSession, app: Any) -> None:
    m = await voucher_market(client, db)
    booking_id = (await _spend(client, m)).json()["id"]
    booking = await db.get(Booking, uuid.UUID(booking_id))
    assert booking is not None
    moved = await actions.system_act(
        session=db, booking=booking, action="expire", deps=app.state.booking_deps, reason="hold expired"
    )
    await db.commit()
    assert moved
    assert (await _redemption(db, booking_id))["status"] == "released"
    assert await _budget_used(client, m) == 0


async def test_cancelling_a_held_or_fully_refunded_booking_releases_the_budget(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    held = (await _spend(client, m)).json()
    await _act(client, m["buyer"], held["id"], "cancel")
    assert (await _redemption(db, held["id"]))["status"] == "released"
    paid = (await _spend(client, m, days_ahead=6)).json()
    await _act(client, m["buyer"], paid["id"], "pay")
    out = await _act(client, m["buyer"], paid["id"], "cancel")
    assert out["refund_amount"] == out["amount"]  # six days' notice: a full refund
    row = await _redemption(db, paid["id"])
    assert row["status"] == "released" and row["amount"] == 0
    assert await _budget_used(client, m) == 0


async def test_a_cancellation_fee_keeps_a_proportional_share(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking = (await _spend(client, m, days_ahead=2)).json()  # 24-48 h notice: half refunded (default policy)
    await _act(client, m["buyer"], booking["id"], "pay")
    out = await _act(client, m["buyer"], booking["id"], "cancel")
    assert out["refund_amount"] == LAB_PRICE
    row = await _redemption(db, booking["id"])
    assert row["status"] == "settled" and row["amount"] == LAB_PRICE // 2 and row["settled_at"] is not None
    assert await _budget_used(client, m) == LAB_PRICE // 2


async def _completed(client: AsyncClient, m: dict[str, Any]) -> str:
    booking_id: str = (await _spend(client, m, days_ahead=0)).json()["id"]
    await _act(client, m["buyer"], booking_id, "pay")
    await _act(client, m["supplier"], booking_id, "accept")
    await _act(client, m["supplier"], booking_id, "start")
    await _act(client, m["supplier"], booking_id, "complete", result_reference="Report R-1")
    return booking_id


async def test_a_settled_booking_keeps_its_share(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking_id = await _completed(client, m)
    assert (await _redemption(db, booking_id))["status"] == "active"
    await _act(client, m["buyer"], booking_id, "confirm")
    row = await _redemption(db, booking_id)
    assert row["status"] == "settled" and row["amount"] == LAB_PRICE
    assert await _budget_used(client, m) == LAB_PRICE


async def test_a_resolved_dispute_keeps_the_share_of_what_the_buyer_still_pays(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await voucher_market(client, db)
    booking_id = await _completed(client, m)
    await _act(client, m["buyer"], booking_id, "dispute", reason="one sample was not tested")
    resp = await client.post(
        f"/api/v1/admin/bookings/{booking_id}/resolve",
        json={"refund_amount": 10_000, "note": "one third back"},
        headers=m["admin"],
    )
    assert resp.status_code == 200, resp.text
    row = await _redemption(db, booking_id)
    assert row["status"] == "settled" and row["amount"] == 10_000  # 15 000 x 20 000 / 30 000


async def test_a_booking_without_a_voucher_moves_without_a_redemption(client: AsyncClient, db: AsyncSession) -> None:
    m = await voucher_market(client, db)
    booking = await book(client, m["buyer"], lab_booking_body(m["lab"]["id"]))
    assert booking["voucher_id"] is None and booking["voucher_share"] == 0
    await _act(client, m["buyer"], booking["id"], "cancel")
    found = await db.execute(
        sa.text("SELECT count(*) FROM voucher_redemptions WHERE booking_id = :b"), {"b": booking["id"]}
    )
    assert found.scalar_one() == 0
    assert await _budget_used(client, m) == 0
