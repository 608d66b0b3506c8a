"""Web sign-in sessions: each web sign-in is a stored session (a ``web`` refresh-token family, see
:mod:`marketplace.auth.sessions`) whose id the signed session cookie carries, so signing out ends it on the
server too (a copied cookie stops working), and the "active sessions" page lists and ends sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth import sessions
from marketplace.auth.models import User
from marketplace.core.db import SessionDep
from marketplace.core.errors import NotFound
from marketplace.core.settings import Settings
from marketplace.web.core import CsrfChecked, SignedIn, WebError, redirect, render

router = APIRouter(include_in_schema=False)


def current_session_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(request.session.get("sid")))
    except ValueError:
        return None


async def sign_in(request: Request, session: AsyncSession, *, user: User) -> None:
    """Start a fresh web session for ``user``: a new stored session and a new cookie (and CSRF token). A
    session the browser still held is ended first, so a cookie captured before sign-in is worth nothing."""
    await sign_out(request, session)
    settings: Settings = request.app.state.settings
    issued = await sessions.start(
        session,
        user_id=user.id,
        kind="web",
        lifetime=timedelta(days=settings.web_session_days),
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )
    request.session.clear()
    request.session["user_id"] = str(user.id)
    request.session["sid"] = str(issued.family_id)
    request.session["locale"] = user.locale


async def sign_out(request: Request, session: AsyncSession) -> None:
    """End this web session on the server and forget the cookie's contents."""
    user_id, sid = request.session.get("user_id"), current_session_id(request)
    if user_id and sid is not None:
        try:
            await sessions.revoke_family(session, user_id=uuid.UUID(str(user_id)), family_id=sid)
        except (NotFound, ValueError):
            pass  # already ended (signed out elsewhere) or a malformed cookie: nothing to revoke
    request.session.clear()


def _user_id(user: SignedIn) -> uuid.UUID:
    if user.user_id is None:  # pragma: no cover - a web session is always a person
        raise WebError(403, "forbidden")
    return user.user_id


@router.get("/account/sessions", response_class=HTMLResponse)
async def sessions_page(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    rows = await sessions.active_sessions(session, user_id=_user_id(user))
    return render(
        request,
        "account/sessions.html",
        {
            "sessions": rows,
            "current": current_session_id(request),
            "access_minutes": request.app.state.settings.access_token_minutes,
        },
        user=user,
    )


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_one(
    request: Request, session_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    try:
        await sessions.revoke_family(session, user_id=_user_id(user), family_id=session_id)
    except NotFound:
        raise WebError(404, "not_found") from None
    if session_id == current_session_id(request):
        request.session.clear()
        return redirect("/login")
    return redirect("/account/sessions")


@router.post("/account/sessions/logout-all")
async def logout_everywhere(request: Request, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    """Sign out every session of this person, this browser included."""
    await sessions.revoke_all(session, user_id=_user_id(user))
    request.session.clear()
    return redirect("/login")
