from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from sqlmodel import col

from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal, CurrentUser, IdempotencyDep, OptionalIdempotencyDep
from marketplace.bookings import service
from marketplace.bookings.models import BLOCKING, Booking, BookingEvent
from marketplace.bookings.repository import BookingRepository
from marketplace.bookings.schemas import (
    BookingCreate,
    BookingOut,
    BookingPage,
    CalendarLink,
    CompleteIn,
    DeliveryOut,
    DisputeIn,
    EventOut,
    NotificationOut,
    NotificationPage,
    ReasonIn,
    ReleaseIn,
    ResolveIn,
    ReviewIn,
    ReviewOut,
    ScorecardOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
    WebhookWithDeliveries,
)
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest, NotFound, error_responses
from marketplace.core.pagination import CursorParam, LimitParam, decode_cursor, encode_cursor
from marketplace.core.security import purpose_key
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.core.text import Line
from marketplace.notifications import webhooks
from marketplace.notifications.models import Notification, WebhookDelivery, WebhookEndpoint

router = APIRouter(tags=["bookings"])


def deps(request: Request) -> service.Deps:
    built: service.Deps = request.app.state.booking_deps
    return built


async def booking_out(
    session: SessionDep,
    booking: Booking,
    role: str | None,
    *,
    timeline: bool = False,
    events: Sequence[BookingEvent] | None = None,
) -> BookingOut:
    """The booking as the API shows it. With ``timeline``, its events are loaded, unless the caller already
    has them (``events``: a booking just placed has exactly its ``book`` event)."""
    period = booking.period
    if timeline and events is None:
        events = await BookingRepository(session).events(booking.id)
    elif not timeline:
        events = None
    return BookingOut(
        **{k: getattr(booking, k) for k in BookingOut.model_fields if hasattr(booking, k) and k not in ("timeline",)},
        start=booking.start_at,
        end=booking.end_at,
        blocked_from=period.lower if period is not None else None,
        blocked_until=period.upper if period is not None else None,
        your_role=role,
        refund_if_cancelled_now=service.refund_if_cancelled_now(booking, role)
        if role in ("buyer", "supplier")
        else None,
        timeline=[EventOut.model_validate(e) for e in events] if events is not None else None,
    )


@router.post(
    "/bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingOut,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    summary="Book machine time or lab samples (requires an Idempotency-Key)",
)
async def create_booking(
    data: BookingCreate, request: Request, session: SessionDep, principal: CurrentPrincipal, idem: IdempotencyDep
) -> JSONResponse:
    booking, events = await service.place(session, principal, data, deps(request))
    return await idem.respond(await booking_out(session, booking, "buyer", timeline=True, events=events), 201)


@router.get("/bookings", response_model=BookingPage, responses=error_responses(401, 403, 422))
async def list_bookings(
    session: SessionDep,
    principal: CurrentPrincipal,
    role: Literal["buyer", "supplier"] | None = None,
    status_filter: Annotated[Line | None, Query(alias="status", max_length=40)] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> BookingPage:
    after = None
    if (values := decode_cursor(cursor)) is not None:
        try:
            after = (datetime.fromisoformat(values[0]), uuid.UUID(values[1]))
        except (ValueError, IndexError, TypeError):
            raise BadRequest("Malformed cursor.") from None
    orgs = [o for o in principal.org_ids if principal.can_act_for(o, "bookings:read")]
    rows = await BookingRepository(session).list_for_org(orgs, role, status_filter, after, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].created_at.isoformat(), str(rows[-1].id)])
    items = [await booking_out(session, b, service.role_of(principal, b)) for b in rows]
    return BookingPage(items=items, next_cursor=next_cursor)


@router.get(
    "/bookings/{booking_id}",
    response_model=BookingOut,
    responses=error_responses(401, 404, 422),
    summary="A booking with its timeline",
)
async def get_booking(booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> BookingOut:
    booking, role = await service.get_for(session, principal, booking_id)
    return await booking_out(session, booking, role, timeline=True)


_ACTION_ERRORS = error_responses(401, 403, 404, 409, 422)


async def _act(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    booking_id: uuid.UUID,
    action: str,
    idem: OptionalIdempotencyDep,
    *,
    reason: str | None = None,
    result_reference: str | None = None,
) -> BookingOut | JSONResponse:
    booking = await service.act(
        session=session,
        principal=principal,
        booking_id=booking_id,
        action=action,
        deps=deps(request),
        reason=reason,
        result_reference=result_reference,
    )
    out = await booking_out(session, booking, service.role_of(principal, booking), timeline=True)
    return await idem.respond(out) if idem else out


@router.post(
    "/bookings/{booking_id}/payment/accept-terms",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Buyer accepts the invoice terms: the held booking becomes a request to the supplier",
)
async def accept_terms(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "pay", idem)


@router.post("/bookings/{booking_id}/accept", response_model=BookingOut, responses=_ACTION_ERRORS)
async def accept(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "accept", idem)


@router.post("/bookings/{booking_id}/decline", response_model=BookingOut, responses=_ACTION_ERRORS)
async def decline(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
    data: ReasonIn | None = None,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "decline", idem, reason=data.reason if data else None)


@router.post(
    "/bookings/{booking_id}/cancel",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Cancel (buyer or supplier); the refund follows the snapshotted policy",
)
async def cancel(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
    data: ReasonIn | None = None,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "cancel", idem, reason=data.reason if data else None)


@router.post(
    "/bookings/{booking_id}/start",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Supplier check-in (from 24 hours before the start)",
)
async def start(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "start", idem)


@router.post(
    "/bookings/{booking_id}/complete",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Supplier marks the work completed (a reason is required before the booked start)",
)
async def complete(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
    data: CompleteIn | None = None,
) -> BookingOut | JSONResponse:
    return await _act(
        request,
        session,
        principal,
        booking_id,
        "complete",
        idem,
        result_reference=data.result_reference if data else None,
        reason=data.reason if data else None,
    )


@router.post(
    "/bookings/{booking_id}/release",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Supplier releases the machine time left after an early completion (audited, on the timeline)",
    description="Shortens the blocked period to the completion time (empties it when the work was completed "
    "before the period began), so the rest of the slot can be booked again. Completed, settled or resolved "
    "machine bookings only; the status does not change. A second release answers 409 `nothing_to_release`.",
)
async def release(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
    data: ReleaseIn | None = None,
) -> BookingOut | JSONResponse:
    booking = await service.release(
        session, principal=principal, booking_id=booking_id, deps=deps(request), reason=data.reason if data else None
    )
    out = await booking_out(session, booking, service.role_of(principal, booking), timeline=True)
    return await idem.respond(out) if idem else out


@router.post(
    "/bookings/{booking_id}/confirm",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    summary="Buyer confirms the work: the booking settles",
)
async def confirm(
    booking_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "confirm", idem)


@router.post("/bookings/{booking_id}/dispute", response_model=BookingOut, responses=_ACTION_ERRORS)
async def dispute(
    booking_id: uuid.UUID,
    data: DisputeIn,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    return await _act(request, session, principal, booking_id, "dispute", idem, reason=data.reason)


@router.post(
    "/admin/bookings/{booking_id}/resolve",
    response_model=BookingOut,
    responses=_ACTION_ERRORS,
    tags=["admin"],
    summary="Resolve a dispute with a refund amount (audited)",
)
async def resolve(
    booking_id: uuid.UUID,
    data: ResolveIn,
    request: Request,
    session: SessionDep,
    admin: AdminPrincipal,
    idem: OptionalIdempotencyDep,
) -> BookingOut | JSONResponse:
    booking = await service.act(
        session=session,
        principal=admin,
        booking_id=booking_id,
        action="resolve",
        deps=deps(request),
        reason=data.note,
        refund_amount=data.refund_amount,
    )
    out = await booking_out(session, booking, "admin", timeline=True)
    return await idem.respond(out) if idem else out


@router.post(
    "/bookings/{booking_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def review(booking_id: uuid.UUID, data: ReviewIn, session: SessionDep, principal: CurrentUser) -> ReviewOut:
    return ReviewOut.model_validate(await service.review(session, principal, booking_id, data))


@router.get(
    "/orgs/{org_id}/scorecard",
    response_model=ScorecardOut,
    tags=["organisations"],
    responses=error_responses(404, 422),
    summary="Public reputation figures of an organisation",
)
async def scorecard(org_id: uuid.UUID, session: SessionDep) -> ScorecardOut:
    from marketplace.orgs.models import Organisation

    if await session.get(Organisation, org_id) is None:
        raise NotFound("Organisation not found.")
    return ScorecardOut(**await service.scorecard(session, org_id))


# -- notifications ---------------------------------------------------------------------------------


@router.get(
    "/notifications", response_model=NotificationPage, tags=["notifications"], responses=error_responses(401, 403, 422)
)
async def notifications(
    session: SessionDep,
    principal: CurrentUser,
    unread: bool = False,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> NotificationPage:
    stmt = sa.select(Notification).where(col(Notification.user_id) == principal.user_id)
    if unread:
        stmt = stmt.where(col(Notification.read_at).is_(None))
    if (values := decode_cursor(cursor)) is not None:
        try:
            after = (datetime.fromisoformat(values[0]), uuid.UUID(values[1]))
        except (ValueError, IndexError, TypeError):
            raise BadRequest("Malformed cursor.") from None
        stmt = stmt.where(sa.tuple_(col(Notification.created_at), col(Notification.id)) < sa.tuple_(*after))
    rows = list(
        (
            await session.execute(
                stmt.order_by(col(Notification.created_at).desc(), col(Notification.id).desc()).limit(limit + 1)
            )
        ).scalars()
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1].created_at.isoformat(), str(rows[-1].id)])
    return NotificationPage(items=[NotificationOut.model_validate(n) for n in rows], next_cursor=next_cursor)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    tags=["notifications"],
    responses=error_responses(401, 404, 422),
)
async def mark_read(notification_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> NotificationOut:
    note = await session.get(Notification, notification_id)
    if note is None or note.user_id != principal.user_id:
        raise NotFound("Notification not found.")
    note.read_at = note.read_at or utcnow()
    await session.flush()
    return NotificationOut.model_validate(note)


# -- webhooks --------------------------------------------------------------------------------------


def _require_owner(principal: CurrentPrincipal, org_id: uuid.UUID) -> None:
    webhooks.authorise(principal, org_id)


@router.post(
    "/orgs/{org_id}/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    tags=["webhooks"],
    responses=error_responses(401, 403, 404, 422),
)
async def create_webhook(
    org_id: uuid.UUID, data: WebhookCreate, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> WebhookCreated:
    endpoint = await webhooks.create_endpoint(
        session,
        principal=principal,
        org_id=org_id,
        url=str(data.url),
        events=list(data.events),
        settings=request.app.state.settings,
    )
    return WebhookCreated(**WebhookOut.model_validate(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/orgs/{org_id}/webhooks",
    response_model=WebhookPage,
    tags=["webhooks"],
    responses=error_responses(401, 403, 404, 422),
    summary="Endpoints with their recent delivery log",
)
async def list_webhooks(org_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> WebhookPage:
    _require_owner(principal, org_id)
    endpoints = (
        (
            await session.execute(
                sa.select(WebhookEndpoint)
                .where(col(WebhookEndpoint.org_id) == org_id)
                .order_by(col(WebhookEndpoint.created_at))
            )
        )
        .scalars()
        .all()
    )
    items = []
    for e in endpoints:
        deliveries = (
            (
                await session.execute(
                    sa.select(WebhookDelivery)
                    .where(col(WebhookDelivery.endpoint_id) == e.id)
                    .order_by(col(WebhookDelivery.created_at).desc())
                    .limit(50)
                )
            )
            .scalars()
            .all()
        )
        items.append(
            WebhookWithDeliveries(
                **WebhookOut.model_validate(e).model_dump(),
                deliveries=[DeliveryOut.model_validate(d) for d in deliveries],
            )
        )
    return WebhookPage(items=items)


@router.delete(
    "/orgs/{org_id}/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["webhooks"],
    responses=error_responses(401, 403, 404, 422),
)
async def delete_webhook(
    org_id: uuid.UUID, webhook_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> None:
    _require_owner(principal, org_id)
    endpoint = await session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound("Webhook not found.")
    await session.delete(endpoint)
    await session.flush()


# -- iCal ------------------------------------------------------------------------------------------


def calendar_token(settings: Settings, asset_id: uuid.UUID) -> str:
    """A secret, stable token per machine, keyed with the iCal purpose key (set MARKETPLACE_ICAL_SECRET to
    change every feed URL without touching any other key)."""
    return hmac.new(purpose_key(settings, "ical"), f"ical:{asset_id}".encode(), hashlib.sha256).hexdigest()[:40]


@router.get(
    "/assets/{asset_id}/calendar-link",
    response_model=CalendarLink,
    tags=["availability"],
    responses=error_responses(401, 404, 422),
    summary="The machine's secret iCal feed URL (owners)",
)
async def calendar_link(
    asset_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> CalendarLink:
    from listings.models import Asset

    asset = await session.get(Asset, asset_id)
    if asset is None or not (principal.can_act_for(asset.org_id) or principal.is_platform_admin):
        raise NotFound("Listing not found.")
    settings: Settings = request.app.state.settings
    return CalendarLink(
        url=f"{settings.public_url}/api/v1/assets/{asset_id}/calendar.ics?token={calendar_token(settings, asset_id)}"
    )


@router.get(
    "/assets/{asset_id}/calendar.ics",
    tags=["availability"],
    responses=error_responses(404, 422),
    response_class=Response,
    summary="iCal feed of the machine's bookings (secret token)",
)
async def calendar_feed(
    asset_id: uuid.UUID, token: Annotated[Line, Query(max_length=200)], request: Request, session: SessionDep
) -> Response:
    from icalendar import Calendar, Event

    from listings.models import Asset

    settings: Settings = request.app.state.settings
    asset = await session.get(Asset, asset_id)
    # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
    if asset is None or not hmac.compare_digest(token.encode(), calendar_token(settings, asset_id).encode()):
        raise NotFound("Calendar not found.")
    rows = (
        (
            await session.execute(
                sa.select(Booking)
                .where(
                    col(Booking.asset_id) == asset_id,
                    col(Booking.status).in_(BLOCKING),
                    col(Booking.start_at).is_not(None),
                )
                .order_by(col(Booking.start_at))
            )
        )
        .scalars()
        .all()
    )
    cal = Calendar()
    cal.add("prodid", "-//Shared Manufacturing Marketplace//bookings//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", asset.title)
    for b in rows:
        event = Event()
        event.add("uid", f"{b.id}@marketplace")
        event.add("summary", f"{asset.title}: booking ({b.status})")
        event.add("dtstart", b.start_at)
        event.add("dtend", b.end_at)
        event.add("dtstamp", b.updated_at)
        event.add("status", "TENTATIVE" if b.status in ("held", "requested") else "CONFIRMED")
        cal.add_component(event)
    return Response(cal.to_ical(), media_type="text/calendar; charset=utf-8")
