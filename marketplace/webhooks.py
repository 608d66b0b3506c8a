"""Outbound webhooks: organisations register endpoints for ``booking.*`` and ``request.matched`` events.
Each delivery is stored, signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` and retried with backoff.

Receivers verify ``X-Marketplace-Signature: t=<unix seconds>,v1=<hex digest>`` with their secret and
reject stale timestamps."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.bookings.models import WebhookDelivery, WebhookEndpoint
from marketplace.errors import Unprocessable
from marketplace.jobs import enqueue
from marketplace.settings import Settings
from marketplace.sqltypes import utcnow

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


def check_url(url: str, settings: Settings) -> None:
    """Refuse endpoints on loopback, link-local or private networks (SSRF), unless allowed."""
    if settings.webhook_allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        raise Unprocessable(f"url: cannot resolve host {host!r}") from None
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise Unprocessable("url: webhook endpoints must be public internet addresses")


def _subscribed(endpoint_events: list[str], event: str) -> bool:
    family = event.split(".", 1)[0] + ".*"
    return event in endpoint_events or family in endpoint_events


async def fan_out(session: AsyncSession, org_ids: list[uuid.UUID], event: str, payload: dict[str, Any]) -> int:
    """Queue a delivery of ``event`` to every active endpoint of these organisations that wants it."""
    rows = await session.execute(
        sa.select(WebhookEndpoint).where(col(WebhookEndpoint.org_id).in_(org_ids), col(WebhookEndpoint.active))
    )
    count = 0
    for endpoint in rows.scalars():
        if not _subscribed(endpoint.events, event):
            continue
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id, event=event, payload={"id": "", "event": event, "data": payload}
        )
        session.add(delivery)
        await session.flush()
        delivery.payload = {**delivery.payload, "id": str(delivery.id), "created_at": utcnow().isoformat()}
        await enqueue(session, "webhooks.deliver", str(delivery.id))
        count += 1
    return count


async def attempt(session: AsyncSession, settings: Settings, delivery_id: uuid.UUID) -> str:
    """One delivery attempt; returns the delivery status afterwards (``pending`` means: retry)."""
    row = (
        await session.execute(
            sa.select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
            .where(col(WebhookDelivery.id) == delivery_id)
            .with_for_update(of=WebhookDelivery)  # type: ignore[arg-type]
        )
    ).first()
    if row is None:
        return "failed"
    delivery, endpoint = row
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
        check_url(endpoint.url, settings)
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
        delivery.last_status_code = response.status_code
        delivery.last_error = None if response.is_success else f"HTTP {response.status_code}"
        ok = response.is_success
    except (httpx.HTTPError, Unprocessable) as exc:
        delivery.last_error = str(exc)[:1000] or type(exc).__name__
        ok = False
    if ok:
        delivery.status = "delivered"
        delivery.delivered_at = utcnow()
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    await session.flush()
    return delivery.status
