"""A real uvicorn server running the real app in a background thread, and a market built through its API.

``LiveServer`` binds 127.0.0.1 on a free port, lets the app's lifespan build its own engine and connection
pool for the given database and Redis, waits until ``/healthz`` answers and stops cleanly
(``server.should_exit``). Its jobs are rows in the database's ``outbox``; nothing sends them anywhere unless a
test starts a relay (``tests.processes.relay``) and a worker on the relay's queue.

``build_market`` creates, through the HTTP API, a verified supplier with a site, a machine open around the
clock and a lab service open every day, and a buyer. Only what the API deliberately does not offer is done
in SQL: promoting the platform admin and verifying the supplier organisation.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
import sqlalchemy as sa
import uvicorn
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.core.settings import Settings
from tests.factories import PASSWORD, SUZHOU, lab_payload, machine_payload, unique_email

ALWAYS_OPEN = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]  # 24 h, Monday to Sunday


def live_settings(**overrides: Any) -> Settings:
    """Settings of a live test server (every call gets its own Celery queue name, used by nothing but a relay
    or worker started with the same settings)."""
    values: dict[str, Any] = {
        "environment": "test",
        "jwt_secret": "x" * 40,
        "auth_rate_limit": 100_000,
        "celery_queue": f"live-{uuid.uuid4().hex[:10]}",
        "database_pool_size": 20,
        "database_max_overflow": 10,
        "webhook_allow_private": True,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class LiveServer:
    """``with LiveServer(db_url, redis_url, settings) as server: ... server.url ...``"""

    def __init__(self, database_url: str, redis_url: str, settings: Settings | None = None, *, app: Any = None) -> None:
        self.app = app  # an app the test built (e.g. with a test-only route); default: create_app(settings)
        self.database_url = database_url
        self.redis_url = redis_url
        self.settings = settings or live_settings()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> LiveServer:
        from marketplace.app import create_app

        app = self.app or create_app(self.settings, database_url=self.database_url, redis_url=self.redis_url)
        sock = _free_socket()
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on", backlog=4096
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the live server stopped during start-up (see the log above)")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the live server did not answer /healthz within {timeout} s")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the live server did not stop"
        self._server = self._thread = None
        # Drop the jobs nobody consumed (this server's queue is its own).
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.settings.celery_queue}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_client(server: LiveServer, concurrency: int = 250, timeout: float = 120.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=server.url, limits=limits, timeout=timeout)


# -- SQL on the server's database ------------------------------------------------------------------


async def sql(database_url: str, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Run one statement in its own committed transaction; returns the rows (empty without RETURNING)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(statement), params or {})
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def scalar(database_url: str, statement: str, params: dict[str, Any] | None = None) -> Any:
    rows = await sql(database_url, statement, params)
    return rows[0][0] if rows else None


# -- a market through the API ----------------------------------------------------------------------


@dataclass
class Market:
    admin: dict[str, str]
    supplier: dict[str, str]
    supplier_org: str
    buyer: dict[str, str]
    buyer_org: str
    site: dict[str, Any]
    machine: dict[str, Any]
    lab: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


async def register(
    client: httpx.AsyncClient,
    roles: tuple[str, ...],
    *,
    database_url: str,
    country: str = "CN",
    locale: str = "en",
) -> dict[str, Any]:
    """Register through the API; the address is then marked verified in the database (a relay may already
    have taken the verification link's job; tests/test_email_flows.py covers the link itself)."""
    email = unique_email("live")
    body = {
        "email": email,
        "password": PASSWORD,
        "full_name": "Live Test",
        "locale": locale,
        "org": {"name": f"Org {email}", "roles": list(roles), "country": country},
    }
    data: dict[str, Any] = _ok(await client.post("/api/v1/auth/register", json=body), 201)
    data["email"] = email
    await sql(database_url, "UPDATE users SET email_verified_at = now() WHERE id = :id", {"id": data["user"]["id"]})
    return data


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    token = _ok(await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}))
    return {"Authorization": f"Bearer {token['access_token']}"}


async def admin_headers(client: httpx.AsyncClient, database_url: str) -> dict[str, str]:
    reg = await register(client, ("buyer",), database_url=database_url)
    await sql(database_url, "UPDATE users SET is_platform_admin = true WHERE id = :id", {"id": reg["user"]["id"]})
    return await login(client, reg["email"])


async def verified_supplier(
    client: httpx.AsyncClient, database_url: str, *, locale: str = "en"
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """A supplier organisation, verified, with one site; returns (registration, headers, site)."""
    reg = await register(client, ("supplier",), database_url=database_url, locale=locale)
    await sql(
        database_url,
        "UPDATE organisations SET verification_status = 'verified' WHERE id = :id",
        {"id": reg["org"]["id"]},
    )
    headers = await login(client, reg["email"])
    site = _ok(await client.post("/api/v1/sites", json=SUZHOU, headers=headers), 201)
    return reg, headers, site


async def published(
    client: httpx.AsyncClient,
    supplier: dict[str, str],
    admin: dict[str, str],
    payload: dict[str, Any],
    weekly: list[dict[str, Any]] = ALWAYS_OPEN,
) -> dict[str, Any]:
    """Create a listing, give it a weekly plan, submit it and have the admin approve it."""
    asset = _ok(await client.post("/api/v1/assets", json=payload, headers=supplier), 201)
    url = f"/api/v1/assets/{asset['id']}"
    _ok(await client.put(f"{url}/availability", json={"weekly": weekly, "exceptions": []}, headers=supplier))
    _ok(await client.post(f"{url}/submit", headers=supplier))
    approved: dict[str, Any] = _ok(await client.post(f"/api/v1/admin/assets/{asset['id']}/approve", headers=admin))
    assert approved["status"] == "published", approved
    return approved


async def build_market(
    client: httpx.AsyncClient, database_url: str, *, machines: int = 1, supplier_locale: str = "en"
) -> Market:
    """Supplier + buyer + admin, a site, ``machines`` machines (always open, 30-minute grid, 60 minutes
    minimum) and a lab service (40 samples a day, open Monday to Sunday), all published."""
    admin = await admin_headers(client, database_url)
    sup_reg, supplier, site = await verified_supplier(client, database_url, locale=supplier_locale)
    buyer_reg = await register(client, ("buyer",), database_url=database_url)
    buyer = await login(client, buyer_reg["email"])
    assets = [
        await published(
            client,
            supplier,
            admin,
            machine_payload(site["id"], slot_minutes=30, min_booking_minutes=60, title=f"5-axis centre {i}"),
        )
        for i in range(machines)
    ]
    lab = await published(client, supplier, admin, lab_payload(site["id"], daily_sample_capacity=40))
    return Market(
        admin=admin,
        supplier=supplier,
        supplier_org=sup_reg["org"]["id"],
        buyer=buyer,
        buyer_org=buyer_reg["org"]["id"],
        site=site,
        machine=assets[0],
        lab=lab,
        extra={"machines": assets},
    )


async def wait_for(probe: Any, *, within: float = 30.0, interval: float = 0.25, what: str = "condition") -> Any:
    """Await ``probe()`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {within} s (last: {last!r})")
