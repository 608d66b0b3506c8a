from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse

from marketplace.auth.deps import CurrentPrincipal, CurrentUser
from marketplace.db import SessionDep
from marketplace.errors import error_responses
from marketplace.idempotency import OptionalIdempotencyDep
from marketplace.orgs import service
from marketplace.orgs.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    MemberInvite,
    MemberOut,
    OrgPublic,
    VerificationSubmit,
)
from marketplace.pagination import Page
from marketplace.text import Line

router = APIRouter(prefix="/orgs", tags=["organisations"])


@router.get("/{org_id}", response_model=OrgPublic, responses=error_responses(401, 404))
async def get_org(org_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> OrgPublic:
    return OrgPublic.model_validate(await service.get_for_member(session, principal, org_id))


@router.get("/{org_id}/members", response_model=Page[MemberOut], responses=error_responses(401, 404))
async def list_members(org_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> Page[MemberOut]:
    members = await service.list_members(session, principal, org_id)
    return Page(items=[MemberOut(**m) for m in members])


@router.post(
    "/{org_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Add a registered user, or invite an e-mail that has no account yet (owners only)",
)
async def invite_member(
    org_id: uuid.UUID,
    data: MemberInvite,
    session: SessionDep,
    principal: CurrentUser,
    idem: OptionalIdempotencyDep,
) -> MemberOut | JSONResponse:
    member = MemberOut(**await service.invite_member(session, principal, org_id, data))
    return await idem.respond(member, 201) if idem else member


@router.delete(
    "/{org_id}/members/{member}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409),
    summary="Remove a member (user id) or withdraw an invitation (e-mail)",
)
async def remove_member(
    org_id: uuid.UUID, member: Annotated[Line, Path(max_length=320)], session: SessionDep, principal: CurrentUser
) -> None:
    await service.remove_member(session, principal, org_id, member)


@router.post(
    "/{org_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=error_responses(401, 403, 404, 422),
    summary="Create an API key; the secret is shown only in this response",
)
async def create_api_key(
    org_id: uuid.UUID, data: ApiKeyCreate, session: SessionDep, principal: CurrentUser
) -> ApiKeyCreated:
    key, secret = await service.create_api_key(session, principal, org_id, data)
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), secret=secret)


@router.get("/{org_id}/api-keys", response_model=Page[ApiKeyOut], responses=error_responses(401, 404))
async def list_api_keys(org_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> Page[ApiKeyOut]:
    keys = await service.list_api_keys(session, principal, org_id)
    return Page(items=[ApiKeyOut.model_validate(k) for k in keys])


@router.delete(
    "/{org_id}/api-keys/{key_id}",
    response_model=ApiKeyOut,
    responses=error_responses(401, 403, 404),
    summary="Revoke an API key (it stops working at once)",
)
async def revoke_api_key(
    org_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, principal: CurrentUser
) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await service.revoke_api_key(session, principal, org_id, key_id))


@router.post(
    "/{org_id}/verification",
    response_model=OrgPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Submit company details and documents for verification (owners only)",
)
async def submit_verification(
    org_id: uuid.UUID,
    data: VerificationSubmit,
    session: SessionDep,
    principal: CurrentUser,
    idem: OptionalIdempotencyDep,
) -> OrgPublic | JSONResponse:
    org = OrgPublic.model_validate(await service.submit_verification(session, principal, org_id, data))
    return await idem.respond(org) if idem else org
