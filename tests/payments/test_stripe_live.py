"""Against Stripe's test mode: runs only with MARKETPLACE_STRIPE_TEST_KEY (an sk_test_ key), never in CI
without one. Covers what no fake can: real idempotency, Connect Express accounts and account links."""

from __future__ import annotations

import os
import uuid

import pytest
import stripe

KEY = os.environ.get("MARKETPLACE_STRIPE_TEST_KEY", "")

pytestmark = pytest.mark.skipif(
    not KEY.startswith("sk_test_"),
    reason="MARKETPLACE_STRIPE_TEST_KEY (a Stripe test-mode secret key) is not set: live Stripe tests skipped",
)


def client() -> stripe.StripeClient:
    return stripe.StripeClient(KEY, http_client=stripe.HTTPXClient(), max_network_retries=2)


async def test_manual_capture_refund_and_idempotency() -> None:
    c = client()
    key = f"live-test:{uuid.uuid4()}"
    params: stripe.params.PaymentIntentCreateParams = {
        "amount": 12345,
        "currency": "eur",
        "capture_method": "manual",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
    }
    intent = await c.v1.payment_intents.create_async(params, {"idempotency_key": key})
    again = await c.v1.payment_intents.create_async(params, {"idempotency_key": key})
    assert again.id == intent.id and intent.status == "requires_capture"
    captured = await c.v1.payment_intents.capture_async(intent.id, {"amount_to_capture": 10000})
    assert captured.amount_received == 10000
    refund = await c.v1.refunds.create_async({"payment_intent": intent.id, "amount": 2500})
    assert refund.amount == 2500


async def test_express_account_and_onboarding_link() -> None:
    c = client()
    account = await c.v1.accounts.create_async(
        {"type": "express", "country": "US", "capabilities": {"transfers": {"requested": True}}}
    )
    link = await c.v1.account_links.create_async(
        {
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://example.com/r",
            "return_url": "https://example.com/x",
        }
    )
    assert link.url.startswith("https://")
    assert not account.charges_enabled
