from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from marketplace.auth.models import ApiKey, EmailToken, User, UserTotp
from marketplace.orgs.models import Membership

# Every authenticated request loads its principal: one round trip for the user and their memberships (one
# row per membership; a single row with a NULL organisation when there is none), built once.
_PRINCIPAL_ROWS = (
    sa.select(
        col(User.is_active),
        col(User.is_platform_admin),
        col(User.locale),
        col(User.email_verified_at),
        sa.exists()
        .where(col(UserTotp.user_id) == col(User.id), col(UserTotp.confirmed_at).isnot(None))
        .label("two_factor"),
        col(Membership.org_id),
        col(Membership.role),
    )
    .select_from(User)
    .outerjoin(Membership, col(Membership.user_id) == col(User.id))
    .where(col(User.id) == sa.bindparam("user_id"))
)

# Moves ``last_used_at`` at most once a minute, and skips a row another transaction has locked instead of
# waiting (see marketplace.auth.deps for why it runs on its own short connection).
_TOUCH_KEY = sa.text(
    """
    UPDATE api_keys SET last_used_at = now()
     WHERE id = (SELECT id FROM api_keys
                  WHERE id = :id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                  FOR UPDATE SKIP LOCKED)
    """
).bindparams(sa.bindparam("id", type_=sa.Uuid()))


async def touch_api_key(conn: AsyncConnection, key_id: uuid.UUID) -> None:
    await conn.execute(_TOUCH_KEY, {"id": key_id})


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def principal_rows(self, user_id: uuid.UUID) -> Sequence[Any]:
        """The user's flags (``is_active``, ``is_platform_admin``, ``locale``, ``email_verified_at``,
        ``two_factor``) on every row, one row per membership (``org_id``, ``role``; NULL when there is none)."""
        return (await self.session.execute(_PRINCIPAL_ROWS, {"user_id": user_id})).all()

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

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        result = await self.session.execute(sa.select(ApiKey).where(col(ApiKey.key_hash) == key_hash))
        return result.scalar_one_or_none()

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


class TotpRepository:
    """The user's TOTP row. Accepting a code and using a recovery code are single conditional UPDATEs, so two
    concurrent sign-ins cannot both use the same code."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> UserTotp | None:
        result = await self.session.execute(sa.select(UserTotp).where(col(UserTotp.user_id) == user_id))
        return result.scalar_one_or_none()

    async def is_enabled(self, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            sa.select(sa.literal(True)).where(col(UserTotp.user_id) == user_id, col(UserTotp.confirmed_at).is_not(None))
        )
        return result.scalar_one_or_none() is not None

    async def start(self, user_id: uuid.UUID, secret: str) -> None:
        """A new, unconfirmed setup; replaces an earlier unconfirmed one, never a confirmed one."""
        stmt = pg_insert(UserTotp).values(user_id=user_id, secret=secret)
        stmt = stmt.on_conflict_do_update(
            index_elements=[col(UserTotp.user_id)],
            set_={"secret": stmt.excluded.secret, "created_at": sa.func.now(), "last_step": None},
            where=col(UserTotp.confirmed_at).is_(None),
        )
        await self.session.execute(stmt)

    async def accept_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record ``step`` as used; False when it (or a later one) was already used."""
        result = await self.session.execute(
            sa.update(UserTotp)
            .where(
                col(UserTotp.user_id) == user_id,
                sa.or_(col(UserTotp.last_step).is_(None), col(UserTotp.last_step) < step),
            )
            .values(last_step=step)
            .returning(col(UserTotp.user_id))
        )
        return result.scalar_one_or_none() is not None

    async def confirm(self, user_id: uuid.UUID, recovery_code_hashes: list[str]) -> None:
        await self.session.execute(
            sa.update(UserTotp)
            .where(col(UserTotp.user_id) == user_id)
            .values(confirmed_at=sa.func.now(), recovery_code_hashes=recovery_code_hashes)
        )

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: str) -> bool:
        result = await self.session.execute(
            sa.update(UserTotp)
            .where(
                col(UserTotp.user_id) == user_id,
                col(UserTotp.confirmed_at).is_not(None),
                col(UserTotp.recovery_code_hashes).any_() == code_hash,
            )
            .values(recovery_code_hashes=sa.func.array_remove(col(UserTotp.recovery_code_hashes), code_hash))
            .returning(col(UserTotp.user_id))
        )
        return result.scalar_one_or_none() is not None

    async def delete(self, user_id: uuid.UUID) -> None:
        await self.session.execute(sa.delete(UserTotp).where(col(UserTotp.user_id) == user_id))
