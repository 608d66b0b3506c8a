"""Counting the SQL a request sends: for tests that pin a constant number of queries (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection


@contextmanager
def statements(connection: AsyncConnection) -> Iterator[list[str]]:
    """Every statement sent on the test's connection (the app's sessions run on it, in savepoints)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    target = connection.sync_connection
    event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)
