"""Moving a booking through the transition table (``transitions.py``): a person's action (``act``), a
scheduled job's (``system_act``), the supplier's ``release`` of unused machine time, and the announcements
(notifications and webhooks) every move makes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.ext.asyncio import AsyncSession

from listings import service as listings
from listings.models import Asset, AssetKind
from listings.repository import ListingsRepository
from marketplace.bookings import hooks, instalments, policy
from marketplace.bookings.models import BLOCKING, Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import (
    BookingsBlockedTime,
    Deps,
    NothingToRelease,
    NotReleasable,
    cancel_refund,
    field_error,
    get_for,
    money,
    record,
    starts_at,
)
from marketplace.bookings.rules import now as _now
from marketplace.bookings.transitions import target
from marketplace.core import audit
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.notifications.service import notify_org
from marketplace.notifications.webhooks import fan_out
from marketplace.orgs.models import Organisation
from payments.money import plain as money_text


def _require_write_scope(principal: Principal, role: str) -> None:
    if role in ("buyer", "supplier") and not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")


async def act(
    *,
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    action: str,
    deps: Deps,
    reason: str | None = None,
    refund_amount: int | None = None,
    result_reference: str | None = None,
) -> Booking:
    """A person's action on a booking; the caller's role (buyer, supplier, admin) must be allowed.

    Completing before the work's start (machine: the booked start; lab: the drop-off day) needs a
    ``reason``, which goes on the timeline."""
    if action == "release":
        return await release(session=session, principal=principal, booking_id=booking_id, deps=deps, reason=reason)
    booking, role = await get_for(session=session, principal=principal, booking_id=booking_id, for_update=True)
    _require_write_scope(principal, role)
    if action in ("pay", "accept"):  # money matters: committing to pay, or to deliver for pay
        principal.require_verified_email()
    to, allowed = target(booking.status, action)
    if role not in allowed:
        # An admin may also act for either side where the table allows the side (support cases).
        raise Forbidden(f"The {role} cannot {action} this booking.")
    now = _now()
    if action == "start" and role == "supplier":
        earliest = starts_at(booking) - timedelta(hours=deps.settings.checkin_hours_before)
        if now < earliest:
            raise Conflict(
                f"Check-in opens {deps.settings.checkin_hours_before} hours before the start.",
                extra={"current_status": booking.status},
            )
    if action == "complete" and now < starts_at(booking) and not (reason and reason.strip()):
        raise field_error("reason", "completing before the booked start needs a reason (it goes on the timeline).")
    if action == "complete":
        await hooks.before_complete(session, booking)
    if action == "dispute":
        if not reason:
            raise Unprocessable("reason: say what is wrong.")
        window = timedelta(hours=deps.settings.dispute_window_hours)
        closed = booking.completed_at is None or now > booking.completed_at + window
        if closed and not await hooks.late_dispute_allowed(session, booking):
            raise Conflict("The dispute window has closed.", extra={"current_status": booking.status})
    if action == "resolve":
        if refund_amount is None or refund_amount > booking.amount:
            raise Unprocessable(f"refund_amount must be between 0 and the booking amount ({booking.amount}).")
    await _apply(
        session=session,
        booking=booking,
        action=action,
        to=to,
        role=role,
        user_id=principal.user_id,
        now=now,
        deps=deps,
        reason=reason,
        refund_amount=refund_amount,
        result_reference=result_reference,
    )
    if action in ("resolve", "rework"):  # an admin's decision over money: audited, whichever door it came through
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            action="booking.resolve" if action == "resolve" else "booking.rework",
            target_type="booking",
            target_id=booking.id,
            before={"status": "disputed"},
            after={"status": booking.status, "refund_amount": booking.refund_amount},
            reason=reason,
        )
    return booking


async def system_act(*, session: AsyncSession, booking: Booking, action: str, deps: Deps, reason: str) -> bool:
    """A scheduled job's action; ignored if the booking has moved on (jobs are idempotent)."""
    try:
        to, allowed = target(booking.status, action)
    except Conflict:
        return False
    if "system" not in allowed:
        return False
    if action == "confirm" and await hooks.settlement_waits(session, booking):
        return False  # an open inspection holds the payout until its verdict (marketplace/inspection/gate.py)
    await _apply(
        session=session,
        booking=booking,
        action=action,
        to=to,
        role="system",
        user_id=None,
        now=_now(),
        deps=deps,
        reason=reason,
    )
    return True


async def _apply(
    *,
    session: AsyncSession,
    booking: Booking,
    action: str,
    to: str,
    role: str,
    user_id: uuid.UUID | None,
    now: datetime,
    deps: Deps,
    reason: str | None = None,
    refund_amount: int | None = None,
    result_reference: str | None = None,
) -> None:
    before = booking.status
    booking.status = to
    booking.updated_at = now
    m = money(booking)
    if action == "pay":
        await deps.payments.on_paid(session, m)
        booking.hold_expires_at = None
        booking.accept_by = now + timedelta(hours=deps.settings.accept_hours)
        await enqueue(
            session, "bookings.expire_one", str(booking.id), delay_seconds=deps.settings.accept_hours * 3600 + 1
        )
    elif action == "accept":
        booking.accept_by = None
        await deps.payments.on_accepted(session, m)
        await instalments.invoice_due(session, booking, deps=deps, due=(instalments.CONFIRMATION,))
    elif action in ("decline", "expire"):
        await deps.payments.on_released(session, m)
    elif action == "cancel":
        booking.cancelled_by = role
        paid = before in (BookingStatus.requested, BookingStatus.confirmed)
        percent = policy.refund_percent(booking.cancellation_policy, start=starts_at(booking), now=now, by=role)
        booking.refund_amount = cancel_refund(booking, percent) if paid else 0
        if paid:
            await deps.payments.on_cancelled(session, m, booking.refund_amount)
        else:
            await deps.payments.on_released(session, m)
    elif action == "complete":
        booking.completed_at = now
        booking.result_reference = result_reference
        await instalments.invoice_due(session, booking, deps=deps, due=(instalments.MILESTONE, instalments.COMPLETION))
        await enqueue(
            session, "bookings.settle_one", str(booking.id), delay_seconds=deps.settings.dispute_window_hours * 3600 + 1
        )
    elif action == "confirm":
        booking.settled_at = now
        await deps.payments.on_settled(session, m)
    elif action == "dispute":
        booking.dispute_reason = reason
    elif action == "rework":
        booking.completed_at = None  # completed again after the rework; the money stays held
    elif action == "resolve":
        if refund_amount is None:
            raise field_error("refund_amount", "required to resolve a dispute.")
        booking.refund_amount = refund_amount
        booking.settled_at = now
        await deps.payments.on_resolved(session, m, refund_amount)
    await session.flush()
    await record(
        BookingRepository(session),
        booking_id=booking.id,
        before=before,
        after=to,
        action=action,
        actor_kind=role,
        actor_user_id=user_id,
        reason=reason,
    )
    await hooks.after_move(session, booking, action=action, role=role)
    asset = await _asset_of(session, booking)
    # A booking placed from an accepted quote needs no second acceptance: the supplier agreed to these terms in
    # its quote, so paying (or accepting the invoice terms) confirms it at once, on the timeline as the system.
    agreed = action == "pay" and booking.quote_id is not None
    # A dispute the system opens (a lot rejected by an inspection) is told by the inspection room's own notice.
    quiet = agreed or (action == "dispute" and role == "system")
    await announce(session, booking, asset, event=f"booking.{to}", reason=reason, notify=not quiet)
    if to not in BLOCKING:
        await listings.refresh_next_free(session, asset, config=deps.listings_config, blocked=BookingsBlockedTime())
    if agreed:
        await _apply(
            session=session,
            booking=booking,
            action="accept",
            to=BookingStatus.confirmed,
            role="system",
            user_id=None,
            now=now,
            deps=deps,
            reason="agreed in the quote",
        )


async def _asset_of(session: AsyncSession, booking: Booking) -> Asset:
    asset = await ListingsRepository(session).get_asset(booking.asset_id)
    if asset is None:  # assets.id is referenced ON DELETE RESTRICT: a booking's asset cannot vanish
        raise NotFound("Listing not found.")
    return asset


async def release(
    *,
    session: AsyncSession,
    principal: Principal,
    booking_id: uuid.UUID,
    deps: Deps,
    reason: str | None = None,
) -> Booking:
    """The supplier (or an admin) gives back the machine time left after an early completion.

    Allowed where the transition table allows ``release`` (completed, settled, resolved; not disputed) and
    only for machine time: a lab booking keeps its samples (capacity is daily intake). The blocked period
    is shortened to end at the completion time, or emptied when the work was completed before the period
    began; the status does not change. Recorded on the timeline (action ``release``) and in the audit log,
    announced to the buyer (notification) and both sides' webhooks (``booking.released``), and the
    listing's next free slot is recomputed. A second release finds nothing left: 409 ``nothing_to_release``
    (a retry with the same Idempotency-Key replays the first answer instead)."""
    booking, role = await get_for(session=session, principal=principal, booking_id=booking_id, for_update=True)
    _require_write_scope(principal, role)
    _same, allowed = target(booking.status, "release")
    if role not in allowed:
        raise Forbidden(f"The {role} cannot release this booking's time.")
    period = booking.period
    if booking.kind != AssetKind.machine or period is None:
        raise NotReleasable()
    completed_at = booking.completed_at
    if completed_at is None or period.isempty or period.upper <= completed_at:
        raise NothingToRelease()
    before = {"blocked_from": period.lower.isoformat(), "blocked_until": period.upper.isoformat()}
    if completed_at <= period.lower:
        booking.period = Range(empty=True)
        after: dict[str, Any] = {"blocked_from": None, "blocked_until": None}
    else:
        booking.period = Range(period.lower, completed_at, bounds="[)")
        after = {"blocked_from": period.lower.isoformat(), "blocked_until": completed_at.isoformat()}
    booking.updated_at = _now()
    await session.flush()
    await record(
        BookingRepository(session),
        booking_id=booking.id,
        before=booking.status,
        after=booking.status,
        action="release",
        actor_kind=role,
        actor_user_id=principal.user_id,
        reason=reason,
    )
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="booking.release",
        target_type="booking",
        target_id=booking.id,
        before=before,
        after=after,
        reason=reason,
    )
    asset = await _asset_of(session, booking)
    await announce(session, booking, asset, event="booking.released", reason=reason)
    await listings.refresh_next_free(session, asset, config=deps.listings_config, blocked=BookingsBlockedTime())
    return booking


# Who hears of each event by notification (webhooks go to both sides' endpoints that subscribed).
_RECIPIENTS: dict[str, tuple[str, ...]] = {
    "booking.requested": ("supplier",),
    "booking.confirmed": ("buyer",),
    "booking.declined": ("buyer",),
    "booking.expired": ("buyer", "supplier"),
    "booking.cancelled": ("buyer", "supplier"),
    "booking.in_progress": ("buyer",),
    "booking.completed": ("buyer",),
    "booking.settled": ("buyer", "supplier"),
    "booking.disputed": ("supplier",),
    "booking.resolved": ("buyer", "supplier"),
    "booking.released": ("buyer",),
}


async def announce(
    session: AsyncSession, booking: Booking, asset: Asset, *, event: str, notify: bool = True, reason: str | None = None
) -> None:
    """Notify the other side(s) and the organisations' webhooks."""
    buyer = await session.get(Organisation, booking.buyer_org_id) if notify else None
    supplier = await session.get(Organisation, booking.supplier_org_id) if notify else None
    when = (
        f"{booking.start_at:%Y-%m-%d %H:%M} UTC"
        if booking.start_at
        else f"{booking.drop_off_date} ({booking.samples} samples)"
    )
    data = {
        "booking_id": str(booking.id),
        "asset_id": str(asset.id),
        "title": asset.title,
        "status": booking.status,
        "when": when,
        "buyer": buyer.name if buyer else "",
        "supplier": supplier.name if supplier else "",
        "accept_by": f"{booking.accept_by:%Y-%m-%d %H:%M} UTC" if booking.accept_by else "",
        "refund": money_text(booking.refund_amount, booking.currency),
        "cancelled_by": booking.cancelled_by or "",
        "samples": booking.samples if booking.start_at is None else None,
        "drop_off_date": str(booking.drop_off_date) if booking.start_at is None else None,
        "reason": reason or "",
        "dispute_hours": 72,
    }
    if notify:
        sides = {"buyer": booking.buyer_org_id, "supplier": booking.supplier_org_id}
        for side in _RECIPIENTS.get(event, ()):
            await notify_org(session, sides[side], kind=event, data=data)
    await fan_out(
        session,
        [booking.buyer_org_id, booking.supplier_org_id],
        event=event,
        payload={
            "booking_id": str(booking.id),
            "asset_id": str(asset.id),
            "status": booking.status,
            "start": booking.start_at.isoformat() if booking.start_at else None,
            "end": booking.end_at.isoformat() if booking.end_at else None,
            "drop_off_date": booking.drop_off_date.isoformat() if booking.drop_off_date else None,
            "samples": booking.samples,
            "amount": booking.amount,
            "currency": booking.currency,
        },
    )
