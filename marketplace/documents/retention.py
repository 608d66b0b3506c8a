"""Retention: a closed request's drawings are deleted ``drawing_retention_days`` after it closed; a document
also attached to a booking is kept until ``booking_document_retention_years`` after the booking ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.documents.repository import DocumentRepository
from marketplace.documents.service import delete_documents
from marketplace.documents.storage import Storage

BATCH = 500


async def sweep(
    session: AsyncSession, *, settings: Settings, storage: Storage, now: datetime | None = None, limit: int = BATCH
) -> int:
    """Delete (audited, blobs removed when unshared) up to ``limit`` documents past retention; idempotent."""
    now = now or datetime.now(UTC)
    ids = await DocumentRepository(session).past_retention(
        drawing_cutoff=now - timedelta(days=settings.drawing_retention_days),
        booking_cutoff=now - timedelta(days=365 * settings.booking_document_retention_years),
        limit=limit,
    )
    if not ids:
        return 0
    return await delete_documents(session, storage=storage, document_ids=ids, reason="retention period over")
