"""Reads of the audit log (written through ``marketplace.core.audit.record``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.core.audit import AuditLog


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def entries(
        self,
        *,
        limit: int,
        target_type: str | None = None,
        target_id: str | None = None,
        action: str | None = None,
        before_id: int | None = None,
        actor_user_ids: Sequence[uuid.UUID] | None = None,
        system_only: bool = False,
    ) -> list[AuditLog]:
        """Newest first; ``before_id`` continues a page (entries with a smaller id). ``actor_user_ids`` keeps
        the entries of those people; ``system_only`` those written by no person and no API key."""
        stmt = sa.select(AuditLog).order_by(col(AuditLog.id).desc())
        if target_type:
            stmt = stmt.where(col(AuditLog.target_type) == target_type)
        if target_id:
            stmt = stmt.where(col(AuditLog.target_id) == target_id)
        if action:
            stmt = stmt.where(col(AuditLog.action) == action)
        if actor_user_ids is not None:
            stmt = stmt.where(col(AuditLog.actor_user_id).in_(list(actor_user_ids)))
        if system_only:
            stmt = stmt.where(col(AuditLog.actor_user_id).is_(None), col(AuditLog.actor_api_key_id).is_(None))
        if before_id is not None:
            stmt = stmt.where(col(AuditLog.id) < before_id)
        return list((await self.session.execute(stmt.limit(limit))).scalars())
