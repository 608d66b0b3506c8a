"""The card path through the API against localstripe (a real HTTP server the real SDK talks to), with
Connect calls (accounts, account links, transfers) answered and recorded by the recorder."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import stripe
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing.tasks import apply_stripe_event
from marketplace.bookings.deps import listings_config
from marketplace.bookings.service import Deps
from marketplace.core.settings import Settings
from payments import ledger
from payments.repository import PaymentsRepository
from tests.bookings.helpers import book, market, slot
from tests.payments.conftest import Recorder, event, gateway_for, sign

WHSEC = "whsec_test_secret"
AMOUNT = 80000


@pytest.fixture
def settings(localstripe_url: str) -> Settings:
    return Settings(
        environment="test",
        jwt_secret="test-secret-" + "x" * 32,
        auth_rate_limit=10_000,
        webhook_allow_private=True,
        stripe_secret_key="sk_test_marketplace",
        stripe_api_base=localstripe_url,
        stripe_webhook_secret=WHSEC,
    )


@pytest.fixture
def stripe_app(app: Any, settings: Settings, localstripe_url: str, recorder: Recorder) -> Any:
    app.state.booking_deps = Deps(
        settings=settings, payments=gateway_for(localstripe_url, recorder), listings_config=listings_config(settings)
    )
    return app


async def deliver(client: AsyncClient, payload: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/payments/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": sign(payload, WHSEC), "Content-Type": "application/json"},
    )


async def process_all(db: AsyncSession, app: Any) -> None:
    """What the Celery task does for each stored event (the jobs it enqueues stay in the test's outbox)."""
    for event_id in await PaymentsRepository(db).pending_events():
        await apply_stripe_event(db, event_id, app.state.booking_deps)


async def onboard(client: AsyncClient, db: AsyncSession, app: Any, m: dict[str, Any], recorder: Recorder) -> str:
    supplier_org = m["asset"]["org_id"]
    r = await client.post(f"/api/v1/orgs/{supplier_org}/payments/stripe-account", headers=m["supplier"])
    assert r.status_code == 200, r.text
    assert r.json()["url"].startswith("https://connect.stripe.com/setup/")
    (account_id,) = recorder.accounts
    assert recorder.calls("/v1/accounts", "POST")[0].params["type"] == "express"
    recorder.accounts[account_id].update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
    # The event's copy says "disabled": processing re-fetches the account and trusts Stripe's answer.
    stale = {"id": account_id, "object": "account", "charges_enabled": False, "payouts_enabled": False}
    assert (await deliver(client, event("account.updated", stale))).status_code == 200
    await process_all(db, app)
    return account_id


async def confirm_card(localstripe_url: str, intent_id: str, pm: str = "pm_card_visa") -> None:
    """What Stripe.js does in the buyer's browser with the client secret."""
    client = stripe.StripeClient(
        "sk_test_buyer", base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient()
    )
    await client.v1.payment_intents.update_async(intent_id, {"payment_method": pm})
    await client.v1.payment_intents.confirm_async(intent_id)


async def _held_booking(
    client: AsyncClient, db: AsyncSession, app: Any, m: dict[str, Any], localstripe_url: str, hours: float
) -> dict[str, Any]:
    start, end = slot(hours)
    r = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert r.status_code == 201, r.text
    b: dict[str, Any] = r.json()
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    await confirm_card(localstripe_url, pay["payment_intent_id"])
    intent = {"id": pay["payment_intent_id"], "object": "payment_intent", "status": "requires_payment_method"}
    assert (await deliver(client, event("payment_intent.amount_capturable_updated", intent))).status_code == 200
    await process_all(db, app)
    b = (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()
    assert b["status"] == "requested"
    return b


async def test_card_path_end_to_end(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    start, end = slot(3)
    early = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert early.status_code == 409 and early.json()["error"] == "supplier_not_onboarded"
    account_id = await onboard(client, db, stripe_app, m, recorder)

    r = await book(client, m["buyer"], m["asset"]["id"], start, end, key="k-card-1")
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["payment_method"] == "stripe" and b["amount"] == AMOUNT
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert pay["method"] == "stripe" and pay["invoice_id"] is None
    assert pay["payment_intent_id"].startswith("pi_") and pay["client_secret"] and pay["amount_due"] == AMOUNT
    supplier_view = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["supplier"])).json()
    assert supplier_view["client_secret"] is None
    hold = recorder.calls("/v1/payment_intents", "POST")[0]
    assert hold.params["capture_method"] == "manual" and hold.params["amount"] == str(AMOUNT)
    assert hold.headers["Idempotency-Key"] == f"booking:{b['id']}:hold"

    await confirm_card(localstripe_url, pay["payment_intent_id"])
    r = await client.post(f"/api/v1/bookings/{b['id']}/payment/refresh", headers=m["buyer"])
    assert r.status_code == 200 and r.json()["status"] == "requires_capture" and r.json()["amount_due"] == 0
    assert (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()["status"] == "requested"

    for action, who in (("accept", "supplier"), ("start", "supplier"), ("complete", "supplier"), ("confirm", "buyer")):
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None  # before the start
        r = await client.post(f"/api/v1/bookings/{b['id']}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, (action, r.text)
    capture = recorder.calls(f"/v1/payment_intents/{pay['payment_intent_id']}/capture")[0]
    assert capture.headers["Idempotency-Key"] == f"booking:{b['id']}:capture"
    fee = ledger.commission(AMOUNT, 800)
    (transfer,) = recorder.calls("/v1/transfers", "POST")
    assert transfer.params["amount"] == str(AMOUNT - fee)
    assert transfer.params["destination"] == account_id
    assert transfer.params["transfer_group"] == f"booking:{b['id']}"
    assert transfer.params["source_transaction"].startswith("ch_")
    assert transfer.headers["Idempotency-Key"] == f"booking:{b['id']}:transfer"

    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.CLEARING_STRIPE] == fee and balances[ledger.SUPPLIER_PAYABLE] == 0
    trial = (await client.get("/api/v1/admin/ledger/trial-balance", headers=m["admin"])).json()
    assert trial["balanced"] is True


async def test_cancel_after_capture_refunds_per_policy_and_decline_releases_the_hold(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 30)
    assert (await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])).status_code == 200
    r = await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=m["buyer"])
    assert r.status_code == 200, r.text
    refund = r.json()["refund_amount"]
    assert refund == AMOUNT // 2
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    sdk = stripe.StripeClient("sk_test_x", base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient())
    refunds = await sdk.v1.refunds.list_async({"payment_intent": pay["payment_intent_id"]})
    assert [x.amount for x in refunds.data] == [refund]
    kept = AMOUNT - refund
    (transfer,) = recorder.calls("/v1/transfers", "POST")
    assert transfer.params["amount"] == str(kept - ledger.commission(kept, 800))
    balances = await ledger.booking_balances(db, uuid.UUID(b["id"]))
    assert balances[ledger.CLEARING_STRIPE] == ledger.commission(kept, 800)

    # Declined by the supplier: the hold is cancelled, nothing is posted.
    d = await _held_booking(client, db, stripe_app, m, localstripe_url, 60)
    assert (await client.post(f"/api/v1/bookings/{d['id']}/decline", headers=m["supplier"])).status_code == 200
    pay = (await client.get(f"/api/v1/bookings/{d['id']}/payment", headers=m["buyer"])).json()
    assert pay["status"] == "canceled"
    assert (await sdk.v1.payment_intents.retrieve_async(pay["payment_intent_id"])).status == "canceled"
    assert await ledger.booking_balances(db, uuid.UUID(d["id"])) == {}


async def test_declined_card_and_unpaid_acceptance(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    start, end = slot(90)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    with pytest.raises(stripe.CardError):
        await confirm_card(localstripe_url, pay["payment_intent_id"], "pm_card_chargeCustomerFail")
    r = await client.post(f"/api/v1/bookings/{b['id']}/payment/refresh", headers=m["buyer"])
    assert r.json()["status"] == "requires_payment_method"
    assert (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()["status"] == "held"
    # Without a hold in place the booking cannot become a request (money is never assumed) ...
    r = await client.post(f"/api/v1/bookings/{b['id']}/payment/accept-terms", headers=m["buyer"])
    assert r.status_code == 409 and r.json()["error"] == "payment_not_authorised"
    assert (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()["status"] == "held"
    # ... and the supplier has nothing to accept.
    r = await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])
    assert r.status_code == 409


async def test_reconciliation_compares_ledger_with_balance_transactions(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    httpx.delete(f"{localstripe_url}/_config/data")  # only this test's objects in the fake's balance
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 30)
    await client.post(f"/api/v1/bookings/{b['id']}/accept", headers=m["supplier"])
    await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=m["buyer"])
    r = await client.get("/api/v1/admin/payments/reconciliation", headers=m["admin"])
    assert r.status_code == 200, r.text
    cny = r.json()["currencies"]["CNY"]["categories"]
    assert cny["charges"] == {"stripe": AMOUNT, "ledger": AMOUNT, "difference": 0}
    assert cny["refunds"] == {"stripe": -AMOUNT // 2, "ledger": -AMOUNT // 2, "difference": 0}
    # localstripe has no Connect: the transfer exists only at the recorder, so reconciliation flags it.
    kept = AMOUNT - AMOUNT // 2
    assert cny["transfers"]["difference"] == kept - ledger.commission(kept, 800)
    assert r.json()["matched"] is False
    assert (await client.get("/api/v1/admin/payments/reconciliation", headers=m["buyer"])).status_code == 403
