"""The transactional outbox: a job is a row written in the same transaction as the change that causes it.

``await enqueue(session, "bookings.expire_one", booking_id, delay_seconds=900)`` inserts one ``outbox`` row
through the caller's session. If the transaction commits, the job exists; if it rolls back (an endpoint
raised, a web handler rolled back a failed form action, the database went away), the job never existed.
Nothing talks to the broker during a request.

The relay (:mod:`marketplace.core.outbox`, ``marketplace relay``) moves due rows to Celery and deletes them:
delivery is at least once, so every task is idempotent. A statement-level trigger sends
``NOTIFY outbox`` when rows are inserted; PostgreSQL delivers it at commit, which wakes the relay at once.
Due times (hold expiry, accept deadline, dispute window) live in the row, never in a broker ETA.

:class:`OutboxRepository` holds the relay's SQL: claim due rows (``FOR UPDATE SKIP LOCKED``, so several relays
share the work), delete the sent ones, count failed attempts, and the depth/age figures for monitoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, ts_column, utcnow

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


# -- the relay's side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueJob:
    id: int
    task: str
    args: list[Any]
    attempts: int


@dataclass(frozen=True)
class OutboxStats:
    rows: int  # every row, delayed ones included
    due: int  # rows whose due time has passed (the relay's backlog)
    oldest_due_seconds: float  # how long the oldest due row has been waiting (0 without one)


_CLAIM = (
    sa.select(_outbox.c.id, _outbox.c.task, _outbox.c.args, _outbox.c.attempts)
    .where(_outbox.c.due_at <= sa.func.now())
    .order_by(_outbox.c.due_at, _outbox.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_IDS = sa.bindparam("ids", type_=sa.ARRAY(sa.BigInteger))
_DELETE = sa.delete(_outbox).where(_outbox.c.id == sa.func.any(_IDS))
_FAILED = sa.update(_outbox).where(_outbox.c.id == sa.func.any(_IDS)).values(attempts=_outbox.c.attempts + 1)
_NEXT_DUE = sa.select(sa.func.extract("epoch", sa.func.min(_outbox.c.due_at) - sa.func.now()))
_STATS = sa.select(
    sa.func.count(),
    sa.func.count().filter(_outbox.c.due_at <= sa.func.now()),
    sa.func.coalesce(sa.func.extract("epoch", sa.func.now() - sa.func.min(_outbox.c.due_at)), 0),
)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(self, limit: int) -> list[DueJob]:
        """Lock up to ``limit`` due rows, oldest due first; rows another relay holds are skipped."""
        rows = await self.session.execute(_CLAIM, {"limit": limit})
        return [DueJob(id=r.id, task=r.task, args=list(r.args), attempts=r.attempts) for r in rows]

    async def delete(self, ids: Sequence[int]) -> None:
        if ids:
            await self.session.execute(_DELETE, {"ids": list(ids)})

    async def count_failed_attempt(self, ids: Sequence[int]) -> None:
        """The broker refused these rows: they stay, due as before, with one more attempt on record."""
        if ids:
            await self.session.execute(_FAILED, {"ids": list(ids)})

    async def seconds_until_next_due(self) -> float | None:
        """Seconds until the earliest row is due (<= 0: one is due now), ``None`` when the outbox is empty."""
        value = (await self.session.execute(_NEXT_DUE)).scalar_one()
        return None if value is None else float(value)

    async def stats(self) -> OutboxStats:
        rows, due, oldest = (await self.session.execute(_STATS)).one()
        return OutboxStats(rows=int(rows), due=int(due), oldest_due_seconds=max(0.0, float(oldest)) if due else 0.0)
