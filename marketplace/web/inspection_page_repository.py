"""The SQL of the make + verify pages: the lab listings a buyer may choose, and which of a supplier's bookings
have a quality or inspection page to show."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset
from marketplace.inspection.models import BookingQualityDocument, Inspection, VerifiableDocument
from marketplace.orgs.models import Organisation


@dataclass(frozen=True)
class LabChoice:
    id: uuid.UUID
    title: str
    org_name: str
    test_standard: str | None
    accredited: bool


class InspectionPageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lab_choices(self, limit: int = 200) -> list[LabChoice]:
        """Published lab services of verified organisations, by title."""
        stmt = (
            sa.select(Asset, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(Asset.org_id))
            .where(
                col(Asset.kind) == "lab_service",
                col(Asset.status) == "published",
                col(Organisation.verification_status) == "verified",
            )
            .order_by(col(Asset.title), col(Asset.id))
            .limit(limit)
        )
        return [
            LabChoice(a.id, a.title, name, a.test_standard, bool(a.accredited))
            for a, name in (await self.session.execute(stmt)).all()
        ]

    async def with_pages(self, booking_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The bookings among ``booking_ids`` with ordered quality documents or an inspection (produced or
        inspected)."""
        ids = list(booking_ids)
        if not ids:
            return set()
        docs = sa.select(col(BookingQualityDocument.booking_id)).where(col(BookingQualityDocument.booking_id).in_(ids))
        made = sa.select(col(Inspection.production_booking_id)).where(col(Inspection.production_booking_id).in_(ids))
        lab = sa.select(col(Inspection.lab_booking_id)).where(col(Inspection.lab_booking_id).in_(ids))
        rows = await self.session.execute(sa.union(docs, made, lab))
        return {r[0] for r in rows}

    async def verify_hashes(self, document_ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        """The public verification hash of each generated document among ``document_ids``."""
        ids = [d for d in document_ids if d is not None]
        if not ids:
            return {}
        stmt = sa.select(col(VerifiableDocument.document_id), col(VerifiableDocument.hash)).where(
            col(VerifiableDocument.document_id).in_(ids)
        )
        return {row[0]: row[1] for row in await self.session.execute(stmt)}

    async def quality_documents(self, booking_id: uuid.UUID) -> list[BookingQualityDocument]:
        """The quality documents ordered with a booking, in a fixed order (CoC, FAI, material certificate)."""
        order = sa.case({"coc": 0, "fai": 1, "material_cert": 2}, value=col(BookingQualityDocument.kind), else_=3)
        stmt = (
            sa.select(BookingQualityDocument)
            .where(col(BookingQualityDocument.booking_id) == booking_id)
            .order_by(order, col(BookingQualityDocument.kind))
        )
        return list((await self.session.execute(stmt)).scalars())
