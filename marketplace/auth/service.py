"""Registration, sign-in and token refresh. Takes a session; never commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.auth.repository import UserRepository
from marketplace.auth.schemas import RegisterIn, TokenOut
from marketplace.auth.security import (
    TokenError,
    create_access_token,
    create_refresh_token,
    decode_token,
    hash_password,
    verify_password,
)
from marketplace.errors import Conflict, InvalidCredentials, NotAuthenticated
from marketplace.orgs import service as org_service
from marketplace.orgs.models import Organisation
from marketplace.settings import Settings
from marketplace.sqltypes import utcnow


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
    await org_service.accept_invitations(session, user, now=utcnow())
    return user, org


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await UserRepository(session).get_by_email(email.strip())
    if not verify_password(password, user.password_hash if user else None) or user is None:
        raise InvalidCredentials()
    if not user.is_active:
        raise InvalidCredentials("This account is disabled.")
    return user


def issue_tokens(settings: Settings, user: User) -> TokenOut:
    return TokenOut(
        access_token=create_access_token(settings, user.id),
        refresh_token=create_refresh_token(settings, user.id),
        expires_in=settings.access_token_minutes * 60,
    )


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> TokenOut:
    try:
        user_id = decode_token(settings, refresh_token, "refresh")
    except TokenError as exc:
        raise NotAuthenticated(f"Invalid refresh token: {exc}.") from exc
    user = await UserRepository(session).get(user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("The account no longer exists or is disabled.")
    return issue_tokens(settings, user)


async def ensure_admin(
    session: AsyncSession, email: str, password: str, full_name: str = "Platform admin"
) -> tuple[User, bool]:
    """Create a platform admin, or promote an existing account. Returns ``(user, created)``.
    Idempotent: an existing admin keeps its password."""
    users = UserRepository(session)
    user = await users.get_by_email(email)
    if user is not None:
        user.is_platform_admin = True
        await session.flush()
        return user, False
    user = await users.add(
        User(
            email=email.lower(),
            password_hash=hash_password(password),
            full_name=full_name,
            locale="en",
            is_platform_admin=True,
        )
    )
    return user, True
