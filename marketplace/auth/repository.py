from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.auth.models import ApiKey, User


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
