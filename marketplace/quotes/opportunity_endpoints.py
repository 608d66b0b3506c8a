"""Routes of the factories' job board (opportunities) and of quote requests (invitations)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from marketplace.auth.deps import CurrentPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.pagination import CursorParam, LimitParam, decode_keyset, encode_cursor
from marketplace.quotes import invitations, opportunities
from marketplace.quotes.invitation_models import InvitationStatus, QuoteInvitation
from marketplace.quotes.opportunity_schemas import (
    DeclineIn,
    FitOut,
    InvitationIn,
    InvitationList,
    InvitationOut,
    MyInvitationOut,
    OpportunityOut,
    OpportunityPage,
)
from marketplace.requests.convert import request_out
from marketplace.requests.schemas import RequestOut, SlotOut

router = APIRouter(tags=["opportunities"])


def invitation_out(row: QuoteInvitation) -> InvitationOut:
    return InvitationOut.model_validate(row, from_attributes=True)


def _rounded(km: float | None) -> float | None:
    return None if km is None else float(round(km / 10.0) * 10)


# What a factory sees of a request: the request's own fields, never its buyer or the buyer's location.
REQUEST_FIELDS = frozenset(OpportunityOut.model_fields) & frozenset(RequestOut.model_fields) - {"location"}


def opportunity_out(o: opportunities.Opportunity) -> OpportunityOut:
    r = o.request
    inv = o.invitation
    invited = inv is not None and inv.via != "board"
    return OpportunityOut(
        **request_out(r).model_dump(include=set(REQUEST_FIELDS)),
        request_id=r.id,
        listings=[
            FitOut(
                asset_id=f.asset_id,
                title=o.titles.get(f.asset_id, ""),
                slot=SlotOut(start=f.match.slot_start, end=f.match.slot_end),
                distance_km=_rounded(f.match.distance_km),
            )
            for f in o.fits
        ],
        invited=invited,
        invitation=MyInvitationOut(id=inv.id, status=inv.status, respond_by=inv.respond_by)
        if inv is not None and invited
        else None,
        quoted=inv is not None and inv.status == InvitationStatus.quoted,
    )


@router.get(
    "/opportunities",
    response_model=OpportunityPage,
    responses=error_responses(401, 403, 404, 422),
    summary="Open requests my verified supplier organisation's published listings can serve (no buyer identity), "
    "newest first",
)
async def list_opportunities(
    session: SessionDep,
    principal: CurrentPrincipal,
    org_id: Annotated[uuid.UUID | None, Query(description="Which of my supplier organisations")] = None,
    limit: LimitParam = 20,
    cursor: CursorParam = None,
) -> OpportunityPage:
    found = await opportunities.board(
        session=session, principal=principal, org_id=org_id, after=decode_keyset(cursor), limit=limit + 1
    )
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1].request
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    return OpportunityPage(items=[opportunity_out(o) for o in found], next_cursor=next_cursor)


@router.post(
    "/requests/{request_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Ask the factory of one of the request's matches to quote (the buyer)",
)
async def invite(
    request_id: uuid.UUID, data: InvitationIn, session: SessionDep, principal: CurrentPrincipal
) -> InvitationOut:
    row = await invitations.invite(session=session, principal=principal, request_id=request_id, asset_id=data.asset_id)
    return invitation_out(row)


@router.get(
    "/requests/{request_id}/invitations",
    response_model=InvitationList,
    responses=error_responses(401, 403, 404, 422),
    summary="The factories asked to quote for the request and their answers (the buyer)",
)
async def list_invitations(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> InvitationList:
    rows = await invitations.list_for_request(session, principal, request_id)
    return InvitationList(items=[invitation_out(r) for r in rows])


@router.post(
    "/requests/{request_id}/invitation/decline",
    response_model=InvitationOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Decline to quote (the invited factory); with auto-cascade on, the next-ranked factory is asked",
)
async def decline(
    request_id: uuid.UUID, data: DeclineIn, session: SessionDep, principal: CurrentPrincipal
) -> InvitationOut:
    row = await invitations.decline(session=session, principal=principal, request_id=request_id, reason=data.reason)
    return invitation_out(row)
