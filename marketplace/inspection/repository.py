"""The SQL every part of the inspection room shares: finding an inspection and its report. Each part keeps the
rest of its SQL in its own ``*_repository.py`` (plans, reports, quality documents, the verify register)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.inspection.models import OPEN_STATUSES, Inspection, InspectionReport


class InspectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, inspection_id: uuid.UUID, *, for_update: bool = False) -> Inspection | None:
        stmt = sa.select(Inspection).where(col(Inspection.id) == inspection_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_lab_booking(self, lab_booking_id: uuid.UUID, *, for_update: bool = False) -> Inspection | None:
        stmt = sa.select(Inspection).where(col(Inspection.lab_booking_id) == lab_booking_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_production(self, booking_id: uuid.UUID) -> list[Inspection]:
        """Every inspection of a produced lot, oldest first (a rework adds one)."""
        stmt = (
            sa.select(Inspection)
            .where(col(Inspection.production_booking_id) == booking_id)
            .order_by(col(Inspection.created_at), col(Inspection.id))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def open_for_production(self, booking_id: uuid.UUID) -> Inspection | None:
        stmt = sa.select(Inspection).where(
            col(Inspection.production_booking_id) == booking_id, col(Inspection.status).in_(OPEN_STATUSES)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def report_of(self, inspection_id: uuid.UUID) -> InspectionReport | None:
        stmt = sa.select(InspectionReport).where(col(InspectionReport.inspection_id) == inspection_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()
