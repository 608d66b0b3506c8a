"""Quotes and counter-offers (issue #15, item 3): a supplier quotes a listing on a buyer's request, the two
parties counter in turn, and the party that did not make the latest version accepts (a booking is placed at the
agreed terms through the ordinary booking rules), declines or lets it expire. States: see ``models``.

Who may do what (``role`` is the caller's side of the quote):

* counter, accept, decline: the party that did NOT make the latest version;
* withdraw: the party that made the latest version, or the supplier at any time while the quote is open;
* anyone else: 404, like a quote that does not exist.

Writes need the ``bookings:write`` scope, reads ``bookings:read``. Services never commit; every state change
is audited and notified to the other party in the caller's transaction, and each new version enqueues the
expiry timer ``quotes.expire_one`` at its ``valid_until`` (the sweep ``quotes.sweep`` catches lost timers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset, AssetKind, AssetStatus
from marketplace.bookings import service as bookings
from marketplace.bookings.models import Booking, BookingEvent
from marketplace.bookings.placement import AgreedTerms
from marketplace.bookings.schemas import BookingCreate
from marketplace.core import audit
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.notifications.service import notify_org
from marketplace.quotes import invitations
from marketplace.quotes import notices as _notices  # noqa: F401  (registers the notification texts)
from marketplace.quotes.models import OPEN, Quote, QuoteStatus, QuoteVersion
from marketplace.quotes.repository import QuoteRepository
from marketplace.quotes.schemas import CounterIn, QuoteCreate, Terms
from marketplace.requests.models import BuyerRequest, RequestStatus
from marketplace.requests.repository import RequestRepository
from payments.money import plain as money_text

WRITE = "bookings:write"
READ = "bookings:read"


class QuoteNotFound(NotFound):
    """Quote not found."""


class RequestNotFound(NotFound):
    """Request not found."""


class QuoteNotOpen(Conflict):
    """The quote is no longer open."""

    code = "quote_not_open"


class NotYourTurn(Conflict):
    """The other party has to answer the latest offer first."""

    code = "not_your_turn"


class QuoteExists(Conflict):
    """You already have an open quote for this request and listing; counter or withdraw it instead."""

    code = "quote_exists"


@dataclass
class QuoteView:
    quote: Quote
    versions: list[QuoteVersion]
    role: str | None  # buyer | supplier | None (a platform admin)


def now() -> datetime:
    return datetime.now(UTC)


# -- reads ---------------------------------------------------------------------------------------------------


async def list_for_request(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID) -> list[QuoteView]:
    """The buyer (and a platform admin) sees every quote on its request; a supplier only its own; anyone
    else, a supplier without a quote included, gets 404."""
    request = await RequestRepository(session).get(request_id)
    if request is None:
        raise RequestNotFound()
    repo = QuoteRepository(session)
    role: str | None
    if principal.is_platform_admin or principal.is_member(request.buyer_org_id):
        role = "buyer" if principal.is_member(request.buyer_org_id) else None
        quotes = await repo.for_request(request_id, None)
    else:
        role = "supplier"
        quotes = await repo.for_request(request_id, sorted(principal.org_ids))
        if not quotes:
            raise RequestNotFound()
    if not principal.has_scope(READ):
        raise Forbidden(f"This API key lacks the '{READ}' scope.")
    versions = await repo.versions([q.id for q in quotes])
    return [QuoteView(q, versions[q.id], role) for q in quotes]


async def get_for(session: AsyncSession, *, principal: Principal, quote_id: uuid.UUID) -> QuoteView:
    """One quote with its versions, for one of its two parties (or a platform admin); 404 for anyone else."""
    repo = QuoteRepository(session)
    quote = await repo.get(quote_id)
    if quote is None:
        raise QuoteNotFound()
    if principal.is_member(quote.buyer_org_id):
        role: str | None = "buyer"
    elif principal.is_member(quote.supplier_org_id):
        role = "supplier"
    elif principal.is_platform_admin:
        role = None
    else:
        raise QuoteNotFound()
    if not principal.has_scope(READ):
        raise Forbidden(f"This API key lacks the '{READ}' scope.")
    return QuoteView(quote, (await repo.versions([quote.id]))[quote.id], role)


# -- writes --------------------------------------------------------------------------------------------------


async def submit(session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, data: QuoteCreate) -> QuoteView:
    """A supplier's first offer on a request (version 1, status ``submitted``)."""
    if not principal.has_scope(WRITE):
        raise Forbidden(f"This API key lacks the '{WRITE}' scope.")
    principal.require_verified_email()
    request = await RequestRepository(session).get(request_id)
    if request is None:
        raise RequestNotFound()
    repo = QuoteRepository(session)
    found = await repo.quotable_asset(data.asset_id)
    if found is None or not principal.can_act_for(found.asset.org_id, WRITE):
        raise NotFound("Listing not found.")
    asset = found.asset
    if asset.status != AssetStatus.published or not found.org_verified or "supplier" not in found.org_roles:
        raise Unprocessable("asset_id: quote with a published listing of a verified supplier organisation.")
    if asset.org_id == request.buyer_org_id:
        raise RequestNotFound()
    if not await invitations.may_quote(session, request=request, supplier_org_id=asset.org_id, asset=asset):
        raise RequestNotFound()
    if request.status != RequestStatus.open:
        raise QuoteNotOpen("The request is no longer open.")
    if asset.kind != request.kind:
        raise Unprocessable(f"asset_id: the request asks for {_kind_text(request.kind)}; this listing is not.")
    if data.currency.upper() != asset.currency:
        raise Unprocessable(f"currency: this listing is priced in {asset.currency}.")
    at = now()
    _check_terms(request, kind=asset.kind, terms=data, valid_until=data.valid_until, at=at)
    quote = Quote(
        request_id=request.id,
        buyer_org_id=request.buyer_org_id,
        supplier_org_id=asset.org_id,
        asset_id=asset.id,
        kind=asset.kind,
        currency=asset.currency,
        status=QuoteStatus.submitted,
        version=1,
        latest_by="supplier",
        valid_until=data.valid_until,
        created_by=principal.user_id,
    )
    version = _version(quote, terms=data, party="supplier", principal=principal, valid_until=data.valid_until)
    if not await repo.insert(quote, version):
        raise QuoteExists()
    await invitations.on_quoted(session, request_id=request.id, supplier_org_id=asset.org_id)
    await _record(session, principal, quote, action="quote.submitted", before=None, version=version)
    await _announce(session, quote, version, asset=asset, kind="quote.submitted", to="buyer")
    await _schedule_expiry(session, quote, at)
    return QuoteView(quote, [version], "supplier")


async def counter(session: AsyncSession, *, principal: Principal, quote_id: uuid.UUID, data: CounterIn) -> QuoteView:
    """The next version by the party that did not make the latest one; the status becomes ``countered``."""
    repo = QuoteRepository(session)
    quote, roles = await _load(session, principal, quote_id)
    role = _answering(quote, roles)
    request = await RequestRepository(session).get(quote.request_id)
    if request is None or request.status != RequestStatus.open:
        raise QuoteNotOpen("The request is no longer open.")
    previous = await repo.latest_version(quote)
    valid_until = data.valid_until or previous.valid_until
    at = now()
    _check_terms(request, kind=quote.kind, terms=data, valid_until=valid_until, at=at)
    before = quote.status
    quote.version += 1
    version = _version(quote, terms=data, party=role, principal=principal, valid_until=valid_until)
    quote.status, quote.latest_by, quote.valid_until, quote.updated_at = QuoteStatus.countered, role, valid_until, at
    await repo.add_version(version)
    await _record(session, principal, quote, action="quote.countered", before=before, version=version)
    await _announce(session, quote, version, asset=await _asset(repo, quote), kind="quote.countered", to=_other(role))
    await _schedule_expiry(session, quote, at)
    return QuoteView(quote, (await repo.versions([quote.id]))[quote.id], role)


async def accept(
    session: AsyncSession,
    *,
    principal: Principal,
    quote_id: uuid.UUID,
    deps: bookings.Deps,
    voucher_id: uuid.UUID | None = None,
) -> tuple[Booking, list[BookingEvent], str]:
    """Accept the latest version: place the booking at its terms through the ordinary booking rules (a taken
    slot answers 409 and, the transaction rolling back, the quote stays open), mark the request booked, close
    the request's other open quotes. Returns the booking, its timeline and the caller's role."""
    repo = QuoteRepository(session)
    quote, _roles = await _load(session, principal, quote_id, lock=False)
    # Lock order: the request, then its quotes (two acceptances on one request queue on the request row).
    await RequestRepository(session).get(quote.request_id, for_update=True)
    quote, roles = await _load(session, principal, quote_id)
    role = _answering(quote, roles)
    latest = await repo.latest_version(quote)
    data = BookingCreate(
        asset_id=quote.asset_id,
        start=latest.start_at,
        end=latest.end_at,
        drop_off_date=latest.drop_off_date,
        samples=latest.samples,
        request_id=quote.request_id,
        voucher_id=voucher_id,  # the buyer's innovation voucher (only the buyer may spend it)
    )
    agreed = AgreedTerms(
        buyer_org_id=quote.buyer_org_id, amount=latest.amount, quote_id=quote.id, milestones=latest.milestones
    )
    booking, events = await bookings.place(session=session, principal=principal, data=data, deps=deps, agreed=agreed)
    before, quote.status, quote.updated_at = quote.status, QuoteStatus.accepted, now()
    await _record(session, principal, quote, action="quote.accepted", before=before, booking_id=booking.id)
    asset = await _asset(repo, quote)
    await _announce(session, quote, latest, asset=asset, kind="quote.accepted", to=_other(role))
    for other in await repo.other_open(quote.request_id, quote.id):
        before, other.status, other.updated_at = other.status, QuoteStatus.closed, now()
        await _record(session, principal, other, action="quote.closed", before=before, accepted=quote.id)
        other_latest = await repo.latest_version(other)
        await _announce(
            session, other, other_latest, asset=await _asset(repo, other), kind="quote.closed", to="supplier"
        )
    await session.flush()
    return booking, events, role


async def decline(session: AsyncSession, *, principal: Principal, quote_id: uuid.UUID, reason: str) -> QuoteView:
    repo = QuoteRepository(session)
    quote, roles = await _load(session, principal, quote_id)
    role = _answering(quote, roles)
    before = quote.status
    quote.status, quote.decline_reason, quote.updated_at = QuoteStatus.declined, reason, now()
    latest = await repo.latest_version(quote)
    await _record(session, principal, quote, action="quote.declined", before=before, reason=reason)
    await _announce(
        session, quote, latest, asset=await _asset(repo, quote), kind="quote.declined", to=_other(role), reason=reason
    )
    return QuoteView(quote, (await repo.versions([quote.id]))[quote.id], role)


async def withdraw(session: AsyncSession, *, principal: Principal, quote_id: uuid.UUID) -> QuoteView:
    """By the party that made the latest version, or by the supplier at any time while the quote is open."""
    repo = QuoteRepository(session)
    quote, roles = await _load(session, principal, quote_id)
    if quote.latest_by in roles:
        role = quote.latest_by
    elif "supplier" in roles:
        role = "supplier"
    else:
        raise NotYourTurn("Only the party that made the latest offer, or the supplier, may withdraw the quote.")
    before = quote.status
    quote.status, quote.updated_at = QuoteStatus.withdrawn, now()
    latest = await repo.latest_version(quote)
    await _record(session, principal, quote, action="quote.withdrawn", before=before)
    await _announce(session, quote, latest, asset=await _asset(repo, quote), kind="quote.withdrawn", to=_other(role))
    return QuoteView(quote, (await repo.versions([quote.id]))[quote.id], role)


# -- timers --------------------------------------------------------------------------------------------------


async def expire_one(session: AsyncSession, quote_id: uuid.UUID) -> bool:
    """Expire the quote if it is open and its latest version's validity passed (idempotent)."""
    quote = await QuoteRepository(session).get(quote_id, for_update=True)
    if quote is None:
        return False
    return await _expire(session, quote)


async def sweep(session: AsyncSession) -> int:
    """Expire every open quote past its validity (the beat job; catches lost timers)."""
    count = 0
    for quote in await QuoteRepository(session).due(now()):
        count += await _expire(session, quote)
    return count


async def _expire(session: AsyncSession, quote: Quote) -> bool:
    if quote.status not in OPEN or quote.valid_until > now():
        return False
    repo = QuoteRepository(session)
    before, quote.status, quote.updated_at = quote.status, QuoteStatus.expired, now()
    latest = await repo.latest_version(quote)
    await audit.record(
        session,
        actor_user_id=None,
        action="quote.expired",
        target_type="quote",
        target_id=quote.id,
        before={"status": before},
        after={"status": quote.status, "version": quote.version},
        reason="valid_until passed",
    )
    asset = await _asset(repo, quote)
    for side in ("buyer", "supplier"):
        await _announce(session, quote, latest, asset=asset, kind="quote.expired", to=side)
    await session.flush()
    return True


# -- helpers -------------------------------------------------------------------------------------------------


async def _load(
    session: AsyncSession, principal: Principal, quote_id: uuid.UUID, *, lock: bool = True
) -> tuple[Quote, set[str]]:
    """The quote with the caller's sides of it (404 if none); open and still valid, else 409."""
    quote = await QuoteRepository(session).get(quote_id, for_update=lock)
    if quote is None:
        raise QuoteNotFound()
    roles = {
        side
        for side, org in (("buyer", quote.buyer_org_id), ("supplier", quote.supplier_org_id))
        if principal.is_member(org)
    }
    if not roles:
        raise QuoteNotFound()
    if not principal.has_scope(WRITE):
        raise Forbidden(f"This API key lacks the '{WRITE}' scope.")
    if quote.status not in OPEN:
        raise QuoteNotOpen(f"The quote is {quote.status}.", extra={"current_status": quote.status})
    if quote.valid_until <= now():
        raise QuoteNotOpen("The quote has expired.", extra={"current_status": "expired"})
    return quote, roles


def _answering(quote: Quote, roles: set[str]) -> str:
    """The caller's side that may answer the latest version (the side that did not make it)."""
    answering = roles - {quote.latest_by}
    if not answering:
        raise NotYourTurn()
    return answering.pop()


def _other(role: str) -> str:
    return "supplier" if role == "buyer" else "buyer"


def _kind_text(kind: str) -> str:
    return "machine time" if kind == AssetKind.machine else "a lab service"


def _check_terms(request: BuyerRequest, *, kind: str, terms: Terms, valid_until: datetime, at: datetime) -> None:
    """The offer fits the listing's kind, lies inside the request's window, and is valid for a while."""
    if kind == AssetKind.machine and terms.start is None:
        raise Unprocessable("start, end: this listing is machine time; give start and end, not drop_off_date.")
    if kind != AssetKind.machine and terms.drop_off_date is None:
        raise Unprocessable("drop_off_date, samples: this listing is a lab service; give drop_off_date and samples.")
    if valid_until <= at:
        raise Unprocessable("valid_until: must be in the future.")
    if valid_until > request.deadline:
        raise Unprocessable("valid_until: must not be after the request's deadline.")
    if terms.start is not None and terms.end is not None:
        if terms.start < at:
            raise Unprocessable("start: must be in the future.")
        if terms.start < request.earliest_start or terms.end > request.deadline:
            raise Unprocessable("start, end: must lie inside the request's window (earliest_start to deadline).")
    if terms.drop_off_date is not None:
        first, last = request.earliest_start.astimezone(UTC).date(), request.deadline.astimezone(UTC).date()
        if not first <= terms.drop_off_date <= last:
            raise Unprocessable("drop_off_date: must lie inside the request's window (earliest_start to deadline).")


def _version(quote: Quote, *, terms: Terms, party: str, principal: Principal, valid_until: datetime) -> QuoteVersion:
    return QuoteVersion(
        quote_id=quote.id,
        number=quote.version,
        party=party,
        author_user_id=principal.user_id,
        amount=terms.amount,
        start_at=terms.start.astimezone(UTC) if terms.start else None,
        end_at=terms.end.astimezone(UTC) if terms.end else None,
        drop_off_date=terms.drop_off_date,
        samples=terms.samples,
        valid_until=valid_until,
        note=terms.note,
        milestones=[m.model_dump() for m in terms.milestones] if terms.milestones else None,
    )


async def _schedule_expiry(session: AsyncSession, quote: Quote, at: datetime) -> None:
    delay = max((quote.valid_until - at).total_seconds(), 0) + 1
    await enqueue(session, "quotes.expire_one", str(quote.id), delay_seconds=delay)


async def _asset(repo: QuoteRepository, quote: Quote) -> Asset | None:
    found = await repo.quotable_asset(quote.asset_id)
    return found.asset if found else None


async def _record(
    session: AsyncSession, principal: Principal, quote: Quote, *, action: str, before: str | None, **extra: Any
) -> None:
    version = extra.pop("version", None)
    after: dict[str, Any] = {"status": quote.status, "version": quote.version, "latest_by": quote.latest_by}
    if version is not None:
        after["amount"] = version.amount
    after.update({k: str(v) if isinstance(v, uuid.UUID) else v for k, v in extra.items() if k != "reason"})
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action=action,
        target_type="quote",
        target_id=quote.id,
        before={"status": before} if before else None,
        after=after,
        reason=extra.get("reason"),
    )


async def _announce(
    session: AsyncSession,
    quote: Quote,
    version: QuoteVersion,
    *,
    asset: Asset | None,
    kind: str,
    to: str,
    reason: str | None = None,
) -> None:
    """Notify one side of the quote. The texts never name the buyer (a supplier may not know it yet)."""
    if version.start_at is not None and version.end_at is not None:
        when = f"{version.start_at:%Y-%m-%d %H:%M} – {version.end_at:%Y-%m-%d %H:%M} UTC"
    else:
        when = f"{version.drop_off_date} × {version.samples}"  # drop-off day × samples
    data = {
        "quote_id": str(quote.id),
        "request_id": str(quote.request_id),
        "title": asset.title if asset else "",
        "amount": money_text(version.amount, quote.currency),
        "when": when,
        "valid_until": f"{quote.valid_until:%Y-%m-%d %H:%M} UTC",
        "reason": reason or "",
    }
    await notify_org(session, quote.buyer_org_id if to == "buyer" else quote.supplier_org_id, kind=kind, data=data)
