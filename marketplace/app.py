"""The FastAPI application factory: API under ``/api/v1``, health and metrics at the root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from listings import endpoints as listings_endpoints
from listings.errors import ListingsError
from marketplace import celery_app
from marketplace.admin.endpoints import router as admin_router
from marketplace.admin.listings import router as admin_listings_router
from marketplace.analytics.endpoints import router as analytics_router
from marketplace.auth.deps import get_optional_principal, get_principal
from marketplace.auth.endpoints import router as auth_router
from marketplace.billing.endpoints import router as payments_router
from marketplace.billing.fapiao_endpoints import router as fapiao_router
from marketplace.bookings.deps import blocked_time, booking_deps, listings_config
from marketplace.bookings.endpoints import router as bookings_router
from marketplace.bookings.instalment_endpoints import router as instalments_router
from marketplace.core import embedded, outbox
from marketplace.core.db import create_engine, create_sessionmaker, get_session, ping
from marketplace.core.errors import ERROR_SCHEMA, error_responses, install_error_handlers, unhandled_error_response
from marketplace.core.idempotency import IdempotentReplay, handle_replay
from marketplace.core.observability import RequestContextMiddleware, configure_logging, freeze_startup_heap
from marketplace.core.pagination import decode_cursor, decode_keyset, encode_cursor
from marketplace.core.ratelimit import RateLimiter, login_limiter
from marketplace.core.security_headers import SecurityHeadersMiddleware, check_metrics_access
from marketplace.core.settings import Settings, get_settings
from marketplace.documents.certificate_scans import DocumentStoreScans
from marketplace.documents.endpoints import router as documents_router
from marketplace.inspection.endpoints import router as inspection_router
from marketplace.inspection.quality_endpoints import router as quality_documents_router
from marketplace.inspection.report_endpoints import router as inspection_report_router
from marketplace.inspection.verify_endpoints import router as verify_router
from marketplace.messages.endpoints import router as messages_router
from marketplace.orgs.endpoints import invitations_router
from marketplace.orgs.endpoints import router as orgs_router
from marketplace.quotes.endpoints import router as quotes_router
from marketplace.quotes.opportunity_endpoints import router as opportunities_router
from marketplace.requests.endpoints import router as requests_router
from marketplace.vouchers.claim_endpoints import router as voucher_claims_router
from marketplace.vouchers.endpoints import router as vouchers_router
from payments.errors import PaymentsError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def resolve_database_url(settings: Settings) -> str:
    return settings.database_url or embedded.start_postgres(settings.data_dir)


def resolve_redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded.start_redis(settings.data_dir)


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db_url = database_url or resolve_database_url(settings)
        r_url = redis_url or resolve_redis_url(settings)
        engine = create_engine(db_url, settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = Redis.from_url(r_url)
        app.state.auth_rate_limiter = RateLimiter(
            app.state.redis,
            limit=settings.auth_rate_limit,
            window_seconds=settings.auth_rate_window_seconds,
        )
        app.state.login_limiter = login_limiter(app.state.redis, settings)
        celery_app.configure(r_url, settings)
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Shared Manufacturing Marketplace",
        version="0.1.0",
        description=(
            "Factories share idle machine time and testing-lab capacity; SMEs find, book and pay for it. "
            'Every error has the shape `{"error", "detail", "request_id"}`.'
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.booking_deps = booking_deps(settings)
    install_error_handlers(app, domain_errors=(ListingsError, PaymentsError))
    app.add_exception_handler(IdempotentReplay, handle_replay)

    listings_router = listings_endpoints.build_router(
        session_dep=Depends(get_session, scope="function"),
        actor_dep=Depends(get_principal),
        optional_actor_dep=Depends(get_optional_principal),
        config=listings_config(settings),
        blocked=blocked_time(),
        error_responses=error_responses,
        encode_cursor=encode_cursor,
        decode_cursor=decode_cursor,
        decode_keyset=decode_keyset,
        certificate_scans=DocumentStoreScans(),
    )
    api = APIRouter(prefix=API_PREFIX)
    # FastAPI tries the routes in order (once to match and once to dispatch, per router level): the hottest
    # routers come first, so a search or a booking does not walk the auth, organisation and admin routes.
    # tests/test_route_order.py checks that no route takes another's paths.
    api.include_router(listings_router)
    api.include_router(bookings_router)
    api.include_router(auth_router)
    api.include_router(orgs_router)
    api.include_router(invitations_router)
    api.include_router(admin_router)
    api.include_router(admin_listings_router)
    api.include_router(instalments_router)
    api.include_router(payments_router)
    api.include_router(requests_router)
    api.include_router(analytics_router)
    api.include_router(documents_router)
    api.include_router(opportunities_router)
    api.include_router(quotes_router)
    api.include_router(messages_router)
    api.include_router(quality_documents_router)
    api.include_router(inspection_router)
    api.include_router(inspection_report_router)
    api.include_router(verify_router)
    api.include_router(vouchers_router)
    api.include_router(voucher_claims_router)
    api.include_router(fapiao_router)
    app.include_router(api)
    from marketplace.web.mount import mount_web

    mount_web(app, settings)
    # Added last, so it is the outermost middleware: every response, even one for an exception raised in
    # another middleware, carries the request id and keeps the connection.
    app.add_middleware(RequestContextMiddleware, on_error=unhandled_error_response)
    # Outside even that (it never raises): CSP, framing, Referrer-Policy, nosniff (HSTS in production) on every
    # response, the request context's own error responses included.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.environment == "production")
    _add_operational_routes(app)
    _customise_openapi(app)
    return app


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database and the broker are reachable",
        responses={503: {"description": "Not ready: a check failed or did not answer in time"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Both checks run at once, each bounded by ``readiness_timeout_seconds``: a dead database or
        broker (or a pool with no free connection) makes this 503 within that time, never a hang."""
        state = request.app.state
        timeout = state.settings.readiness_timeout_seconds
        database, broker = await asyncio.gather(
            _check(ping(state.engine), timeout), _check(state.redis.ping(), timeout)
        )
        checks = {"database": database, "broker": broker}
        ok = all(v == "ok" for v in checks.values())
        headers = None if ok else {"Retry-After": str(state.settings.retry_after_seconds)}
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503, headers=headers)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (bearer MARKETPLACE_METRICS_TOKEN; unset: loopback only, never in production)",
        include_in_schema=True,
        responses=error_responses(401, 404),
    )
    async def metrics(request: Request) -> Response:
        check_metrics_access(request, request.app.state.settings)
        await outbox.observe(request.app.state.engine)  # the outbox depth gauges; never raises
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _check(probe: Awaitable[Any], seconds: float) -> str:
    """``ok`` or what went wrong; readiness reports, it never raises."""
    try:
        async with asyncio.timeout(seconds):
            await probe
    except TimeoutError:
        return f"error: no answer within {seconds:g} s"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _customise_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        # FastAPI's default 422 schema is not ours: point every 422 at the shared error shape.
        for path in schema.get("paths", {}).values():
            for op in path.values():
                if isinstance(op, dict) and "422" in op.get("responses", {}):
                    op["responses"]["422"] = {
                        "description": "Validation error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def main_app() -> FastAPI:
    """Entry for ``uvicorn --factory marketplace.app:main_app``."""
    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    logger.debug("froze %d start-up objects", freeze_startup_heap())
    return app
