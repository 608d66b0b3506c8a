"""Attach the web app to the FastAPI application: sessions, static files, pages and friendly errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from marketplace.core.errors import unhandled_error_response, validation_error_response
from marketplace.core.security import purpose_key
from marketplace.core.settings import Settings
from marketplace.web import i18n
from marketplace.web.core import WebError, locale_of, redirect, render

STATIC = Path(__file__).parent / "static"


def N_(message: str) -> str:
    return message


_MESSAGES = {
    401: (N_("Sign in required"), N_("Please sign in to continue.")),
    403: (N_("Not allowed"), N_("You do not have access to this page.")),
    404: (N_("Not found"), N_("This page does not exist or is not visible to you.")),
}
_GENERIC = (N_("Something went wrong"), N_("Please try again."))
_INVALID = (
    N_("Check your input"),
    N_(
        "Some of what was sent cannot be used (for example control characters or an invalid value). "
        "Go back, check the form and try again."
    ),
)
_CSRF = N_("The form expired. Go back, reload the page and try again.")


def error_page(request: Request, status: int, message: str | None = None) -> HTMLResponse:
    translate = i18n.translations(locale_of(request)).gettext
    title, default = _INVALID if status == 422 else _MESSAGES.get(status, _GENERIC)
    if message == "csrf":
        title, default, message = _MESSAGES[403][0], _CSRF, None
    return render(
        request, "error.html", {"title": translate(title), "message": message or translate(default)}, status=status
    )


class WebSessionMiddleware:
    """Starlette's signed-cookie sessions for the web pages only. The JSON API (``/api/``) authenticates
    with a bearer token or an API key and never reads or writes ``request.session``, so its requests skip
    the cookie parsing, the signature check and the wrapped ``send`` (issue #19: CPU per booking)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        session_cookie: str,
        max_age: int | None = None,
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.sessions = SessionMiddleware(
            app,
            secret_key=secret_key,
            session_cookie=session_cookie,
            max_age=max_age,
            same_site=same_site,
            https_only=https_only,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
        else:
            await self.sessions(scope, receive, send)


def mount_web(app: FastAPI, settings: Settings) -> None:
    from marketplace.web import (
        account,
        account_2fa,
        account_profile,
        account_sessions,
        admin,
        admin_books,
        admin_certificates,
        admin_queues,
        admin_verification,
        buyer,
        exports,
        factory,
        factory_bookings,
        factory_certificates,
        factory_integrations,
        factory_listings,
        flags,
        inspection_pages,
        instalment_views,
        invoices,
        messages,
        negotiation_buyer,
        negotiation_factory,
        notifications,
        observatory,
        pages,
        programme_pages,
        public,
        tax_exports,
        team,
        verify,
        voucher_pages,
    )

    app.add_middleware(
        WebSessionMiddleware,
        # Its own key (HKDF from the server secret): an access token's key cannot sign a web session.
        secret_key=purpose_key(settings, "web-session").hex(),
        session_cookie="mk_session",
        max_age=settings.web_session_days * 24 * 3600,
        same_site="lax",
        https_only=settings.environment == "production",
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    pages_in_order = (  # the order routes are matched in
        public,
        verify,
        pages,
        flags,
        team,
        admin_verification,
        admin_certificates,
        admin_queues,
        admin_books,
        tax_exports,
        admin,
        invoices,
        exports,
        factory,
        factory_certificates,
        factory_listings,
        factory_bookings,
        instalment_views,
        inspection_pages,
        factory_integrations,
        negotiation_factory,
        negotiation_buyer,
        messages,
        notifications,
        buyer,
        voucher_pages,
        programme_pages,
        observatory,
        account_sessions,
        account_profile,
        account,
        account_2fa,
    )
    for module in pages_in_order:
        app.include_router(module.router)

    async def handle_web_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, WebError):  # registered for WebError only
            return unhandled_error_response(request, exc)
        if exc.status_code == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/login?next={quote(target)}")
        return error_page(request, exc.status_code, exc.message if exc.message not in ("not_found", "login") else None)

    app.add_exception_handler(WebError, handle_web_error)

    # A page's query or form parameter that fails its schema (a NUL, a control character in a one-line field)
    # is a friendly page in the visitor's language; the API keeps its JSON error shape.
    async def handle_validation(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return await validation_error_response(request, exc)
        return error_page(request, 422)

    app.add_exception_handler(RequestValidationError, handle_validation)
