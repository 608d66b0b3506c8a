"""The SQL of inspection plans (``plans.py``, ``plan_hooks.py``, ``tasks.py``); the shared look-ups are in
``repository.py``."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.inspection.models import OPEN_STATUSES, Inspection


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, inspection: Inspection) -> Inspection:
        """Insert the plan; the partial unique index ``uq_inspections_open_per_booking`` refuses a second open
        inspection of the same lot (the caller holds the production booking's row lock, so this only fires on
        a bypass of that lock)."""
        self.session.add(inspection)
        await self.session.flush()
        return inspection

    async def overdue(self, today: date, *, limit: int = 500) -> list[Inspection]:
        """Open inspections whose due day has passed and whose buyer was not yet told, locked (skipping rows
        another sweep holds)."""
        stmt = (
            sa.select(Inspection)
            .where(
                col(Inspection.status).in_(OPEN_STATUSES),
                col(Inspection.due_date) < today,
                col(Inspection.overdue_notified_at).is_(None),
            )
            .order_by(col(Inspection.due_date), col(Inspection.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def open_for_production_locked(self, booking_id: uuid.UUID) -> Inspection | None:
        stmt = (
            sa.select(Inspection)
            .where(col(Inspection.production_booking_id) == booking_id, col(Inspection.status).in_(OPEN_STATUSES))
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
