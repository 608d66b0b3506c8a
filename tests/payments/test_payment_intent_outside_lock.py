"""Issue #12 item 7: the Stripe PaymentIntent (an HTTP call) is created before the lab-day lock is taken and
before the booking row is written, and is cancelled when the booking then fails. A probe inside the SDK's
HTTP client looks at PostgreSQL's lock table from another connection at the moment of each Stripe call."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import stripe
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from marketplace.bookings.deps import listings_config
from marketplace.bookings.repository import LAB_LOCK_NAMESPACE
from marketplace.bookings.service import Deps
from marketplace.core.settings import Settings
from payments.stripe_gateway import StripeConfig, StripeGateway
from tests.bookings.helpers import ALWAYS_OPEN, book, market, slot
from tests.factories import admin_headers, published_asset, signed_up
from tests.payments.conftest import Recorder, RecordingHTTPClient
from tests.payments.test_stripe_localstripe import WHSEC, onboard

PROBE = sa.text(
    "SELECT"
    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns AND pid = :pid),"
    " (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    "   WHERE c.relname = 'bookings' AND l.mode = 'RowExclusiveLock' AND l.pid = :pid)"
)


class Probe:
    """What the request's database connection holds at each Stripe call: (path, lab-day locks, whether it
    has written to ``bookings``)."""

    def __init__(self, engine: AsyncEngine, pid: int) -> None:
        self.engine, self.pid = engine, pid
        self.seen: list[tuple[str, int, bool]] = []

    async def __call__(self, path: str) -> None:
        async with self.engine.connect() as conn:
            locks, writes = (await conn.execute(PROBE, {"ns": LAB_LOCK_NAMESPACE, "pid": self.pid})).one()
        self.seen.append((path, int(locks), bool(writes)))


class ProbingHTTPClient(RecordingHTTPClient):
    def __init__(self, recorder: Recorder, probe: Probe) -> None:
        super().__init__(recorder)
        self.probe = probe

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        path = urlsplit(url).path
        if method.upper() == "POST" and path.startswith("/v1/payment_intents"):
            await self.probe(path)
        return await super().request_async(method, url, headers, post_data)


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
async def probe(db: AsyncSession, engine: AsyncEngine) -> Probe:
    pid = (await db.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    return Probe(engine, int(pid))


@pytest.fixture
def probed_app(app: Any, settings: Settings, localstripe_url: str, recorder: Recorder, probe: Probe) -> Any:
    gateway = StripeGateway(
        StripeConfig(secret_key="sk_test_marketplace", api_base=localstripe_url, max_network_retries=1),
        http_client=lambda: ProbingHTTPClient(recorder, probe),
    )
    app.state.booking_deps = Deps(settings=settings, payments=gateway, listings_config=listings_config(settings))
    return app


def _intent_status(localstripe_url: str, intent_id: str) -> Any:
    sdk = stripe.StripeClient("sk_test_x", base_addresses={"api": localstripe_url}, http_client=stripe.HTTPXClient())
    return sdk.v1.payment_intents.retrieve_async(intent_id)


async def test_lab_payment_intent_is_created_outside_the_lab_day_lock_and_cancelled_when_refused(
    client: AsyncClient, db: AsyncSession, probed_app: Any, localstripe_url: str, recorder: Recorder, probe: Probe
) -> None:
    admin = await admin_headers(client, db)
    lab, supplier, _site = await published_asset(client, db, admin, kind="lab_service", daily_sample_capacity=5)
    plan = await client.put(
        f"/api/v1/assets/{lab['id']}/availability", headers=supplier, json={"weekly": ALWAYS_OPEN, "exceptions": []}
    )
    assert plan.status_code == 200, plan.text
    _, buyer = await signed_up(client, roles=("buyer",))
    m = {"asset": lab, "supplier": supplier, "buyer": buyer, "admin": admin}
    await onboard(client, db, probed_app, m, recorder)
    day = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=2)

    async def samples(n: int, on: Any) -> Any:
        return await client.post(
            "/api/v1/bookings",
            headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
            json={"asset_id": lab["id"], "drop_off_date": on.isoformat(), "samples": n},
        )

    first = await samples(5, day)
    assert first.status_code == 201, first.text
    # The only Stripe call of the booking: created with no lab-day lock held and no booking row written.
    assert probe.seen == [("/v1/payment_intents", 0, False)]
    pay = (await client.get(f"/api/v1/bookings/{first.json()['id']}/payment", headers=buyer)).json()
    assert pay["payment_intent_id"].startswith("pi_") and pay["client_secret"]

    # Refused for capacity: the day's lock (taken in a savepoint with the count) is released before the
    # abandoned intent is cancelled. (The first booking's own day lock stays with this test's transaction, so
    # its day is moved away first.)
    other_day = day + timedelta(days=1)
    await db.execute(
        sa.text("UPDATE bookings SET drop_off_date = :d WHERE id = :id"), {"d": other_day, "id": first.json()["id"]}
    )
    probe.seen.clear()
    refused = await samples(1, other_day)
    assert refused.status_code == 409 and refused.json()["error"] == "capacity_unavailable", refused.text
    (create, cancel) = probe.seen
    assert create[0] == "/v1/payment_intents" and cancel[0].endswith("/cancel")
    assert cancel[1] == create[1]  # no lock of the refused day is held while Stripe is called
    intent_id = cancel[0].split("/")[3]
    assert (await _intent_status(localstripe_url, intent_id)).status == "canceled"
    assert (await db.execute(sa.text("SELECT count(*) FROM card_payments"))).scalar_one() == 1


async def test_machine_payment_intent_is_created_before_the_insert_and_cancelled_when_the_slot_is_taken(
    client: AsyncClient, db: AsyncSession, probed_app: Any, localstripe_url: str, recorder: Recorder, probe: Probe
) -> None:
    m = await market(client, db)
    await onboard(client, db, probed_app, m, recorder)
    start, end = slot(20)
    first = await book(client, m["buyer"], m["asset"]["id"], start, end, key="first")
    assert first.status_code == 201, first.text
    assert probe.seen == [("/v1/payment_intents", 0, False)]  # before the booking row was written
    probe.seen.clear()
    _, other = await signed_up(client, roles=("buyer",))
    taken = await book(client, other, m["asset"]["id"], start, end, key="second")
    assert taken.status_code == 409 and taken.json()["error"] == "slot_unavailable"
    (create, cancel) = probe.seen
    assert create[0] == "/v1/payment_intents" and cancel[0].endswith("/cancel")
    assert (await _intent_status(localstripe_url, cancel[0].split("/")[3])).status == "canceled"
    created = recorder.calls("/v1/payment_intents", "POST")
    assert created[-2].headers["Idempotency-Key"].endswith(":hold")
    assert created[-1].headers["Idempotency-Key"].endswith(":cancel")
