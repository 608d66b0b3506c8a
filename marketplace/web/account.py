"""Web pages of the account: the verification link's page, forgotten and reset password, change of password.
Each page posts to the same services as the API (marketplace.auth.service). A link's token is used only by a
POST from its page, never by the GET that opens it: mail scanners that fetch links consume nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.auth import service as auth_service
from marketplace.auth.repository import UserRepository
from marketplace.auth.schemas import ChangePasswordIn, PasswordResetConfirmIn, PasswordResetIn, VerifyEmailIn
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.text import Line
from marketplace.web import account_sessions, i18n
from marketplace.web.core import N_, CsrfChecked, SignedIn, WebUser, field_errors, locale_of, redirect, render
from marketplace.web.form_errors import EMAIL, REQUIRED, placed

router = APIRouter(include_in_schema=False)


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _problem(request: Request, exc: AppError) -> dict[str, str]:
    """What the page says in its language: too many attempts, or something else (never the service's text)."""
    gettext = i18n.translations(locale_of(request)).gettext
    if exc.status_code == 429:
        return {"_": gettext(N_("Too many attempts. Please wait a minute and try again."))}
    return {"_": gettext(N_("Something went wrong. Please try again."))}


def _placed(request: Request, exc: Exception) -> dict[str, str]:
    """The change-password form's errors beside its two fields (anything else in the summary)."""
    if isinstance(exc, AppError) and exc.status_code == 429:
        return _problem(request, exc)
    errors = field_errors(exc, locale=locale_of(request))
    return placed(errors, ("current_password", "new_password"))


# -- e-mail verification ---------------------------------------------------------------------------


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_page(request: Request, user: WebUser, token: Line = "") -> HTMLResponse:
    return render(request, "account/verify_email.html", {"token": token, "done": False, "errors": {}}, user=user)


@router.post("/verify-email", response_class=HTMLResponse)
async def verify(
    request: Request, session: SessionDep, user: WebUser, _csrf: CsrfChecked, token: Annotated[Line, Form()] = ""
) -> HTMLResponse:
    try:
        await auth_service.verify_email(session, token=VerifyEmailIn(token=token).token)
    except (AppError, ValidationError):
        await session.rollback()
        return render(
            request, "account/verify_email.html", {"token": "", "done": False, "invalid": True, "errors": {}},
            status=400, user=user,
        )  # fmt: skip
    return render(request, "account/verify_email.html", {"done": True, "errors": {}}, user=user)


@router.post("/verify-email/resend")
async def resend(request: Request, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    limiter = request.app.state.auth_rate_limiter
    try:
        await limiter.hit("verify_resend", f"user:{user.user_id}", f"ip:{_ip(request)}")
    except AppError:
        return redirect("/dashboard?verification=wait")
    if user.user_id is not None:
        await auth_service.send_verification(session, user_id=user.user_id)
    return redirect("/dashboard?verification=sent")


# -- forgotten password ----------------------------------------------------------------------------


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_page(request: Request, user: WebUser) -> HTMLResponse:
    return render(request, "account/forgot_password.html", {"sent": False, "errors": {}}, user=user)


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot(
    request: Request, session: SessionDep, user: WebUser, _csrf: CsrfChecked, email: Annotated[Line, Form()] = ""
) -> HTMLResponse:
    try:
        data = PasswordResetIn(email=email.strip())
        await request.app.state.auth_rate_limiter.hit("password_reset", f"ip:{_ip(request)}", f"email:{data.email}")
        await auth_service.request_password_reset(session, email=data.email)
    except ValidationError:
        errors = {"email": i18n.translations(locale_of(request)).gettext(EMAIL if email.strip() else REQUIRED)}
        return render(request, "account/forgot_password.html", {"sent": False, "errors": errors}, status=422, user=user)
    except AppError as exc:
        await session.rollback()
        return render(
            request, "account/forgot_password.html", {"sent": False, "errors": _problem(request, exc)},
            status=exc.status_code, user=user,
        )  # fmt: skip
    # The same page whether or not the address has an account.
    return render(request, "account/forgot_password.html", {"sent": True, "errors": {}}, user=user)


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_page(request: Request, user: WebUser, token: Line = "") -> HTMLResponse:
    return render(request, "account/reset_password.html", {"token": token, "errors": {}}, user=user)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset(
    request: Request,
    session: SessionDep,
    user: WebUser,
    _csrf: CsrfChecked,
    token: Annotated[Line, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = PasswordResetConfirmIn(token=token, new_password=new_password)
        await request.app.state.auth_rate_limiter.hit("password_reset_confirm", f"ip:{_ip(request)}")
        await auth_service.reset_password(session, token=data.token, new_password=data.new_password)
    except ValidationError as exc:
        errors = field_errors(exc, locale=locale_of(request))
        if "token" in errors:
            errors = {"_": "invalid"}
        return render(request, "account/reset_password.html", {"token": token, "errors": errors}, status=422, user=user)
    except AppError:
        await session.rollback()
        return render(
            request, "account/reset_password.html", {"token": "", "errors": {"_": "invalid"}}, status=400, user=user
        )
    request.session.clear()  # every session was revoked; sign in with the new password
    return redirect("/login?reset=1")


# -- change password -------------------------------------------------------------------------------


@router.get("/account/password", response_class=HTMLResponse)
async def password_page(request: Request, user: SignedIn) -> HTMLResponse:
    return render(request, "account/change_password.html", {"errors": {}, "done": False}, user=user)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    if user.user_id is None:  # pragma: no cover - SignedIn is a user
        return redirect("/login")
    try:
        data = ChangePasswordIn(current_password=current_password, new_password=new_password)
        await request.app.state.auth_rate_limiter.hit("change_password", f"user:{user.user_id}")
        await auth_service.change_password(
            session, user_id=user.user_id, current_password=data.current_password, new_password=data.new_password
        )
    except ValidationError as exc:
        return render(
            request,
            "account/change_password.html",
            {"errors": _placed(request, exc), "done": False},
            status=422,
            user=user,
        )
    except AppError as exc:
        await session.rollback()
        errors = _placed(request, exc)
        return render(
            request, "account/change_password.html", {"errors": errors, "done": False}, status=exc.status_code,
            user=user,
        )  # fmt: skip
    # Every session was revoked (other devices are signed out); this browser continues in a fresh one.
    me = await UserRepository(session).get(user.user_id)
    if me is not None:
        await account_sessions.sign_in(request, session, user=me)
    return render(request, "account/change_password.html", {"errors": {}, "done": True}, user=user)
