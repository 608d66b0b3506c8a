"""FastAPI dependencies that declare who may call an endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import col

from marketplace.auth.models import ApiKey, User
from marketplace.auth.principal import Principal
from marketplace.auth.security import API_KEY_PREFIX, TokenError, decode_token, hash_api_key
from marketplace.db import SessionDep
from marketplace.errors import Forbidden, NotAuthenticated
from marketplace.orgs.models import Membership

_bearer = HTTPBearer(auto_error=False, description="JWT access token or organisation API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


# Every authenticated request loads its principal: one round trip for the user and their memberships (one
# row per membership; a single row with a NULL organisation when there is none), built once.
_PRINCIPAL_ROWS = (
    sa.select(
        col(User.is_active),
        col(User.is_platform_admin),
        col(User.locale),
        col(Membership.org_id),
        col(Membership.role),
    )
    .select_from(User)
    .outerjoin(Membership, col(Membership.user_id) == col(User.id))
    .where(col(User.id) == sa.bindparam("user_id"))
)


async def _principal_for_user(session: SessionDep, user_id: uuid.UUID) -> Principal | None:
    rows = (await session.execute(_PRINCIPAL_ROWS, {"user_id": user_id})).all()
    if not rows or not rows[0].is_active:
        return None
    first = rows[0]
    return Principal(
        user_id=user_id,
        memberships={row.org_id: row.role for row in rows if row.org_id is not None},
        is_platform_admin=first.is_platform_admin,
        locale=first.locale,
    )


async def _principal_for_key(session: SessionDep, secret: str) -> Principal | None:
    key = (
        await session.execute(sa.select(ApiKey).where(col(ApiKey.key_hash) == hash_api_key(secret)))
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    await session.execute(sa.update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=datetime.now(UTC)))
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
    if api_key:
        principal = await _principal_for_key(session, api_key)
        if principal is None:
            raise NotAuthenticated("Invalid or revoked API key.")
        return principal
    if bearer is None:
        return None
    token = bearer.credentials
    if token.startswith(API_KEY_PREFIX):
        principal = await _principal_for_key(session, token)
        if principal is None:
            raise NotAuthenticated("Invalid or revoked API key.")
        return principal
    try:
        user_id = decode_token(settings, token, "access")
    except TokenError as exc:
        raise NotAuthenticated(f"Invalid access token: {exc}.") from exc
    principal = await _principal_for_user(session, user_id)
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


async def get_admin(principal: CurrentUser) -> Principal:
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
