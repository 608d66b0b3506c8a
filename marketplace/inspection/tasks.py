"""Celery jobs of the inspection room (issue #17)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

import marketplace.inspection.gate  # noqa: F401  (registers the booking hooks in the worker)
from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.inspection import plans
from marketplace.inspection.plan_repository import PlanRepository


async def sweep_overdue(session: AsyncSession) -> dict[str, int]:
    """Tell the buyer, once, of each open inspection whose due day has passed (UTC). Idempotent: the notice is
    marked on the row (``overdue_notified_at``), which an extension clears."""
    now = plans.utc_now()
    notified = 0
    for inspection in await PlanRepository(session).overdue(now.date()):
        inspection.overdue_notified_at = now
        await plans.notify(session, inspection, kind="inspection.overdue", to=("buyer",))
        notified += 1
    await session.flush()
    return {"overdue_notified": notified}


@celery.task(name="inspection.sweep", acks_late=True)
def sweep() -> dict[str, int]:
    """Overdue inspections: notify the buyer once (they may extend the due date or settle by hand)."""
    return run_in_unit_of_work(sweep_overdue)
