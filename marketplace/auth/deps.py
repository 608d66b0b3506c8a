"""FastAPI dependencies that declare who may call an endpoint."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.auth.models import ApiKey
from marketplace.auth.repository import ApiKeyRepository, UserRepository, touch_api_key
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest, Forbidden, NotAuthenticated
from marketplace.core.idempotency import Idempotency, claim
from marketplace.core.principal import Principal
from marketplace.core.security import API_KEY_PREFIX, TokenError, decode_token, hash_api_key
from marketplace.core.text import Line

_bearer = HTTPBearer(auto_error=False, description="JWT access token or organisation API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def _principal_for_user(
    session: SessionDep, user_id: uuid.UUID, *, admins_need_two_factor: bool
) -> Principal | None:
    """``admins_need_two_factor`` (production): a platform admin without a confirmed second factor is loaded
    without admin power, so no admin check anywhere can forget the rule."""
    rows = await UserRepository(session).principal_rows(user_id)
    if not rows or not rows[0].is_active:
        return None
    first = rows[0]
    pending = bool(admins_need_two_factor and first.is_platform_admin and not first.two_factor)
    return Principal(
        user_id=user_id,
        memberships={row.org_id: row.role for row in rows if row.org_id is not None},
        is_platform_admin=first.is_platform_admin and not pending,
        admin_needs_two_factor=pending,
        locale=first.locale,
        email_verified=first.email_verified_at is not None,
    )


# ``api_keys.last_used_at`` moves at most once a minute, and never inside a request's transaction: an UPDATE
# there would hold the key's row lock until that request commits, serialising every parallel request made
# with the key. Instead a key whose stored time is over a minute old gets one conditional UPDATE on its own
# short connection, in the background; it skips a row another transaction has locked instead of waiting.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_touching: dict[uuid.UUID, asyncio.Task[None]] = {}  # one touch in flight per key (strong references)
log = logging.getLogger(__name__)


async def _touch_key(engine: AsyncEngine, key_id: uuid.UUID) -> None:
    try:
        async with engine.begin() as conn:
            await touch_api_key(conn, key_id)
    except Exception:  # bookkeeping only: never fails or delays a request
        log.warning("could not record the use of API key %s", key_id, exc_info=True)
    finally:
        _touching.pop(key_id, None)


def _note_key_use(engine: AsyncEngine | None, key: ApiKey) -> None:
    if engine is None or key.id in _touching:
        return
    if key.last_used_at is not None and key.last_used_at > datetime.now(UTC) - LAST_USED_RESOLUTION:
        return
    _touching[key.id] = asyncio.get_running_loop().create_task(_touch_key(engine, key.id))


async def _principal_for_key(session: SessionDep, secret: str, engine: AsyncEngine | None = None) -> Principal | None:
    key = await ApiKeyRepository(session).by_hash(hash_api_key(secret))
    if key is None or key.revoked_at is not None:
        return None
    _note_key_use(engine, key)
    return Principal(
        user_id=None,
        memberships={key.org_id: "member"},
        api_key_id=key.id,
        scopes=frozenset(key.scopes),
    )


async def get_optional_principal(
    request: Request,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Principal | None:
    settings = request.app.state.settings
    engine: AsyncEngine | None = getattr(request.app.state, "engine", None)
    if api_key:
        principal = await _principal_for_key(session, api_key, engine)
        if principal is None:
            raise NotAuthenticated("Invalid or revoked API key.")
        return principal
    if bearer is None:
        return None
    token = bearer.credentials
    if token.startswith(API_KEY_PREFIX):
        principal = await _principal_for_key(session, token, engine)
        if principal is None:
            raise NotAuthenticated("Invalid or revoked API key.")
        return principal
    try:
        user_id = decode_token(settings, token, "access")
    except TokenError as exc:
        raise NotAuthenticated(f"Invalid access token: {exc}.") from exc
    principal = await _principal_for_user(session, user_id, admins_need_two_factor=settings.environment == "production")
    if principal is None:
        raise NotAuthenticated("The account no longer exists or is disabled.")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise NotAuthenticated("Authentication required: send a Bearer token or an X-API-Key.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_user_principal(principal: CurrentPrincipal) -> Principal:
    if principal.user_id is None:
        raise Forbidden("This endpoint needs a signed-in user, not an API key.")
    return principal


CurrentUser = Annotated[Principal, Depends(get_user_principal)]


class TwoFactorRequired(Forbidden):
    code = "two_factor_required"


async def get_admin(principal: CurrentUser) -> Principal:
    """Platform admins only. In production an admin without two-factor sign-in was loaded without admin power
    (``_principal_for_user``): every admin check refuses; this one says why."""
    if principal.admin_needs_two_factor:
        raise TwoFactorRequired("Enable two-factor sign-in before using administrator functions.")
    if not principal.is_platform_admin:
        raise Forbidden("Platform administrators only.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(get_admin)]


def require_scope(scope: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """Dependency factory: the caller must be authenticated and hold ``scope``."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"This API key lacks the '{scope}' scope.")
        return principal

    return dependency


async def _idempotency(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        Line | None,
        Header(
            alias="Idempotency-Key",
            description="Unique per logical write (max 255 chars); replays return the first response.",
        ),
    ] = None,
) -> Idempotency:
    if not idempotency_key:
        raise BadRequest("This endpoint requires an Idempotency-Key header.")
    return await claim(request, session, scope=_idempotency_scope(principal), key=idempotency_key)


def _idempotency_scope(principal: Principal) -> str:
    """Keys are per caller: an API key's writes never replay a person's, and vice versa."""
    return f"key:{principal.api_key_id}" if principal.api_key_id else f"user:{principal.user_id}"


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def _optional_idempotency(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        Line | None,
        Header(alias="Idempotency-Key", description="Optional: makes a retried request safe."),
    ] = None,
) -> Idempotency | None:
    if not idempotency_key:
        return None
    return await claim(request, session, scope=_idempotency_scope(principal), key=idempotency_key)


OptionalIdempotencyDep = Annotated[Idempotency | None, Depends(_optional_idempotency)]
