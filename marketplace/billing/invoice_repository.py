"""Reads for the web's invoice lists and CSV exports: an organisation's invoices (as buyer or as supplier),
newest first with keyset paging, and the ledger balances of many bookings in one statement."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.bookings.models import Booking, Review
from payments.models import CreditNote, Invoice, Journal, JournalEntry

Side = Literal["buyer", "supplier"]


class InvoiceListRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, org_id: uuid.UUID, *, side: Side, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Invoice]:
        """Up to ``limit`` invoices of the organisation on ``side``, newest issue first, after the keyset
        ``(issued_at, id)`` of the previous page's last row."""
        org_col = col(Invoice.buyer_org_id) if side == "buyer" else col(Invoice.supplier_org_id)
        stmt = sa.select(Invoice).where(org_col == org_id)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Invoice.issued_at), col(Invoice.id)) < sa.tuple_(after[0], after[1]))
        stmt = stmt.order_by(col(Invoice.issued_at).desc(), col(Invoice.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def balances(self, booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
        """Each booking's ledger balance per account (what ``ledger.booking_balances`` gives for one)."""
        if not booking_ids:
            return {}
        rows = await self.session.execute(
            sa.select(col(Journal.booking_id), col(JournalEntry.account), sa.func.sum(col(JournalEntry.amount)))
            .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
            .where(col(Journal.booking_id).in_(list(booking_ids)))
            .group_by(col(Journal.booking_id), col(JournalEntry.account))
        )
        out: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for booking_id, account, total in rows.all():
            if booking_id is not None:
                out[booking_id][account] = int(total)
        return dict(out)

    async def credited(self, invoice_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The sum of each invoice's credit notes (refunds and cancellations)."""
        if not invoice_ids:
            return {}
        rows = await self.session.execute(
            sa.select(col(CreditNote.invoice_id), sa.func.sum(col(CreditNote.amount)))
            .where(col(CreditNote.invoice_id).in_(list(invoice_ids)))
            .group_by(col(CreditNote.invoice_id))
        )
        return {invoice_id: int(total) for invoice_id, total in rows.all()}

    async def of_bookings(self, booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Invoice]:
        """The invoice of each booking that has one (of a booking paid in instalments, the latest)."""
        if not booking_ids:
            return {}
        rows = await self.session.execute(
            sa.select(Invoice).where(col(Invoice.booking_id).in_(list(booking_ids))).order_by(col(Invoice.instalment))
        )
        return {inv.booking_id: inv for inv in rows.scalars()}

    async def booking_assets(self, booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The listing (asset) each booking is for."""
        if not booking_ids:
            return {}
        rows = await self.session.execute(
            sa.select(col(Booking.id), col(Booking.asset_id)).where(col(Booking.id).in_(list(booking_ids)))
        )
        return {booking_id: asset_id for booking_id, asset_id in rows.all()}


class BookingExportRepository:
    """An organisation's bookings for the CSV export, newest first, in keyset batches."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def batch(
        self, org_id: uuid.UUID, *, side: Side, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Booking]:
        org_col = col(Booking.buyer_org_id) if side == "buyer" else col(Booking.supplier_org_id)
        stmt = sa.select(Booking).where(org_col == org_id)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Booking.created_at), col(Booking.id)) < sa.tuple_(after[0], after[1]))
        stmt = stmt.order_by(col(Booking.created_at).desc(), col(Booking.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())


class BookingPageRepository:
    """Small reads the buyer's booking and request pages need: the bookings made for a request, and whether
    an organisation has already reviewed a booking."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_request(self, request_id: uuid.UUID, *, buyer_org_id: uuid.UUID) -> list[Booking]:
        """The buyer's bookings made for one of its requests, newest first."""
        stmt = (
            sa.select(Booking)
            .where(col(Booking.request_id) == request_id, col(Booking.buyer_org_id) == buyer_org_id)
            .order_by(col(Booking.created_at).desc())
            .limit(20)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def review_by(self, booking_id: uuid.UUID, *, author_org_id: uuid.UUID) -> Review | None:
        """The review ``author_org_id`` left on the booking, if any."""
        stmt = sa.select(Review).where(col(Review.booking_id) == booking_id, col(Review.author_org_id) == author_org_id)
        return (await self.session.execute(stmt)).scalars().first()
