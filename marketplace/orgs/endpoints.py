from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from marketplace.auth.deps import CurrentPrincipal, CurrentUser, OptionalIdempotencyDep
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.pagination import Page
from marketplace.core.sqltypes import utcnow
from marketplace.orgs import service
from marketplace.orgs.models import MemberRole
from marketplace.orgs.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    InvitationAccept,
    InvitationOut,
    MemberInvite,
    MemberOut,
    MemberRoleUpdate,
    OrgPublic,
    VerificationSubmit,
)

router = APIRouter(prefix="/orgs", tags=["organisations"])
invitations_router = APIRouter(prefix="/invitations", tags=["organisations"])


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
    response_model=InvitationOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Invite an e-mail address (owners only); nobody joins until the invitee accepts",
)
async def invite_member(
    org_id: uuid.UUID,
    data: MemberInvite,
    request: Request,
    session: SessionDep,
    principal: CurrentUser,
    idem: OptionalIdempotencyDep,
) -> InvitationOut | JSONResponse:
    invitation = InvitationOut(
        **await service.invite_member(
            session, principal, org_id=org_id, data=data, settings=request.app.state.settings, now=utcnow()
        )
    )
    return await idem.respond(invitation, 201) if idem else invitation


@router.patch(
    "/{org_id}/members/{user_id}",
    response_model=MemberOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Change a member's role (owners only); the last owner cannot be demoted",
)
async def change_member_role(
    org_id: uuid.UUID, user_id: uuid.UUID, data: MemberRoleUpdate, session: SessionDep, principal: CurrentUser
) -> MemberOut:
    member = await service.change_role(session, principal, org_id=org_id, user_id=user_id, role=MemberRole(data.role))
    return MemberOut(**member)


@router.delete(
    "/{org_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409),
    summary="Remove a member (owners), or leave (yourself); the last owner cannot leave",
)
async def remove_member(org_id: uuid.UUID, user_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> None:
    await service.remove_member(session, principal, org_id=org_id, user_id=user_id)


@router.get(
    "/{org_id}/invitations",
    response_model=Page[InvitationOut],
    responses=error_responses(401, 403, 404),
    summary="Open invitations (owners only)",
)
async def list_invitations(org_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> Page[InvitationOut]:
    items = await service.list_invitations(session, principal, org_id, now=utcnow())
    return Page(items=[InvitationOut(**i) for i in items])


@router.post(
    "/{org_id}/invitations/{invitation_id}/resend",
    response_model=InvitationOut,
    responses=error_responses(401, 403, 404),
    summary="Send an invitation again with a new link and expiry; the old link stops working (owners only)",
)
async def resend_invitation(
    org_id: uuid.UUID, invitation_id: uuid.UUID, request: Request, session: SessionDep, principal: CurrentUser
) -> InvitationOut:
    out = await service.resend_invitation(
        session,
        principal,
        org_id=org_id,
        invitation_id=invitation_id,
        settings=request.app.state.settings,
        now=utcnow(),
    )
    return InvitationOut(**out)


@router.delete(
    "/{org_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
    summary="Revoke an invitation (owners only)",
)
async def revoke_invitation(
    org_id: uuid.UUID, invitation_id: uuid.UUID, session: SessionDep, principal: CurrentUser
) -> None:
    await service.revoke_invitation(session, principal, org_id=org_id, invitation_id=invitation_id)


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
    key, secret = await service.create_api_key(session, principal, org_id=org_id, data=data)
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
    return ApiKeyOut.model_validate(await service.revoke_api_key(session, principal, org_id=org_id, key_id=key_id))


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
    org = OrgPublic.model_validate(await service.submit_verification(session, principal, org_id=org_id, data=data))
    return await idem.respond(org) if idem else org


@invitations_router.get(
    "", response_model=Page[InvitationOut], responses=error_responses(401, 403), summary="My pending invitations"
)
async def my_invitations(session: SessionDep, principal: CurrentUser) -> Page[InvitationOut]:
    items = await service.my_invitations(session, principal, now=utcnow())
    return Page(items=[InvitationOut(**i) for i in items])


@invitations_router.post(
    "/accept",
    response_model=OrgPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Accept an invitation with the token from its e-mail, signed in as the invited address",
)
async def accept_invitation(data: InvitationAccept, session: SessionDep, principal: CurrentUser) -> OrgPublic:
    org = await service.accept_invitation(session, principal, token=data.token, now=utcnow())
    return OrgPublic.model_validate(org)
