"""Placing a booking: the reads and checks that need no lock, the payment gateway's external call, then the
protected write (the machine insert the exclusion constraint arbitrates, or the lab-day lock, count and
insert). See ``marketplace.bookings.service`` for the rules against double booking."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings import service as listings
from listings.models import Asset, AssetKind, AssetStatus, Site
from listings.quality_documents import NotOffered, priced
from listings.repository import ListingsRepository
from marketplace.bookings import hooks, instalments, policy
from marketplace.bookings.actions import announce
from marketplace.bookings.models import Booking, BookingEvent, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.rules import (
    BookingsBlockedTime,
    CapacityUnavailable,
    Deps,
    NotBookable,
    OwnAsset,
    SlotUnavailable,
    TryAgain,
    field_error,
    money,
    record,
)
from marketplace.bookings.rules import now as _now
from marketplace.bookings.schemas import BookingCreate
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.inspection.quality_repository import QualityRepository
from marketplace.requests import service as requests_service
from payments.port import BookingMoney


def _buyer_org_id(requested: uuid.UUID | None, buyers: list[uuid.UUID]) -> uuid.UUID:
    """``buyers``: the candidate organisations (the requested one, else all of the caller's) that the caller
    may book for and that are buyers."""
    if requested and not buyers:
        raise NotFound("Organisation not found.")
    if len(buyers) != 1:
        raise Unprocessable("buyer_org_id: say which of your buyer organisations books (or you have none).")
    return buyers[0]


@dataclass(frozen=True)
class AgreedTerms:
    """Terms both parties agreed in a quote (marketplace/quotes): who buys, the total price, which quote."""

    buyer_org_id: uuid.UUID
    amount: int
    quote_id: uuid.UUID
    # The accepted version's payment milestones (issue #18): the booking's schedule instead of a deposit.
    milestones: list[dict[str, Any]] | None = None


async def create(*, session: AsyncSession, principal: Principal, data: BookingCreate, deps: Deps) -> Booking:
    booking, _timeline = await place(session=session, principal=principal, data=data, deps=deps)
    return booking


async def place(
    *,
    session: AsyncSession,
    principal: Principal,
    data: BookingCreate,
    deps: Deps,
    agreed: AgreedTerms | None = None,
) -> tuple[Booking, list[BookingEvent]]:
    """Place a booking (held); returns it with its timeline (its single ``book`` event), so that the
    response needs no query.

    Order: every read and check that needs no lock (listing, open hours or open days, price, due date), then
    the payment gateway's external call (``before_booked``), then the protected write (the machine insert the
    exclusion constraint arbitrates, or the lab-day lock, count and insert), then the rest of the unit of work.
    If anything fails after ``before_booked``, ``booking_abandoned`` undoes the external effect.

    ``agreed`` (an accepted quote): the buyer is ``agreed.buyer_org_id`` (the caller may be the supplier
    accepting the buyer's counter-offer, so the caller's own buyer organisations are not consulted) and the
    amount is the agreed one; every other rule (published, open hours, grid, horizon, the exclusion constraint
    or the lab-day capacity) applies unchanged."""
    if not principal.has_scope("bookings:write"):
        raise Forbidden("This API key lacks the 'bookings:write' scope.")
    principal.require_verified_email()
    now = _now()
    repo = BookingRepository(session)
    if agreed is not None:
        allowed = [agreed.buyer_org_id]
    else:
        candidates = [data.buyer_org_id] if data.buyer_org_id else sorted(principal.org_ids)
        allowed = [org_id for org_id in candidates if principal.can_act_for(org_id, "bookings:write")]
    found = await repo.bookable(data.asset_id, allowed)
    if found is None or found.asset.status != AssetStatus.published or not found.supplier_verified:
        raise NotFound("Listing not found.")
    asset, site = found.asset, found.site
    buyer_org_id = agreed.buyer_org_id if agreed else _buyer_org_id(data.buyer_org_id, found.buyer_org_ids)
    if buyer_org_id == asset.org_id:
        raise OwnAsset()
    if data.voucher_id is not None and not principal.can_act_for(buyer_org_id, "bookings:write"):
        # A supplier accepting the buyer's counter-offer cannot spend the buyer's voucher (its yearly cap).
        raise field_error("voucher_id", "only the buyer may pay with its voucher")
    booking = Booking(
        # Given rather than defaulted: pydantic inspects a default factory's signature on every call.
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        asset_id=asset.id,
        kind=asset.kind,
        supplier_org_id=asset.org_id,
        buyer_org_id=buyer_org_id,
        created_by=principal.user_id,
        request_id=data.request_id,
        quote_id=agreed.quote_id if agreed else None,
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
            raise _wrong_kind(data, needed=("start", "end"), foreign=("drop_off_date", "samples"), what="machine time")
        await _prepare_machine(
            session=session, booking=booking, asset=asset, site=site, start=data.start, end=data.end, now=now, deps=deps
        )
    else:
        if data.drop_off_date is None or data.samples is None or data.start is not None or data.end is not None:
            raise _wrong_kind(data, needed=("drop_off_date", "samples"), foreign=("start", "end"), what="a lab service")
        await _prepare_lab(
            session=session,
            booking=booking,
            asset=asset,
            site=site,
            day=data.drop_off_date,
            samples=data.samples,
            now=now,
            deps=deps,
        )
    if agreed is not None:  # the quoted total; unit_price and setup_fee stay for information
        booking.amount = agreed.amount
    documents = _quality_documents(asset, data.quality_documents) if data.quality_documents else []
    booking.amount += sum(price for _, price in documents)
    if deps.payments.method == "invoice":  # a card authorisation holds the whole amount: no schedule
        booking.instalments = instalments.schedule(
            booking.amount, deposit_percent=asset.deposit_percent, milestones=agreed.milestones if agreed else None
        )
    paid = _money(booking, asset, documents)
    await deps.payments.before_booked(session, paid)
    try:
        if asset.kind == AssetKind.machine:
            expired = await _insert_machine(repo, booking, now)
        else:
            expired = await _insert_lab(repo, booking, capacity=asset.daily_sample_capacity or 0, now=now, deps=deps)
        if documents:  # no statement at all when none is ordered (the hot path, issue #19)
            await QualityRepository(session).add_ordered(booking.id, documents)
        if data.voucher_id is not None:  # under the programme's lock: budget and yearly cap never overspent
            paid = await _redeem(session, booking, voucher_id=data.voucher_id, asset=asset, site=site, paid=paid)
        if data.request_id is not None:
            await requests_service.mark_booked(session, request_id=data.request_id, buyer_org_id=buyer_org_id)
        for stale_id in expired:
            await record(
                repo,
                booking_id=stale_id,
                before=None,
                after=BookingStatus.expired,
                action="expire",
                actor_kind="system",
                actor_user_id=None,
                reason="deadline passed",
            )
            # Expired in bulk by the conflicting insert: release its invoice or card hold like the timer would.
            stale = await repo.get(stale_id)
            if stale is not None:
                await deps.payments.on_released(session, money(stale))
                await hooks.after_move(session, stale, action="expire", role="system")
        booked = await record(
            repo,
            booking_id=booking.id,
            before=None,
            after=BookingStatus.held,
            action="book",
            # The supplier accepting a buyer's counter-offer places the booking for the buyer.
            actor_kind="supplier" if agreed and not principal.is_member(buyer_org_id) else "buyer",
            actor_user_id=principal.user_id,
            reason=None,
        )
        await enqueue(
            session, "bookings.expire_one", str(booking.id), delay_seconds=deps.settings.hold_minutes * 60 + 1
        )
        await announce(session, booking, asset, event="booking.held", notify=False)
        if _takes_next_free(asset, booking):
            await listings.refresh_next_free(session, asset, config=deps.listings_config, blocked=BookingsBlockedTime())
        # Last: the invoice (and its ledger journal) is written here; its gap-free number is drawn from the
        # counter row by the transaction's final statement, at commit (see payments.repository). A card
        # gateway only stores the PaymentIntent that before_booked created.
        await deps.payments.on_booked(session, paid)
    except Exception:
        await deps.payments.booking_abandoned(session, paid)
        raise
    return booking, [booked]


async def _redeem(
    session: AsyncSession, booking: Booking, *, voucher_id: uuid.UUID, asset: Asset, site: Site, paid: BookingMoney
) -> BookingMoney:
    """Redeem the buyer's voucher on the booking just inserted (the voucher room decides the share) and give the
    invoice the split: the programme's share when it pays in advance."""
    share, payer = await hooks.redeem_voucher(session, booking, voucher_id=voucher_id, asset=asset, site=site)
    booking.voucher_id, booking.voucher_share, booking.voucher_payer_org_id = voucher_id, share, payer
    await session.flush()
    return replace(paid, subsidy=share if payer is not None else 0, subsidy_payer_org_id=payer)


def _quality_documents(asset: Asset, kinds: Sequence[str]) -> list[tuple[str, int]]:
    """The quality documents ordered with machine time, at the listing's prices (snapshotted with the booking)."""
    if asset.kind != AssetKind.machine:
        raise field_error("quality_documents", "not allowed: quality documents are sold with machine time only")
    try:
        return priced(asset.quality_documents, kinds)
    except NotOffered as exc:
        raise field_error("quality_documents", f"this listing does not offer {exc.kind!r}") from None


def _money(booking: Booking, asset: Asset, documents: list[tuple[str, int]]) -> BookingMoney:
    """The booking as the payment gateway sees it, with the ordered documents on the invoice's terms."""
    paid = money(booking, asset)
    if not documents or paid.terms is None:
        return paid
    return replace(paid, terms=replace(paid.terms, quality_documents=tuple(documents)))


def _wrong_kind(data: BookingCreate, *, needed: tuple[str, str], foreign: tuple[str, str], what: str) -> Unprocessable:
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
    *,
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
        listings.weekly_windows(asset),
        site.timezone,
        exceptions=listings.exception_ranges(excs),
        blocked=[],
        start=blocked_from,
        end=blocked_until,
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
    *,
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
    open_days = set(listings._lab_open_days(asset, site, excs=excs, first=day, last=last))
    if day not in open_days:
        raise NotBookable("drop_off_date: the lab does not accept samples that day.")
    closed = {d for d in _days(day, last) if d not in open_days}
    booking.drop_off_date, booking.samples = day, samples
    booking.due_date = av.working_days_after(day, asset.turnaround_days or 0, closed)
    booking.unit_price = asset.price_per_sample or 0
    booking.amount = policy.lab_price(booking.unit_price, samples)


async def _insert_lab(
    repo: BookingRepository, booking: Booking, *, capacity: int, now: datetime, deps: Deps
) -> list[uuid.UUID]:
    """Count the day's samples and insert, under the lab-day lock (capacity is daily intake: every booking
    in a blocking state counts, completed ones included).

    The lock is taken inside a savepoint that also holds the count and the insert: a refusal (no capacity)
    rolls the savepoint back, which releases the advisory lock at once, so undoing the payment gateway's
    external call afterwards never runs under the lock. On success the savepoint is released and the lock
    stays with the transaction until commit. Each try waits at most 3 s for the lock, three tries, so a
    pile-up answers 409 ``try_again`` instead of hanging."""
    if not deps.settings.lab_capacity_lock:  # only the race tests' control turns it off
        return await _count_and_insert_lab(repo, booking, capacity=capacity, now=now)
    for _ in range(3):
        try:
            async with repo.session.begin_nested():
                await repo.set_lock_timeout("3s")
                await repo.lock_lab_day(booking.asset_id, _lab_day(booking))
                await repo.set_lock_timeout("0")
                return await _count_and_insert_lab(repo, booking, capacity=capacity, now=now)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":
                raise
    raise TryAgain()


def _lab_day(booking: Booking) -> date:
    if booking.drop_off_date is None:
        raise NotBookable("drop_off_date: required for a lab service.")
    return booking.drop_off_date


async def _count_and_insert_lab(
    repo: BookingRepository, booking: Booking, *, capacity: int, now: datetime
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
