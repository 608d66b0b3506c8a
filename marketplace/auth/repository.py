from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.auth.models import ApiKey, EmailToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(sa.select(User).where(sa.func.lower(col(User.email)) == email.lower()))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def mark_verified(self, user_id: uuid.UUID) -> None:
        """Set ``email_verified_at`` (kept if already set)."""
        await self.session.execute(
            sa.update(User)
            .where(col(User.id) == user_id, col(User.email_verified_at).is_(None))
            .values(email_verified_at=sa.func.now())
        )

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(sa.update(User).where(col(User.id) == user_id).values(password_hash=password_hash))


class EmailTokenRepository:
    """Single-use e-mail links, looked up by the SHA-256 of the token."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *, user_id: uuid.UUID, purpose: str, token_hash: str, lifetime_seconds: int) -> None:
        await self.session.execute(
            sa.insert(EmailToken).values(
                id=uuid.uuid4(),
                user_id=user_id,
                purpose=purpose,
                token_hash=token_hash,
                expires_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lifetime_seconds),
            )
        )

    async def consume(self, *, purpose: str, token_hash: str) -> uuid.UUID | None:
        """Use the token once: one atomic UPDATE marks an unused, unexpired token used and returns its user;
        two concurrent uses of one link cannot both succeed (the second finds ``used_at`` set)."""
        result = await self.session.execute(
            sa.update(EmailToken)
            .where(
                col(EmailToken.token_hash) == token_hash,
                col(EmailToken.purpose) == purpose,
                col(EmailToken.used_at).is_(None),
                col(EmailToken.expires_at) > sa.func.now(),
            )
            .values(used_at=sa.func.now())
            .returning(col(EmailToken.user_id))
        )
        return result.scalar_one_or_none()

    async def is_open(self, *, purpose: str, token_hash: str) -> bool:
        """The token exists, is unused and unexpired."""
        result = await self.session.execute(
            sa.select(sa.literal(True)).where(
                col(EmailToken.token_hash) == token_hash,
                col(EmailToken.purpose) == purpose,
                col(EmailToken.used_at).is_(None),
                col(EmailToken.expires_at) > sa.func.now(),
            )
        )
        return result.scalar_one_or_none() is not None

    async def retire_open(self, *, user_id: uuid.UUID, purpose: str) -> None:
        """Mark every unused token of the user for this purpose used: only the newest link works."""
        await self.session.execute(
            sa.update(EmailToken)
            .where(
                col(EmailToken.user_id) == user_id,
                col(EmailToken.purpose) == purpose,
                col(EmailToken.used_at).is_(None),
            )
            .values(used_at=sa.func.now())
        )


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def list_for_org(self, org_id: uuid.UUID) -> list[ApiKey]:
        result = await self.session.execute(
            sa.select(ApiKey)
            .where(col(ApiKey.org_id) == org_id)
            .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
        )
        return list(result.scalars())

    async def get_for_org(self, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        result = await self.session.execute(
            sa.select(ApiKey).where(col(ApiKey.org_id) == org_id, col(ApiKey.id) == key_id)
        )
        return result.scalar_one_or_none()
