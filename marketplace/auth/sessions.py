"""Sign-in sessions: stored, rotating, revocable refresh tokens. Takes a session; never commits.

A session is a *family* of ``refresh_tokens`` rows. ``/auth/token`` starts a family; ``/auth/refresh``
rotates (the presented row is marked ``replaced_by`` its successor, under a row lock so two refreshes with
one token cannot both succeed). A token presented after it was rotated is a stolen or leaked copy, or the
legitimate client replaying an old one: either way nobody can tell which holder is genuine, so the whole
family is revoked (OAuth 2.0 Security BCP, refresh-token rotation with reuse detection). A web sign-in is a
family of kind ``web`` whose id the session cookie carries; revoking it ends the web session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import RefreshToken
from marketplace.auth.sessions_repository import RefreshTokenRepository
from marketplace.core.errors import NotAuthenticated, NotFound
from marketplace.core.security import hash_refresh_token, new_refresh_token
from marketplace.core.sqltypes import utcnow


class RefreshTokenReused(NotAuthenticated):
    """This refresh token was already used. For safety the session it belonged to has been signed out;
    sign in again."""


class InvalidRefreshToken(NotAuthenticated):
    """Invalid, expired or revoked refresh token; sign in again."""


@dataclass(frozen=True)
class Issued:
    user_id: uuid.UUID
    family_id: uuid.UUID
    refresh_token: str


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


async def start(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str,
    lifetime: timedelta,
    user_agent: str | None,
    ip: str | None,
) -> Issued:
    """Start a new session (a new family) for the user."""
    token, token_hash = new_refresh_token()
    now = utcnow()
    family_id = uuid.uuid4()
    await RefreshTokenRepository(session).add(
        RefreshToken(
            family_id=family_id,
            user_id=user_id,
            kind=kind,
            token_hash=token_hash,
            started_at=now,
            created_at=now,
            last_used_at=now,
            expires_at=now + lifetime,
            user_agent=_clip(user_agent, 300),
            ip=_clip(ip, 64),
        )
    )
    return Issued(user_id=user_id, family_id=family_id, refresh_token=token)


async def rotate(
    session: AsyncSession,
    *,
    token: str,
    lifetime: timedelta,
    user_agent: str | None,
    ip: str | None,
    lock: bool = True,
) -> Issued:
    """Exchange a refresh token for a new one in the same family. Raises :class:`RefreshTokenReused` after
    revoking the family (flushed: the caller must commit before answering) when the token was already
    rotated; :class:`InvalidRefreshToken` for an unknown, expired or revoked token. ``lock=False`` only for
    the race test's control."""
    repo = RefreshTokenRepository(session)
    row = await repo.by_hash(hash_refresh_token(token), for_update=lock)
    now = utcnow()
    if row is None or row.kind != "api" or row.revoked_at is not None:
        raise InvalidRefreshToken()
    if row.replaced_by is not None:
        await repo.revoke_families(family_id=row.family_id, now=now)
        raise RefreshTokenReused()
    if row.expires_at <= now:
        raise InvalidRefreshToken()
    new_token, new_hash = new_refresh_token()
    successor = RefreshToken(
        family_id=row.family_id,
        user_id=row.user_id,
        kind="api",
        token_hash=new_hash,
        started_at=row.started_at,
        created_at=now,
        last_used_at=now,
        expires_at=now + lifetime,
        user_agent=_clip(user_agent, 300) or row.user_agent,
        ip=_clip(ip, 64) or row.ip,
    )
    await repo.add(successor)
    row.replaced_by = successor.id
    row.last_used_at = now
    await session.flush()
    return Issued(user_id=row.user_id, family_id=row.family_id, refresh_token=new_token)


async def revoke_by_token(session: AsyncSession, *, token: str) -> None:
    """Sign out the session a refresh token belongs to (any token of the family, current or rotated). An
    unknown token does nothing: the answer is the same either way."""
    repo = RefreshTokenRepository(session)
    row = await repo.by_hash(hash_refresh_token(token), for_update=False)
    if row is not None:
        await repo.revoke_families(family_id=row.family_id, now=utcnow())


async def revoke_family(session: AsyncSession, *, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
    """Sign out one of the user's sessions; 404 when it is not theirs or already ended."""
    revoked = await RefreshTokenRepository(session).revoke_families(user_id=user_id, family_id=family_id, now=utcnow())
    if not revoked:
        raise NotFound("Session not found.")


async def revoke_all(session: AsyncSession, *, user_id: uuid.UUID, except_family: uuid.UUID | None = None) -> int:
    """Revoke every refresh token (every session, API and web) of the user, but ``except_family`` (the
    caller's own session, e.g. after a password change); returns how many sessions were revoked."""
    revoked = await RefreshTokenRepository(session).revoke_families(
        user_id=user_id, except_family=except_family, now=utcnow()
    )
    return len(revoked)


async def active_sessions(session: AsyncSession, *, user_id: uuid.UUID) -> list[RefreshToken]:
    """The user's live sessions, newest first (one row per family: its current token)."""
    return await RefreshTokenRepository(session).live_for_user(user_id, now=utcnow())


async def web_session_is_live(session: AsyncSession, *, user_id: uuid.UUID, family_id: uuid.UUID) -> bool:
    return await RefreshTokenRepository(session).family_is_live(
        user_id=user_id, family_id=family_id, kind="web", now=utcnow()
    )
