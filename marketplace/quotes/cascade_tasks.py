"""Celery jobs of the cascade: lapsed quote requests pass to the next-ranked match. Every task is idempotent
and acknowledged late."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.quotes import cascade


@celery.task(name="quotes.cascade_start", acks_late=True)
def cascade_start(request_id: str) -> bool:
    """Invite the next-ranked factory of an auto-cascade request when none is pending."""

    async def work(session: AsyncSession) -> bool:
        return await cascade.advance(session, uuid.UUID(request_id)) is not None

    return run_in_unit_of_work(work)


@celery.task(name="quotes.invitation_lapse", acks_late=True)
def invitation_lapse(invitation_id: str) -> bool:
    """One invitation's answer time passed: lapse it (if unanswered) and cascade."""
    return run_in_unit_of_work(lambda s: cascade.lapse_one(s, uuid.UUID(invitation_id)))


@celery.task(name="quotes.cascade_sweep", acks_late=True)
def cascade_sweep() -> int:
    """Lapse overdue invitations, withdraw those of closed requests, and cascade (beat, every 5 minutes)."""
    return run_in_unit_of_work(cascade.sweep)
