"""Invitations to join an organisation: issue, resend, revoke, list, accept, and the e-mail job.
Takes a session; never commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.auth.repository import UserRepository
from marketplace.core.errors import Conflict, NotFound
from marketplace.core.jobs import enqueue
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.orgs.access import get_for_member, record_org_event
from marketplace.orgs.models import INVITATION_LIFETIME_DAYS, Organisation, OrgInvitation
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import MemberInvite


class AlreadyMember(Conflict):
    """This e-mail address already belongs to a member of the organisation."""

    code = "already_member"


class InvitationNotFound(NotFound):
    """No open invitation for you with this link. It may have been replaced by a newer e-mail, revoked or
    already used, or it was sent to another e-mail address than the one you are signed in with."""

    code = "invitation_not_found"


class InvitationExpired(Conflict):
    """This invitation has expired; ask an owner of the organisation to send it again."""

    code = "invitation_expired"


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
    *,
    org_id: uuid.UUID,
    data: MemberInvite,
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
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        action="org.member_invited",
        org_id=org_id,
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
    await record_org_event(
        session,
        actor_user_id=principal.user_id,
        action="org.invitation_revoked",
        org_id=org_id,
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
    await record_org_event(
        session,
        actor_user_id=user.id,
        action="org.invitation_accepted",
        org_id=inv.org_id,
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
    notifications.send_email(settings, to=inv.email, subject=subject, body=body)
    return True
