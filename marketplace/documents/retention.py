"""Retention: a closed request's drawings are deleted ``drawing_retention_days`` after it closed; a document
also attached to a booking is kept until ``booking_document_retention_years`` after the booking ended. Uploads
attached to nothing (never, or only to a certificate or organisation that is gone) are deleted
``document_unattached_hours`` after the upload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.settings import Settings
from marketplace.documents.repository import DocumentRepository
from marketplace.documents.service import delete_documents

BATCH = 500
PAST_RETENTION = "retention period over"
UNATTACHED = "not attached to anything"


async def sweep(session: AsyncSession, *, settings: Settings, now: datetime | None = None, limit: int = BATCH) -> int:
    """Delete (audited; blobs removed after commit when unshared) up to ``limit`` documents past retention or
    left unattached; idempotent. Fewer than ``limit`` means none is left."""
    now = now or datetime.now(UTC)
    repo = DocumentRepository(session)
    past = await repo.past_retention(
        drawing_cutoff=now - timedelta(days=settings.drawing_retention_days),
        booking_cutoff=now - timedelta(days=365 * settings.booking_document_retention_years),
        limit=limit,
    )
    done = await delete_documents(session, document_ids=past, reason=PAST_RETENTION) if past else 0
    if len(past) >= limit:
        return done
    loose = await repo.unattached(
        cutoff=now - timedelta(hours=settings.document_unattached_hours), limit=limit - len(past)
    )
    return done + (await delete_documents(session, document_ids=loose, reason=UNATTACHED) if loose else 0)
