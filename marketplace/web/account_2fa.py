"""Web pages of two-factor sign-in: the second step of the sign-in, and the account's 2FA section (set up
with a QR code, confirm, recovery codes shown once on the response page, disable). Each posts to the same
service as the API (marketplace.auth.two_factor). The session cookie never holds a secret: between the two
sign-in steps it holds only the user id, where to go next and when the password was checked."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from marketplace.auth import two_factor
from marketplace.auth.repository import UserRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError, NotAuthenticated
from marketplace.core.text import Line
from marketplace.web import account_sessions, i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebError, WebUser, locale_of, redirect, render, safe_next

router = APIRouter(include_in_schema=False)

PENDING = "pending_2fa"
PENDING_SECONDS = 300


def start_second_step(request: Request, *, user_id: uuid.UUID, next_url: str) -> Response:
    """The password was right and the account has 2FA: remember that (for five minutes) and ask for a code."""
    request.session[PENDING] = {"user_id": str(user_id), "next": next_url, "at": time.time()}
    return redirect("/login/2fa")


def _pending(request: Request) -> dict[str, Any] | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None
    return pending


_WAIT = N_("Too many attempts. Please wait a minute and try again.")
_WRONG_CODE = N_("The code is wrong, expired or already used.")
_WRONG_CODE_OR_PASSWORD = N_("The code or password is wrong, or the code was already used.")


def _problem(request: Request, exc: AppError, *, field: str, wrong: str = _WRONG_CODE) -> dict[str, str]:
    """The refusal beside the code field, in the page's language: too many attempts, or a wrong code."""
    gettext = i18n.translations(locale_of(request)).gettext
    return {field: gettext(_WAIT if exc.status_code == 429 else wrong)}


@router.get("/login/2fa", response_class=HTMLResponse)
async def second_step_page(request: Request, user: WebUser) -> Response:
    if _pending(request) is None:
        return redirect("/login")
    return render(request, "account/login_2fa.html", {"errors": {}}, user=user)


@router.post("/login/2fa", response_class=HTMLResponse)
async def second_step(
    request: Request, session: SessionDep, _csrf: CsrfChecked, otp: Annotated[Line, Form(max_length=40)] = ""
) -> Response:
    pending = _pending(request)
    if pending is None:
        return redirect("/login")
    limiter = request.app.state.login_limiter
    ip = request.client.host if request.client else "unknown"
    user = await UserRepository(session).get(uuid.UUID(str(pending["user_id"])))
    if user is None or not user.is_active:
        request.session.pop(PENDING, None)
        return redirect("/login")
    try:
        # The same counters as the password step (per address, per account and address, per account).
        attempt = await limiter.begin(ip=ip, account=user.email)
        await two_factor.check_sign_in(session, user_id=user.id, otp=otp)
        await limiter.succeeded(attempt)
    except AppError as exc:
        await session.rollback()
        page = render(
            request, "account/login_2fa.html", {"errors": _problem(request, exc, field="otp")}, status=exc.status_code
        )
        if exc.status_code == 429:
            page.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        return page
    next_url = str(pending.get("next") or "/")
    await account_sessions.sign_in(request, session, user=user)  # clears the pending step with the cookie
    return redirect(safe_next(next_url))


async def admin_two_factor_gate(request: Request, user: WebUser) -> None:
    """The web admin pages' side of :func:`marketplace.auth.deps.get_admin`: in production a platform admin
    without two-factor sign-in is refused until they enable it (a dependency of the whole admin router)."""
    if user is not None and user.admin_needs_two_factor:
        message = i18n.translations(locale_of(request)).gettext(
            "Turn on two-factor sign-in (Account, Two-factor sign-in) before using the administrator pages."
        )
        raise WebError(403, message)


# -- the account's 2FA section ---------------------------------------------------------------------


def _user_id(user: SignedIn) -> uuid.UUID:
    if user.user_id is None:  # pragma: no cover - SignedIn admits users only
        raise NotAuthenticated()
    return user.user_id


@router.get("/account/2fa", response_class=HTMLResponse)
async def page(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    enabled = await two_factor.is_enabled(session, user_id=_user_id(user))
    return render(request, "account/two_factor.html", {"enabled": enabled, "errors": {}}, user=user)


@router.post("/account/2fa/setup", response_class=HTMLResponse)
async def setup(request: Request, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> HTMLResponse:
    account = await UserRepository(session).get(_user_id(user))
    if account is None:  # pragma: no cover - the principal was just loaded
        raise NotAuthenticated()
    try:
        started = await two_factor.start_setup(session, user=account)
    except AppError:
        await session.rollback()
        return render(request, "account/two_factor.html", {"enabled": True, "errors": {}}, user=user)
    # The QR code is SVG markup made here by segno from our own otpauth URI (no user text in it).
    ctx = {"enabled": False, "setup": True, "qr_svg": started.qr_svg, "otpauth_uri": started.otpauth_uri}
    return render(request, "account/two_factor.html", {**ctx, "errors": {}}, user=user)


@router.post("/account/2fa/confirm", response_class=HTMLResponse)
async def confirm(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    code: Annotated[Line, Form(max_length=40)] = "",
) -> HTMLResponse:
    try:
        await request.app.state.auth_rate_limiter.hit("2fa", f"user:{user.user_id}")
        codes = await two_factor.confirm(session, user_id=_user_id(user), code=code)
    except AppError as exc:
        await session.rollback()
        # The set-up form is not shown again (start it anew): the message goes in the summary, not on a field.
        ctx = {"enabled": False, "errors": _problem(request, exc, field="_")}
        return render(request, "account/two_factor.html", ctx, status=exc.status_code, user=user)
    # Shown once, on this response page only (never in the session cookie).
    ctx = {"enabled": True, "recovery_codes": codes, "errors": {}}
    return render(request, "account/two_factor.html", ctx, user=user)


@router.post("/account/2fa/disable", response_class=HTMLResponse)
async def disable(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    password: Annotated[str, Form(max_length=256)] = "",
    code: Annotated[Line, Form(max_length=40)] = "",
) -> HTMLResponse:
    try:
        await request.app.state.auth_rate_limiter.hit("2fa", f"user:{user.user_id}")
        await two_factor.disable(session, user_id=_user_id(user), password=password, code=code)
    except AppError as exc:
        await session.rollback()
        ctx = {"enabled": True, "errors": _problem(request, exc, field="code", wrong=_WRONG_CODE_OR_PASSWORD)}
        return render(request, "account/two_factor.html", ctx, status=exc.status_code, user=user)
    return render(request, "account/two_factor.html", {"enabled": False, "disabled": True, "errors": {}}, user=user)
