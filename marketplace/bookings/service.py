"""Booking rules. Functions take a session and never commit; jobs are outbox rows written in the caller's
transaction.

No double booking, ever:
* machine time is protected by the exclusion constraint ``EXCLUDE USING gist (asset_id WITH =, period
  WITH &&) WHERE (status in the blocking states)``; the insert is ``ON CONFLICT DO NOTHING``, so a period
  the constraint refuses inserts no row, answered as 409 ``slot_unavailable``. There is deliberately no
  check-then-insert in Python: the database decides.
* the blocking states are every state of a booking that was not called off (``models.BLOCKING``): a
  completed, disputed, settled or resolved booking keeps its period and its lab samples. Only an explicit,
  audited ``release`` gives back the time after an early completion.
* lab capacity (daily intake) is counted under a transaction-scoped advisory lock per (asset, day), with a
  lock timeout.

Nothing slow runs inside the locked section: the listing's open days are computed before the lab-day lock,
and the payment gateway's external call (Stripe's PaymentIntent) happens in ``before_booked``, before the
booking row is written or any lock taken; ``booking_abandoned`` undoes it when the booking then fails.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings import availability as av
from listings import service as listings
from listings.models import Asset, AssetKind, AssetStatus, Site
from listings.repository import ListingsRepository
from marketplace.bookings import policy
from marketplace.bookings.models import BLOCKING, Booking, BookingEvent, BookingStatus, Review
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.schemas import BookingCreate, ReviewIn
from marketplace.bookings.transitions import target
from marketplace.core import audit
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.notifications.service import notify_org
from marketplace.notifications.webhooks import fan_out
from marketplace.orgs.models import Organisation
from marketplace.requests import service as requests_service
from payments.money import plain as money_text
from payments.port import BookingMoney, BookingTerms, PaymentGateway


class SlotUnavailable(Conflict):
    """That time overlaps another booking of this machine."""

    code = "slot_unavailable"


class CapacityUnavailable(Conflict):
    """Not enough sample capacity left on that day."""

    code = "capacity_unavailable"


class TryAgain(Conflict):
    """The lab day is busy with other bookings right now; retry in a moment."""

    code = "try_again"


class OwnAsset(Forbidden):
    """An organisation cannot book its own asset."""

    code = "own_asset"


class NotBookable(Unprocessable):
    code = "not_bookable"


class NothingToRelease(Conflict):
    """No booked time is left after the completion time (already released, or completed at or after the end)."""

    code = "nothing_to_release"


class NotReleasable(Conflict):
    """A lab booking keeps its samples: lab capacity is daily intake."""

    code = "not_releasable"


def _field_error(field: str, message: str) -> Unprocessable:
    """A 422 ``validation_error`` naming the field, in the shape of the request validation handler's."""
    return Unprocessable(f"{field}: {message}", extra={"fields": [{"field": field, "message": message}]})


@dataclass(frozen=True)
class Deps:
    """What the booking rules need from the rest of the shell."""

    settings: Settings
    payments: PaymentGateway
    listings_config: listings.ListingsConfig


def _now() -> datetime:
    return datetime.now(UTC)


def money(b: Booking, asset: Asset | None = None) -> BookingMoney:
    """The booking as the payments domain sees it; with its ``asset`` at hand, also the terms an invoice
    describes (so the gateway need not read the booking back)."""
    terms = (
        BookingTerms(
            title=asset.title,
            kind=b.kind,
            unit_price=b.unit_price,
            setup_fee=b.setup_fee,
            start_at=b.start_at,
            end_at=b.end_at,
            samples=b.samples,
            drop_off_date=b.drop_off_date,
        )
        if asset is not None
        else None
    )
    return BookingMoney(
        booking_id=b.id,
        buyer_org_id=b.buyer_org_id,
        supplier_org_id=b.supplier_org_id,
        amount=b.amount,
        currency=b.currency,
        commission_rate_bp=b.commission_rate_bp,
        terms=terms,
    )


def starts_at(b: Booking) -> datetime:
    """When the work starts: the booked start, or the drop-off day's midnight in the site's zone."""
    if b.start_at is not None:
        return b.start_at
    if b.drop_off_date is None:  # ck_bookings_shape makes this impossible for a stored booking
        raise NotBookable("The booking has neither a start nor a drop-off day.")
    return datetime.combine(b.drop_off_date, time(0), ZoneInfo(b.site_timezone))


class BookingsBlockedTime:
    """Booked time as the listings domain sees it (free slots, search, next free slot)."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Any, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[av.Interval]]:
        return await BookingRepository(session).blocked_periods(list(asset_ids), start, end, _now())

    async def lab_booked(self, session: AsyncSession, asset_id: uuid.UUID, start: date, end: date) -> dict[date, int]:
        return await BookingRepository(session).lab_samples_by_day(asset_id, start, end, _now())


# -- placing a booking -----------------------------------------------------------------------------


def _buyer_org_id(requested: uuid.UUID | None, buyers: list[uuid.UUID]) -> uuid.UUID:
    """``buyers``: the candidate organisations (the requested one, else all of the caller's) that the caller
    may book for and that are buyers."""
    if requested and not buyers:
        raise NotFound("Organisation not found.")
    if len(buyers) != 1:
        raise Unprocessable("buyer_org_id: say which of your buyer organisations books (or you have none).")
    return buyers[0]


async def create(session: AsyncSession, principal: Principal, data: BookingCreate, deps: Deps) -> Booking:
    booking, _timeline = await place(session, principal, data, deps)
    return booking


async def place(
    session: AsyncSession, principal: Principal, data: BookingCreate, deps: Deps
) -> tuple[Booking, list[BookingEvent]]:
    """Place a booking (held); returns it with its timeline (its single ``book`` event), so that the
    response needs no query.

    Order: every read and check that needs no lock (listing, open hours or open days, price, due date), then
    the payment gateway's external call (``before_booked``), then the protected write (the machine insert the
    exclusion constraint arbitrates, or the lab-day lock, count and insert), then the rest of the unit of work.
    If anything fails after ``before_booked``, ``booking_abandoned`` undoes the external effect."""
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    principal.require_verified_email()
    now = _now()
    repo = BookingRepository(session)
    candidates = [data.buyer_org_id] if data.buyer_org_id else sorted(principal.org_ids)
    allowed = [org_id for org_id in candidates if principal.can_act_for(org_id, "bookings:write")]
    found = await repo.bookable(data.asset_id, allowed)
    if found is None or found.asset.status != AssetStatus.published or not found.supplier_verified:
        raise NotFound("Listing not found.")
    asset, site = found.asset, found.site
    buyer_org_id = _buyer_org_id(data.buyer_org_id, found.buyer_org_ids)
    if buyer_org_id == asset.org_id:
        raise OwnAsset()
    booking = Booking(
        asset_id=asset.id,
        kind=asset.kind,
        supplier_org_id=asset.org_id,
        buyer_org_id=buyer_org_id,
        created_by=principal.user_id,
        request_id=data.request_id,
        currency=asset.currency,
        cancellation_policy=dict(asset.cancellation_policy or listings.DEFAULT_CANCELLATION_POLICY),
        site_timezone=site.timezone,
        status=BookingStatus.held,
        hold_expires_at=now + timedelta(minutes=deps.settings.hold_minutes),
        # The supplier's commission override (payments.commission.rate_for's rule), else the platform rate.
        commission_rate_bp=deps.settings.commission_rate_bp
        if found.commission_override_bp is None
        else found.commission_override_bp,
        payment_method=deps.payments.method,
        unit_price=0,
        amount=0,
    )
    if asset.kind == AssetKind.machine:
        if data.start is None or data.end is None or data.drop_off_date is not None or data.samples is not None:
            raise _wrong_kind(data, ("start", "end"), ("drop_off_date", "samples"), "machine time")
        await _prepare_machine(session, booking, asset, site, data.start, data.end, now, deps)
    else:
        if data.drop_off_date is None or data.samples is None or data.start is not None or data.end is not None:
            raise _wrong_kind(data, ("drop_off_date", "samples"), ("start", "end"), "a lab service")
        await _prepare_lab(session, booking, asset, site, data.drop_off_date, data.samples, now, deps)
    await deps.payments.before_booked(session, money(booking, asset))
    try:
        if asset.kind == AssetKind.machine:
            expired = await _insert_machine(repo, booking, now)
        else:
            expired = await _insert_lab(session, repo, booking, asset.daily_sample_capacity or 0, now, deps)
        if data.request_id is not None:
            await requests_service.mark_booked(session, data.request_id, buyer_org_id)
        for stale_id in expired:
            await _record(repo, stale_id, None, BookingStatus.expired, "expire", "system", None, "deadline passed")
            # Expired in bulk by the conflicting insert: release its invoice or card hold like the timer would.
            stale = await repo.get(stale_id)
            if stale is not None:
                await deps.payments.on_released(session, money(stale))
        booked = await _record(repo, booking.id, None, BookingStatus.held, "book", "buyer", principal.user_id, None)
        await enqueue(
            session, "bookings.expire_one", str(booking.id), delay_seconds=deps.settings.hold_minutes * 60 + 1
        )
        await _announce(session, booking, asset, "booking.held", notify=False)
        if _takes_next_free(asset, booking):
            await listings.refresh_next_free(session, asset, deps.listings_config, BookingsBlockedTime())
        # Last: the invoice (and its ledger journal) is written here; its gap-free number is drawn from the
        # counter row by the transaction's final statement, at commit (see payments.repository). A card
        # gateway only stores the PaymentIntent that before_booked created.
        await deps.payments.on_booked(session, money(booking, asset))
    except Exception:
        await deps.payments.booking_abandoned(session, money(booking, asset))
        raise
    return booking, [booked]


def _wrong_kind(data: BookingCreate, needed: tuple[str, str], foreign: tuple[str, str], what: str) -> Unprocessable:
    """The body does not fit the listing's kind: a 422 naming the fields that are missing or do not belong."""
    fields = [{"field": f, "message": f"required: this listing is {what}"} for f in needed if getattr(data, f) is None]
    fields += [
        {"field": f, "message": f"not allowed: this listing is {what}"} for f in foreign if getattr(data, f) is not None
    ]
    names = ", ".join(f["field"] for f in fields)
    return Unprocessable(
        f"{names}: this listing is {what}; give {' and '.join(needed)}, not {' or '.join(foreign)}.",
        extra={"fields": fields},
    )


def _takes_next_free(asset: Asset, booking: Booking) -> bool:
    """Does this booking take the listing's stored next free slot (so it must be recomputed)?"""
    if asset.next_free_at is None:
        return False
    if booking.period is None:  # a lab day
        return booking.drop_off_date is not None and booking.drop_off_date <= asset.next_free_at.date()
    slot_end = asset.next_free_at + timedelta(minutes=max(asset.min_booking_minutes or 0, asset.slot_minutes or 1))
    return bool(booking.period.lower < slot_end and booking.period.upper > asset.next_free_at)


async def _prepare_machine(
    session: AsyncSession,
    booking: Booking,
    asset: Asset,
    site: Site,
    start: datetime,
    end: datetime,
    now: datetime,
    deps: Deps,
) -> None:
    """Check the times against the grid, the horizon and the open hours, and set period and price."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    grid = asset.slot_minutes or 1
    minutes = int((end - start).total_seconds() // 60)
    if start < now:
        raise NotBookable("start: a booking cannot start in the past.")
    if start > now + timedelta(days=deps.listings_config.horizon_days):
        raise NotBookable(f"start: bookings open {deps.listings_config.horizon_days} days ahead.")
    epoch_minutes = int(start.timestamp() // 60)
    if start.second or start.microsecond or epoch_minutes % grid or minutes % grid:
        raise NotBookable(f"start and end must sit on the machine's {grid}-minute slot grid.")
    if minutes < (asset.min_booking_minutes or 0):
        raise NotBookable(f"The minimum booking for this machine is {asset.min_booking_minutes} minutes.")
    blocked_from = start - timedelta(minutes=asset.setup_minutes or 0)
    blocked_until = end + timedelta(minutes=asset.buffer_minutes or 0)
    # Open hours only (plan + exceptions); other bookings are the exclusion constraint's job.
    excs = await ListingsRepository(session).exceptions_overlapping(asset.id, blocked_from, blocked_until)
    open_time = av.free_intervals(
        listings.weekly_windows(asset), site.timezone, listings.exception_ranges(excs), [], blocked_from, blocked_until
    )
    if open_time != [(blocked_from, blocked_until)]:
        raise NotBookable("The machine is not open for that whole time (setup and buffer included).")
    booking.start_at, booking.end_at = start, end
    booking.period = Range(blocked_from, blocked_until, bounds="[)")
    booking.unit_price = asset.hourly_rate or 0
    booking.setup_fee = asset.setup_fee or 0
    booking.amount = policy.machine_price(booking.unit_price, minutes, booking.setup_fee)


async def _insert_machine(repo: BookingRepository, booking: Booking, now: datetime) -> list[uuid.UUID]:
    """Optimistic: insert first. Only when the exclusion constraint refuses it are stale holds and requests
    (deadline passed) in the way expired, and the insert tried once more; the constraint decides both times."""
    if await _insert_machine_booking(repo, booking):
        return []
    expired = await repo.expire_stale_overlapping(booking.asset_id, booking.period, now)
    if not expired or not await _insert_machine_booking(repo, booking):
        raise SlotUnavailable()
    return expired


async def _insert_machine_booking(repo: BookingRepository, booking: Booking) -> bool:
    """False when the exclusion constraint refuses the period (the transaction stays usable)."""
    try:
        return await repo.insert(booking)
    except DBAPIError as exc:
        # Concurrent inserts of overlapping periods can deadlock inside the exclusion-constraint check
        # (40P01) or fail serialisation (40001): the slot is contested, so the loser gets the 409 (the
        # transaction is aborted then, and the request rolls back as a whole).
        if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001"):
            raise SlotUnavailable() from None
        raise


LAB_DUE_DATE_LOOKAHEAD_DAYS = 60  # closed days considered when counting the turnaround's working days


async def _prepare_lab(
    session: AsyncSession,
    booking: Booking,
    asset: Asset,
    site: Site,
    day: date,
    samples: int,
    now: datetime,
    deps: Deps,
) -> None:
    """Check the day (horizon, open), and set samples, price and due date: all before the lab-day lock.

    The listing's open days are computed once, for the drop-off day and the due-date lookahead together
    (the old code rebuilt the whole set for each of the 61 days, inside the lock: issue #12 measured 78 ms
    against 1.5 ms)."""
    zone = ZoneInfo(site.timezone)
    today = now.astimezone(zone).date()
    if day < today:
        raise NotBookable("drop_off_date: the day has passed.")
    if day > today + timedelta(days=deps.listings_config.horizon_days):
        raise NotBookable(f"drop_off_date: bookings open {deps.listings_config.horizon_days} days ahead.")
    last = day + timedelta(days=LAB_DUE_DATE_LOOKAHEAD_DAYS)
    excs = (await ListingsRepository(session).exceptions_for([asset.id]))[asset.id]
    open_days = set(listings._lab_open_days(asset, site, excs, day, last))
    if day not in open_days:
        raise NotBookable("drop_off_date: the lab does not accept samples that day.")
    closed = {d for d in _days(day, last) if d not in open_days}
    booking.drop_off_date, booking.samples = day, samples
    booking.due_date = av.working_days_after(day, asset.turnaround_days or 0, closed)
    booking.unit_price = asset.price_per_sample or 0
    booking.amount = policy.lab_price(booking.unit_price, samples)


async def _insert_lab(
    session: AsyncSession, repo: BookingRepository, booking: Booking, capacity: int, now: datetime, deps: Deps
) -> list[uuid.UUID]:
    """Count the day's samples and insert, under the lab-day lock (capacity is daily intake: every booking
    in a blocking state counts, completed ones included).

    The lock is taken inside a savepoint that also holds the count and the insert: a refusal (no capacity)
    rolls the savepoint back, which releases the advisory lock at once, so undoing the payment gateway's
    external call afterwards never runs under the lock. On success the savepoint is released and the lock
    stays with the transaction until commit. Each try waits at most 3 s for the lock, three tries, so a
    pile-up answers 409 ``try_again`` instead of hanging."""
    if not deps.settings.lab_capacity_lock:  # only the race tests' control turns it off
        return await _count_and_insert_lab(repo, booking, capacity, now)
    for _ in range(3):
        try:
            async with session.begin_nested():
                await session.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
                await repo.lock_lab_day(booking.asset_id, _lab_day(booking))
                await session.execute(sa.text("SET LOCAL lock_timeout = 0"))
                return await _count_and_insert_lab(repo, booking, capacity, now)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":
                raise
    raise TryAgain()


def _lab_day(booking: Booking) -> date:
    if booking.drop_off_date is None:
        raise NotBookable("drop_off_date: required for a lab service.")
    return booking.drop_off_date


async def _count_and_insert_lab(
    repo: BookingRepository, booking: Booking, capacity: int, now: datetime
) -> list[uuid.UUID]:
    day = _lab_day(booking)
    expired = await repo.expire_stale_lab_day(booking.asset_id, day, now)
    used = await repo.lab_samples_booked(booking.asset_id, day)
    remaining = capacity - used
    if (booking.samples or 0) > remaining:
        raise CapacityUnavailable(
            f"Only {max(remaining, 0)} samples of capacity are left on {day}.", extra={"remaining": max(remaining, 0)}
        )
    if not await repo.insert(booking):  # a lab booking has no period, so the exclusion constraint cannot refuse it
        raise CapacityUnavailable(f"No capacity is left on {day}.", extra={"remaining": 0})
    return expired


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- transitions -----------------------------------------------------------------------------------


async def _record(
    repo: BookingRepository,
    booking_id: uuid.UUID,
    before: str | None,
    after: str,
    action: str,
    actor_kind: str,
    actor_user_id: uuid.UUID | None,
    reason: str | None,
) -> BookingEvent:
    event = BookingEvent(
        booking_id=booking_id,
        from_status=before,
        to_status=after,
        action=action,
        actor_kind=actor_kind,
        actor_user_id=actor_user_id,
        reason=reason,
    )
    await repo.add_event(event)
    return event


def role_of(principal: Principal, booking: Booking) -> str | None:
    if principal.can_act_for(booking.buyer_org_id):
        return "buyer"
    if principal.can_act_for(booking.supplier_org_id):
        return "supplier"
    if principal.is_platform_admin:
        return "admin"
    return None


async def get_for(
    session: AsyncSession, principal: Principal, booking_id: uuid.UUID, *, for_update: bool = False
) -> tuple[Booking, str]:
    booking = await BookingRepository(session).get(booking_id, for_update=for_update)
    role = role_of(principal, booking) if booking else None
    if booking is None or role is None:
        raise NotFound("Booking not found.")
    if role in ("buyer", "supplier") and not principal.has_scope("bookings:read"):
        raise Forbidden("This API key lacks the 'bookings:read' scope.")
    return booking, role


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
        return await release(session, principal=principal, booking_id=booking_id, deps=deps, reason=reason)
    booking, role = await get_for(session, principal, booking_id, for_update=True)
    if role in ("buyer", "supplier") and not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
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
        raise _field_error("reason", "completing before the booked start needs a reason (it goes on the timeline).")
    if action == "dispute":
        if not reason:
            raise Unprocessable("reason: say what is wrong.")
        window = timedelta(hours=deps.settings.dispute_window_hours)
        if booking.completed_at is None or now > booking.completed_at + window:
            raise Conflict("The dispute window has closed.", extra={"current_status": booking.status})
    if action == "resolve":
        if refund_amount is None or refund_amount > booking.amount:
            raise Unprocessable(f"refund_amount must be between 0 and the booking amount ({booking.amount}).")
    await _apply(
        session,
        booking,
        action,
        to,
        role,
        principal.user_id,
        now,
        deps,
        reason=reason,
        refund_amount=refund_amount,
        result_reference=result_reference,
    )
    if action == "resolve":  # an admin's decision over money: on the audit log, whichever door it came through
        await audit.record(
            session,
            actor_user_id=principal.user_id,
            action="booking.resolve",
            target_type="booking",
            target_id=booking.id,
            before={"status": "disputed"},
            after={"status": booking.status, "refund_amount": booking.refund_amount},
            reason=reason,
        )
    return booking


async def system_act(session: AsyncSession, booking: Booking, action: str, deps: Deps, reason: str) -> bool:
    """A scheduled job's action; ignored if the booking has moved on (jobs are idempotent)."""
    try:
        to, allowed = target(booking.status, action)
    except Conflict:
        return False
    if "system" not in allowed:
        return False
    await _apply(session, booking, action, to, "system", None, _now(), deps, reason=reason)
    return True


async def _apply(
    session: AsyncSession,
    booking: Booking,
    action: str,
    to: str,
    role: str,
    user_id: uuid.UUID | None,
    now: datetime,
    deps: Deps,
    *,
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
    elif action in ("decline", "expire"):
        await deps.payments.on_released(session, m)
    elif action == "cancel":
        booking.cancelled_by = role
        paid = before in (BookingStatus.requested, BookingStatus.confirmed)
        percent = policy.refund_percent(booking.cancellation_policy, start=starts_at(booking), now=now, by=role)
        booking.refund_amount = policy.refund_amount(booking.amount, percent) if paid else 0
        if paid:
            await deps.payments.on_cancelled(session, m, booking.refund_amount)
        else:
            await deps.payments.on_released(session, m)
    elif action == "complete":
        booking.completed_at = now
        booking.result_reference = result_reference
        await enqueue(
            session, "bookings.settle_one", str(booking.id), delay_seconds=deps.settings.dispute_window_hours * 3600 + 1
        )
    elif action == "confirm":
        booking.settled_at = now
        await deps.payments.on_settled(session, m)
    elif action == "dispute":
        booking.dispute_reason = reason
    elif action == "resolve":
        if refund_amount is None:
            raise _field_error("refund_amount", "required to resolve a dispute.")
        booking.refund_amount = refund_amount
        booking.settled_at = now
        await deps.payments.on_resolved(session, m, refund_amount)
    await session.flush()
    repo = BookingRepository(session)
    await _record(repo, booking.id, before, to, action, role, user_id, reason)
    asset = await _asset_of(session, booking)
    await _announce(session, booking, asset, f"booking.{to}", reason=reason)
    if to not in BLOCKING:
        await listings.refresh_next_free(session, asset, deps.listings_config, BookingsBlockedTime())


async def _asset_of(session: AsyncSession, booking: Booking) -> Asset:
    asset = await ListingsRepository(session).get_asset(booking.asset_id)
    if asset is None:  # assets.id is referenced ON DELETE RESTRICT: a booking's asset cannot vanish
        raise NotFound("Listing not found.")
    return asset


async def release(
    session: AsyncSession,
    *,
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
    booking, role = await get_for(session, principal, booking_id, for_update=True)
    if role in ("buyer", "supplier") and not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
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
    status = booking.status
    await _record(BookingRepository(session), booking.id, status, status, "release", role, principal.user_id, reason)
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
    await _announce(session, booking, asset, "booking.released", reason=reason)
    await listings.refresh_next_free(session, asset, deps.listings_config, BookingsBlockedTime())
    return booking


async def _announce(
    session: AsyncSession, booking: Booking, asset: Asset, event: str, *, notify: bool = True, reason: str | None = None
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
        "reason": reason or "",
        "dispute_hours": 72,
    }
    if notify:
        recipients = {
            "booking.requested": [booking.supplier_org_id],
            "booking.confirmed": [booking.buyer_org_id],
            "booking.declined": [booking.buyer_org_id],
            "booking.expired": [booking.buyer_org_id, booking.supplier_org_id],
            "booking.cancelled": [booking.buyer_org_id, booking.supplier_org_id],
            "booking.in_progress": [booking.buyer_org_id],
            "booking.completed": [booking.buyer_org_id],
            "booking.settled": [booking.buyer_org_id, booking.supplier_org_id],
            "booking.disputed": [booking.supplier_org_id],
            "booking.resolved": [booking.buyer_org_id, booking.supplier_org_id],
            "booking.released": [booking.buyer_org_id],
        }.get(event, [])
        for org_id in recipients:
            await notify_org(session, org_id, event, data)
    await fan_out(
        session,
        [booking.buyer_org_id, booking.supplier_org_id],
        event,
        {
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


def refund_if_cancelled_now(booking: Booking, role: str) -> int | None:
    """What cancelling now would refund (shown before the person confirms)."""
    try:
        target(booking.status, "cancel")
    except Conflict:
        return None
    if booking.status == BookingStatus.held:
        return 0
    percent = policy.refund_percent(booking.cancellation_policy, start=starts_at(booking), now=_now(), by=role)
    return policy.refund_amount(booking.amount, percent)


# -- reviews and scorecards ------------------------------------------------------------------------


async def review(session: AsyncSession, principal: Principal, booking_id: uuid.UUID, data: ReviewIn) -> Review:
    booking, role = await get_for(session, principal, booking_id)
    if role not in ("buyer", "supplier"):
        raise Forbidden("Only the buyer and the supplier review a booking.")
    if booking.status not in (BookingStatus.settled, BookingStatus.resolved):
        raise Conflict("Reviews open once the booking is settled.", extra={"current_status": booking.status})
    author, subject = (
        (booking.buyer_org_id, booking.supplier_org_id)
        if role == "buyer"
        else (booking.supplier_org_id, booking.buyer_org_id)
    )
    try:
        async with session.begin_nested():
            return await BookingRepository(session).add_review(
                Review(
                    booking_id=booking.id,
                    author_org_id=author,
                    subject_org_id=subject,
                    author_user_id=principal.user_id,
                    rating=data.rating,
                    comment=data.comment,
                )
            )
    except IntegrityError:
        raise Conflict("You already reviewed this booking.") from None


def supplier_scorecard(stats: dict[str, Any]) -> dict[str, Any]:
    completed, decided = stats["completed"], stats["decided"]
    return {
        "completed_bookings": completed,
        "on_time_rate": round(stats["on_time"] / completed, 4) if completed else None,
        "acceptance_rate": round(1 - stats["declined"] / decided, 4) if decided else None,
        "cancellation_rate": round(stats["cancelled_by_supplier"] / decided, 4) if decided else None,
        "average_rating": round(stats["rating_sum"] / stats["rating_count"], 2) if stats["rating_count"] else None,
        "ratings": stats["rating_count"],
    }


async def scorecard(session: AsyncSession, org_id: uuid.UUID) -> dict[str, Any]:
    repo = BookingRepository(session)
    supplier = (await repo.supplier_stats([org_id]))[org_id]
    buyer = await repo.buyer_stats(org_id)
    total = buyer["total"]
    ratings = await session.execute(
        sa.select(sa.func.count(), sa.func.avg(col(Review.rating)))
        .join(Booking, col(Booking.id) == col(Review.booking_id))
        .where(col(Review.subject_org_id) == org_id, col(Booking.buyer_org_id) == org_id)
    )
    count, avg = ratings.one()
    return {
        "org_id": org_id,
        "as_supplier": supplier_scorecard(supplier),
        "as_buyer": {
            "bookings": total,
            "cancellation_rate": round(buyer["cancelled_by_buyer"] / total, 4) if total else None,
            "payment_punctuality": round(buyer["paid"] / (buyer["paid"] + buyer["expired_unpaid"]), 4)
            if buyer["paid"] + buyer["expired_unpaid"]
            else None,
            "average_rating": round(float(avg), 2) if avg is not None else None,
            "ratings": int(count),
        },
    }
