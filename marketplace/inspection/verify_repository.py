"""All SQL of the verify register (``verifiable_documents``) and of what the issued PDFs print."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from marketplace.documents.models import Document
from marketplace.inspection.models import InspectionReport, VerifiableDocument

M = TypeVar("M", bound=SQLModel)


class VerifyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, key: str) -> None:
        """Serialise the issuers of one document (a redelivered job, a double click) until commit."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 23))))

    async def by_hash(self, content_hash: str) -> VerifiableDocument | None:
        stmt = sa.select(VerifiableDocument).where(col(VerifiableDocument.hash) == content_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_file(self, file_sha256: str) -> VerifiableDocument | None:
        """The issued document whose PDF has exactly these bytes (the oldest, should two ever share them)."""
        stmt = (
            sa.select(VerifiableDocument)
            .where(col(VerifiableDocument.file_sha256) == file_sha256)
            .order_by(col(VerifiableDocument.created_at))
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_booking(self, booking_id: uuid.UUID, kind: str) -> VerifiableDocument | None:
        stmt = (
            sa.select(VerifiableDocument)
            .where(col(VerifiableDocument.booking_id) == booking_id, col(VerifiableDocument.kind) == kind)
            .order_by(col(VerifiableDocument.created_at))
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_document(self, document_id: uuid.UUID) -> VerifiableDocument | None:
        stmt = sa.select(VerifiableDocument).where(col(VerifiableDocument.document_id) == document_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, row: VerifiableDocument) -> VerifiableDocument:
        self.session.add(row)
        await self.session.flush()
        return row

    async def row(self, model: type[M], key: Any) -> M | None:
        """One row by its primary key (a booking, an organisation, a listing, a certificate ...)."""
        return await self.session.get(model, key)

    async def report(self, report_id: uuid.UUID, *, for_update: bool = False) -> InspectionReport | None:
        stmt = sa.select(InspectionReport).where(col(InspectionReport.id) == report_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def document(self, document_id: uuid.UUID) -> Document | None:
        """The document row even when deleted (the register outlives the document store's retention)."""
        return await self.session.get(Document, document_id)
