"""Deliveries to the outside world over loopback: e-mail to a real SMTP server (aiosmtpd), signed webhooks to
a real HTTP receiver; plus the refund-policy boundaries and the lab-service booking API."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.bookings import policy
from marketplace.bookings import tasks as booking_tasks
from marketplace.core.settings import Settings
from marketplace.notifications import service as notifications
from marketplace.notifications import webhooks
from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, Market, build_market, http_client, scalar, sql
from tests.conftest import build_app
from tests.factories import admin_headers, published_asset, signed_up

# -- a real SMTP server and a real webhook receiver on loopback ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Mailbox:
    """aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class Receiver:
    url: str
    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/marketplace"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def live(committed_db_url: str, committed_engine: AsyncEngine, redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url) as server:
        yield server


@pytest.fixture
async def committed_session(committed_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    yield async_sessionmaker(committed_engine, expire_on_commit=False)


async def _book(client: AsyncClient, market: Market, hours_from_now: float = 30) -> dict[str, Any]:
    start, end = slot(hours_from_now)
    r = await client.post(
        "/api/v1/bookings",
        headers={**market.buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _notification(database_url: str, kind: str, booking_id: str) -> tuple[uuid.UUID, str, str]:
    rows = await sql(
        database_url,
        """SELECT n.id, u.email, n.locale FROM notifications n JOIN users u ON u.id = n.user_id
            WHERE n.kind = :kind AND n.data->>'booking_id' = :booking""",
        {"kind": kind, "booking": booking_id},
    )
    assert len(rows) == 1, rows
    return rows[0][0], rows[0][1], rows[0][2]


# -- e-mail ----------------------------------------------------------------------------------------


async def test_notifications_are_mailed_in_the_recipients_locale_exactly_once(
    live: LiveServer,
    committed_db_url: str,
    committed_session: async_sessionmaker[AsyncSession],
    smtp: tuple[Mailbox, int],
) -> None:
    mailbox, port = smtp
    mail_settings = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=port, smtp_from="ops@market.test")
    async with http_client(live) as client:
        market = await build_market(client, committed_db_url, supplier_locale="zh-CN")
        booking = await _book(client, market)
        url = f"/api/v1/bookings/{booking['id']}"
        assert (await client.post(f"{url}/payment/accept-terms", headers=market.buyer)).status_code == 200
        assert (await client.post(f"{url}/accept", headers=market.supplier)).status_code == 200
    title = market.machine["title"]
    to_supplier, supplier_email, supplier_locale = await _notification(
        committed_db_url, "booking.requested", booking["id"]
    )
    to_buyer, buyer_email, buyer_locale = await _notification(committed_db_url, "booking.confirmed", booking["id"])
    assert (supplier_locale, buyer_locale) == ("zh-CN", "en")

    for note_id in (to_supplier, to_buyer):
        async with committed_session() as session:
            assert await notifications.deliver(session, mail_settings, note_id) is True
            await session.commit()
    assert [m["Subject"] for m in mailbox.messages] == [f"新的预订请求：{title}", f"Booking confirmed: {title}"]
    assert mailbox.recipients == [[supplier_email], [buyer_email]]
    assert mailbox.messages[0]["To"] == supplier_email and mailbox.messages[0]["From"] == "ops@market.test"
    assert "请在" in mailbox.messages[0].get_content()

    # Delivered once: a redelivered task does not mail again.
    async with committed_session() as session:
        assert await notifications.deliver(session, mail_settings, to_supplier) is False
        await session.commit()
    assert len(mailbox.messages) == 2
    delivered = await sql(
        committed_db_url,
        "SELECT delivered_at IS NOT NULL, delivery_attempts FROM notifications WHERE id = :id",
        {"id": to_supplier},
    )
    assert delivered == [(True, 1)]


async def test_an_unreachable_mail_server_leaves_the_notification_undelivered(
    committed_engine: AsyncEngine, committed_session: async_sessionmaker[AsyncSession], live: LiveServer
) -> None:
    """Control for the mail test: with nothing listening the send fails (so the task retries) and the
    notification is not marked delivered."""
    async with http_client(live) as client:
        market = await build_market(client, live.database_url)
        booking = await _book(client, market)
        r = await client.post(f"/api/v1/bookings/{booking['id']}/payment/accept-terms", headers=market.buyer)
        assert r.status_code == 200
    note_id, _, _ = await _notification(live.database_url, "booking.requested", booking["id"])
    nowhere = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=_free_port())
    async with committed_session() as session:
        with pytest.raises(OSError):
            await notifications.deliver(session, nowhere, note_id)
        await session.rollback()
    assert (
        await scalar(live.database_url, "SELECT delivered_at FROM notifications WHERE id = :id", {"id": note_id})
        is None
    )


async def _retries(database_url: str, task: str, target: uuid.UUID) -> list[float]:
    """Seconds until each outbox row ``task(target)`` is due, oldest row first."""
    rows = await sql(
        database_url,
        """SELECT extract(epoch FROM due_at - now())::float FROM outbox
            WHERE task = :task AND args->>0 = :id ORDER BY id""",
        {"task": task, "id": str(target)},
    )
    return [r[0] for r in rows]


async def test_a_failed_mail_delivery_is_counted_and_its_retry_is_a_delayed_outbox_row(
    committed_engine: AsyncEngine, committed_session: async_sessionmaker[AsyncSession], live: LiveServer
) -> None:
    """No Celery countdown (an ETA message a killed worker held would wait for Redis's visibility timeout): the
    next attempt is a job in the outbox, due after the back-off; the last allowed attempt schedules nothing."""
    async with http_client(live) as client:
        market = await build_market(client, live.database_url)
        booking = await _book(client, market)
        r = await client.post(f"/api/v1/bookings/{booking['id']}/payment/accept-terms", headers=market.buyer)
        assert r.status_code == 200
    note_id, _, _ = await _notification(live.database_url, "booking.requested", booking["id"])
    nowhere = Settings(environment="test", smtp_host="127.0.0.1", smtp_port=_free_port())
    assert len(await _retries(live.database_url, "notifications.deliver", note_id)) == 1  # the first delivery
    for attempt, delay in ((1, 10), (2, 20)):
        async with committed_session() as session:
            assert await booking_tasks.deliver_notification_once(session, nowhere, note_id) is False
            await session.commit()
        row = await sql(
            live.database_url,
            "SELECT delivery_attempts, delivered_at FROM notifications WHERE id = :id",
            {"id": note_id},
        )
        assert row == [(attempt, None)]
        assert abs((await _retries(live.database_url, "notifications.deliver", note_id))[-1] - delay) < 3
    await sql(
        live.database_url,
        "UPDATE notifications SET delivery_attempts = :n WHERE id = :id",
        {"n": booking_tasks.NOTIFICATION_MAX_ATTEMPTS - 1, "id": note_id},
    )
    async with committed_session() as session:
        assert await booking_tasks.deliver_notification_once(session, nowhere, note_id) is False
        await session.commit()
    assert len(await _retries(live.database_url, "notifications.deliver", note_id)) == 3  # no further retry


# -- webhooks --------------------------------------------------------------------------------------


async def _register_webhook(client: AsyncClient, market: Market, url: str) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/orgs/{market.buyer_org}/webhooks", headers=market.buyer, json={"url": url, "events": ["booking.*"]}
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    assert out["secret"].startswith("whsec_")
    return out


async def _deliveries(database_url: str, booking_id: str) -> list[tuple[uuid.UUID, str]]:
    rows = await sql(
        database_url,
        "SELECT id, event FROM webhook_deliveries WHERE payload->'data'->>'booking_id' = :b ORDER BY created_at",
        {"b": booking_id},
    )
    return [(r[0], r[1]) for r in rows]


async def test_webhook_is_delivered_signed_and_logged(
    live: LiveServer,
    committed_db_url: str,
    committed_session: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    async with http_client(live) as client:
        market = await build_market(client, committed_db_url)
        endpoint = await _register_webhook(client, market, receiver.url)
        booking = await _book(client, market)
        deliveries = await _deliveries(committed_db_url, booking["id"])
        assert [event for _, event in deliveries] == ["booking.held"]
        delivery_id = deliveries[0][0]

        async with committed_session() as session:
            assert await webhooks.attempt(session, live.settings, delivery_id) == "delivered"
            await session.commit()
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert headers["x-marketplace-event"] == "booking.held"
        assert headers["x-marketplace-delivery"] == str(delivery_id)
        payload = json.loads(body)
        assert payload["id"] == str(delivery_id) and payload["event"] == "booking.held"
        assert payload["data"]["booking_id"] == booking["id"] and payload["data"]["amount"] == booking["amount"]

        signature = headers["x-marketplace-signature"]
        secret = endpoint["secret"]
        assert webhooks.verify(secret, signature, body)
        tampered = body.replace(b'"held"', b'"settled"')
        assert tampered != body and not webhooks.verify(secret, signature, tampered)
        assert not webhooks.verify("whsec_" + "0" * 43, signature, body)
        sent_at = int(signature.split(",")[0].removeprefix("t="))
        assert abs(sent_at - time.time()) < 60
        assert webhooks.verify(secret, signature, body, now=sent_at + 300)
        assert not webhooks.verify(secret, signature, body, now=sent_at + 301)  # stale: a replay
        assert not webhooks.verify(secret, webhooks.sign(secret, int(time.time()) - 3600, body), body)

        # A redelivered task does not post again.
        async with committed_session() as session:
            assert await webhooks.attempt(session, live.settings, delivery_id) == "delivered"
            await session.commit()
        assert len(receiver.requests) == 1

        log = await client.get(f"/api/v1/orgs/{market.buyer_org}/webhooks", headers=market.buyer)
        assert log.status_code == 200
        [item] = log.json()["items"]
        assert item["id"] == endpoint["id"] and "secret" not in item
        [entry] = item["deliveries"]
        assert entry["id"] == str(delivery_id) and entry["status"] == "delivered" and entry["attempts"] == 1
        assert entry["last_status_code"] == 200 and entry["delivered_at"]
        other = await client.get(f"/api/v1/orgs/{market.buyer_org}/webhooks", headers=market.supplier)
        assert other.status_code == 404


async def test_failing_webhook_receiver_is_retried_then_marked_failed(
    live: LiveServer,
    committed_db_url: str,
    committed_session: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    receiver.status = 500
    async with http_client(live) as client:
        market = await build_market(client, committed_db_url)
        await _register_webhook(client, market, receiver.url)
        booking = await _book(client, market)
        [(delivery_id, _)] = await _deliveries(committed_db_url, booking["id"])

        statuses = []
        for _ in range(webhooks.MAX_ATTEMPTS):
            async with committed_session() as session:
                statuses.append(await webhooks.attempt(session, live.settings, delivery_id))
                await session.commit()
            if len(statuses) == 1:
                row = await sql(
                    committed_db_url,
                    "SELECT status, attempts, last_status_code FROM webhook_deliveries WHERE id = :id",
                    {"id": delivery_id},
                )
                assert row == [("pending", 1, 500)]
        assert statuses == ["pending"] * (webhooks.MAX_ATTEMPTS - 1) + ["failed"]
        assert len(receiver.requests) == webhooks.MAX_ATTEMPTS

        # Failed is final: no further posts.
        async with committed_session() as session:
            assert await webhooks.attempt(session, live.settings, delivery_id) == "failed"
            await session.commit()
        assert len(receiver.requests) == webhooks.MAX_ATTEMPTS

        log = (await client.get(f"/api/v1/orgs/{market.buyer_org}/webhooks", headers=market.buyer)).json()
        [entry] = log["items"][0]["deliveries"]
        assert entry["status"] == "failed" and entry["attempts"] == webhooks.MAX_ATTEMPTS
        assert entry["last_status_code"] == 500 and entry["last_error"] == "http_500" and entry["delivered_at"] is None


async def test_a_pending_webhook_delivery_schedules_its_next_attempt_as_a_delayed_outbox_row(
    live: LiveServer,
    committed_db_url: str,
    committed_session: async_sessionmaker[AsyncSession],
    receiver: Receiver,
) -> None:
    receiver.status = 503
    async with http_client(live) as client:
        market = await build_market(client, committed_db_url)
        await _register_webhook(client, market, receiver.url)
        booking = await _book(client, market)
        [(delivery_id, _)] = await _deliveries(committed_db_url, booking["id"])
    assert len(await _retries(committed_db_url, "webhooks.deliver", delivery_id)) == 1  # the first delivery
    for delay in (10, 20, 40):  # exponential back-off
        async with committed_session() as session:
            assert await booking_tasks.deliver_webhook_once(session, live.settings, delivery_id) == "pending"
            await session.commit()
        assert abs((await _retries(committed_db_url, "webhooks.deliver", delivery_id))[-1] - delay) < 3
    receiver.status = 200
    async with committed_session() as session:
        assert await booking_tasks.deliver_webhook_once(session, live.settings, delivery_id) == "delivered"
        await session.commit()
    assert len(await _retries(committed_db_url, "webhooks.deliver", delivery_id)) == 4  # nothing more scheduled
    assert len(receiver.requests) == 4


async def test_webhook_endpoints_on_loopback_are_refused_unless_private_targets_are_allowed(
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    redis: Redis,
    redis_url: str,
) -> None:
    strict = Settings(environment="test", jwt_secret="y" * 40, auth_rate_limit=10_000, webhook_allow_private=False)
    app = build_app(strict, sessionmaker, engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        reg, headers = await signed_up(client, roles=("buyer",))
        url = f"/api/v1/orgs/{reg['org']['id']}/webhooks"
        for target in ("http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest"):
            r = await client.post(url, headers=headers, json={"url": target, "events": ["booking.*"]})
            assert r.status_code == 422, (target, r.text)
            assert "public" in r.json()["detail"]
    lenient = Settings(environment="test", jwt_secret="y" * 40, auth_rate_limit=10_000, webhook_allow_private=True)
    app = build_app(lenient, sessionmaker, engine, redis, redis_url)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        reg, headers = await signed_up(client, roles=("buyer",))
        r = await client.post(
            f"/api/v1/orgs/{reg['org']['id']}/webhooks",
            headers=headers,
            json={"url": "http://127.0.0.1:8080/hook", "events": ["booking.*"]},
        )
        assert r.status_code == 201, r.text


# -- refund policy at its boundaries ---------------------------------------------------------------

POLICY = {"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50}
START = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("notice", "by", "percent"),
    [
        (timedelta(hours=100), "buyer", 100),
        (timedelta(hours=72), "buyer", 100),
        (timedelta(hours=72) - timedelta(seconds=1), "buyer", 50),
        (timedelta(hours=24), "buyer", 50),
        (timedelta(hours=24) - timedelta(seconds=1), "buyer", 0),
        (timedelta(0), "buyer", 0),
        (timedelta(hours=-5), "buyer", 0),
        (timedelta(hours=100), "supplier", 100),
        (timedelta(hours=1), "supplier", 100),
        (timedelta(hours=-5), "supplier", 100),
        (timedelta(hours=1), "admin", 100),
    ],
)
def test_refund_percent_at_the_notice_boundaries(notice: timedelta, by: str, percent: int) -> None:
    assert policy.refund_percent(POLICY, start=START, now=START - notice, by=by) == percent


def test_refund_percent_follows_the_snapshotted_policy_and_its_defaults() -> None:
    strict = {"full_refund_hours": 168, "partial_refund_hours": 48, "partial_refund_percent": 25}
    assert policy.refund_percent(strict, start=START, now=START - timedelta(hours=100), by="buyer") == 25
    assert policy.refund_percent(strict, start=START, now=START - timedelta(hours=47), by="buyer") == 0
    assert policy.refund_percent({}, start=START, now=START - timedelta(hours=72), by="buyer") == 100
    assert policy.refund_percent({}, start=START, now=START - timedelta(hours=24), by="buyer") == 50


@pytest.mark.parametrize(
    ("amount", "percent", "refund"),
    [
        (80000, 100, 80000),
        (80000, 50, 40000),
        (80000, 0, 0),
        (1, 50, 1),  # 0.5 rounds up
        (3, 50, 2),  # 1.5 rounds up
        (333, 50, 167),  # 166.5 rounds up
        (12345, 25, 3086),  # 3086.25 rounds down
        (12347, 25, 3087),  # 3086.75 rounds up
        (199, 50, 100),  # 99.5 rounds up
        (0, 50, 0),
    ],
)
def test_refund_amount_rounds_half_up_to_the_minor_unit(amount: int, percent: int, refund: int) -> None:
    assert policy.refund_amount(amount, percent) == refund


def test_machine_price_rounds_half_up_and_adds_the_setup_fee() -> None:
    assert policy.machine_price(30000, 120, 20000) == 80000
    assert policy.machine_price(1, 30, 0) == 1  # half a minor unit rounds up
    assert policy.machine_price(3, 50, 0) == 3  # 2.5 rounds up
    assert policy.machine_price(7, 20, 5) == 2 + 5  # 2.33 rounds down


# -- lab-service bookings through the API ----------------------------------------------------------


def _next_weekday(weekday: int, at_least_days: int = 7) -> date:
    """A date of the given weekday (Monday 0) at least ``at_least_days`` ahead in Shanghai."""
    d = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=at_least_days)
    return d + timedelta(days=(weekday - d.weekday()) % 7)


async def _lab_market(client: AsyncClient, db: AsyncSession) -> tuple[dict[str, Any], dict[str, str]]:
    admin = await admin_headers(client, db)
    lab, _supplier, _site = await published_asset(client, db, admin, kind="lab_service")  # Monday to Friday
    _, buyer = await signed_up(client, roles=("buyer",))
    return lab, buyer


async def _book_samples(client: AsyncClient, buyer: dict[str, str], lab_id: str, day: date, samples: int) -> Any:
    return await client.post(
        "/api/v1/bookings",
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": lab_id, "drop_off_date": day.isoformat(), "samples": samples},
    )


async def test_lab_booking_sets_the_due_date_in_working_days_and_counts_capacity(
    client: AsyncClient, db: AsyncSession
) -> None:
    lab, buyer = await _lab_market(client, db)
    wednesday = _next_weekday(2)
    r = await _book_samples(client, buyer, lab["id"], wednesday, 30)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["kind"] == "lab_service" and b["status"] == "held"
    assert b["drop_off_date"] == wednesday.isoformat() and b["samples"] == 30
    # 3 working days after Wednesday, skipping the weekend: Monday.
    assert b["due_date"] == (wednesday + timedelta(days=5)).isoformat()
    assert b["unit_price"] == 15000 and b["amount"] == 30 * 15000
    assert b["start"] is None and b["blocked_from"] is None

    over = await _book_samples(client, buyer, lab["id"], wednesday, 11)
    assert over.status_code == 409 and over.json()["error"] == "capacity_unavailable"
    assert over.json()["remaining"] == 10
    rest = await _book_samples(client, buyer, lab["id"], wednesday, 10)
    assert rest.status_code == 201, rest.text
    full = await _book_samples(client, buyer, lab["id"], wednesday, 1)
    assert full.status_code == 409 and full.json()["remaining"] == 0

    days = await client.get(
        f"/api/v1/assets/{lab['id']}/lab-capacity",
        params={"from": wednesday.isoformat(), "to": (wednesday + timedelta(days=1)).isoformat()},
    )
    assert days.status_code == 200, days.text
    assert days.json()["items"] == [
        {"date": wednesday.isoformat(), "capacity": 40, "booked": 40, "remaining": 0, "open": True},
        {
            "date": (wednesday + timedelta(days=1)).isoformat(),
            "capacity": 40,
            "booked": 0,
            "remaining": 40,
            "open": True,
        },
    ]


async def test_cancelled_lab_samples_free_the_days_capacity(client: AsyncClient, db: AsyncSession) -> None:
    lab, buyer = await _lab_market(client, db)
    friday = _next_weekday(4)
    b = (await _book_samples(client, buyer, lab["id"], friday, 40)).json()
    assert b["due_date"] == (friday + timedelta(days=5)).isoformat()  # Friday + 3 working days: Wednesday
    assert (await client.post(f"/api/v1/bookings/{b['id']}/cancel", headers=buyer)).status_code == 200
    capacity = (
        await client.get(
            f"/api/v1/assets/{lab['id']}/lab-capacity", params={"from": friday.isoformat(), "to": friday.isoformat()}
        )
    ).json()["items"]
    assert capacity[0]["booked"] == 0 and capacity[0]["remaining"] == 40
    assert (await _book_samples(client, buyer, lab["id"], friday, 40)).status_code == 201


async def test_lab_booking_on_a_closed_day_is_refused(client: AsyncClient, db: AsyncSession) -> None:
    lab, buyer = await _lab_market(client, db)
    saturday = _next_weekday(5)
    r = await _book_samples(client, buyer, lab["id"], saturday, 1)
    assert r.status_code == 422 and r.json()["error"] == "not_bookable", r.text
    day = (
        await client.get(
            f"/api/v1/assets/{lab['id']}/lab-capacity",
            params={"from": saturday.isoformat(), "to": saturday.isoformat()},
        )
    ).json()["items"][0]
    assert day == {"date": saturday.isoformat(), "capacity": 0, "booked": 0, "remaining": 0, "open": False}
    past = await _book_samples(client, buyer, lab["id"], _next_weekday(2, at_least_days=-14), 1)
    assert past.status_code == 422
    db_total = (
        await db.execute(sa.text("SELECT count(*) FROM bookings WHERE asset_id = :a"), {"a": lab["id"]})
    ).scalar()
    assert db_total == 0
