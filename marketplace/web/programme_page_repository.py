"""The SQL of the programme operator's pages: find a buyer organisation by its Unified Social Credit Code (the
grant form takes the code a bureau knows a company by, not the platform's internal id)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.orgs.models import Organisation


class ProgrammePageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def org_id_by_uscc(self, uscc: str) -> uuid.UUID | None:
        stmt = sa.select(col(Organisation.id)).where(col(Organisation.uscc) == uscc)
        found: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found
