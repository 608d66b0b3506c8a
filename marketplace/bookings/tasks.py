"""Booking timers and deliveries, run by Celery.

Every task is idempotent (the outbox relay delivers at least once) and acknowledged late. The per-booking
timers (``expire_one`` at a hold's or request's deadline, ``settle_one`` at the end of the dispute window) are
outbox rows due at that time; the sweep on beat (every ``booking_sweep_seconds``) acts on the same due times in
PostgreSQL, so a message lost with a killed worker delays a timer by one sweep interval at most. Each timer
acts once: the booking row is locked and its status re-checked before any transition.

Retries never use Celery countdowns (an ETA message held by a killed worker would wait for Redis's visibility
timeout): a failed e-mail or webhook delivery writes its next attempt as a delayed outbox row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.bookings import service
from marketplace.bookings.deps import blocked_time, booking_deps, listings_config
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.core.celery import celery
from marketplace.core.jobs import enqueue
from marketplace.core.settings import Settings, get_settings
from marketplace.core.tasks import run_in_unit_of_work
from marketplace.notifications import service as notifications
from marketplace.notifications import webhooks
from marketplace.notifications.models import Notification, WebhookDelivery

logger = logging.getLogger(__name__)


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
    return await service.system_act(
        session=session, booking=booking, action="expire", deps=_deps(), reason="deadline passed"
    )


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
    return await service.system_act(
        session=session, booking=booking, action="confirm", deps=deps, reason="no dispute within the window"
    )


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
        counts["expired"] += await service.system_act(
            session=session, booking=b, action="expire", deps=deps, reason="deadline passed"
        )
    for b in await repo.due(
        sa.and_(
            col(Booking.status) == BookingStatus.confirmed,
            sa.or_(
                col(Booking.start_at) <= now,
                sa.and_(col(Booking.start_at).is_(None), col(Booking.drop_off_date) <= now.date()),
            ),
        )
    ):
        counts["started"] += await service.system_act(
            session=session, booking=b, action="start", deps=deps, reason="start time reached"
        )
    window = timedelta(hours=deps.settings.dispute_window_hours)
    for b in await repo.due(
        sa.and_(col(Booking.status) == BookingStatus.completed, col(Booking.completed_at) <= now - window)
    ):
        counts["settled"] += await service.system_act(
            session=session, booking=b, action="confirm", deps=deps, reason="no dispute within the window"
        )
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
                session, org_id, kind="booking.reminder", data={"booking_id": str(b.id), "title": "", "when": when}
            )
        counts["reminded"] += 1
    await session.flush()
    return counts


@celery.task(name="bookings.sweep", acks_late=True)
def sweep() -> dict[str, int]:
    """Expire holds and unanswered requests, start due jobs, auto-settle, send 24-hour reminders."""
    return run_in_unit_of_work(_sweep)


NOTIFICATION_MAX_ATTEMPTS = 8


def notification_retry_delay(attempts: int) -> float:
    """10 s, 20 s, 40 s ... capped at 10 minutes, after the ``attempts``-th failed attempt."""
    return float(min(10 * 2 ** max(0, attempts - 1), 600))


def webhook_retry_delay(attempts: int) -> float:
    """10 s, 20 s, 40 s ... capped at an hour, after the ``attempts``-th failed attempt."""
    return float(min(10 * 2 ** max(0, attempts - 1), 3600))


async def deliver_notification_once(session: AsyncSession, settings: Settings, notification_id: uuid.UUID) -> bool:
    """One delivery attempt; a failed one is recorded and its retry written to the outbox with back-off."""
    try:
        return await notifications.deliver(session, settings, notification_id)
    except OSError as exc:  # smtplib's errors are OSErrors too
        note = await session.get(Notification, notification_id)
        if note is None:
            return False
        # deliver() counted the attempt on the locked row; the commit of this unit of work keeps the count.
        attempts = note.delivery_attempts
        if attempts >= NOTIFICATION_MAX_ATTEMPTS:
            logger.error("notification %s: giving up after %d attempts (%s)", notification_id, attempts, exc)
            return False
        delay = notification_retry_delay(attempts)
        logger.warning(
            "notification %s: attempt %d failed (%s); retrying in %.0f s", notification_id, attempts, exc, delay
        )
        await enqueue(session, "notifications.deliver", str(notification_id), delay_seconds=delay)
        return False


@celery.task(name="notifications.deliver", acks_late=True)
def deliver_notification(notification_id: str) -> bool:
    settings = get_settings()
    return run_in_unit_of_work(lambda s: deliver_notification_once(s, settings, uuid.UUID(notification_id)))


async def deliver_webhook_once(session: AsyncSession, settings: Settings, delivery_id: uuid.UUID) -> str:
    """One delivery attempt; while the delivery is still pending, its next attempt is a delayed outbox row."""
    status = await webhooks.attempt(session, settings, delivery_id)
    if status == "pending":
        delivery = await session.get(WebhookDelivery, delivery_id)
        attempts = delivery.attempts if delivery is not None else 1
        await enqueue(session, "webhooks.deliver", str(delivery_id), delay_seconds=webhook_retry_delay(attempts))
    return status


@celery.task(name="webhooks.deliver", acks_late=True)
def deliver_webhook(delivery_id: str) -> str:
    settings = get_settings()
    return run_in_unit_of_work(lambda s: deliver_webhook_once(s, settings, uuid.UUID(delivery_id)))


@celery.task(name="listings.refresh_next_free", acks_late=True)
def refresh_next_free() -> int:
    """Keep each published listing's stored next free slot (used to sort search results) current."""
    from listings import tasks as listings_tasks

    config = listings_config(get_settings())
    return run_in_unit_of_work(lambda session: listings_tasks.refresh_next_free(session, config, blocked_time()))
