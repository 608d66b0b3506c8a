"""The bookings API: placing and reading bookings, the actions of the transition table, reviews and scorecards,
and (for history: their paths sit under this router's tag) notifications, webhooks and the iCal feed."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import typing
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response

from listings.repository import ListingsRepository
from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal, CurrentUser, IdempotencyDep, OptionalIdempotencyDep
from marketplace.bookings import service
from marketplace.bookings.models import Booking, BookingEvent
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
from marketplace.core.errors import NotFound, error_responses
from marketplace.core.idempotency import Idempotency
from marketplace.core.pagination import CursorParam, LimitParam, decode_keyset, encode_cursor
from marketplace.core.security import purpose_key
from marketplace.core.settings import Settings
from marketplace.core.text import Line
from marketplace.inspection import quality
from marketplace.inspection.quality_endpoints import quality_document_out
from marketplace.messages.schemas import MarkedReadOut, UnreadCountOut
from marketplace.notifications import service as notifications_service
from marketplace.notifications import webhooks
from marketplace.notifications.models import Notification
from marketplace.orgs.repository import OrgRepository

router = APIRouter(tags=["bookings"])


def deps(request: Request) -> service.Deps:
    built: service.Deps = request.app.state.booking_deps
    return built


def booking_out(booking: Booking, role: str | None, timeline: Sequence[BookingEvent] | None = None) -> BookingOut:
    """The booking as the API shows it: pure, so a page of bookings costs no query per booking (the list shows
    no timeline; a single booking's comes loaded with it)."""
    period = booking.period
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
        timeline=[EventOut.model_validate(e) for e in timeline] if timeline is not None else None,
    )


def _next_cursor(rows: Sequence[Booking] | Sequence[Notification], limit: int) -> str | None:
    """Rows were read with ``limit + 1``: the extra one says another page follows."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor([last.created_at.isoformat(), str(last.id)])


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
    # A booking just placed has exactly its ``book`` event: its timeline needs no query.
    booking, events = await service.place(session=session, principal=principal, data=data, deps=deps(request))
    return await idem.respond(booking_out(booking, "buyer", events), 201)


@router.get("/bookings", response_model=BookingPage, responses=error_responses(401, 403, 422))
async def list_bookings(
    session: SessionDep,
    principal: CurrentPrincipal,
    role: Literal["buyer", "supplier"] | None = None,
    status_filter: Annotated[Line | None, Query(alias="status", max_length=40)] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> BookingPage:
    orgs = [o for o in principal.org_ids if principal.can_act_for(o, "bookings:read")]
    rows = await BookingRepository(session).list_for_org(
        orgs, role=role, status=status_filter, after=decode_keyset(cursor), limit=limit + 1
    )
    return BookingPage(
        items=[booking_out(b, service.role_of(principal, b)) for b in rows[:limit]],
        next_cursor=_next_cursor(rows, limit),
    )


@router.get(
    "/bookings/{booking_id}",
    response_model=BookingOut,
    responses=error_responses(401, 404, 422),
    summary="A booking with its timeline",
)
async def get_booking(booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> BookingOut:
    booking, role = await service.get_for(session=session, principal=principal, booking_id=booking_id)
    out = booking_out(booking, role, await BookingRepository(session).events(booking.id))
    if booking.kind == "machine":  # the quality documents ordered with it (marketplace/inspection/quality.py)
        out.quality_documents = [quality_document_out(r) for r in await quality.ordered(session, booking.id)]
    return out


_ACTION_ERRORS = error_responses(401, 403, 404, 409, 422)

ActionBody = ReasonIn | CompleteIn | ReleaseIn | DisputeIn


@dataclass(frozen=True)
class ActionRoute:
    """How one person-facing action of the transition table is exposed. ``name`` is the handler's name, from
    which FastAPI derives the operation id (and, without a ``summary``, the summary)."""

    action: str
    path: str
    name: str
    body: type[ActionBody] | None = None
    body_required: bool = False
    summary: str | None = None
    description: str | None = None


# Every action of ``transitions.TRANSITIONS`` a buyer or supplier performs (tests/bookings/test_routes_and_lists.py
# checks the two agree); ``resolve`` is the admin's and has its own route below.
ACTION_ROUTES = (
    ActionRoute(
        "pay",
        "/bookings/{booking_id}/payment/accept-terms",
        "accept_terms",
        summary="Buyer accepts the invoice terms: the held booking becomes a request to the supplier",
    ),
    ActionRoute("accept", "/bookings/{booking_id}/accept", "accept"),
    ActionRoute("decline", "/bookings/{booking_id}/decline", "decline", ReasonIn),
    ActionRoute(
        "cancel",
        "/bookings/{booking_id}/cancel",
        "cancel",
        ReasonIn,
        summary="Cancel (buyer or supplier); the refund follows the snapshotted policy",
    ),
    ActionRoute(
        "start", "/bookings/{booking_id}/start", "start", summary="Supplier check-in (from 24 hours before the start)"
    ),
    ActionRoute(
        "complete",
        "/bookings/{booking_id}/complete",
        "complete",
        CompleteIn,
        summary="Supplier marks the work completed (a reason is required before the booked start)",
    ),
    ActionRoute(
        "release",
        "/bookings/{booking_id}/release",
        "release",
        ReleaseIn,
        summary="Supplier releases the machine time left after an early completion (audited, on the timeline)",
        description="Shortens the blocked period to the completion time (empties it when the work was completed "
        "before the period began), so the rest of the slot can be booked again. Completed, settled or resolved "
        "machine bookings only; the status does not change. A second release answers 409 `nothing_to_release`.",
    ),
    ActionRoute(
        "confirm", "/bookings/{booking_id}/confirm", "confirm", summary="Buyer confirms the work: the booking settles"
    ),
    ActionRoute("dispute", "/bookings/{booking_id}/dispute", "dispute", DisputeIn, body_required=True),
)


async def _respond(
    session: SessionDep, booking: Booking, *, role: str | None, idem: Idempotency | None
) -> BookingOut | JSONResponse:
    out = booking_out(booking, role, await BookingRepository(session).events(booking.id))
    return await idem.respond(out) if idem else out


def _action_endpoint(route: ActionRoute) -> Callable[..., Awaitable[BookingOut | JSONResponse]]:
    """The one handler every action route shares, bound to its action."""

    async def endpoint(
        *,
        booking_id: uuid.UUID,
        request: Request,
        session: SessionDep,
        principal: CurrentPrincipal,
        idem: OptionalIdempotencyDep,
        data: ActionBody | None = None,
    ) -> BookingOut | JSONResponse:
        booking = await service.act(
            session=session,
            principal=principal,
            booking_id=booking_id,
            action=route.action,
            deps=deps(request),
            reason=data.reason if data else None,
            result_reference=data.result_reference if isinstance(data, CompleteIn) else None,
        )
        return await _respond(session, booking, role=service.role_of(principal, booking), idem=idem)

    # FastAPI reads the request body from the signature: give each route exactly its own body (or none).
    hints = typing.get_type_hints(endpoint, include_extras=True)
    params = [
        p.replace(annotation=hints[p.name]) for p in inspect.signature(endpoint).parameters.values() if p.name != "data"
    ]
    if route.body is not None:
        required = route.body_required
        params.append(
            inspect.Parameter(
                "data",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=route.body if required else route.body | None,
                default=inspect.Parameter.empty if required else None,
            )
        )
    endpoint.__signature__ = inspect.Signature(params, return_annotation=hints["return"])  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = route.name
    return endpoint


for _route in ACTION_ROUTES:
    router.add_api_route(
        _route.path,
        _action_endpoint(_route),
        methods=["POST"],
        name=_route.name,
        response_model=BookingOut,
        responses=_ACTION_ERRORS,
        summary=_route.summary,
        description=_route.description,
    )


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
    return await _respond(session, booking, role="admin", idem=idem)


@router.post(
    "/bookings/{booking_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def review(booking_id: uuid.UUID, data: ReviewIn, session: SessionDep, principal: CurrentUser) -> ReviewOut:
    return ReviewOut.model_validate(
        await service.review(session=session, principal=principal, booking_id=booking_id, data=data)
    )


@router.get(
    "/orgs/{org_id}/scorecard",
    response_model=ScorecardOut,
    tags=["organisations"],
    responses=error_responses(404, 422),
    summary="Public reputation figures of an organisation",
)
async def scorecard(org_id: uuid.UUID, session: SessionDep) -> ScorecardOut:
    if await OrgRepository(session).get(org_id) is None:
        raise NotFound("Organisation not found.")
    return ScorecardOut(**await service.scorecard(session=session, org_id=org_id))


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
    rows = await notifications_service.page(
        session=session, user_id=principal.user_id, unread=unread, after=decode_keyset(cursor), limit=limit + 1
    )
    return NotificationPage(
        items=[NotificationOut.model_validate(n) for n in rows[:limit]], next_cursor=_next_cursor(rows, limit)
    )


@router.get(
    "/notifications/unread-count",
    response_model=UnreadCountOut,
    tags=["notifications"],
    responses=error_responses(401, 403),
    summary="How many of my notifications are unread",
)
async def notifications_unread(session: SessionDep, principal: CurrentUser) -> UnreadCountOut:
    return UnreadCountOut(unread=await notifications_service.unread_count(session, user_id=principal.user_id))


@router.post(
    "/notifications/read-all",
    response_model=MarkedReadOut,
    tags=["notifications"],
    responses=error_responses(401, 403),
    summary="Mark all my notifications read",
)
async def notifications_read_all(session: SessionDep, principal: CurrentUser) -> MarkedReadOut:
    count = await notifications_service.mark_all_read(session, user_id=principal.user_id)
    return MarkedReadOut(marked_read=count)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationOut,
    tags=["notifications"],
    responses=error_responses(401, 404, 422),
)
async def mark_read(notification_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> NotificationOut:
    note = await notifications_service.mark_read(
        session=session, user_id=principal.user_id, notification_id=notification_id
    )
    return NotificationOut.model_validate(note)


# -- webhooks --------------------------------------------------------------------------------------


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
    endpoints = await webhooks.list_endpoints(session=session, principal=principal, org_id=org_id)
    return WebhookPage(
        items=[
            WebhookWithDeliveries(
                **WebhookOut.model_validate(e).model_dump(),
                deliveries=[DeliveryOut.model_validate(d) for d in deliveries],
            )
            for e, deliveries in endpoints
        ]
    )


@router.delete(
    "/orgs/{org_id}/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["webhooks"],
    responses=error_responses(401, 403, 404, 422),
)
async def delete_webhook(
    org_id: uuid.UUID, webhook_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> None:
    await webhooks.delete_endpoint(session=session, principal=principal, org_id=org_id, webhook_id=webhook_id)


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
    asset = await ListingsRepository(session).get_asset(asset_id)
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

    settings: Settings = request.app.state.settings
    asset = await ListingsRepository(session).get_asset(asset_id)
    # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
    if asset is None or not hmac.compare_digest(token.encode(), calendar_token(settings, asset_id).encode()):
        raise NotFound("Calendar not found.")
    rows = await BookingRepository(session).calendar(asset_id)
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
