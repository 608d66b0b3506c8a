"""The web app's card path against localstripe: the booking page shows the card form with the intent's
client secret; a hold placed by Stripe.js (simulated with the SDK, as in the API tests) lets the buyer's
form move the booking to `requested`, and without a hold the page says why."""

from __future__ import annotations

import re
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.payments.conftest import Recorder
from tests.payments.test_stripe_localstripe import confirm_card, onboard, settings, stripe_app  # noqa: F401


async def test_buyer_places_a_card_hold_from_the_booking_page(
    client: AsyncClient,
    db: AsyncSession,
    stripe_app: Any,  # noqa: F811
    localstripe_url: str,
    recorder: Recorder,
) -> None:
    m = await market(client, db)
    await onboard(client, db, stripe_app, m, recorder)
    b = (await book(client, m["buyer"], m["asset"]["id"], *slot(60))).json()
    me = (await client.get("/api/v1/me", headers=m["buyer"])).json()
    login = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    signed = await client.post(
        "/login", data={"email": me["user"]["email"], "password": "correct-horse-battery", "csrf_token": token}
    )
    assert signed.status_code == 303
    page_url = f"/buyer/{b['buyer_org_id']}/bookings/{b['id']}"
    page = await client.get(page_url)
    assert page.status_code == 200 and 'id="card-element"' in page.text, page.text.split("<main")[1][:1500]
    secret = re.search(r'data-client-secret="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    pay = (await client.get(f"/api/v1/bookings/{b['id']}/payment", headers=m["buyer"])).json()
    assert secret == pay["client_secret"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    # No hold yet: the form answers with the reason, the booking stays held.
    early = await client.post(f"{page_url}/pay", data={"csrf_token": token})
    assert early.status_code == 303 and "error=" in early.headers["location"]
    assert "error=payment_not_authorised" in early.headers["location"]  # a code in the URL, never text
    assert "The payment was not authorised." in (await client.get(early.headers["location"])).text
    await confirm_card(localstripe_url, pay["payment_intent_id"])  # what Stripe.js does in the browser
    done = await client.post(f"{page_url}/pay", data={"csrf_token": token})
    assert done.status_code == 303 and "error" not in done.headers["location"]
    assert (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()["status"] == "requested"
