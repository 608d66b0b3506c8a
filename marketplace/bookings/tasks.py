"""Booking timers and deliveries, run by Celery. Every task is idempotent and acknowledged late; the
per-booking timers are backed by a sweep on beat, so a lost message only delays an expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from celery import Task
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import notifications, webhooks
from marketplace.bookings import service
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.celery_app import celery
from marketplace.settings import get_settings
from marketplace.tasks import run_in_unit_of_work
from marketplace.wiring import booking_deps


def _deps() -> service.Deps:
    deps: service.Deps = booking_deps(get_settings())
    return deps


async def _expire(session: AsyncSession, booking_id: uuid.UUID) -> bool:
    booking = await BookingRepository(session).get(booking_id, for_update=True)
    if booking is None:
        return False
    now = datetime.now(UTC)
    due = (booking.status == BookingStatus.held and booking.hold_expires_at and booking.hold_expires_at <= now) or (
        booking.status == BookingStatus.requested and booking.accept_by and booking.accept_by <= now
    )
    if not due:
        return False
    return await service.system_act(session, booking, "expire", _deps(), "deadline passed")


@celery.task(name="bookings.expire_one", acks_late=True)
def expire_one(booking_id: str) -> bool:
    """Expire one hold or unanswered request at its deadline (no-op if it moved on)."""
    return run_in_unit_of_work(lambda s: _expire(s, uuid.UUID(booking_id)))


async def _settle(session: AsyncSession, booking_id: uuid.UUID) -> bool:
    booking = await BookingRepository(session).get(booking_id, for_update=True)
    deps = _deps()
    if booking is None or booking.status != BookingStatus.completed or booking.completed_at is None:
        return False
    if datetime.now(UTC) < booking.completed_at + timedelta(hours=deps.settings.dispute_window_hours):
        return False
    return await service.system_act(session, booking, "confirm", deps, "no dispute within the window")


@celery.task(name="bookings.settle_one", acks_late=True)
def settle_one(booking_id: str) -> bool:
    return run_in_unit_of_work(lambda s: _settle(s, uuid.UUID(booking_id)))


async def _sweep(session: AsyncSession) -> dict[str, int]:
    deps = _deps()
    repo = BookingRepository(session)
    now = datetime.now(UTC)
    counts = {"expired": 0, "started": 0, "settled": 0, "reminded": 0}
    for b in await repo.due(
        sa.or_(
            sa.and_(col(Booking.status) == BookingStatus.held, col(Booking.hold_expires_at) <= now),
            sa.and_(col(Booking.status) == BookingStatus.requested, col(Booking.accept_by) <= now),
        )
    ):
        counts["expired"] += await service.system_act(session, b, "expire", deps, "deadline passed")
    for b in await repo.due(
        sa.and_(
            col(Booking.status) == BookingStatus.confirmed,
            sa.or_(
                col(Booking.start_at) <= now,
                sa.and_(col(Booking.start_at).is_(None), col(Booking.drop_off_date) <= now.date()),
            ),
        )
    ):
        counts["started"] += await service.system_act(session, b, "start", deps, "start time reached")
    window = timedelta(hours=deps.settings.dispute_window_hours)
    for b in await repo.due(
        sa.and_(col(Booking.status) == BookingStatus.completed, col(Booking.completed_at) <= now - window)
    ):
        counts["settled"] += await service.system_act(session, b, "confirm", deps, "no dispute within the window")
    soon = now + timedelta(hours=deps.settings.reminder_hours_before)
    for b in await repo.due(
        sa.and_(
            col(Booking.status) == BookingStatus.confirmed,
            col(Booking.reminder_sent_at).is_(None),
            col(Booking.start_at) <= soon,
        )
    ):
        b.reminder_sent_at = now
        when = f"{b.start_at:%Y-%m-%d %H:%M} UTC" if b.start_at else str(b.drop_off_date)
        for org_id in (b.buyer_org_id, b.supplier_org_id):
            await notifications.notify_org(
                session, org_id, "booking.reminder", {"booking_id": str(b.id), "title": "", "when": when}
            )
        counts["reminded"] += 1
    await session.flush()
    return counts


@celery.task(name="bookings.sweep", acks_late=True)
def sweep() -> dict[str, int]:
    """Expire holds and unanswered requests, start due jobs, auto-settle, send 24-hour reminders."""
    return run_in_unit_of_work(_sweep)


@celery.task(
    name="notifications.deliver",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def deliver_notification(notification_id: str) -> bool:
    settings = get_settings()
    return run_in_unit_of_work(lambda s: notifications.deliver(s, settings, uuid.UUID(notification_id)))


@celery.task(name="webhooks.deliver", bind=True, acks_late=True, max_retries=webhooks.MAX_ATTEMPTS)
def deliver_webhook(self: Task, delivery_id: str) -> str:  # type: ignore[type-arg]
    settings = get_settings()
    status = run_in_unit_of_work(lambda s: webhooks.attempt(s, settings, uuid.UUID(delivery_id)))
    if status == "pending":
        # Exponential backoff: 10 s, 20 s, 40 s ... capped at an hour.
        raise self.retry(countdown=min(10 * 2**self.request.retries, 3600))
    return status
