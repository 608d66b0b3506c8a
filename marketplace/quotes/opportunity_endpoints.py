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
    EnvelopeOut,
    FitOut,
    InvitationIn,
    InvitationList,
    InvitationOut,
    MyInvitationOut,
    OpportunityOut,
    OpportunityPage,
)
from marketplace.requests.schemas import SlotOut

router = APIRouter(tags=["opportunities"])


def invitation_out(row: QuoteInvitation) -> InvitationOut:
    return InvitationOut.model_validate(row, from_attributes=True)


def _rounded(km: float | None) -> float | None:
    return None if km is None else float(round(km / 10.0) * 10)


def opportunity_out(o: opportunities.Opportunity) -> OpportunityOut:
    r = o.request
    envelope = (
        EnvelopeOut(x=r.part_x_mm, y=r.part_y_mm, z=r.part_z_mm)
        if r.part_x_mm is not None and r.part_y_mm is not None and r.part_z_mm is not None
        else None
    )
    inv = o.invitation
    invited = inv is not None and inv.via != "board"
    return OpportunityOut(
        request_id=r.id,
        kind=r.kind,
        process_code=r.process_code,
        material=r.material,
        quantity=r.quantity,
        duration_minutes=r.duration_minutes,
        samples=r.samples,
        part_envelope_mm=envelope,
        tolerance_mm=r.tolerance_mm,
        required_certificates=list(r.required_certificates),
        earliest_start=r.earliest_start,
        deadline=r.deadline,
        region_prefixes=list(r.region_prefixes),
        max_distance_km=r.max_distance_km,
        budget_max=r.budget_max,
        currency=r.currency,
        audience=r.audience,
        nda_required=r.nda_required,
        created_at=r.created_at,
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
