"""Celery jobs of the inspection room (issue #17): the report's verifiable PDF, rendered after the report's
transaction has committed (``inspection.render_report``, enqueued by the report through the outbox)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks in the worker)
from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.documents.storage import storage_for
from marketplace.inspection import verifiable
from marketplace.inspection.verify_repository import VerifyRepository

RENDER_REPORT_TASK = "inspection.render_report"


@celery.task(name=RENDER_REPORT_TASK, acks_late=True)
def render_report(report_id: str) -> str | None:
    """Render and register the report's PDF; idempotent (a redelivery returns the document issued first).
    Returns the document's id, or None when the report does not exist."""
    settings = get_settings()
    storage = storage_for(settings)

    async def work(session: AsyncSession) -> str | None:
        report = await VerifyRepository(session).report(uuid.UUID(report_id), for_update=True)
        if report is None:
            return None
        doc = await verifiable.issue_report_pdf(session, report=report, storage=storage, public_url=settings.public_url)
        return str(doc.id)

    return run_in_unit_of_work(work)
