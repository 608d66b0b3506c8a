"""Celery jobs of the documents room."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.documents import blobs, retention
from marketplace.documents.storage import storage_for


@celery.task(name="documents.retention", acks_late=True)
def retention_sweep() -> int:
    """Delete the documents past their retention or left unattached, one batch per transaction, until none is
    left (their blobs go through ``documents.remove_blob`` jobs after each commit)."""
    settings = get_settings()
    total = 0
    while True:

        async def work(session: AsyncSession) -> int:
            return await retention.sweep(session, settings=settings)

        done = run_in_unit_of_work(work)
        total += done
        if done < retention.BATCH:
            return total


@celery.task(name=blobs.REMOVE_BLOB_TASK, acks_late=True)
def remove_blob(sha256: str) -> bool:
    """Remove a deleted document's blob once no live document shares it (idempotent)."""
    storage = storage_for(get_settings())

    async def work(session: AsyncSession) -> bool:
        return await blobs.remove_if_unused(session, storage=storage, sha256=sha256)

    return run_in_unit_of_work(work)
