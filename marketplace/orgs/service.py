"""Organisations, memberships, API keys and verification. Takes a session; never commits.

Objects of an organisation the caller does not belong to are reported as not found, so their
existence is not revealed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import ApiKey, User
from marketplace.auth.repository import ApiKeyRepository, UserRepository
from marketplace.core import audit
from marketplace.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.security import new_api_key
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.orgs.models import (
    INVITATION_LIFETIME_DAYS,
    MemberRole,
    Organisation,
    OrgInvitation,
    VerificationStatus,
)
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import (
    ApiKeyCreate,
    MemberInvite,
    OrgCreate,
    VerificationDecision,
    VerificationSubmit,
)


class OrgNotFound(NotFound):
    """Organisation not found."""


class UsccTaken(Conflict):
    """Another organisation is already registered with this Unified Social Credit Code."""

    code = "uscc_taken"


class VerificationStateConflict(Conflict):
    code = "invalid_transition"


class AlreadyMember(Conflict):
    """This e-mail address already belongs to a member of the organisation."""

    code = "already_member"


class LastOwner(Conflict):
    """An organisation needs at least one owner; appoint another owner first."""

    code = "last_owner"


class InvitationNotFound(NotFound):
    """No open invitation for you with this link. It may have been replaced by a newer e-mail, revoked or
    already used, or it was sent to another e-mail address than the one you are signed in with."""

    code = "invitation_not_found"


class InvitationExpired(Conflict):
    """This invitation has expired; ask an owner of the organisation to send it again."""

    code = "invitation_expired"


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


async def change_role(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole
) -> dict[str, Any]:
    await get_for_member(session, principal, org_id, owner=True)
    old_role = await set_member_role(session, org_id=org_id, user_id=user_id, role=role)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action="org.member_role_changed",
        target_type="organisation",
        target_id=org_id,
        before={"user_id": str(user_id), "role": old_role},
        after={"user_id": str(user_id), "role": role},
    )
    member = next(m for m in await OrgRepository(session).members(org_id) if m["user_id"] == user_id)
    return member


async def remove_member(session: AsyncSession, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Remove a member. Members may remove themselves; the last owner cannot leave."""
    is_self = user_id == principal.user_id
    await get_for_member(session, principal, org_id, owner=not is_self)
    old_role = await set_member_role(session, org_id=org_id, user_id=user_id, role=None)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action="org.member_removed",
        target_type="organisation",
        target_id=org_id,
        before={"user_id": str(user_id), "role": old_role},
    )


# -- invitations ---------------------------------------------------------------------------------
#
# An invitation's token is never stored: it is an HMAC, under a key derived from the server secret for this
# purpose only, of the invitation's id and expiry, so the e-mail job can rebuild it while the database holds
# only its SHA-256. A resend moves the expiry, which changes the token: the old link stops working.


def _invitation_key(settings: Settings) -> bytes:
    # HKDF-SHA256 (RFC 5869) with an empty salt, one output block, info naming the purpose.
    prk = hmac.new(b"\0" * 32, settings.jwt_secret.encode(), hashlib.sha256).digest()
    return hmac.new(prk, b"marketplace/org-invitation-link/v1\x01", hashlib.sha256).digest()


def invitation_token(settings: Settings, invitation: OrgInvitation) -> str:
    message = f"{invitation.id}:{invitation.expires_at.isoformat()}".encode()
    digest = hmac.new(_invitation_key(settings), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_out(inv: OrgInvitation, *, now: datetime, org_name: str | None = None) -> dict[str, Any]:
    return {
        "id": inv.id,
        "org_id": inv.org_id,
        "org_name": org_name,
        "email": inv.email,
        "role": inv.role,
        "status": "expired" if inv.expires_at <= now else "pending",
        "created_at": inv.created_at,
        "expires_at": inv.expires_at,
    }


async def _issue(session: AsyncSession, settings: Settings, inv: OrgInvitation, *, now: datetime) -> None:
    """A new expiry and token for ``inv`` (the previous token stops working), and its e-mail."""
    inv.expires_at = now + timedelta(days=INVITATION_LIFETIME_DAYS)
    inv.token_hash = _token_hash(invitation_token(settings, inv))
    await session.flush()
    await enqueue(session, "orgs.send_invitation", str(inv.id))


async def invite_member(
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    data: MemberInvite,
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Always an invitation, whether or not the e-mail has an account: nobody joins without consent, and
    the answer does not reveal who is registered. Inviting an e-mail already open replaces that invitation
    (new role, token and expiry)."""
    await get_for_member(session, principal, org_id, owner=True)
    repo = OrgRepository(session)
    await repo.lock_owners(org_id)
    email = data.email.lower()
    if await repo.member_with_email(org_id, email):
        raise AlreadyMember()  # only owners get here, and they can list the members anyway
    inv = await repo.open_invitation_for(org_id, email)
    if inv is None:
        inv = OrgInvitation(org_id=org_id, email=email, role=data.role, invited_by=principal.user_id, expires_at=now)
        await repo.add_invitation(inv)
    else:
        inv.role = data.role
        inv.invited_by = principal.user_id
    await _issue(session, settings, inv, now=now)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action="org.member_invited",
        target_type="organisation",
        target_id=org_id,
        after={"invitation_id": str(inv.id), "email": email, "role": data.role},
    )
    return _invitation_out(inv, now=now)


async def list_invitations(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, *, now: datetime
) -> list[dict[str, Any]]:
    await get_for_member(session, principal, org_id, owner=True)
    return [_invitation_out(inv, now=now) for inv in await OrgRepository(session).open_invitations(org_id)]


async def resend_invitation(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: uuid.UUID,
    invitation_id: uuid.UUID,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    await get_for_member(session, principal, org_id, owner=True)
    inv = await OrgRepository(session).get_invitation(invitation_id, org_id=org_id, for_update=True)
    if inv is None:
        raise NotFound("No such invitation.")
    await _issue(session, settings, inv, now=now)
    return _invitation_out(inv, now=now)


async def revoke_invitation(
    session: AsyncSession, principal: Principal, *, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    await get_for_member(session, principal, org_id, owner=True)
    repo = OrgRepository(session)
    inv = await repo.get_invitation(invitation_id, org_id=org_id, for_update=True)
    if inv is None:
        raise NotFound("No such invitation.")
    await repo.delete_invitation(inv)
    await audit.record(
        session,
        actor_user_id=principal.user_id,
        action="org.invitation_revoked",
        target_type="organisation",
        target_id=org_id,
        before={"invitation_id": str(inv.id), "email": inv.email, "role": inv.role},
    )


async def _signed_in_user(session: AsyncSession, principal: Principal) -> User:
    user = await UserRepository(session).get(principal.user_id) if principal.user_id else None
    if user is None:
        raise InvitationNotFound()
    return user


async def my_invitations(session: AsyncSession, principal: Principal, *, now: datetime) -> list[dict[str, Any]]:
    """The signed-in person's pending invitations (addressed to their own e-mail, unexpired)."""
    principal.require_verified_email()  # an unproven claim to the address sees nothing addressed to it
    user = await _signed_in_user(session, principal)
    rows = await OrgRepository(session).pending_invitations_for_email(user.email, now=now)
    return [_invitation_out(inv, now=now, org_name=name) for inv, name in rows]


async def accept_invitation(
    session: AsyncSession,
    principal: Principal,
    *,
    now: datetime,
    token: str | None = None,
    invitation_id: uuid.UUID | None = None,
) -> Organisation:
    """Join with an invitation addressed to the signed-in person's own e-mail: by the link's token, or by id
    from their list of pending invitations. Any other case, including a valid token sent to somebody else,
    is the same 404, so a stolen or guessed link reveals nothing."""
    principal.require_verified_email()  # the one check point of e-mail ownership
    user = await _signed_in_user(session, principal)
    repo = OrgRepository(session)
    if token is not None:
        inv = await repo.invitation_by_token_hash(_token_hash(token))
    elif invitation_id is not None:
        inv = await repo.get_invitation(invitation_id, for_update=True)
    else:
        inv = None
    if inv is None or inv.token_hash is None or inv.email.lower() != user.email.lower():
        raise InvitationNotFound()
    if inv.expires_at <= now:
        raise InvitationExpired()
    # An existing membership keeps its role: accepting never demotes anybody.
    await repo.add_membership(inv.org_id, user.id, inv.role)
    inv.accepted_at = now
    inv.token_hash = None  # single use
    await session.flush()
    await audit.record(
        session,
        actor_user_id=user.id,
        action="org.invitation_accepted",
        target_type="organisation",
        target_id=inv.org_id,
        after={"invitation_id": str(inv.id), "role": inv.role},
    )
    org = await repo.get(inv.org_id)
    if org is None:
        raise InvitationNotFound()
    return org


_ROLE_LABELS = {("owner", "zh-CN"): "所有者", ("member", "zh-CN"): "成员"}


async def send_invitation_email(session: AsyncSession, *, settings: Settings, invitation_id: uuid.UUID) -> bool:
    """E-mail an open invitation its accept link (job ``orgs.send_invitation``). A job for a token that has
    since been replaced (resend), used or revoked sends nothing: the newer job sends the newer link."""
    from marketplace.notifications import service as notifications

    repo = OrgRepository(session)
    inv = await repo.get_invitation(invitation_id)
    if inv is None or inv.token_hash is None or inv.expires_at <= utcnow():
        return False
    token = invitation_token(settings, inv)
    if not hmac.compare_digest(_token_hash(token), inv.token_hash):
        return False  # another job's token, or the server secret changed: that invitation must be resent
    org = await repo.get(inv.org_id)
    inviter = await UserRepository(session).get(inv.invited_by) if inv.invited_by else None
    invitee = await UserRepository(session).get_by_email(inv.email)
    locale = invitee.locale if invitee is not None else (inviter.locale if inviter is not None else "en")
    link = f"{settings.public_url.rstrip('/')}/invitations/accept?token={token}"
    subject, body = notifications.render(
        "org.invitation",
        locale,
        {
            "org": org.name if org else "",
            "inviter": inviter.full_name if inviter else "",
            "role": _ROLE_LABELS.get((inv.role, locale), inv.role),
            "link": link,
            "expires": inv.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        },
    )
    notifications.send_email(settings, inv.email, subject, body)
    return True


# -- API keys ------------------------------------------------------------------------------------


async def create_api_key(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, data: ApiKeyCreate
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
