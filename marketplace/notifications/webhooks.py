"""Outbound webhooks: organisations register endpoints for ``booking.*`` and ``request.matched`` events.
Each delivery is stored, signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` and retried with backoff.

Receivers verify ``X-Marketplace-Signature: t=<unix seconds>,v1=<hex digest>`` with their secret and
reject stale timestamps."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.notifications.models import WebhookDelivery, WebhookEndpoint
from marketplace.notifications.repository import WebhookRepository
from marketplace.orgs.access import record_org_event
from marketplace.orgs.repository import OrgRepository

MAX_ATTEMPTS = 8


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver does (also used by our tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_seconds:
        return False
    # Bytes: compare_digest raises TypeError on str with non-ASCII characters (a header may carry any).
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.encode())


# What a delivery's ``last_error`` may say: a category, never the exception's text (which would turn the
# delivery log into a port scanner of whatever the target name resolves to).
ERROR_CATEGORIES = ("timeout", "refused", "tls", "dns", "blocked", "network")  # plus http_<status>

Resolver = Callable[[str, int], Awaitable[list[str]]]


class WebhookTargetRefused(Unprocessable):
    """The URL's host does not resolve, or resolves to an address that is not on the public internet."""

    def __init__(self, detail: str, *, category: str) -> None:
        super().__init__(detail)
        self.category = category


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, with the event loop's resolver (never blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64 well-known prefix), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """Only global unicast addresses: no loopback, private, shared (100.64.0.0/10, where cloud metadata
    services live), link-local, reserved or multicast address, nor one hidden inside an IPv6 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not (inner.is_global and not inner.is_multicast):
            return False
    return True


async def check_url(url: str, settings: Settings, *, resolver: Resolver = system_resolver) -> str:
    """Resolve the URL's host once and return the address to connect to (the delivery pins its connection
    to it). Refused unless every address is public; ``webhook_allow_private`` (tests, on-premise) lifts only
    that check, never the pinning."""
    parts = httpx.URL(url)
    host = parts.host
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookTargetRefused("url: must be an http(s) URL with a host", category="blocked")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]  # a literal address: nothing to resolve
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except (OSError, UnicodeError):
            raise WebhookTargetRefused(f"url: cannot resolve host {host!r}", category="dns") from None
    if not addresses:
        raise WebhookTargetRefused(f"url: cannot resolve host {host!r}", category="dns")
    if not settings.webhook_allow_private and not all(is_public(a) for a in addresses):
        raise WebhookTargetRefused("url: webhook endpoints must be public internet addresses", category="blocked")
    return addresses[0]


class PinnedTransport(httpx.AsyncBaseTransport):
    """Connects to the address that was checked, whatever DNS answers later (no DNS rebinding between check
    and connect). The request keeps its URL's name in the Host header, and TLS sends it as SNI and checks the
    certificate against it. A request for any other host (a redirect, say) is refused."""

    def __init__(self, *, host: str, address: str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.host = host
        self.address = address
        self.inner = inner or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != self.host:
            raise httpx.ConnectError("host is not the pinned one", request=request)
        request.url = request.url.copy_with(host=self.address)
        request.extensions = {**request.extensions, "sni_hostname": self.host}
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def error_category(exc: BaseException) -> str:
    """What went wrong, as one of ``ERROR_CATEGORIES``."""
    if isinstance(exc, WebhookTargetRefused):
        return exc.category
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.ConnectError):
        return "refused"
    return "network"


def authorise(principal: Principal, org_id: uuid.UUID) -> None:
    """Who may manage (and read the delivery log of) an organisation's webhooks: its owners, platform admins,
    and its API keys with the ``webhooks:write`` scope (only owners create keys). A plain member may not: a
    webhook receives every booking event of the organisation. Strangers get 404, like a missing organisation."""
    if not (principal.is_member(org_id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    if principal.api_key_id is not None:
        if not principal.has_scope("webhooks:write"):
            raise Forbidden("This API key lacks the 'webhooks:write' scope.")
    elif not (principal.is_owner(org_id) or principal.is_platform_admin):
        raise Forbidden("Only an owner of this organisation can manage its webhooks.")


async def create_endpoint(
    session: AsyncSession,
    *,
    principal: Principal,
    org_id: uuid.UUID,
    url: str,
    events: list[str],
    settings: Settings,
    resolver: Resolver = system_resolver,
) -> WebhookEndpoint:
    """Register an endpoint (owners only; public targets only), audited whichever door it came through. Its
    secret is on the returned row: show it once."""
    authorise(principal, org_id)
    if not principal.is_member(org_id) and await OrgRepository(session).get(org_id) is None:
        raise NotFound("Organisation not found.")  # an admin may name any id
    await check_url(url, settings, resolver=resolver)
    endpoint = await WebhookRepository(session).add(
        WebhookEndpoint(org_id=org_id, url=url, secret=new_secret(), events=sorted(set(events)))
    )
    # The host only: a URL's path, query or user part may carry the receiver's own credentials.
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="org.webhook_created",
        org_id=org_id,
        after={"webhook_id": str(endpoint.id), "host": httpx.URL(url).host, "events": endpoint.events},
    )
    return endpoint


async def list_endpoints(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, with_deliveries: bool = True
) -> list[tuple[WebhookEndpoint, list[WebhookDelivery]]]:
    """The organisation's endpoints (oldest first) with their recent delivery log, in one query. Who may: see
    ``authorise``. Without the log (``with_deliveries=False``, the factory's integrations page lists URLs and
    events only) any member may read them."""
    repo = WebhookRepository(session)
    if with_deliveries:
        authorise(principal, org_id)
        return await repo.with_recent_deliveries(org_id)
    if not (principal.is_member(org_id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    return await repo.with_recent_deliveries(org_id, per_endpoint=0)


async def delete_endpoint(
    *, session: AsyncSession, principal: Principal, org_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    authorise(principal, org_id)
    repo = WebhookRepository(session)
    endpoint = await repo.get(webhook_id)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound("Webhook not found.")
    # Audited like its creation: who stopped the deliveries, and to which host (never the path or query).
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="org.webhook_deleted",
        org_id=org_id,
        before={"webhook_id": str(endpoint.id), "host": httpx.URL(endpoint.url).host, "events": endpoint.events},
    )
    await repo.delete(endpoint)


def _subscribed(endpoint_events: list[str], event: str) -> bool:
    family = event.split(".", 1)[0] + ".*"
    return event in endpoint_events or family in endpoint_events


async def fan_out(session: AsyncSession, org_ids: list[uuid.UUID], *, event: str, payload: dict[str, Any]) -> int:
    """Queue a delivery of ``event`` to every active endpoint of these organisations that wants it."""
    repo = WebhookRepository(session)
    count = 0
    for endpoint in await repo.active_for(org_ids):
        if not _subscribed(endpoint.events, event):
            continue
        delivery = await repo.add_delivery(
            WebhookDelivery(endpoint_id=endpoint.id, event=event, payload={"id": "", "event": event, "data": payload})
        )
        delivery.payload = {**delivery.payload, "id": str(delivery.id), "created_at": utcnow().isoformat()}
        await enqueue(session, "webhooks.deliver", str(delivery.id))
        count += 1
    return count


async def attempt(
    session: AsyncSession, settings: Settings, delivery_id: uuid.UUID, *, resolver: Resolver = system_resolver
) -> str:
    """One delivery attempt; returns the delivery status afterwards (``pending`` means: retry). The target is
    resolved and checked again (DNS may have changed since it was registered) and the connection pinned to
    the checked address."""
    found = await WebhookRepository(session).delivery_for_update(delivery_id)
    if found is None:
        return "failed"
    delivery, endpoint = found
    if delivery.status != "pending":
        return delivery.status
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SharedManufacturingMarketplace-Webhooks/1",
        "X-Marketplace-Event": delivery.event,
        "X-Marketplace-Delivery": str(delivery.id),
        "X-Marketplace-Signature": sign(endpoint.secret, int(time.time()), body),
    }
    delivery.attempts += 1
    try:
        address = await check_url(endpoint.url, settings, resolver=resolver)
        transport = PinnedTransport(host=httpx.URL(endpoint.url).host, address=address)
        async with httpx.AsyncClient(
            transport=transport, timeout=settings.webhook_timeout_seconds, follow_redirects=False
        ) as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
        delivery.last_status_code = response.status_code
        delivery.last_error = None if response.is_success else f"http_{response.status_code}"
        ok = response.is_success
    except (httpx.HTTPError, WebhookTargetRefused) as exc:
        delivery.last_error = error_category(exc)
        ok = False
    if ok:
        delivery.status = "delivered"
        delivery.delivered_at = utcnow()
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    await session.flush()
    return delivery.status
