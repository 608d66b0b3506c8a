"""Celery jobs of analytics: the monthly observatory rollup (idempotent: the month is deleted and re-inserted
in one transaction, so a redelivered or repeated run gives the same rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marketplace.core.celery import celery
from marketplace.core.tasks import run_in_unit_of_work


@celery.task(name="analytics.rollup_month", acks_late=True)
def rollup_month(year: int, month: int) -> dict[str, Any]:
    from marketplace.analytics import service

    return run_in_unit_of_work(lambda session: service.rollup_month(session, year, month))


@celery.task(name="analytics.rollup_previous_month", acks_late=True)
def rollup_previous_month() -> dict[str, Any]:
    """Beat (daily): re-roll the previous month, so late settlements and payments are picked up."""
    first = datetime.now(UTC).date().replace(day=1)
    prev = first - timedelta(days=1)
    result: dict[str, Any] = rollup_month(prev.year, prev.month)
    return result
