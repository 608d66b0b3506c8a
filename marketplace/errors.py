"""One error hierarchy, one JSON shape: ``{"error": code, "detail": message, "request_id": id}``.

Domain packages (listings, matching, payments) define their own base error with the same two class
attributes, ``status_code`` and ``code``; :func:`install_error_handlers` renders all of them alike.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.code
        self.extra = extra or {}
        super().__init__(self.detail)


class BadRequest(AppError):
    """The request is malformed."""


class NotAuthenticated(AppError):
    """Authentication is required."""

    status_code = 401
    code = "not_authenticated"


class InvalidCredentials(NotAuthenticated):
    """Incorrect e-mail or password."""

    code = "invalid_credentials"


class Forbidden(AppError):
    """You are not allowed to do this."""

    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    """The request is well-formed but invalid."""

    status_code = 422
    code = "validation_error"


class RateLimited(AppError):
    """Too many attempts; try again later."""

    status_code = 429
    code = "rate_limited"


# The shared error schema, registered as ``#/components/schemas/Error`` by the app.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail", "request_id"],
    "properties": {
        "error": {"type": "string", "example": "not_found"},
        "detail": {"type": "string", "example": "Not found."},
        "request_id": {"type": "string"},
    },
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found (also for objects of another organisation)",
        409: "Conflict with the current state",
        422: "Validation error",
        429: "Rate limited",
    }
    return {
        c: {
            "description": descriptions.get(c, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_response(request: Request, status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail, "request_id": request_id_of(request)}
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _format_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    fields = []
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        fields.append({"field": where, "message": msg})
        messages.append(f"{where}: {msg}")
    return "; ".join(messages) or "Invalid request.", fields


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI, domain_errors: tuple[type[Exception], ...] = ()) -> None:
    async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
        status = int(getattr(exc, "status_code", 400))
        code = str(getattr(exc, "code", "error"))
        extra = dict(getattr(exc, "extra", {}) or {})
        return error_response(request, status, code, str(getattr(exc, "detail", exc)), **extra)

    async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, fields = _format_validation(exc)
        return error_response(request, 422, "validation_error", detail, fields=fields)

    async def handle_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(request, exc.status_code, code, detail)

    async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", extra={"request_id": request_id_of(request)})
        return error_response(request, 500, "internal_error", "An unexpected error occurred.")

    app.add_exception_handler(AppError, handle_app_error)
    for cls in domain_errors:
        app.add_exception_handler(cls, handle_app_error)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(Exception, handle_unexpected)
