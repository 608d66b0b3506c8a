"""Browser hardening headers on every response (web pages, API, static files, errors), and the /metrics guard.

The Content-Security-Policy allows scripts only from this origin (and Stripe.js, which card payments must load
from Stripe): no inline script, no ``eval``, no plugins, no framing (``frame-ancestors 'none'`` plus
``X-Frame-Options: DENY`` for old browsers). The interactive API docs (``/docs``, ``/redoc``) are FastAPI's
pages, which load Swagger UI from a CDN with an inline bootstrap script: they get a policy that allows
exactly that, and still no framing."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplace.core.errors import NotAuthenticated, NotFound
from marketplace.core.settings import Settings

STRIPE_JS = "https://js.stripe.com"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        f"script-src 'self' {STRIPE_JS}",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' https://api.stripe.com",
        f"frame-src {STRIPE_JS} https://hooks.stripe.com",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        common = [
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            # Secret-bearing URLs (iCal feeds, e-mail links) never leak to other sites through Referer.
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.headers = [*common, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
        self.docs_headers = [*common, (b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = self.docs_headers if path.startswith(DOCS_PATHS) else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def check_metrics_access(request: Request, settings: Settings) -> None:
    """``/metrics`` with ``MARKETPLACE_METRICS_TOKEN`` set: only with ``Authorization: Bearer <token>`` (401
    otherwise). Unset: in development and test, loopback clients only; in production, nobody (a reverse
    proxy would make every client look local). Refused as 404, so the endpoint is not advertised."""
    token = settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise NotAuthenticated("/metrics needs the metrics bearer token.")
        return
    host = request.client.host if request.client else ""
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if settings.environment == "production" or not local:
        raise NotFound()
