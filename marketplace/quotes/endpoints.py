"""Routes of the quotes room: quotes on a buyer request and the counter-offers that follow (docs/api.md,
"Quotes and counter-offers")."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from marketplace.auth.deps import CurrentPrincipal, OptionalIdempotencyDep
from marketplace.bookings.endpoints import booking_out
from marketplace.bookings.endpoints import deps as booking_deps
from marketplace.bookings.schemas import BookingOut
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.quotes import service
from marketplace.quotes.convert import quote_out
from marketplace.quotes.schemas import AcceptIn, CounterIn, DeclineIn, QuoteCreate, QuoteList, QuoteOut

router = APIRouter(tags=["quotes"])


@router.post(
    "/requests/{request_id}/quotes",
    status_code=status.HTTP_201_CREATED,
    response_model=QuoteOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Quote a listing on a buyer request (supplier)",
)
async def submit_quote(
    request_id: uuid.UUID, data: QuoteCreate, session: SessionDep, principal: CurrentPrincipal
) -> QuoteOut:
    view = await service.submit(session=session, principal=principal, request_id=request_id, data=data)
    return quote_out(view)


@router.get(
    "/requests/{request_id}/quotes",
    response_model=QuoteList,
    responses=error_responses(401, 403, 404, 422),
    summary="The quotes on a request with their versions (the buyer sees all, a supplier its own)",
)
async def list_quotes(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> QuoteList:
    views = await service.list_for_request(session=session, principal=principal, request_id=request_id)
    return QuoteList(items=[quote_out(v) for v in views])


@router.post(
    "/quotes/{quote_id}/counter",
    response_model=QuoteOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Counter the latest offer (the party that did not make it)",
)
async def counter_quote(
    quote_id: uuid.UUID, data: CounterIn, session: SessionDep, principal: CurrentPrincipal
) -> QuoteOut:
    return quote_out(await service.counter(session=session, principal=principal, quote_id=quote_id, data=data))


@router.post(
    "/quotes/{quote_id}/accept",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Accept the latest offer and place the booking at its terms (the party that did not make it)",
)
async def accept_quote(
    quote_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idem: OptionalIdempotencyDep,
    body: AcceptIn | None = None,
) -> BookingOut | JSONResponse:
    booking, events, role = await service.accept(
        session=session,
        principal=principal,
        quote_id=quote_id,
        deps=booking_deps(request),
        voucher_id=body.voucher_id if body else None,
    )
    out = booking_out(booking, role, events)
    return await idem.respond(out, 201) if idem else out


@router.post(
    "/quotes/{quote_id}/decline",
    response_model=QuoteOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Decline the latest offer, with a reason (the party that did not make it)",
)
async def decline_quote(
    quote_id: uuid.UUID, data: DeclineIn, session: SessionDep, principal: CurrentPrincipal
) -> QuoteOut:
    return quote_out(await service.decline(session=session, principal=principal, quote_id=quote_id, reason=data.reason))


@router.post(
    "/quotes/{quote_id}/withdraw",
    response_model=QuoteOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Withdraw the quote (the party that made the latest offer, or the supplier while it is open)",
)
async def withdraw_quote(quote_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> QuoteOut:
    return quote_out(await service.withdraw(session=session, principal=principal, quote_id=quote_id))
