"""Request ids, structured-ish logging that never prints secrets, and Prometheus metrics."""

from __future__ import annotations

import contextvars
import gc
import logging
import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

HTTP_REQUESTS = Counter("marketplace_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("marketplace_http_request_duration_seconds", "HTTP request latency", ["method", "route"])

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Anything that looks like a credential is masked before a log line is written.
_SECRET = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|authorization|x-api-key)(\"?\s*[:=]\s*\"?)([^\s\",&]+)"
)


ErrorRenderer = Callable[[Request, Exception], Response]


class RequestContextMiddleware:
    """Pure ASGI middleware: assigns a request id (or accepts a sane ``X-Request-ID``), echoes it, and
    records metrics per route template (not per raw path, which would explode cardinality).

    It is also where an exception no handler took ends: ``on_error`` renders it (the standard error shape,
    with the request id) and the exception stops here. Re-raising it, as Starlette's ServerErrorMiddleware
    does after sending its 500, makes the server drop the kept-alive connection without ``Connection: close``
    and fail the client's next, unrelated request. Only an exception after the response has started (a
    broken stream) still propagates: then closing the connection is the one honest signal left."""

    def __init__(self, app: ASGIApp, on_error: ErrorRenderer | None = None) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started or self.on_error is None:
                raise
            response = self.on_error(Request(scope), exc)
            await response(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)
            request_id_var.reset(token)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        if isinstance(record.msg, str) and not record.args:
            record.msg = _SECRET.sub(r"\1\2***", record.msg)
        elif record.args:
            record.msg = _SECRET.sub(r"\1\2***", record.getMessage())
            record.args = ()
        return True


def redact(text: str) -> str:
    return _SECRET.sub(r"\1\2***", text)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings (which may carry an iCal token): keep it but redact.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "celery"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True


GC_THRESHOLDS = (10_000, 20, 20)  # the interpreter's defaults are (700, 10, 10)


def freeze_startup_heap() -> int:
    """Tune the cyclic garbage collector for a long-running server process, once at start-up.

    * ``gc.freeze()`` moves everything allocated so far (modules, the app, ORM mappers ...) out of the
      collector's reach: full collections otherwise traverse that ~200k-object start-up heap, 80-90 ms pauses
      that landed in ~5 % of matching requests (docs/performance.md). Start-up objects live for the whole
      process anyway.
    * A first-generation threshold of 10,000 allocations instead of 700: a request allocates tens of thousands
      of short-lived containers that reference counting frees; collecting every 700 allocations promoted many
      to older generations and triggered a full collection (~15-20 ms on the heap that grows after start-up:
      caches, pools) every few dozen requests.

    Returns the number of frozen objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()
