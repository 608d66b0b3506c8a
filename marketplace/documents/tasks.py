"""Celery jobs of the documents room."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.documents import retention
from marketplace.documents.storage import storage_for


@celery.task(name="documents.retention", acks_late=True)
def retention_sweep() -> int:
    """Delete the documents past their retention, one batch per transaction, until none is left."""
    settings = get_settings()
    storage = storage_for(settings)
    total = 0
    while True:

        async def work(session: AsyncSession) -> int:
            return await retention.sweep(session, settings=settings, storage=storage)

        done = run_in_unit_of_work(work)
        total += done
        if done < retention.BATCH:
            return total
