"""Stripe test doubles that are real HTTP servers the real SDK talks to.

* ``localstripe_url``: localstripe (PyPI, GPL: a test-only dependency) started as a subprocess on a free
  port, bound to 127.0.0.1. It covers customers, ``pm_card_visa``, manual-capture PaymentIntents,
  capture, cancel, refunds, declined cards and balance transactions.
* ``recorder``: an in-process HTTP server answering canned Stripe JSON for what localstripe lacks
  (Connect accounts, account links, transfers, reversals, disputes). It records every request.
* ``RecordingHTTPClient``: a ``stripe.HTTPXClient`` subclass that records method, URL, headers and form
  params of every request the SDK sends, and sends the Connect paths to the recorder.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import stripe
from aiohttp import web

from payments.stripe_gateway import StripeConfig, StripeGateway

CONNECT_PREFIXES = ("/v1/accounts", "/v1/account_links", "/v1/transfers", "/v1/disputes")

LAUNCH = """
import sys
import localstripe.resources as resources
resources.Store.dump_to_disk = lambda self: None  # keep the fake's state in memory only
from aiohttp import web
from localstripe.server import app
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Recorded:
    method: str
    url: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class Recorder:
    """Canned Stripe Connect answers; every request is recorded (also what the SDK sent to localstripe)."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    fail_next: int = 0  # answer this many Connect requests with a 500 first (retry tests)

    def calls(self, prefix: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith(prefix) and (method is None or r.method == method)]

    async def handle(self, request: web.Request) -> web.Response:
        path, method = request.path, request.method
        form = dict((await request.post()).items()) if method == "POST" else {}
        params = {k: str(v) for k, v in form.items()}
        if path == "/hooks":  # localstripe's signed webhook deliveries
            self.hooks.append((await request.read(), dict(request.headers)))
            return web.json_response({})
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": {"type": "api_error", "message": "try again"}}, status=500)
        if path == "/v1/accounts" and method == "POST":
            acct: dict[str, Any] = {
                "id": f"acct_{uuid.uuid4().hex[:16]}",
                "object": "account",
                "type": "express",
                "charges_enabled": False,
                "payouts_enabled": False,
                "details_submitted": False,
            }
            self.accounts[acct["id"]] = acct
            return web.json_response(acct)
        if path.startswith("/v1/accounts/"):
            return web.json_response(self.accounts[path.rsplit("/", 1)[1]])
        if path == "/v1/account_links":
            return web.json_response(
                {
                    "object": "account_link",
                    "url": f"https://connect.stripe.com/setup/e/{params.get('account')}/x",
                    "created": int(time.time()),
                    "expires_at": int(time.time()) + 300,
                }
            )
        if path == "/v1/transfers" and method == "POST":
            return web.json_response(
                {
                    "id": f"tr_{uuid.uuid4().hex[:16]}",
                    "object": "transfer",
                    "amount": int(params["amount"]),
                    "currency": params["currency"],
                    "destination": params["destination"],
                    "source_transaction": params.get("source_transaction"),
                    "transfer_group": params.get("transfer_group"),
                    "amount_reversed": 0,
                    "reversed": False,
                    "metadata": {},
                }
            )
        if path.startswith("/v1/transfers/") and path.endswith("/reversals"):
            return web.json_response(
                {
                    "id": f"trr_{uuid.uuid4().hex[:16]}",
                    "object": "transfer_reversal",
                    "amount": int(params["amount"]),
                    "transfer": path.split("/")[3],
                    "currency": "cny",
                    "metadata": {},
                }
            )
        if path.startswith("/v1/disputes/"):
            return web.json_response(self.disputes[path.rsplit("/", 1)[1]])
        return web.json_response({"error": {"message": f"no canned answer for {method} {path}"}}, status=404)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


class RecordingHTTPClient(stripe.HTTPXClient):
    """Records what the SDK sends; Connect paths go to the recorder (localstripe has no Connect)."""

    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        params = dict(parse_qsl(body or parts.query, keep_blank_values=True))
        self.recorder.requests.append(Recorded(method.upper(), url, parts.path, dict(headers), params))
        if parts.path.startswith(CONNECT_PREFIXES):
            url = self.recorder.url + parts.path + (f"?{parts.query}" if parts.query else "")
        return await super().request_async(method, url, headers, post_data)


def gateway_for(api_base: str, recorder: Recorder, **config: Any) -> StripeGateway:
    return StripeGateway(
        StripeConfig(secret_key="sk_test_marketplace", api_base=api_base, max_network_retries=1, **config),
        http_client=lambda: RecordingHTTPClient(recorder),
    )


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    import hashlib
    import hmac

    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(type_: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "api_version": "2025-01-01",
            "data": {"object": obj},
        }
    ).encode()
