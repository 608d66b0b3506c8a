"""Issue #19 (CPU per booking): the web session middleware leaves the JSON API alone, and an idempotent
response rendered by pydantic is byte for byte what ``JSONResponse`` would have sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from marketplace.core.idempotency import _RenderedJSON
from marketplace.web.mount import WebSessionMiddleware


def _seen_scope(path: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)

    async def receive() -> Message:
        raise AssertionError("the app reads no request body")

    async def send(message: Message) -> None:
        raise AssertionError("the app sends no response")

    middleware = WebSessionMiddleware(app, secret_key="k" * 32, session_cookie="mk_session")
    scope: Scope = {"type": "http", "path": path, "headers": [(b"cookie", b"mk_session=garbage")], "method": "GET"}
    asyncio.run(middleware(scope, receive, send))
    return seen


def test_api_requests_carry_no_web_session() -> None:
    assert "session" not in _seen_scope("/api/v1/bookings")
    assert _seen_scope("/login")["session"] == {}  # a bad cookie still yields an empty session on pages
    assert _seen_scope("/apiary")["session"] == {}  # only the /api/ prefix is skipped


class _Inner(BaseModel):
    at: datetime
    note: str | None


class _Body(BaseModel):
    id: uuid.UUID
    title: str
    amount: int
    share: float
    items: list[_Inner]
    extra: dict[str, Any]


def test_the_rendered_body_equals_jsonresponse() -> None:
    body = _Body(
        id=uuid.uuid4(),
        title='5-axis centre "Ω" – 苏州',
        amount=50000,
        share=0.125,
        items=[_Inner(at=datetime(2027, 3, 17, 6, tzinfo=UTC), note=None), _Inner(at=datetime.now(UTC), note="x")],
        extra={"full_refund_hours": 72, "nested": [1, 2.5, None, True]},
    )
    expected = JSONResponse(body.model_dump(mode="json"), status_code=201)
    got = _RenderedJSON(body.model_dump_json().encode(), status_code=201)
    assert got.body == expected.body
    assert got.status_code == 201 and got.headers["content-type"] == expected.headers["content-type"]
    assert _RenderedJSON({"a": 1}).body == JSONResponse({"a": 1}).body  # a dict still renders as before
