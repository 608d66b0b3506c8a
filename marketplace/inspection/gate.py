"""The inspection room's part in a booking's moves (registered on ``marketplace.bookings.hooks``).

Imported by the composition root and the worker so that the hooks are in place wherever bookings move.

The payout gate of a produced lot (a machine booking), from its newest inspection:

* open (planned, shipped, received): the automatic settlement waits, and the buyer may dispute late;
* reported, gating, rejected (and no rework since): the settlement waits (the dispute opens at once if the
  booking was completed, else as soon as it is completed: see ``_dispute_on_completion``);
* reported, not gating (required accreditation not covered): the buyer decides for one dispute window after
  the report (confirm, or dispute late); the automatic settlement resumes after that window;
* reported and accepted with a gating report, waived, cancelled, or no inspection: the normal settlement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings import hooks
from marketplace.bookings.models import Booking, BookingStatus
from marketplace.core.settings import get_settings
from marketplace.inspection import plan_hooks, quality
from marketplace.inspection.models import OPEN_STATUSES, InspectionStatus, Verdict
from marketplace.inspection.report_repository import ReportRepository

WAIT_OPEN = "open"
WAIT_REJECTED = "rejected"
WAIT_BUYER = "buyer_decides"


async def holds(session: AsyncSession, booking: Booking) -> str | None:
    """Why the produced lot's payout is held by its inspection now (None: it is not)."""
    if booking.kind != "machine":
        return None
    latest = await ReportRepository(session).latest_of_production(booking.id)
    if latest is None:
        return None
    inspection, report = latest
    if inspection.status in OPEN_STATUSES:
        return WAIT_OPEN
    if inspection.status != InspectionStatus.reported or report is None:
        return None
    if not report.gates_payment:
        window = timedelta(hours=get_settings().dispute_window_hours)
        return WAIT_BUYER if datetime.now(UTC) < report.created_at + window else None
    if report.verdict == Verdict.rejected and not await ReportRepository(session).reworked_since(
        booking.id, report.created_at
    ):
        return WAIT_REJECTED
    return None


async def settlement_waits(session: AsyncSession, booking: Booking) -> bool:
    """The produced lot's automatic settlement waits while its inspection holds the payout."""
    return await holds(session, booking) is not None


async def late_dispute(session: AsyncSession, booking: Booking) -> bool:
    """The buyer may dispute after the dispute window while the inspection holds the payout."""
    return await holds(session, booking) is not None


async def _dispute_on_completion(session: AsyncSession, booking: Booking, *, action: str, role: str) -> None:
    """A lot rejected by a gating report before the factory completed the booking: the dispute opens as soon as
    it is completed (the money stays held; the admin decides)."""
    if action != "complete" or booking.status != BookingStatus.completed:
        return
    if await holds(session, booking) != WAIT_REJECTED:
        return
    latest = await ReportRepository(session).latest_of_production(booking.id)
    if latest is None or latest[1] is None:
        return
    # Imported here: actions imports hooks, and reports imports actions.
    from marketplace.bookings import actions
    from marketplace.bookings.deps import booking_deps
    from marketplace.inspection.reports import REJECTED_REASON

    await actions.system_act(
        session=session,
        booking=booking,
        action="dispute",
        deps=booking_deps(get_settings()),
        reason=REJECTED_REASON,
    )


hooks.register_settlement_gate(settlement_waits)
hooks.register_late_dispute(late_dispute)
hooks.register_after_move(_dispute_on_completion)
# Imported for their registrations: a lab booking closed or a settlement by the buyer (plan_hooks), ordered
# quality documents before completion (quality).
_REGISTERED_ELSEWHERE = (plan_hooks, quality)
