"""Organisations, memberships, API keys and verification. Takes a session; never commits.

Objects of an organisation the caller does not belong to are reported as not found, so their
existence is not revealed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace import audit
from marketplace.auth.models import ApiKey, User
from marketplace.auth.principal import Principal
from marketplace.auth.repository import ApiKeyRepository, UserRepository
from marketplace.auth.security import new_api_key
from marketplace.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.orgs.models import MemberRole, Organisation, OrgInvitation, VerificationStatus
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import (
    ApiKeyCreate,
    MemberInvite,
    OrgCreate,
    VerificationDecision,
    VerificationSubmit,
)
from marketplace.sqltypes import utcnow


class OrgNotFound(NotFound):
    """Organisation not found."""


class UsccTaken(Conflict):
    """Another organisation is already registered with this Unified Social Credit Code."""

    code = "uscc_taken"


class VerificationStateConflict(Conflict):
    code = "invalid_transition"


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


async def accept_invitations(session: AsyncSession, user: User, *, now: datetime) -> int:
    repo = OrgRepository(session)
    invitations = await repo.invitations_for_email(user.email)
    for inv in invitations:
        await repo.add_membership(inv.org_id, user.id, inv.role)
        inv.accepted_at = now
    await session.flush()
    return len(invitations)


async def get_for_member(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, *, owner: bool = False
) -> Organisation:
    """The organisation, if the caller belongs to it (platform admins see all); 404 otherwise.
    With ``owner=True`` the caller must be an owner (403 for a plain member)."""
    if not (principal.is_member(org_id) or principal.is_platform_admin):
        raise OrgNotFound()
    org = await OrgRepository(session).get(org_id)
    if org is None:
        raise OrgNotFound()
    if owner and not (principal.is_owner(org_id) or principal.is_platform_admin):
        raise Forbidden("Only an owner of this organisation can do this.")
    return org


# -- members -------------------------------------------------------------------------------------


async def list_members(session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> list[dict[str, Any]]:
    await get_for_member(session, principal, org_id)
    repo = OrgRepository(session)
    members = await repo.members(org_id)
    for inv in await repo.open_invitations(org_id):
        members.append(
            {
                "user_id": None,
                "email": inv.email,
                "full_name": None,
                "role": inv.role,
                "status": "invited",
                "created_at": inv.created_at,
            }
        )
    return members


async def invite_member(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, data: MemberInvite
) -> dict[str, Any]:
    await get_for_member(session, principal, org_id, owner=True)
    repo = OrgRepository(session)
    user = await UserRepository(session).get_by_email(data.email)
    if user is not None:
        m = await repo.add_membership(org_id, user.id, data.role)
        return {
            "user_id": user.id,
            "email": user.email,
            "full_name": user.full_name,
            "role": m.role,
            "status": "active",
            "created_at": m.created_at,
        }
    inv = await repo.upsert_invitation(
        OrgInvitation(org_id=org_id, email=data.email.lower(), role=data.role, invited_by=principal.user_id)
    )
    return {
        "user_id": None,
        "email": inv.email,
        "full_name": None,
        "role": inv.role,
        "status": "invited",
        "created_at": inv.created_at,
    }


async def remove_member(session: AsyncSession, principal: Principal, org_id: uuid.UUID, member: str) -> None:
    """Remove a member (by user id) or withdraw an invitation (by e-mail). Members may remove
    themselves; the last owner cannot leave."""
    repo = OrgRepository(session)
    try:
        user_id: uuid.UUID | None = uuid.UUID(member)
    except ValueError:
        user_id = None
    is_self = user_id is not None and user_id == principal.user_id
    await get_for_member(session, principal, org_id, owner=not is_self)
    if user_id is None:
        if not await repo.delete_invitation(org_id, member):
            raise NotFound("No such member or invitation.")
        return
    membership = await repo.get_membership(org_id, user_id)
    if membership is None:
        raise NotFound("No such member or invitation.")
    if membership.role == MemberRole.owner and await repo.count_owners(org_id) <= 1:
        raise Conflict("An organisation needs at least one owner; appoint another owner first.")
    await repo.delete_membership(membership)


# -- API keys ------------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    await get_for_member(session, principal, org_id, owner=True)
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


async def revoke_api_key(session: AsyncSession, principal: Principal, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
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
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, data: VerificationSubmit
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
    before = _verification_snapshot(org)
    org.legal_name = data.legal_name
    org.uscc = uscc
    org.verification_status = VerificationStatus.pending
    org.verification_reason = None
    org.verification_submitted_at = utcnow()
    org.verification_documents = data.model_dump(mode="json", exclude={"legal_name", "uscc"})
    await session.flush()
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        actor_api_key_id=principal.api_key_id,
        action="org.verification_submitted",
        target_type="organisation",
        target_id=org.id,
        before=before,
        after=_verification_snapshot(org),
    )
    return org


async def list_orgs_for_admin(
    session: AsyncSession, status: str | None, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Organisation]:
    return await OrgRepository(session).list_by_status(status, after=after, limit=limit)


async def decide_verification(
    session: AsyncSession, admin: Principal, org_id: uuid.UUID, data: VerificationDecision
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
    await audit.record(
        session,
        actor_user_id=admin.user_id,
        action=f"org.{data.decision}",
        target_type="organisation",
        target_id=org.id,
        before=before,
        after=_verification_snapshot(org),
        reason=data.reason,
    )
    return org
