"""One error hierarchy, one JSON shape: ``{"error": code, "detail": message, "request_id": id}``.

``AppError`` and the domain packages' base errors all derive from :class:`payments.errors.DomainError`
(``status_code``, ``code``, ``detail``, ``extra``); :func:`install_error_handlers` renders all of them alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from marketplace.core.text import LINE_PATTERN, TEXT_PATTERN
from payments.errors import DomainError

logger = logging.getLogger(__name__)


# No docstring: a bare ``AppError()`` reads as its code, ``bad_request``.
class AppError(DomainError):
    pass


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


class DatabaseUnavailable(AppError):
    """The database is unavailable; retry the request (with the same Idempotency-Key) shortly."""

    status_code = 503
    code = "database_unavailable"


class ServiceUnavailable(AppError):
    """A service this request needs is unavailable; retry shortly."""

    status_code = 503
    code = "service_unavailable"


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
        503: "Temporarily unavailable (the database is restarting ...): retry after `Retry-After` seconds",
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


def error_response(request: Request, status: int, *, code: str, detail: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail, "request_id": request_id_of(request)}
    body.update(extra)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = str(_retry_after_seconds(request))
    if status == 429 and isinstance(extra.get("retry_after"), int):
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, headers=headers or None)


def _retry_after_seconds(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return int(getattr(settings, "retry_after_seconds", 5))


# Messages of the text rule (marketplace/core/text.py): a pattern mismatch reads as what is wrong, not as a regex.
_PATTERN_MESSAGES = {
    LINE_PATTERN: "must be a single line of text without control characters",
    TEXT_PATTERN: "must not contain control characters (tabs and line breaks are allowed)",
}


def validation_message(err: Mapping[str, Any]) -> str:
    """The message of one Pydantic error, as the API and the web forms show it."""
    if err.get("type") == "string_pattern_mismatch":
        known = _PATTERN_MESSAGES.get(str((err.get("ctx") or {}).get("pattern")))
        if known:
            return known
    if err.get("type") == "string_unicode":
        return "must be valid Unicode text"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _format_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    fields = []
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        msg = validation_message(err)
        fields.append({"field": where, "message": msg})
        messages.append(f"{where}: {msg}")
    return "; ".join(messages) or "Invalid request.", fields


# -- errors nothing else handled: database and Redis outages, bad characters, and real bugs ---------------

# SQLSTATEs of a database that cannot serve right now: connection exceptions (class 08), admin/crash
# shutdown and "cannot connect now" (57P01-57P03, a server starting or stopping), too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# Characters PostgreSQL cannot store: NUL in text (22021), \u0000 in jsonb or an encoding gap (22P05).
_CHARACTER_SQLSTATES = ("22021", "22P05")
_DATABASE_MODULES = ("asyncpg", "sqlalchemy")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (``orig``) and what caused it, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, current.__cause__, current.__context__]


def _raised_in_database_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in _DATABASE_MODULES:
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """True for connection-level database failures (refused, reset, shutting down, starting up, pool
    exhausted): the request may succeed when retried; nothing about the request itself was wrong."""
    for e in _chain(exc):
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sqlalchemy.exc.TimeoutError):  # no pooled connection within pool_timeout
            return True
        sqlstate = str(getattr(e, "sqlstate", None) or "")
        if sqlstate and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if type(e).__module__.startswith("asyncpg") and "connection is closed" in str(e):
            return True
        if isinstance(e, OSError | TimeoutError) and _raised_in_database_driver(e):
            return True
    return False


def _character_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if str(getattr(e, "sqlstate", None) or "") in _CHARACTER_SQLSTATES:
            return True
        if isinstance(e, UnicodeEncodeError) and _raised_in_database_driver(e):
            return True  # a lone surrogate asyncpg cannot encode
    return False


def _foreign_key_violation(exc: BaseException) -> str | None:
    """For a foreign-key violation (23503), what PostgreSQL said; ``insert or update on table ...`` means a
    referenced row does not exist, ``update or delete on table ...`` that the row is still referenced."""
    for e in _chain(exc):
        if str(getattr(e, "sqlstate", None) or "") == "23503":
            return str(e)
    return None


def _redis_unavailable(exc: BaseException) -> bool:
    return any(isinstance(e, RedisConnectionError | RedisTimeoutError) for e in _chain(exc))


def unhandled_error_response(request: Request, exc: BaseException) -> JSONResponse:
    """The response for an exception no handler took: 503 for an outage, 422 for characters PostgreSQL
    refuses (a backstop: the schemas refuse them first), else a logged 500. Always the standard shape."""
    rid = request_id_of(request)
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", type(exc).__name__, extra={"request_id": rid})
        return error_response(request, 503, code=DatabaseUnavailable.code, detail=str(DatabaseUnavailable.__doc__))
    if _character_error(exc):
        return error_response(
            request,
            422,
            code="validation_error",
            detail="The request contains characters that cannot be stored (such as NUL).",
            fields=[],
        )
    if (violation := _foreign_key_violation(exc)) is not None:
        # A backstop: the code should have checked first (the log says where); the caller still gets a 4xx.
        logger.warning("foreign-key violation reached the error handler", exc_info=exc, extra={"request_id": rid})
        if "update or delete on table" in violation:
            return error_response(request, 409, code="conflict", detail="Other records still refer to this one.")
        return error_response(request, 404, code="not_found", detail="Something this request refers to does not exist.")
    if _redis_unavailable(exc):
        logger.warning("redis unavailable: %s", type(exc).__name__, extra={"request_id": rid})
        return error_response(request, 503, code=ServiceUnavailable.code, detail=str(ServiceUnavailable.__doc__))
    logger.error("unhandled error", exc_info=exc, extra={"request_id": rid})
    return error_response(request, 500, code="internal_error", detail="An unexpected error occurred.")


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


async def validation_error_response(request: Request, exc: Exception) -> JSONResponse:
    """422 ``validation_error`` naming each field (``fields: [{field, message}]``)."""
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        return unhandled_error_response(request, exc)
    detail, fields = _format_validation(exc)
    return error_response(request, 422, code="validation_error", detail=detail, fields=fields)


def install_error_handlers(app: FastAPI, domain_errors: tuple[type[Exception], ...] = ()) -> None:
    async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
        status = int(getattr(exc, "status_code", 400))
        code = str(getattr(exc, "code", "error"))
        extra = dict(getattr(exc, "extra", {}) or {})
        return error_response(request, status, code=code, detail=str(getattr(exc, "detail", exc)), **extra)

    async def handle_http(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # registered for this class only
            return unhandled_error_response(request, exc)
        code = _HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return error_response(request, exc.status_code, code=code, detail=detail)

    async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Normally RequestContextMiddleware renders these (and keeps the connection); this is the last resort
        # for a failure outside it, used by Starlette's ServerErrorMiddleware.
        return unhandled_error_response(request, exc)

    app.add_exception_handler(AppError, handle_app_error)
    for cls in domain_errors:
        app.add_exception_handler(cls, handle_app_error)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(Exception, handle_unexpected)
