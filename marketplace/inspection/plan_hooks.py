"""The inspection plan's part in a booking's moves (registered on ``marketplace.bookings.hooks``; imported by
``gate.py``, which the API and the worker import).

* A lab booking carrying an open inspection is cancelled, declined or expired → the inspection is
  ``cancelled`` (the production booking's settlement no longer waits for it).
* The production booking is cancelled while its inspection is open → ``cancelled`` too (nothing to inspect;
  the lab booking stays an ordinary booking the buyer may cancel under its policy).
* The buyer settles the production booking by hand (``confirm``), or an admin resolves a dispute of it, while
  the inspection is open → ``waived``. (The system's ``confirm`` never runs while it is open: ``gate.py``.)
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import AssetKind
from marketplace.bookings import hooks
from marketplace.bookings.models import Booking
from marketplace.inspection.models import OPEN_STATUSES, Inspection, InspectionStatus
from marketplace.inspection.plan_repository import PlanRepository
from marketplace.inspection.plans import notify, utc_now
from marketplace.inspection.repository import InspectionRepository

LAB_CLOSED = ("cancel", "decline", "expire")


async def on_move(session: AsyncSession, booking: Booking, *, action: str, role: str) -> None:
    """A lab booking closed cancels its inspection; a production booking closed or settled by people ends its
    open inspection (cancelled, or waived by the buyer's or admin's decision)."""
    if booking.kind == AssetKind.lab_service:
        if action in LAB_CLOSED:
            inspection = await InspectionRepository(session).by_lab_booking(booking.id, for_update=True)
            if inspection is not None and inspection.status in OPEN_STATUSES:
                await _close(session, inspection, status=InspectionStatus.cancelled)
        return
    if action == "cancel" or (action == "confirm" and role == "buyer") or action == "resolve":
        inspection = await PlanRepository(session).open_for_production_locked(booking.id)
        if inspection is None:
            return
        status = InspectionStatus.cancelled if action == "cancel" else InspectionStatus.waived
        await _close(session, inspection, status=status)


async def _close(session: AsyncSession, inspection: Inspection, *, status: str) -> None:
    inspection.status = status
    inspection.updated_at = utc_now()
    await session.flush()
    if status == InspectionStatus.cancelled:
        await notify(session, inspection, kind="inspection.cancelled", to=("buyer", "factory", "lab"))
    else:
        await notify(session, inspection, kind="inspection.waived", to=("factory", "lab"))


hooks.register_after_move(on_move)
