"""Registration, sign-in, tokens, e-mail verification and passwords. Takes a session; never commits."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth import sessions
from marketplace.auth.models import User
from marketplace.auth.repository import EmailTokenRepository, UserRepository
from marketplace.auth.schemas import RegisterIn, TokenOut
from marketplace.core.errors import BadRequest, Conflict, InvalidCredentials, NotAuthenticated
from marketplace.core.jobs import enqueue
from marketplace.core.security import (
    create_access_token,
    hash_password,
    verify_password,
)
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.notifications import service as notifications
from marketplace.orgs import service as org_service
from marketplace.orgs.models import Organisation

logger = logging.getLogger(__name__)


class EmailTaken(Conflict):
    """An account with this e-mail already exists."""

    code = "email_taken"


async def register(session: AsyncSession, data: RegisterIn) -> tuple[User, Organisation | None]:
    users = UserRepository(session)
    email = data.email.lower()
    if await users.get_by_email(email) is not None:
        raise EmailTaken()
    user = await users.add(
        User(
            email=email,
            password_hash=hash_password(data.password),
            full_name=data.full_name,
            locale=data.locale,
        )
    )
    org = None
    if data.org is not None:
        org = await org_service.create_org(session, data.org, owner=user)
    # No invitation is accepted here: the address is unproven until the link in this e-mail is opened.
    await send_verification(session, user_id=user.id)
    return user, org


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await UserRepository(session).get_by_email(email.strip())
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise InvalidCredentials()
    if not user.is_active:
        raise InvalidCredentials("This account is disabled.")
    return user


async def issue_tokens(
    session: AsyncSession, *, settings: Settings, user: User, user_agent: str | None, ip: str | None
) -> TokenOut:
    """Start a new sign-in session (a refresh-token family) and return its first tokens."""
    issued = await sessions.start(
        session,
        user_id=user.id,
        kind="api",
        lifetime=timedelta(days=settings.refresh_token_days),
        user_agent=user_agent,
        ip=ip,
    )
    return TokenOut(
        access_token=create_access_token(settings, user.id),
        refresh_token=issued.refresh_token,
        expires_in=settings.access_token_minutes * 60,
    )


async def refresh(
    session: AsyncSession,
    *,
    settings: Settings,
    refresh_token: str,
    user_agent: str | None,
    ip: str | None,
    lock: bool = True,
) -> TokenOut:
    """Rotate the refresh token (see :mod:`marketplace.auth.sessions`). On reuse the family is revoked and
    :class:`sessions.RefreshTokenReused` raised: the caller commits that revocation before answering."""
    issued = await sessions.rotate(
        session,
        token=refresh_token,
        lifetime=timedelta(days=settings.refresh_token_days),
        user_agent=user_agent,
        ip=ip,
        lock=lock,
    )
    user = await UserRepository(session).get(issued.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("The account no longer exists or is disabled.")
    return TokenOut(
        access_token=create_access_token(settings, user.id),
        refresh_token=issued.refresh_token,
        expires_in=settings.access_token_minutes * 60,
    )


async def ensure_admin(
    session: AsyncSession, *, email: str, password: str, full_name: str = "Platform admin"
) -> tuple[User, bool]:
    """Create a platform admin, or promote an existing account. Returns ``(user, created)``.
    Idempotent: an existing admin keeps its password."""
    users = UserRepository(session)
    user = await users.get_by_email(email)
    if user is not None:
        user.is_platform_admin = True
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
        await session.flush()
        return user, False
    user = await users.add(
        User(
            email=email.lower(),
            password_hash=hash_password(password),
            full_name=full_name,
            locale="en",
            is_platform_admin=True,
            email_verified_at=utcnow(),  # the operator who runs create-admin vouches for the address
        )
    )
    return user, True


# -- e-mail links: verification and password reset -------------------------------------------------

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
LINK_LIFETIME_SECONDS = {VERIFY_EMAIL: 48 * 3600, RESET_PASSWORD: 3600}
# The web page each link opens (it posts the token to the API).
LINK_PATHS = {VERIFY_EMAIL: "/verify-email", RESET_PASSWORD: "/reset-password"}
SEND_LINK_TASK = "auth.send_email_link"


class InvalidEmailToken(BadRequest):
    """This link is invalid, already used or expired. Ask for a new one."""

    code = "invalid_token"


class WrongPassword(BadRequest):
    """The current password is not correct."""

    code = "wrong_password"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _issue_link(session: AsyncSession, *, user_id: uuid.UUID, purpose: str) -> None:
    """A new single-use link for ``purpose``; earlier unused links of that purpose stop working. The e-mail
    is sent by a job after commit; the clear token exists only in that job's arguments (the outbox row,
    deleted once relayed, and the broker message), never in a table."""
    tokens = EmailTokenRepository(session)
    await tokens.retire_open(user_id=user_id, purpose=purpose)
    token = secrets.token_urlsafe(32)
    await tokens.add(
        user_id=user_id,
        purpose=purpose,
        token_hash=_token_hash(token),
        lifetime_seconds=LINK_LIFETIME_SECONDS[purpose],
    )
    await enqueue(session, SEND_LINK_TASK, str(user_id), purpose, token)


async def send_verification(session: AsyncSession, *, user_id: uuid.UUID) -> bool:
    """Send a verification link unless the address is already verified; returns whether one was sent."""
    user = await UserRepository(session).get(user_id)
    if user is None or user.email_verified_at is not None or not user.is_active:
        return False
    await _issue_link(session, user_id=user.id, purpose=VERIFY_EMAIL)
    return True


async def verify_email(session: AsyncSession, *, token: str) -> User:
    """Use a verification link: the user's address is verified from now on."""
    user_id = await EmailTokenRepository(session).consume(purpose=VERIFY_EMAIL, token_hash=_token_hash(token))
    if user_id is None:
        raise InvalidEmailToken()
    users = UserRepository(session)
    await users.mark_verified(user_id)
    user = await users.get(user_id)
    if user is None:  # pragma: no cover - the token's row cascades with the user
        raise InvalidEmailToken()
    await session.refresh(user)
    return user


async def request_password_reset(session: AsyncSession, *, email: str) -> None:
    """Send a reset link to the account with this address, if there is an active one. The caller answers
    the same either way, so the endpoint does not reveal which addresses have accounts."""
    user = await UserRepository(session).get_by_email(email.strip())
    if user is None or not user.is_active:
        return
    await _issue_link(session, user_id=user.id, purpose=RESET_PASSWORD)


async def reset_password(session: AsyncSession, *, token: str, new_password: str) -> User:
    """Use a reset link: set the new password and revoke every session (refresh token) of the user. The link
    came to the address, so it also proves the address: an unverified user becomes verified."""
    user_id = await EmailTokenRepository(session).consume(purpose=RESET_PASSWORD, token_hash=_token_hash(token))
    if user_id is None:
        raise InvalidEmailToken()
    users = UserRepository(session)
    await users.set_password_hash(user_id, hash_password(new_password))
    await users.mark_verified(user_id)
    await EmailTokenRepository(session).retire_open(user_id=user_id, purpose=RESET_PASSWORD)
    await sessions.revoke_all(session, user_id=user_id)
    user = await users.get(user_id)
    if user is None:  # pragma: no cover - the token's row cascades with the user
        raise InvalidEmailToken()
    await session.refresh(user)
    return user


async def change_password(
    session: AsyncSession, *, user_id: uuid.UUID, current_password: str, new_password: str
) -> None:
    """A signed-in user changes their password; it needs the current one (a stolen access token alone cannot
    take the account over). Every refresh token of the user is revoked: other devices must sign in again."""
    users = UserRepository(session)
    user = await users.get(user_id)
    if user is None or not verify_password(current_password, user.password_hash):
        raise WrongPassword()
    await users.set_password_hash(user_id, hash_password(new_password))
    await EmailTokenRepository(session).retire_open(user_id=user_id, purpose=RESET_PASSWORD)
    await sessions.revoke_all(session, user_id=user_id)


async def set_locale(session: AsyncSession, *, user_id: uuid.UUID, locale: str) -> None:
    """Remember the user's chosen language (e-mails and the next sign-in use it). The caller has checked
    ``locale`` against the supported ones; a user that no longer exists is left alone."""
    user = await UserRepository(session).get(user_id)
    if user is not None:
        user.locale = locale
        await session.flush()


async def deliver_email_link(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, purpose: str, token: str
) -> bool:
    """The job behind :data:`SEND_LINK_TASK`: mail the link, unless it was used, replaced or expired in the
    meantime (then a retried job sends nothing). Returns whether an e-mail was sent."""
    if purpose not in LINK_PATHS:
        return False
    if not await EmailTokenRepository(session).is_open(purpose=purpose, token_hash=_token_hash(token)):
        return False
    user = await UserRepository(session).get(user_id)
    if user is None or not user.is_active:
        return False
    link = f"{settings.public_url.rstrip('/')}{LINK_PATHS[purpose]}?token={token}"
    subject, body = notifications.render(f"auth.{purpose}", user.locale, {"name": user.full_name, "link": link})
    try:
        notifications.send_email(settings, to=user.email, subject=subject, body=body)
    except OSError as exc:
        # The mail server is unreachable: try again in a minute, as long as the link is still open (so the
        # retries end when it expires: 48 hours for verification, 1 hour for a reset).
        logger.warning("e-mail link (%s) to user %s not sent (%s); retrying in 60 s", purpose, user_id, exc)
        await enqueue(session, SEND_LINK_TASK, str(user_id), purpose, token, delay_seconds=60)
        return False
    return True
