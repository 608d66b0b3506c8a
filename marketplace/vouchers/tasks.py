"""Celery jobs of the voucher room (issue #18)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

import marketplace.vouchers.gate  # noqa: F401  (registers the booking hooks in the worker)
from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.vouchers import claims


async def build_claims_now(session: AsyncSession) -> dict[str, int]:
    """Last month's claim (China Standard Time) of every programme with claimable lines; idempotent."""
    return await claims.build_due_claims(session, today=datetime.now(UTC).astimezone(claims.CHINA).date())


@celery.task(name="vouchers.build_claims", acks_late=True)
def build_claims() -> dict[str, int]:
    """Monthly claims: beat runs it every 6 hours; after the first run of a month the others find them built."""
    return run_in_unit_of_work(build_claims_now)
