"""The SQL of the schedule on the booking pages (deposits and milestones, issue #18 item 4): the invoices of
scheduled bookings by instalment, and the booking a milestone button names."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.bookings.models import Booking
from payments.models import Invoice


class InstalmentPageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def instalment_invoices(self, booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[int, Invoice]]:
        """Each booking's invoices by instalment number (0: the whole-booking invoice of an unscheduled one)."""
        if not booking_ids:
            return {}
        rows = await self.session.execute(sa.select(Invoice).where(col(Invoice.booking_id).in_(list(booking_ids))))
        out: dict[uuid.UUID, dict[int, Invoice]] = defaultdict(dict)
        for invoice in rows.scalars():
            out[invoice.booking_id][int(invoice.instalment)] = invoice
        return dict(out)

    async def booking(self, booking_id: uuid.UUID) -> Booking | None:
        return await self.session.get(Booking, booking_id)
