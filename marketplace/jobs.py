"""The transactional outbox: a job is a row written in the same transaction as the change that causes it.

``await enqueue(session, "bookings.expire_one", booking_id, delay_seconds=900)`` inserts one ``outbox`` row
through the caller's session. If the transaction commits, the job exists; if it rolls back (an endpoint
raised, a web handler rolled back a failed form action, the database went away), the job never existed.
Nothing talks to the broker during a request.

The relay (:mod:`marketplace.outbox`, ``marketplace relay``) moves due rows to Celery and deletes them:
delivery is at least once, so every task is idempotent. A statement-level trigger sends
``NOTIFY outbox`` when rows are inserted; PostgreSQL delivers it at commit, which wakes the relay at once.
Due times (hold expiry, accept deadline, dispute window) live in the row, never in a broker ETA.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from marketplace.sqltypes import jsonb_column, ts_column, utcnow

NOTIFY_CHANNEL = "outbox"


class OutboxJob(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "due_at", "id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    task: str = Field(max_length=200)
    args: list[Any] = Field(sa_column=jsonb_column(nullable=False))
    due_at: datetime = Field(sa_column=ts_column(default_now=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


_outbox: sa.Table = OutboxJob.__table__  # type: ignore[attr-defined]
# One statement text for every job (a prepared statement on the hot path); ``due_at`` is the database's
# clock (the transaction's start) plus the delay, so app servers with skewed clocks agree with the relay.
_INSERT = sa.insert(_outbox).values(
    task=sa.bindparam("task"),
    args=sa.bindparam("args", type_=_outbox.c.args.type),
    due_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("delay", type_=sa.Float)),
)


async def enqueue(session: AsyncSession, task: str, *args: Any, delay_seconds: float = 0) -> None:
    """Write job ``task(*args)`` into the outbox in the caller's transaction, due after ``delay_seconds``."""
    await session.execute(_INSERT, {"task": task, "args": list(args), "delay": float(delay_seconds)})
