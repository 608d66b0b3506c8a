"""SQL for sign-in sessions (``refresh_tokens``)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.auth.models import RefreshToken


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> RefreshToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def by_hash(self, token_hash: str, *, for_update: bool) -> RefreshToken | None:
        """The row of a presented token. ``for_update`` locks it, so two refreshes with one token queue up
        and the second sees the first's rotation."""
        stmt = sa.select(RefreshToken).where(col(RefreshToken.token_hash) == token_hash)
        if for_update:
            stmt = stmt.with_for_update()
        # populate_existing: a row already in the session is refreshed with what the lock read.
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_families(
        self,
        *,
        user_id: uuid.UUID | None = None,
        family_id: uuid.UUID | None = None,
        except_family: uuid.UUID | None = None,
        now: datetime,
    ) -> list[uuid.UUID]:
        """Revoke every live row of the matching families; returns the families that had live rows."""
        if user_id is None and family_id is None:
            raise ValueError("revoke_families needs a user or a family")
        stmt = sa.update(RefreshToken).where(col(RefreshToken.revoked_at).is_(None)).values(revoked_at=now)
        if user_id is not None:
            stmt = stmt.where(col(RefreshToken.user_id) == user_id)
        if family_id is not None:
            stmt = stmt.where(col(RefreshToken.family_id) == family_id)
        if except_family is not None:
            stmt = stmt.where(col(RefreshToken.family_id) != except_family)
        result = await self.session.execute(
            stmt.returning(col(RefreshToken.family_id)).execution_options(synchronize_session=False)
        )
        return sorted(set(result.scalars()))

    async def live_for_user(self, user_id: uuid.UUID, *, now: datetime) -> list[RefreshToken]:
        """The current token of each of the user's live sessions (not revoked, not rotated, not expired)."""
        result = await self.session.execute(
            sa.select(RefreshToken)
            .where(
                col(RefreshToken.user_id) == user_id,
                col(RefreshToken.revoked_at).is_(None),
                col(RefreshToken.replaced_by).is_(None),
                col(RefreshToken.expires_at) > now,
            )
            .order_by(col(RefreshToken.started_at).desc(), col(RefreshToken.id))
        )
        return list(result.scalars())

    async def family_is_live(self, *, user_id: uuid.UUID, family_id: uuid.UUID, kind: str, now: datetime) -> bool:
        result = await self.session.execute(
            sa.select(sa.literal(True))
            .where(
                col(RefreshToken.family_id) == family_id,
                col(RefreshToken.user_id) == user_id,
                col(RefreshToken.kind) == kind,
                col(RefreshToken.revoked_at).is_(None),
                col(RefreshToken.replaced_by).is_(None),
                col(RefreshToken.expires_at) > now,
            )
            .limit(1)
        )
        return result.scalar_one_or_none() is not None
