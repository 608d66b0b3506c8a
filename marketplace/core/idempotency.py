"""``Idempotency-Key`` support for writes (a reusable dependency).

The first request with a key stores a hash of the request and, in the same transaction as the write, the
response it got. A replay with the same key and body returns that response (same status and body, header
``Idempotent-Replayed: true``); the same key with a different body is 422. Concurrent duplicates serialise
on the unique ``(scope, key)`` row: the second waits for the first to commit, then replays it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest, Unprocessable, unhandled_error_response
from marketplace.core.sqltypes import jsonb_column, ts_column, utcnow


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    scope: str = Field(max_length=100)
    key: str = Field(max_length=255)
    method: str = Field(max_length=10)
    path: str = Field(max_length=500)
    request_hash: str = Field(max_length=64)
    status_code: int | None = Field(default=None)
    response_body: Any | None = Field(default=None, sa_column=jsonb_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    expires_at: datetime = Field(sa_column=ts_column(index=True))


class IdempotentReplay(Exception):
    """Raised by the dependency to short-circuit the endpoint with the stored response."""

    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body


class IdempotencyKeyMismatch(Unprocessable):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency_key_mismatch"


_records: sa.Table = IdempotencyRecord.__table__  # type: ignore[attr-defined]

# The two statements every idempotent write runs, built once (parameters are bound per request).
# Claim the key, or take over a record whose TTL has passed (an expired record frees its key). A live record
# (committed, or in flight: the statement waits for that transaction) is left alone and nothing is returned.
_claim = insert(_records).values(
    id=sa.bindparam("p_id"),
    scope=sa.bindparam("p_scope"),
    key=sa.bindparam("p_key"),
    method=sa.bindparam("p_method"),
    path=sa.bindparam("p_path"),
    request_hash=sa.bindparam("p_hash"),
    created_at=sa.bindparam("p_now"),
    expires_at=sa.bindparam("p_expires_at"),
)
_CLAIM = _claim.on_conflict_do_update(
    constraint="uq_idempotency_scope_key",
    set_={
        "id": _claim.excluded.id,
        "method": _claim.excluded.method,
        "path": _claim.excluded.path,
        "request_hash": _claim.excluded.request_hash,
        "status_code": None,
        "response_body": None,
        "created_at": _claim.excluded.created_at,
        "expires_at": _claim.excluded.expires_at,
    },
    where=_records.c.expires_at < sa.bindparam("p_now"),
).returning(_records.c.id)
# The response body is stored as the very JSON text the response sends (serialised once).
_STORE_RESPONSE = (
    sa.update(_records)
    .where(_records.c.id == sa.bindparam("p_id"))
    .values(
        status_code=sa.bindparam("p_status_code"),
        response_body=sa.cast(sa.bindparam("p_body", type_=sa.Text()), JSONB),
    )
)


class _RenderedJSON(JSONResponse):
    """A JSON response whose body pydantic has already rendered (``model_dump_json``, in Rust): the same
    compact UTF-8 bytes ``JSONResponse`` would produce from ``model_dump(mode="json")``, without building the
    intermediate dicts and encoding them again."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


class Idempotency:
    def __init__(self, session: SessionDep, record_id: uuid.UUID) -> None:
        self._session = session
        self._record_id = record_id

    async def respond(self, body: Any, status_code: int = 200) -> JSONResponse:
        """Store the response with the write (same transaction) and return it."""
        if isinstance(body, BaseModel):
            response: JSONResponse = _RenderedJSON(body.model_dump_json().encode(), status_code=status_code)
        else:
            response = JSONResponse(jsonable_encoder(body), status_code=status_code)
        await self._session.execute(
            _STORE_RESPONSE,
            {"p_id": self._record_id, "p_status_code": status_code, "p_body": bytes(response.body).decode()},
        )
        return response


def _request_hash(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def claim(request: Request, session: AsyncSession, *, scope: str, key: str) -> Idempotency:
    """Claim ``key`` for this request in ``scope`` (one caller), or replay the response stored for it."""
    if len(key) > 255:
        raise BadRequest("Idempotency-Key must be at most 255 characters.")
    digest = _request_hash(request.method, request.url.path, await request.body())
    ttl = timedelta(hours=request.app.state.settings.idempotency_ttl_hours)
    now = utcnow()
    # One statement: claim the key, or take over a record whose TTL has passed (see _CLAIM).
    inserted = (
        await session.execute(
            _CLAIM,
            {
                "p_id": uuid.uuid4(),
                "p_scope": scope,
                "p_key": key,
                "p_method": request.method,
                "p_path": request.url.path,
                "p_hash": digest,
                "p_now": now,
                "p_expires_at": now + ttl,
            },
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return Idempotency(session, inserted)
    existing = (
        await session.execute(
            sa.select(IdempotencyRecord).where(col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key) == key)
        )
    ).scalar_one()
    if existing.request_hash != digest:
        raise IdempotencyKeyMismatch("This Idempotency-Key was already used with a different request body or path.")
    if existing.status_code is None:  # pragma: no cover - the first request committed without a response
        raise BadRequest("The original request with this Idempotency-Key did not complete; use a new key.")
    raise IdempotentReplay(existing.status_code, existing.response_body)


async def handle_replay(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, IdempotentReplay):  # registered for IdempotentReplay only
        return unhandled_error_response(request, exc)
    return JSONResponse(exc.body, status_code=exc.status_code, headers={"Idempotent-Replayed": "true"})
