# ruff: noqa: F811  (the Stripe fixtures are imported from test_stripe_localstripe)
"""Exact requests the SDK sends for what localstripe cannot check (Connect and idempotency), recorded by
``RecordingHTTPClient`` and answered by the recorder's canned JSON. ``mypy`` checks the same calls
against the SDK's typed params (``make typecheck``)."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from payments import ledger
from payments.repository import PaymentsRepository
from tests.bookings.helpers import market
from tests.payments.conftest import Recorder, gateway_for
from tests.payments.test_stripe_localstripe import (  # noqa: F401  (fixtures)
    AMOUNT,
    _held_booking,
    onboard,
    settings,
    stripe_app,
)


async def test_onboarding_requests(client: AsyncClient, db: AsyncSession, stripe_app: Any, recorder: Recorder) -> None:
    m = await market(client, db)
    supplier_org = m["asset"]["org_id"]
    account_id = await onboard(client, db, stripe_app, m, recorder)
    (create,) = recorder.calls("/v1/accounts", "POST")
    assert create.params["type"] == "express"
    assert create.params["capabilities[transfers][requested]"] == "true"
    assert create.params["metadata[org_id]"] == supplier_org
    assert create.headers["Idempotency-Key"] == f"org:{supplier_org}:stripe-account"
    assert create.headers["Authorization"] == "Bearer sk_test_marketplace"
    (link,) = recorder.calls("/v1/account_links")
    assert link.params["account"] == account_id and link.params["type"] == "account_onboarding"
    assert link.params["return_url"].endswith(f"/orgs/{supplier_org}/payments/stripe-account/return")
    assert link.params["refresh_url"].endswith(f"/orgs/{supplier_org}/payments/stripe-account/refresh")
    # account.updated was processed by re-fetching the account.
    assert recorder.calls(f"/v1/accounts/{account_id}", "GET")
    stored = await PaymentsRepository(db).stripe_account(uuid.UUID(supplier_org))
    assert stored is not None and stored.charges_enabled and stored.payouts_enabled
    # A second request reuses the account and only makes a new link.
    r = await client.post(f"/api/v1/orgs/{supplier_org}/payments/stripe-account", headers=m["supplier"])
    assert r.status_code == 200 and len(recorder.calls("/v1/accounts", "POST")) == 1
    # Members who are not owners, and other organisations, cannot.
    r = await client.post(f"/api/v1/orgs/{supplier_org}/payments/stripe-account", headers=m["buyer"])
    assert r.status_code == 404


async def test_transfer_retry_reuses_the_idempotency_key_and_reversal_params(
    client: AsyncClient, db: AsyncSession, stripe_app: Any, localstripe_url: str, recorder: Recorder
) -> None:
    m = await market(client, db)
    account_id = await onboard(client, db, stripe_app, m, recorder)
    b = await _held_booking(client, db, stripe_app, m, localstripe_url, 3)
    for action, who in (("accept", "supplier"), ("start", "supplier"), ("complete", "supplier")):
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None  # before the start
        r = await client.post(f"/api/v1/bookings/{b['id']}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, r.text
    recorder.fail_next = 1  # the first transfer attempt fails with a 500; the SDK retries
    assert (await client.post(f"/api/v1/bookings/{b['id']}/confirm", headers=m["buyer"])).status_code == 200
    attempts = recorder.calls("/v1/transfers", "POST")
    assert len(attempts) == 2
    assert {a.headers["Idempotency-Key"] for a in attempts} == {f"booking:{b['id']}:transfer"}
    fee = ledger.commission(AMOUNT, 800)
    assert attempts[1].params == {
        "amount": str(AMOUNT - fee),
        "currency": "cny",
        "destination": account_id,
        "source_transaction": attempts[1].params["source_transaction"],
        "transfer_group": f"booking:{b['id']}",
        "metadata[booking_id]": b["id"],
    }
    assert attempts[1].params["source_transaction"].startswith("ch_")

    # An adjustment claims 1000 back from the supplier: paying out again reverses the excess.
    booking_id = uuid.UUID(b["id"])
    await ledger.post(
        db,
        key=f"test:adjust:{booking_id}",
        kind="adjustment",
        booking_id=booking_id,
        lines=[
            ledger.Line(ledger.SUPPLIER_PAYABLE, uuid.UUID(m["asset"]["org_id"]), "CNY", 1000),
            ledger.Line(ledger.COMMISSION_REVENUE, None, "CNY", -1000),
        ],
    )
    gateway = gateway_for(localstripe_url, recorder)
    payment = await PaymentsRepository(db).card_payment(booking_id, for_update=True)
    assert payment is not None
    await gateway.pay_out(db, payment)
    (reversal,) = recorder.calls(f"/v1/transfers/{payment.transfer_id}/reversals", "POST")
    assert reversal.params == {"amount": "1000", "metadata[booking_id]": b["id"]}
    assert reversal.headers["Idempotency-Key"] == f"booking:{b['id']}:reversal"
    assert await ledger.booking_balance(db, booking_id, ledger.SUPPLIER_PAYABLE) == 0
    assert (await ledger.trial_balance(db))["balanced"]
