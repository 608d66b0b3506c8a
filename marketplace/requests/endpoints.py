"""Routes of buyer requests, matches, supplier views and batch plans."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.pagination import CursorParam, LimitParam, decode_keyset, keyset_page
from marketplace.requests import batch, matches, service
from marketplace.requests.convert import plan_out, request_out
from marketplace.requests.schemas import (
    BatchIn,
    MatchesOut,
    PlanOut,
    RequestCreate,
    RequestMatchList,
    RequestOut,
    RequestPage,
    RequestUpdate,
    SuggestionOut,
)

router = APIRouter(tags=["requests"])

MatchLimit = Annotated[int, Query(ge=1, le=100, description="How many ranked matches to return")]
Explain = Annotated[bool, Query(description="Count the first failing constraint per rejected listing")]


@router.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    response_model=RequestOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Post a request for machine time or lab testing (suppliers with matching capacity are notified)",
)
async def create_request(data: RequestCreate, session: SessionDep, principal: CurrentPrincipal) -> RequestOut:
    return request_out(await service.create(session, principal, data))


@router.get("/requests", response_model=RequestPage, responses=error_responses(401, 422))
async def list_requests(
    session: SessionDep,
    principal: CurrentPrincipal,
    status_filter: Annotated[
        Literal["open", "booked", "closed", "cancelled", "expired"] | None, Query(alias="status")
    ] = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> RequestPage:
    rows = await service.list_for(
        session=session, principal=principal, status=status_filter, after=decode_keyset(cursor), limit=limit + 1
    )
    page, next_cursor = keyset_page(rows, limit)
    return RequestPage(items=[request_out(r) for r in page], next_cursor=next_cursor)


@router.get("/requests/{request_id}", response_model=RequestOut, responses=error_responses(401, 404, 422))
async def get_request(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> RequestOut:
    return request_out(await service.get(session, principal, request_id))


@router.patch("/requests/{request_id}", response_model=RequestOut, responses=error_responses(401, 403, 404, 409, 422))
async def update_request(
    request_id: uuid.UUID, data: RequestUpdate, session: SessionDep, principal: CurrentPrincipal
) -> RequestOut:
    return request_out(await service.update(session=session, principal=principal, request_id=request_id, data=data))


@router.post(
    "/requests/{request_id}/cancel", response_model=RequestOut, responses=error_responses(401, 403, 404, 409, 422)
)
async def cancel_request(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> RequestOut:
    return request_out(await service.cancel(session, principal, request_id))


@router.get(
    "/requests/{request_id}/matches",
    response_model=MatchesOut,
    responses=error_responses(401, 404, 422),
    summary="Ranked listings that satisfy every hard constraint, each with its earliest slot and a score breakdown",
)
async def request_matches(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: MatchLimit = 20,
    explain_rejections: Explain = False,
) -> MatchesOut:
    return await matches.matches_for(session, principal, request_id, limit=limit, explain_rejections=explain_rejections)


@router.get(
    "/requests/{request_id}/suggestion",
    response_model=SuggestionOut,
    responses=error_responses(401, 404, 422),
    summary="The booking suggested for this request by the latest batch plan",
)
async def request_suggestion(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> SuggestionOut:
    return await batch.suggestion(session, principal, request_id)


@router.post(
    "/matches/preview",
    response_model=MatchesOut,
    responses=error_responses(401, 422),
    summary="Matches for a request body without saving it (any signed-in caller)",
)
async def preview_matches(
    data: RequestCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: MatchLimit = 20,
    explain_rejections: Explain = False,
) -> MatchesOut:
    return await matches.preview(
        session=session, principal=principal, data=data, limit=limit, explain_rejections=explain_rejections
    )


@router.get(
    "/assets/{asset_id}/matching-requests",
    response_model=RequestMatchList,
    responses=error_responses(401, 403, 404, 422),
    summary="Open requests this listing can serve (owner only)",
)
async def asset_matching_requests(
    asset_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal, limit: LimitParam = 50
) -> RequestMatchList:
    return RequestMatchList(
        items=await matches.matching_requests(session=session, principal=principal, asset_id=asset_id, limit=limit)
    )


@router.post(
    "/admin/matching/batch",
    response_model=PlanOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 422),
    summary="Ask for an optimised assignment of the open machine requests of a horizon; a worker computes it "
    "(follow GET /admin/matching/plans/{id}) and buyers then see their suggestions",
)
async def batch_plan(data: BatchIn, response: Response, session: SessionDep, admin: AdminPrincipal) -> PlanOut:
    plan = await batch.request_batch(session, admin=admin, data=data)
    response.headers["Location"] = f"/api/v1/admin/matching/plans/{plan.id}"
    return plan_out(plan)


@router.get(
    "/admin/matching/plans/{plan_id}",
    response_model=PlanOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A batch plan's status (queued, running, done, failed) and, once done, its assignments",
)
async def get_batch_plan(plan_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal) -> PlanOut:
    return plan_out(await batch.get_plan(session, plan_id=plan_id))
