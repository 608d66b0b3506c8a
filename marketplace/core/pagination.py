"""Keyset pagination: ``limit`` (max 100) and an opaque ``cursor``; responses are
``{"items": [...], "next_cursor": "..." | null}``."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel

from marketplace.core.errors import BadRequest
from marketplace.core.text import Line

T = TypeVar("T")

LimitParam = Annotated[int, Query(ge=1, le=100, description="Page size (1-100).")]
CursorParam = Annotated[
    Line | None, Query(max_length=2000, description="Opaque cursor from a previous page's next_cursor.")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Malformed cursor.") from exc
    if not isinstance(values, list):
        raise BadRequest("Malformed cursor.")
    return values


class Keyed(Protocol):
    created_at: datetime
    id: uuid.UUID


K = TypeVar("K", bound=Keyed)


def encode_keyset(row: Keyed) -> str:
    """The cursor of a newest-first page that ends with ``row`` (read back by :func:`decode_keyset`)."""
    return encode_cursor([row.created_at.isoformat(), str(row.id)])


def keyset_page(rows: Sequence[K], limit: int) -> tuple[list[K], str | None]:
    """Cut ``limit + 1`` fetched rows to a page and its next cursor (None on the last page)."""
    if len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), encode_keyset(rows[limit - 1])


def decode_keyset(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The ``(created_at, id)`` a newest-first page continues after; the cursor is
    ``encode_cursor([created_at.isoformat(), str(id)])``."""
    if (values := decode_cursor(cursor)) is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(values[1])
    except (ValueError, IndexError, TypeError) as exc:
        raise BadRequest("Malformed cursor.") from exc
