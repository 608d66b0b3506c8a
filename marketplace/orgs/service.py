"""Organisations, memberships, API keys and verification; invitations live in :mod:`.invitations` and the
membership check every service starts with in :mod:`.access` (both re-exported here for the callers).
Takes a session; never commits.

Objects of an organisation the caller does not belong to are reported as not found, so their
existence is not revealed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import ApiKey, User
from marketplace.auth.repository import ApiKeyRepository
from marketplace.core.errors import Conflict, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.core.security import new_api_key
from marketplace.core.sqltypes import utcnow
from marketplace.documents import kinds
from marketplace.documents import service as documents
from marketplace.orgs.access import OrgNotFound, get_for_member, record_org_event
from marketplace.orgs.invitations import (
    AlreadyMember,
    InvitationExpired,
    InvitationNotFound,
    _token_hash,
    accept_invitation,
    invitation_token,
    invite_member,
    list_invitations,
    my_invitations,
    resend_invitation,
    revoke_invitation,
    send_invitation_email,
)
from marketplace.orgs.models import MemberRole, Organisation, VerificationStatus
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import ApiKeyCreate, OrgCreate, VerificationDecision, VerificationSubmit

# Names the endpoints, web pages, tasks and the auth room import from here.
__all__ = [
    "AlreadyMember",
    "InvitationExpired",
    "InvitationNotFound",
    "LastOwner",
    "OrgNotFound",
    "UsccTaken",
    "VerificationStateConflict",
    "_token_hash",
    "accept_invitation",
    "change_role",
    "create_api_key",
    "create_org",
    "decide_verification",
    "get_for_member",
    "invitation_token",
    "invite_member",
    "list_api_keys",
    "list_invitations",
    "list_members",
    "list_orgs_for_admin",
    "my_invitations",
    "remove_member",
    "resend_invitation",
    "revoke_api_key",
    "revoke_invitation",
    "send_invitation_email",
    "set_member_role",
    "submit_verification",
]


class UsccTaken(Conflict):
    """Another organisation is already registered with this Unified Social Credit Code."""

    code = "uscc_taken"


class VerificationStateConflict(Conflict):
    code = "invalid_transition"


class LastOwner(Conflict):
    """An organisation needs at least one owner; appoint another owner first."""

    code = "last_owner"


async def create_org(session: AsyncSession, data: OrgCreate, *, owner: User) -> Organisation:
    repo = OrgRepository(session)
    if data.uscc and await repo.uscc_taken(data.uscc):
        raise UsccTaken()
    org = await repo.add(
        Organisation(
            name=data.name.strip(),
            legal_name=data.legal_name,
            country=data.country,
            uscc=data.uscc,
            roles=list(data.roles),
        )
    )
    await repo.add_membership(org.id, owner.id, MemberRole.owner)
    return org


# -- members -------------------------------------------------------------------------------------


async def list_members(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> list[dict[str, Any]]:
    await get_for_member(session, principal, org_id)
    return await OrgRepository(session).members(org_id)


async def set_member_role(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole | None
) -> str:
    """THE way a membership's role changes (``role=None`` removes the membership). Takes the organisation's
    owner lock, then refuses to leave the organisation without an owner (409 ``last_owner``); the deferred
    trigger ``memberships_keep_an_owner`` enforces the same at commit for any other writer."""
    repo = OrgRepository(session)
    await repo.lock_owners(org_id)
    membership = await repo.get_membership(org_id, user_id)
    if membership is None:
        raise NotFound("No such member.")
    await session.refresh(membership)  # the role as of now, after the lock
    losing_owner = membership.role == MemberRole.owner and role != MemberRole.owner
    if losing_owner and await repo.count_owners(org_id) <= 1:
        raise LastOwner()
    old_role = membership.role
    if role is None:
        await repo.delete_membership(membership)
    elif membership.role != role:
        await repo.set_role(membership, role)
    return old_role


async def _change_membership(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    role: MemberRole | None,
    owner: bool,
) -> None:
    """Check the caller, change (or, with ``role=None``, end) the membership, and audit it."""
    await get_for_member(session, principal, org_id, owner=owner)
    old_role = await set_member_role(session, org_id=org_id, user_id=user_id, role=role)
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        action="org.member_removed" if role is None else "org.member_role_changed",
        org_id=org_id,
        before={"user_id": str(user_id), "role": old_role},
        after=None if role is None else {"user_id": str(user_id), "role": role},
    )


async def change_role(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole
) -> dict[str, Any]:
    await _change_membership(session, principal, org_id=org_id, user_id=user_id, role=role, owner=True)
    member = next(m for m in await OrgRepository(session).members(org_id) if m["user_id"] == user_id)
    return member


async def remove_member(session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Remove a member. Members may remove themselves; the last owner cannot leave."""
    is_self = user_id == principal.user_id
    await _change_membership(session, principal, org_id=org_id, user_id=user_id, role=None, owner=not is_self)


# -- API keys ------------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    await get_for_member(session, principal, org_id, owner=True)
    # A key acts for the organisation (it may book and pay), so only a verified person may mint one.
    principal.require_verified_email()
    secret, prefix, digest = new_api_key()
    key = await ApiKeyRepository(session).add(
        ApiKey(
            org_id=org_id,
            name=data.name,
            prefix=prefix,
            key_hash=digest,
            scopes=data.scopes,
            created_by=principal.user_id,
        )
    )
    return key, secret


async def list_api_keys(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> list[ApiKey]:
    await get_for_member(session, principal, org_id)
    return await ApiKeyRepository(session).list_for_org(org_id)


async def revoke_api_key(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, key_id: uuid.UUID
) -> ApiKey:
    await get_for_member(session, principal, org_id, owner=True)
    key = await ApiKeyRepository(session).get_for_org(org_id, key_id)
    if key is None:
        raise NotFound("API key not found.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


# -- verification --------------------------------------------------------------------------------


def _verification_snapshot(org: Organisation) -> dict[str, Any]:
    return {"verification_status": org.verification_status, "legal_name": org.legal_name, "uscc": org.uscc}


async def submit_verification(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, data: VerificationSubmit
) -> Organisation:
    org = await get_for_member(session, principal, org_id, owner=True)
    org = await OrgRepository(session).get(org_id, for_update=True) or org
    if org.verification_status not in (VerificationStatus.unverified, VerificationStatus.rejected):
        raise VerificationStateConflict(
            f"Verification cannot be submitted while the organisation is {org.verification_status}.",
            extra={"current_status": org.verification_status},
        )
    uscc = data.uscc or org.uscc
    if org.country == "CN" and not uscc:
        raise Unprocessable("uscc: Chinese organisations must give their Unified Social Credit Code.")
    if uscc and await OrgRepository(session).uscc_taken(uscc, exclude=org.id):
        raise UsccTaken()
    if data.licence_document_id is not None:
        await documents.attach_for_org(
            session,
            org_id=org.id,
            document_id=data.licence_document_id,
            target_kind=kinds.ORG_LICENCE,
            target_id=org.id,
            content_types=kinds.SCAN_TYPES,
        )
    before = _verification_snapshot(org)
    org.legal_name = data.legal_name
    org.uscc = uscc
    org.verification_status = VerificationStatus.pending
    org.verification_reason = None
    org.verification_submitted_at = utcnow()
    org.verification_documents = data.model_dump(mode="json", exclude={"legal_name", "uscc"})
    await session.flush()
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="org.verification_submitted",
        org_id=org.id,
        before=before,
        after=_verification_snapshot(org),
    )
    return org


async def list_orgs_for_admin(
    session: AsyncSession, status: str | None, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Organisation]:
    return await OrgRepository(session).list_by_status(status, after=after, limit=limit)


async def decide_verification(
    session: AsyncSession, admin: Principal, *, org_id: uuid.UUID, data: VerificationDecision
) -> Organisation:
    org = await OrgRepository(session).get(org_id, for_update=True)
    if org is None:
        raise OrgNotFound()
    allowed = {
        "verified": {VerificationStatus.pending, VerificationStatus.rejected},
        # An admin may also revoke a verification (e.g. a fraudulent company) with a reason.
        "rejected": {VerificationStatus.pending, VerificationStatus.verified},
    }
    if org.verification_status not in allowed[data.decision]:
        raise VerificationStateConflict(
            f"Cannot mark an organisation {data.decision} while it is {org.verification_status}.",
            extra={"current_status": org.verification_status},
        )
    before = _verification_snapshot(org)
    org.verification_status = data.decision
    org.verification_reason = data.reason
    org.verification_decided_at = utcnow()
    await session.flush()
    await record_org_event(
        session,
        actor_user_id=admin.user_id,
        action=f"org.{data.decision}",
        org_id=org.id,
        before=before,
        after=_verification_snapshot(org),
        reason=data.reason,
    )
    return org
