"""The SQL of ordered quality documents (``booking_quality_documents``): written when a booking is placed, read
by the booking's pages and the completion guard, updated when the factory supplies a document."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.documents.models import Document
from marketplace.inspection.models import BookingQualityDocument

_ORDERED = (
    sa.select(BookingQualityDocument)
    .where(col(BookingQualityDocument.booking_id) == sa.bindparam("booking_id"))
    .order_by(col(BookingQualityDocument.created_at), col(BookingQualityDocument.kind))
)
# An ordered document counts as supplied while its document exists and is not deleted.
_MISSING = (
    sa.select(col(BookingQualityDocument.kind))
    .select_from(BookingQualityDocument)
    .outerjoin(Document, col(Document.id) == col(BookingQualityDocument.document_id))
    .where(
        col(BookingQualityDocument.booking_id) == sa.bindparam("booking_id"),
        sa.or_(col(BookingQualityDocument.document_id).is_(None), col(Document.deleted_at).is_not(None)),
    )
    .order_by(col(BookingQualityDocument.kind))
)


class QualityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_ordered(self, booking_id: uuid.UUID, documents: Sequence[tuple[str, int]]) -> None:
        """One row per ordered (kind, price), in one statement (placing a booking: no ORM flush)."""
        if not documents:
            return
        rows = [{"id": uuid.uuid4(), "booking_id": booking_id, "kind": k, "price": p} for k, p in documents]
        await self.session.execute(sa.insert(BookingQualityDocument), rows)

    async def ordered(self, booking_id: uuid.UUID) -> list[BookingQualityDocument]:
        return list((await self.session.execute(_ORDERED, {"booking_id": booking_id})).scalars())

    async def ordered_one(self, booking_id: uuid.UUID, kind: str) -> BookingQualityDocument | None:
        stmt = (
            sa.select(BookingQualityDocument)
            .where(col(BookingQualityDocument.booking_id) == booking_id, col(BookingQualityDocument.kind) == kind)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def missing(self, booking_id: uuid.UUID) -> list[str]:
        """The kinds ordered with the booking and not (or no longer) supplied."""
        return list((await self.session.execute(_MISSING, {"booking_id": booking_id})).scalars())

    async def document(self, document_id: uuid.UUID) -> Document | None:
        return (
            await self.session.execute(sa.select(Document).where(col(Document.id) == document_id))
        ).scalar_one_or_none()
