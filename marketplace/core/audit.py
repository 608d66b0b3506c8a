"""Audit log: who did what to which object, with before/after snapshots. Every admin action writes one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from marketplace.core.observability import request_id_var
from marketplace.core.sqltypes import jsonb_column, ts_column, utcnow


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_target", "target_type", "target_id"),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True))
    actor_user_id: uuid.UUID | None = Field(default=None, index=True)
    actor_api_key_id: uuid.UUID | None = Field(default=None)
    action: str = Field(max_length=100, index=True)
    target_type: str = Field(max_length=50)
    target_id: str = Field(max_length=100)
    before: dict[str, Any] | None = Field(default=None, sa_column=jsonb_column())
    after: dict[str, Any] | None = Field(default=None, sa_column=jsonb_column())
    reason: str | None = Field(default=None, max_length=2000)
    request_id: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True, index=True))


async def record(
    session: AsyncSession,
    *,
    actor_user_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    actor_api_key_id: uuid.UUID | None = None,
) -> AuditLog:
    entry = AuditLog(
        actor_user_id=actor_user_id,
        actor_api_key_id=actor_api_key_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        reason=reason,
        request_id=request_id_var.get() or None,
    )
    session.add(entry)
    await session.flush()
    return entry
