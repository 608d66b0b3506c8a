"""The team page (members, roles, invitations) and the pages an invitee uses to accept an invitation.

Every action goes through the same service functions as the API, so the owner rule, the e-mail binding of
invitations and the e-mail-verification requirement hold here too. Outcomes are passed to the next page as a
short code that the template translates (never an English service message on a Chinese page).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.sqltypes import utcnow
from marketplace.core.text import Line
from marketplace.orgs import service as orgs
from marketplace.orgs.models import MemberRole
from marketplace.orgs.schemas import MemberInvite
from marketplace.web import i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, locale_of, redirect, render
from marketplace.web.form_errors import REQUIRED

router = APIRouter(include_in_schema=False)

# Error codes the templates know how to say; anything else is shown as a generic failure.
KNOWN_ERRORS = frozenset(
    {
        "already_member",
        "last_owner",
        "invitation_not_found",
        "invitation_expired",
        "email_unverified",
        "forbidden",
        "not_found",
        "invalid_email",
    }
)


def _code(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "invalid_email"
    code = str(getattr(exc, "code", "error"))
    return code if code in KNOWN_ERRORS else "error"


def _person(user: SignedIn) -> None:
    if user.user_id is None:  # an API key is not a signed-in person
        raise WebError(403, "forbidden")


@router.get("/orgs/{org_id}/team", response_class=HTMLResponse)
async def team_page(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    return await _team(request, session, user, org_id=org_id)


async def _team(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    *,
    org_id: uuid.UUID,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The team page, or (with ``errors``) re-rendered with the invitation form as posted and its errors."""
    _person(user)
    try:
        org = await orgs.get_for_member(session, user, org_id)
    except AppError as exc:
        raise WebError(404, "not_found") from exc
    members = await orgs.list_members(session, user, org_id)
    is_owner = user.is_owner(org_id) or user.is_platform_admin
    invitations = await orgs.list_invitations(session, user, org_id, now=utcnow()) if is_owner else []
    ctx = {"org": org, "members": members, "invitations": invitations, "is_owner": is_owner}
    status = 422 if errors else 200
    return render(
        request, "team/team.html", {**ctx, "errors": errors or {}, "form": form or {}}, status=status, user=user
    )


async def _act(session: SessionDep, org_id: uuid.UUID, *, done: str, action: Awaitable[object]) -> Response:
    try:
        await action
    except (ValidationError, AppError) as exc:
        await session.rollback()
        return redirect(f"/orgs/{org_id}/team?error={_code(exc)}")
    return redirect(f"/orgs/{org_id}/team?notice={done}")


# Refusals of an invitation shown beside its e-mail field.
_INVITE_ERRORS = {
    "already_member": N_("This e-mail address already belongs to a member."),
    "invalid_email": N_("Please enter a valid e-mail address."),
}


@router.post("/orgs/{org_id}/team/invite")
async def invite(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()
    gettext = i18n.translations(locale_of(request)).gettext
    try:
        data = MemberInvite(email=email, role=str(form.get("role") or "member"))  # type: ignore[arg-type]
        settings = request.app.state.settings
        await orgs.invite_member(session, user, org_id=org_id, data=data, settings=settings, now=utcnow())
    except (ValidationError, AppError) as exc:
        await session.rollback()
        code = _code(exc)
        if code not in _INVITE_ERRORS:
            return redirect(f"/orgs/{org_id}/team?error={code}")
        message = gettext(_INVITE_ERRORS[code] if email else REQUIRED)
        return await _team(request, session, user, org_id=org_id, errors={"email": message}, form={"email": email})
    return redirect(f"/orgs/{org_id}/team?notice=invited")


@router.post("/orgs/{org_id}/team/members/{user_id}/role")
async def change_role(
    request: Request,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    role = str((await request.form()).get("role") or "")
    if role not in ("owner", "member"):
        return redirect(f"/orgs/{org_id}/team?error=error")
    return await _act(
        session,
        org_id,
        done="role_changed",
        action=orgs.change_role(session, user, org_id=org_id, user_id=user_id, role=MemberRole(role)),
    )


@router.post("/orgs/{org_id}/team/members/{user_id}/remove")
async def remove(
    org_id: uuid.UUID, user_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    if user_id == user.user_id:
        try:
            await orgs.remove_member(session, user, org_id=org_id, user_id=user_id)
        except AppError as exc:
            await session.rollback()
            return redirect(f"/orgs/{org_id}/team?error={_code(exc)}")
        return redirect("/dashboard")
    return await _act(
        session, org_id, done="removed", action=orgs.remove_member(session, user, org_id=org_id, user_id=user_id)
    )


@router.post("/orgs/{org_id}/team/invitations/{invitation_id}/resend")
async def resend(
    request: Request,
    org_id: uuid.UUID,
    invitation_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
) -> Response:
    action = orgs.resend_invitation(
        session,
        user,
        org_id=org_id,
        invitation_id=invitation_id,
        settings=request.app.state.settings,
        now=utcnow(),
    )
    return await _act(session, org_id, done="resent", action=action)


@router.post("/orgs/{org_id}/team/invitations/{invitation_id}/revoke")
async def revoke(
    org_id: uuid.UUID, invitation_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    action = orgs.revoke_invitation(session, user, org_id=org_id, invitation_id=invitation_id)
    return await _act(session, org_id, done="revoked", action=action)


# -- the invitee -----------------------------------------------------------------------------------


@router.get("/invitations", response_class=HTMLResponse)
async def my_invitations(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    _person(user)
    invitations = await orgs.my_invitations(session, user, now=utcnow()) if user.email_verified else []
    return render(request, "team/invitations.html", {"invitations": invitations, "token": None}, user=user)


@router.get("/invitations/accept", response_class=HTMLResponse)
async def accept_page(
    request: Request, user: SignedIn, token: Annotated[Line, Query(max_length=200)] = ""
) -> HTMLResponse:
    """The page the e-mail's link opens (after sign-in, with the token kept in ``next``): one button, so a
    link opened by a mail scanner never accepts anything by itself."""
    _person(user)
    return render(request, "team/invitations.html", {"invitations": [], "token": token}, user=user)


async def _accept(
    session: SessionDep, user: SignedIn, *, token: str | None = None, invitation_id: uuid.UUID | None = None
) -> Response:
    """Accept by the link's token or by id from the list (exactly one of them is given)."""
    _person(user)
    try:
        org = await orgs.accept_invitation(session, user, now=utcnow(), token=token, invitation_id=invitation_id)
    except AppError as exc:
        await session.rollback()
        return redirect(f"/invitations?error={_code(exc)}")
    return redirect(f"/orgs/{org.id}/team?notice=joined")


@router.post("/invitations/accept")
async def accept_with_token(request: Request, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    token = str((await request.form()).get("token") or "")[:200]
    return await _accept(session, user, token=token)


@router.post("/invitations/{invitation_id}/accept")
async def accept_from_list(
    invitation_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    return await _accept(session, user, invitation_id=invitation_id)
