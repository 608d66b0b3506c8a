"""Payments jobs: process stored Stripe events (and sweep any whose message was lost), flag overdue
invoices. Idempotent and acknowledged late, like every task."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import service
from marketplace.bookings.deps import booking_deps
from marketplace.bookings.repository import BookingRepository
from marketplace.core.celery import celery
from marketplace.core.settings import get_settings
from marketplace.core.tasks import run_in_unit_of_work
from payments import invoices, webhooks
from payments.repository import PaymentsRepository
from payments.stripe_gateway import StripeGateway


def _deps() -> service.Deps:
    deps: service.Deps = booking_deps(get_settings())
    return deps


async def apply_stripe_event(session: AsyncSession, event_id: str, deps: service.Deps) -> list[str]:
    """Process one stored event and perform the booking transitions it implies (as the system)."""
    gateway = deps.payments
    if not isinstance(gateway, StripeGateway):
        return []
    done = []
    for action in await webhooks.process(session, gateway, event_id):
        booking = await BookingRepository(session).get(action.booking_id, for_update=True)
        if booking is not None and await service.system_act(
            session=session, booking=booking, action=action.action, deps=deps, reason=action.reason
        ):
            done.append(f"{action.action}:{action.booking_id}")
    return done


@celery.task(name="payments.process_stripe_event", acks_late=True)
def process_stripe_event(event_id: str) -> list[str]:
    """A failure leaves the event pending: the 5-minute sweep retries it (no Celery countdown retries)."""
    return run_in_unit_of_work(lambda s: apply_stripe_event(s, event_id, _deps()))


async def _sweep_events(session: AsyncSession) -> int:
    deps = _deps()
    count = 0
    for event_id in await PaymentsRepository(session).pending_events():
        async with session.begin_nested():
            await apply_stripe_event(session, event_id, deps)
        count += 1
    return count


@celery.task(name="payments.sweep_stripe_events", acks_late=True)
def sweep_stripe_events() -> int:
    """Process events still pending (a lost message or a failed attempt only delays them)."""
    return run_in_unit_of_work(_sweep_events)


async def _flag(session: AsyncSession) -> list[str]:
    return [str(i) for i in await invoices.flag_overdue(session)]


@celery.task(name="payments.flag_overdue_invoices", acks_late=True)
def flag_overdue_invoices() -> list[str]:
    return run_in_unit_of_work(_flag)


__all__ = ["apply_stripe_event", "flag_overdue_invoices", "process_stripe_event", "sweep_stripe_events"]
