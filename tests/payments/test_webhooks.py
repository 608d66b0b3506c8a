# ruff: noqa: F811  (the Stripe fixtures are imported from test_stripe_localstripe)
"""Stripe webhooks: signature and timestamp checks, storage once per event id, duplicate and
out-of-order deliveries applied exactly once, unknown types ignored, disputes holding payouts, and a
delivery signed by localstripe itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from payments import ledger
from payments.repository import PaymentsRepository
from tests.bookings.helpers import market
from tests.payments.conftest import Recorder, event, sign
from tests.payments.test_stripe_localstripe import (  # noqa: F401  (fixtures)
    AMOUNT,
    WHSEC,
    _held_booking,
    deliver,
    onboard,
    process_all,
    settings,
    stripe_app,
)

URL = "/api/v1/payments/stripe/webhook"


async def test_bad_signature_and_stale_timestamp_are_refused(client: AsyncClient, stripe_app: Any) -> None:
    payload = event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    r = await client.post(URL, content=payload, headers={"Stripe-Signature": sign(payload, "whsec_wrong")})
    assert r.status_code == 400 and r.json()["error"] == "invalid_signature"
    r = await client.post(URL, content=payload)
    assert r.status_code == 400
    stale = sign(payload, WHSEC, timestamp=int(time.time()) - 301)
    r = await client.post(URL, content=payload, headers={"Stripe-Signature": stale})
    assert r.status_code == 400 and "tolerance" in r.json()["detail"].lower()
    tampered = payload.replace(b"pi_x", b"pi_y")
    r = await client.post(URL, content=tampered, headers={"Stripe-Signature": sign(payload, WHSEC)})
    assert r.status_code == 400


async def test_duplicates_are_stored_once_and_unknown_types_ignored(
    client: AsyncClient, db: AsyncSession, stripe_app: Any
) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, event_id="evt_dup_1")
    first = await deliver(client, payload)
    second = await deliver(client, payload)
    assert first.status_code == second.status_code == 200
    assert first.json() == {"received": True, "duplicate": False}
    assert second.json() == {"received": True, "duplicate": True}
    count = await db.scalar(sa.text("SELECT count(*) FROM stripe_events WHERE event_id = 'evt_dup_1'"))
    assert count == 1
    await process_all(db, stripe_app)
    stored = await PaymentsRepository(db).event("evt_dup_1")
    assert stored is not None and stored.status == "ignored" and stored.type == "customer.created"


async def test_out_of_order_and_duplicate_deliveries_apply_once(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 30)  # hold -> requested via a webhook
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    intent = pay["payment_intent_id"]
    # An older event arrives late ("requires_payment_method"), then the same hold event again: the
    # processor re-fetches the intent, so the booking neither goes back nor moves twice.
    late = event(
        "payment_intent.requires_action",
        {"id": intent, "object": "payment_intent", "status": "requires_payment_method"},
    )
    again = event("payment_intent.amount_capturable_updated", {"id": intent, "object": "payment_intent"})
    for payload in (late, again, again):
        assert (await deliver(client, payload)).status_code == 200
    await process_all(db, stripe_app)
    timeline = (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()["timeline"]
    assert [e["action"] for e in timeline] == ["book", "pay"]
    assert timeline[1]["actor_kind"] == "system"

    # Capture, then a signed payment_intent.succeeded event delivered twice: nothing is posted twice.
    assert (await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])).status_code == 200
    succeeded = event("payment_intent.succeeded", {"id": intent, "object": "payment_intent"})
    await deliver(client, succeeded)
    await deliver(client, succeeded)
    await process_all(db, stripe_app)
    journals = await db.scalar(
        sa.text("SELECT count(*) FROM journals WHERE booking_id = :b"), {"b": uuid.UUID(b["id"])}
    )
    assert journals == 1  # the capture only
    assert (await ledger.booking_balances(db, uuid.UUID(b["id"])))[ledger.CLEARING_STRIPE] == AMOUNT


async def test_dispute_holds_the_payout_until_won(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 3)
    for action in ("accept", "start", "complete"):
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None  # before the start
        r = await client.post(f"/api/v1/bookings/{b['id']}/{action}", headers=m["supplier"], json=body)
        assert r.status_code == 200, r.text
    payment = await PaymentsRepository(db).card_payment(uuid.UUID(b["id"]))
    assert payment is not None and payment.charge_id
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "amount": AMOUNT,
        "currency": "cny",
        "charge": payment.charge_id,
        "payment_intent": payment.payment_intent_id,
        "status": "needs_response",
        "reason": "fraudulent",
    }
    recorder.disputes["dp_1"] = dispute
    await deliver(client, event("charge.dispute.created", dispute))
    await process_all(db, stripe_app)
    got = (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()
    assert got["status"] == "disputed"
    assert (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()["status"] == "disputed"

    # The admin resolves the booking dispute with no refund: settled in the ledger, payout held.
    r = await client.post(
        f"/api/v1/admin/bookings/{b['id']}/resolve", headers=m["admin"], json={"refund_amount": 0, "note": "ok"}
    )
    assert r.status_code == 200, r.text
    assert recorder.calls("/v1/transfers", "POST") == []
    fee = ledger.commission(AMOUNT, 800)
    assert -await ledger.booking_balance(db, uuid.UUID(b["id"]), ledger.SUPPLIER_PAYABLE) == AMOUNT - fee

    # Stripe closes the dispute as won (the event's copy is stale; the re-fetched one counts).
    recorder.disputes["dp_1"] = {**dispute, "status": "won"}
    await deliver(client, event("charge.dispute.closed", {**dispute, "status": "needs_response"}))
    await deliver(client, event("charge.dispute.closed", dispute))
    await process_all(db, stripe_app)
    (transfer,) = recorder.calls("/v1/transfers", "POST")
    assert transfer.params["amount"] == str(AMOUNT - fee)
    assert await ledger.booking_balance(db, uuid.UUID(b["id"]), ledger.SUPPLIER_PAYABLE) == 0


async def test_lost_dispute_is_a_platform_loss(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 30)
    await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])
    payment = await PaymentsRepository(db).card_payment(uuid.UUID(b["id"]))
    assert payment is not None
    dispute = {
        "id": "dp_2",
        "object": "dispute",
        "amount": AMOUNT,
        "currency": "cny",
        "charge": payment.charge_id,
        "payment_intent": payment.payment_intent_id,
        "status": "lost",
        "reason": "fraudulent",
    }
    recorder.disputes["dp_2"] = dispute
    await deliver(client, event("charge.dispute.closed", dispute))
    await deliver(client, event("charge.dispute.closed", dispute))
    await process_all(db, stripe_app)
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.DISPUTE_LOSSES] == AMOUNT and balances[ledger.CLEARING_STRIPE] == 0
    assert (await ledger.trial_balance(db))["balanced"]


async def test_a_delivery_signed_by_localstripe_is_accepted(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    hook = httpx.post(
        f"{localstripe_url}/_config/webhooks/marketplace-test",
        data={"url": f"{recorder.url}/hooks", "secret": WHSEC, "events[]": "payment_intent.succeeded"},
    )
    assert hook.status_code == 200
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 30)
    await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])  # capture -> succeeded event
    for _ in range(50):
        if recorder.hooks:
            break
        await asyncio.sleep(0.1)
    body, headers = recorder.hooks[0]
    r = await client.post(URL, content=body, headers={"Stripe-Signature": headers["Stripe-Signature"]})
    assert r.status_code == 200 and r.json()["duplicate"] is False
    await process_all(db, stripe_app)
    # localstripe cannot delete a webhook: narrow it to an event that never happens.
    httpx.post(
        f"{localstripe_url}/_config/webhooks/marketplace-test",
        data={"url": f"{recorder.url}/hooks", "secret": WHSEC, "events[]": "never.happens"},
    )
