"""Every route is reached by its own paths, whatever order the routers are included in.

The app includes the hottest API routers first (listings search and bookings: FastAPI tries routes in order,
twice per router level, so a booking no longer walks the auth, organisation and admin routes first; issue
#19). An earlier route whose pattern also fits a later route's literal path (``/bookings/{booking_id}`` before
a ``/bookings/export``) would silently take its requests: this test sends one request per route and method,
with every path parameter filled in, and checks which endpoint answered it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient
from starlette.routing import Route

_PARAM = re.compile(r"{([^}:]+)(?::([^}]+))?}")


def _routes(app: FastAPI) -> Iterator[tuple[str, set[str], Any]]:
    """(path pattern, methods, endpoint) of every HTTP route, in the app's own order."""
    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):  # an included router (FastAPI >= 0.165)
            for context in route.effective_route_contexts():
                yield context.path_format, set(context.methods or ()), context.endpoint
        elif isinstance(route, (APIRoute, Route)):
            yield route.path_format, set(route.methods or ()), route.endpoint


def concrete(path_format: str) -> str:
    """The pattern with each parameter filled in with a value its convertor accepts."""

    def value(match: re.Match[str]) -> str:
        convertor = match.group(2)
        if convertor == "int":
            return "7"
        if convertor == "path":
            return "a/b"
        return str(uuid.UUID(int=0x5EED))

    return _PARAM.sub(value, path_format)


def test_a_filled_in_pattern_takes_the_convertors_values() -> None:
    assert concrete("/api/v1/bookings/{booking_id}/events/{n:int}") == (
        "/api/v1/bookings/00000000-0000-0000-0000-000000005eed/events/7"
    )
    assert concrete("/static/{path:path}") == "/static/a/b"


async def misrouted(app: FastAPI) -> list[str]:
    """One request per route and method; the ones answered by another endpoint."""
    answered: list[Any] = []

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http":
            answered.append(scope.get("endpoint"))

    wrong: list[str] = []
    async with AsyncClient(transport=ASGITransport(app=recorder), base_url="http://testserver") as client:
        for path_format, methods, endpoint in list(_routes(app)):
            for method in sorted(methods - {"HEAD"}):
                answered.clear()
                # No credentials and an empty body: each request stops at authentication or validation, after
                # the route has been chosen.
                await client.request(method, concrete(path_format), content=None if method == "GET" else b"{}")
                if answered != [endpoint]:
                    got = getattr(answered[0], "__name__", answered) if answered else "nothing"
                    wrong.append(f"{method} {path_format}: answered by {got}, not {endpoint.__name__}")
    return wrong


@pytest.mark.timeout(120)
async def test_every_route_and_method_is_answered_by_its_own_endpoint(app: FastAPI) -> None:
    assert sum(len(methods) for _, methods, _ in _routes(app)) > 150, "the walk does not see the included routers"
    assert await misrouted(app) == []


async def test_the_control_a_pattern_route_included_first_takes_a_literal_routes_requests() -> None:
    """The check can fail: with ``/things/{thing_id}`` included before ``/things/export``, the literal path is
    answered by the pattern route."""
    from fastapi import APIRouter

    pattern, literal = APIRouter(), APIRouter()

    @pattern.get("/things/{thing_id}")
    async def one_thing(thing_id: str) -> str:
        return "pattern"

    @literal.get("/things/export")
    async def export() -> str:
        return "literal"

    shadowed = FastAPI()
    shadowed.include_router(pattern)
    shadowed.include_router(literal)
    assert await misrouted(shadowed) == ["GET /things/export: answered by one_thing, not export"]
