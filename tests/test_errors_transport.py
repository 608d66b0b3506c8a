"""An unexpected error is an ordinary error response (issue #12, item 3).

Against a real uvicorn server on 127.0.0.1 with one kept-alive connection: the 500 is in the standard shape with
the request id (header and body), the connection is not dropped, and the client's next, unrelated request on
the same connection succeeds. Before the fix Starlette's ServerErrorMiddleware re-raised after sending its 500,
uvicorn then closed the connection without ``Connection: close`` and the next request failed.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from tests.bookings.live_server import LiveServer, live_settings


class Boom(RuntimeError):
    pass


@pytest.fixture
def server(database_url: str, redis_url: str) -> Iterator[LiveServer]:
    from marketplace.app import create_app

    settings = live_settings()
    app: FastAPI = create_app(settings, database_url=database_url, redis_url=redis_url)

    @app.get("/test-only/boom")
    async def boom() -> None:
        raise Boom("a bug in an endpoint")

    @app.get("/test-only/peer")
    async def peer(request: Request) -> dict[str, int]:
        """The client's port: the same port twice means the same TCP connection."""
        return {"port": request.client.port if request.client else -1}

    with LiveServer(database_url, redis_url, settings, app=app) as live:
        yield live


def test_an_unexpected_error_keeps_the_connection_and_carries_the_request_id(server: LiveServer) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, limits=limits, timeout=10) as client:
        first = client.get("/test-only/peer")
        assert first.status_code == 200

        crash = client.get("/test-only/boom", headers={"X-Request-ID": "trace-me-42"})
        assert crash.status_code == 500
        assert crash.json() == {
            "error": "internal_error",
            "detail": "An unexpected error occurred.",
            "request_id": "trace-me-42",
        }
        assert crash.headers["x-request-id"] == "trace-me-42"
        assert crash.headers.get("connection", "").lower() != "close"

        after = client.get("/test-only/peer")  # the next, unrelated request on the same connection
        assert after.status_code == 200
        assert after.json()["port"] == first.json()["port"], "the server dropped the kept-alive connection"

        generated = client.get("/test-only/boom")
        assert generated.status_code == 500
        assert generated.json()["request_id"] == generated.headers["x-request-id"] != ""
        assert client.get("/healthz").status_code == 200
