"""The SQL of the lab's report and the payout gate (``reports.py``, ``gate.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.bookings.models import BookingEvent
from marketplace.inspection.models import Inspection, InspectionReport


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, report: InspectionReport) -> InspectionReport:
        self.session.add(report)
        await self.session.flush()
        return report

    async def latest_of_production(self, booking_id: uuid.UUID) -> tuple[Inspection, InspectionReport | None] | None:
        """The newest inspection of a produced lot and its report, if any."""
        stmt = (
            sa.select(Inspection, InspectionReport)
            .join(InspectionReport, col(InspectionReport.inspection_id) == col(Inspection.id), isouter=True)
            .where(col(Inspection.production_booking_id) == booking_id)
            .order_by(col(Inspection.created_at).desc(), col(Inspection.id).desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def reworked_since(self, booking_id: uuid.UUID, since: datetime) -> bool:
        """Whether an admin sent the lot back for rework after ``since`` (the rejecting report's time)."""
        stmt = sa.select(
            sa.exists().where(
                col(BookingEvent.booking_id) == booking_id,
                col(BookingEvent.action) == "rework",
                col(BookingEvent.created_at) >= since,
            )
        )
        return bool((await self.session.execute(stmt)).scalar())
