"""Webhooks cannot be aimed inside (issue #13 item 8): owner-only, every resolved address must be global, the
connection is pinned to the checked address (no DNS rebinding), and the delivery log shows categories only."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.notifications import webhooks
from marketplace.notifications.models import WebhookDelivery, WebhookEndpoint
from tests.factories import login, register, signed_up


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The production rule: private targets refused (the suite's settings allow them for its receivers)."""
    settings.webhook_allow_private = False
    return settings


@dataclass
class Receiver:
    port: int = 0
    status: int = 200
    hosts: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.hosts.append(self.headers.get("Host", ""))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class ScriptedResolver:
    """A DNS server an attacker controls: answers each lookup with the next address of its script."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [self.answers[min(len(self.lookups), len(self.answers)) - 1]]


async def create(client: AsyncClient, org_id: str, headers: dict[str, str], url: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/orgs/{org_id}/webhooks", headers=headers, json={"url": url, "events": ["booking.*"]}
    )


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize(
    "url",
    [
        "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud metadata, in 100.64.0.0/10
        "http://169.254.169.254/",
        "http://localhost:8080/hook",  # a name that resolves to 127.0.0.1 (the event loop's resolver)
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://0.0.0.0/",
    ],
)
async def test_webhook_targets_inside_are_refused(client: AsyncClient, url: str) -> None:
    reg, headers = await signed_up(client)
    r = await create(client, reg["org"]["id"], headers, url)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error" and "public internet" in r.json()["detail"]


async def test_a_public_target_is_accepted_and_unresolvable_names_are_refused(strict: Settings) -> None:
    assert await webhooks.check_url("https://hooks.example.com/x", strict, resolver=ScriptedResolver("93.184.215.14"))
    with pytest.raises(webhooks.WebhookTargetRefused) as refused:
        await webhooks.check_url("https://no-such-host.invalid/x", strict)
    assert refused.value.category == "dns"


async def test_only_owners_manage_webhooks(client: AsyncClient, db: AsyncSession) -> None:
    owner_reg, owner = await signed_up(client)
    org_id = owner_reg["org"]["id"]
    member_reg = await register(client)
    # A plain member of the organisation (membership written directly: the invitation flow is not under test).
    from marketplace.orgs.models import Membership

    db.add(Membership(org_id=uuid.UUID(org_id), user_id=uuid.UUID(member_reg["user"]["id"]), role="member"))
    await db.commit()
    member = await login(client, member_reg["email"])
    url = "https://93.184.215.14/marketplace"  # a public address (the suite runs offline: no name to resolve)

    refused = await create(client, org_id, member, url)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert (await client.get(f"/api/v1/orgs/{org_id}/webhooks", headers=member)).status_code == 403
    _, stranger = await signed_up(client)
    assert (await create(client, org_id, stranger, url)).status_code == 404

    made = await create(client, org_id, owner, url)
    assert made.status_code == 201, made.text
    gone = await client.delete(f"/api/v1/orgs/{org_id}/webhooks/{made.json()['id']}", headers=member)
    assert gone.status_code == 403
    assert (
        await client.delete(f"/api/v1/orgs/{org_id}/webhooks/{made.json()['id']}", headers=owner)
    ).status_code == 204
    # Deleting is audited like creating: who, which endpoint, which host (never the URL's path).
    from sqlmodel import select

    from marketplace.core.audit import AuditLog

    deleted = (await db.scalars(select(AuditLog).where(AuditLog.action == "org.webhook_deleted"))).all()
    mine = [row for row in deleted if row.target_id == org_id]
    assert len(mine) == 1
    assert mine[0].actor_user_id == uuid.UUID(owner_reg["user"]["id"])
    assert mine[0].before == {"webhook_id": made.json()["id"], "host": "93.184.215.14", "events": made.json()["events"]}


async def test_the_pinned_transport_connects_to_the_checked_address_and_keeps_the_name(receiver: Receiver) -> None:
    # hooks.invalid resolves nowhere: the request can only arrive if the transport connects to the pinned address.
    transport = webhooks.PinnedTransport(host="hooks.invalid", address="127.0.0.1")
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.post(f"http://hooks.invalid:{receiver.port}/x", content=b"{}")
        assert r.status_code == 200
        assert receiver.hosts == [f"hooks.invalid:{receiver.port}"]
        with pytest.raises(httpx.ConnectError):  # another host (a redirect target, say) is never fetched
            await client.post(f"http://elsewhere.invalid:{receiver.port}/x", content=b"{}")
    assert len(receiver.hosts) == 1


async def _endpoint_with_delivery(db: AsyncSession, url: str) -> uuid.UUID:
    reg = await _org(db)
    endpoint = WebhookEndpoint(org_id=reg, url=url, secret=webhooks.new_secret(), events=["booking.*"])
    db.add(endpoint)
    await db.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event="booking.held", payload={"data": {}})
    db.add(delivery)
    await db.flush()
    return delivery.id


async def _org(db: AsyncSession) -> uuid.UUID:
    from marketplace.orgs.models import Organisation

    org = Organisation(name=f"Hooks {uuid.uuid4().hex[:6]}", country="DE", roles=["buyer"])
    db.add(org)
    await db.flush()
    return org.id


async def test_a_delivery_connects_to_the_address_it_checked_even_if_dns_answers_differently_later(
    db: AsyncSession, settings: Settings, receiver: Receiver
) -> None:
    # Allowed private targets (the receiver is on loopback); the pin does not depend on that setting.
    delivery_id = await _endpoint_with_delivery(db, f"http://hooks.invalid:{receiver.port}/hook")
    resolver = ScriptedResolver("127.0.0.1", "203.0.113.9")  # a second lookup would go nowhere
    assert await webhooks.attempt(db, settings, delivery_id, resolver=resolver) == "delivered"
    assert resolver.lookups == ["hooks.invalid"]
    assert receiver.hosts == [f"hooks.invalid:{receiver.port}"]


async def test_a_name_rebound_to_loopback_after_registration_is_blocked_at_delivery(
    db: AsyncSession, strict: Settings, receiver: Receiver
) -> None:
    url = f"http://rebind.example:{receiver.port}/hook"
    resolver = ScriptedResolver("93.184.215.14", "127.0.0.1")
    assert await webhooks.check_url(url, strict, resolver=resolver)  # public when registered ...
    delivery_id = await _endpoint_with_delivery(db, url)
    assert await webhooks.attempt(db, strict, delivery_id, resolver=resolver) == "pending"  # ... loopback now
    delivery = await db.get(WebhookDelivery, delivery_id)
    assert delivery is not None and delivery.last_error == "blocked"
    assert receiver.hosts == []


async def test_delivery_errors_are_stored_as_categories_never_raw_text(
    db: AsyncSession, settings: Settings, receiver: Receiver
) -> None:
    receiver.status = 503
    with_status = await _endpoint_with_delivery(db, f"http://127.0.0.1:{receiver.port}/hook")
    await webhooks.attempt(db, settings, with_status)

    closed = await asyncio.get_running_loop().run_in_executor(None, _closed_port)
    refused = await _endpoint_with_delivery(db, f"http://127.0.0.1:{closed}/hook")
    await webhooks.attempt(db, settings, refused)

    settings.webhook_timeout_seconds = 0.5
    silent = await _silent_server()
    async with silent:
        timed_out = await _endpoint_with_delivery(db, f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}/h")
        await webhooks.attempt(db, settings, timed_out)

    tls = await _endpoint_with_delivery(db, f"https://127.0.0.1:{receiver.port}/hook")  # plain HTTP behind https
    await webhooks.attempt(db, settings, tls)
    unresolvable = await _endpoint_with_delivery(db, "http://no-such-host.invalid/hook")
    await webhooks.attempt(db, settings, unresolvable)

    errors = {}
    for name, delivery_id in [
        ("status", with_status),
        ("refused", refused),
        ("timeout", timed_out),
        ("tls", tls),
        ("dns", unresolvable),
    ]:
        row = await db.get(WebhookDelivery, delivery_id)
        assert row is not None
        errors[name] = row.last_error
    assert errors == {"status": "http_503", "refused": "refused", "timeout": "timeout", "tls": "tls", "dns": "dns"}


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _silent_server() -> asyncio.Server:
    """Accepts connections and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


@pytest.fixture
def tls_receiver(tmp_path: Any) -> Iterator[tuple[int, str]]:
    """An HTTPS receiver on 127.0.0.1 whose certificate names hooks.test (self-signed, made with openssl)."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.hosts.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], str(cert)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


async def test_a_pinned_https_delivery_checks_the_certificate_against_the_name_not_the_address(
    tls_receiver: tuple[int, str],
) -> None:
    import ssl

    port, cafile = tls_receiver
    trust = ssl.create_default_context(cafile=cafile)
    pinned = webhooks.PinnedTransport(
        host="hooks.test", address="127.0.0.1", inner=httpx.AsyncHTTPTransport(verify=trust, retries=0)
    )
    async with httpx.AsyncClient(transport=pinned) as client:
        assert (await client.post(f"https://hooks.test:{port}/x", content=b"{}")).status_code == 200
    # Same address, another name: the certificate does not name it, so TLS refuses (SNI and check use the name).
    other = webhooks.PinnedTransport(
        host="other.test", address="127.0.0.1", inner=httpx.AsyncHTTPTransport(verify=trust, retries=0)
    )
    async with httpx.AsyncClient(transport=other) as client:
        with pytest.raises(httpx.ConnectError) as refused:
            await client.post(f"https://other.test:{port}/x", content=b"{}")
    assert webhooks.error_category(refused.value) == "tls"


async def test_a_plain_member_cannot_add_a_webhook_in_the_web_app(client: AsyncClient, db: AsyncSession) -> None:
    import re

    import sqlalchemy as sa
    from sqlmodel import col

    from marketplace.orgs.models import Membership
    from tests.factories import PASSWORD

    owner_reg, _ = await signed_up(client, roles=("supplier",))
    org_id = owner_reg["org"]["id"]
    member_reg = await register(client)
    db.add(Membership(org_id=uuid.UUID(org_id), user_id=uuid.UUID(member_reg["user"]["id"]), role="member"))
    await db.commit()
    login_page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
    assert token
    signed_in = await client.post(
        "/login", data={"email": member_reg["email"], "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert signed_in.status_code == 303
    page = await client.get(f"/factory/{org_id}/integrations")
    assert page.status_code == 200
    assert "/integrations/webhooks" not in page.text and "Only owners" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    posted = await client.post(
        f"/factory/{org_id}/integrations/webhooks",
        data={"csrf_token": csrf.group(1), "url": "https://93.184.215.14/hook", "events": "booking.*"},
    )
    assert posted.status_code == 303 and "error=" in posted.headers["location"]
    count = await db.scalar(
        sa.select(sa.func.count()).select_from(WebhookEndpoint).where(col(WebhookEndpoint.org_id) == uuid.UUID(org_id))
    )
    assert count == 0
