from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.auth.models import User
from marketplace.orgs.models import Membership, Organisation, OrgInvitation


class OrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, org_id: uuid.UUID, *, for_update: bool = False) -> Organisation | None:
        stmt = sa.select(Organisation).where(col(Organisation.id) == org_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, org: Organisation) -> Organisation:
        self.session.add(org)
        await self.session.flush()
        return org

    async def uscc_taken(self, uscc: str, *, exclude: uuid.UUID | None = None) -> bool:
        stmt = sa.select(col(Organisation.id)).where(col(Organisation.uscc) == uscc)
        if exclude is not None:
            stmt = stmt.where(col(Organisation.id) != exclude)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def list_by_status(
        self, status: str | None, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Organisation]:
        stmt = sa.select(Organisation)
        if status:
            stmt = stmt.where(col(Organisation.verification_status) == status)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Organisation.created_at), col(Organisation.id)) > sa.tuple_(*after))
        stmt = stmt.order_by(col(Organisation.created_at), col(Organisation.id)).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def memberships_of(self, user_id: uuid.UUID) -> list[tuple[Organisation, str]]:
        rows = await self.session.execute(
            sa.select(Organisation, col(Membership.role))
            .join(Membership, col(Membership.org_id) == col(Organisation.id))
            .where(col(Membership.user_id) == user_id)
            .order_by(col(Organisation.created_at))
        )
        return [(org, role) for org, role in rows.all()]

    async def add_membership(self, org_id: uuid.UUID, user_id: uuid.UUID, role: str) -> Membership:
        """A new membership; an existing one is returned unchanged (roles change only through
        ``set_role``, which keeps an owner)."""
        existing = await self.session.get(Membership, (org_id, user_id))
        if existing is not None:
            return existing
        membership = Membership(org_id=org_id, user_id=user_id, role=role)
        self.session.add(membership)
        await self.session.flush()
        return membership

    async def lock_owners(self, org_id: uuid.UUID) -> None:
        """Serialise changes to the organisation's owners (the database trigger takes the same row lock)."""
        await self.session.execute(
            sa.select(col(Organisation.id)).where(col(Organisation.id) == org_id).with_for_update(key_share=True)
        )

    async def set_role(self, membership: Membership, role: str) -> Membership:
        membership.role = role
        await self.session.flush()
        return membership

    async def get_membership(self, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        return await self.session.get(Membership, (org_id, user_id))

    async def count_owners(self, org_id: uuid.UUID) -> int:
        result = await self.session.execute(
            sa.select(sa.func.count()).where(col(Membership.org_id) == org_id, col(Membership.role) == "owner")
        )
        return int(result.scalar_one())

    async def delete_membership(self, membership: Membership) -> None:
        await self.session.delete(membership)
        await self.session.flush()

    async def members(self, org_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.session.execute(
            sa.select(
                col(User.id),
                col(User.email),
                col(User.full_name),
                col(Membership.role),
                col(Membership.created_at),
            )
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.org_id) == org_id)
            .order_by(col(Membership.created_at))
        )
        return [
            {
                "user_id": uid,
                "email": email,
                "full_name": name,
                "role": role,
                "status": "active",
                "created_at": created,
            }
            for uid, email, name, role, created in rows.all()
        ]

    async def member_with_email(self, org_id: uuid.UUID, email: str) -> bool:
        stmt = (
            sa.select(col(Membership.user_id))
            .join(User, col(User.id) == col(Membership.user_id))
            .where(col(Membership.org_id) == org_id, sa.func.lower(col(User.email)) == email.lower())
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def open_invitations(self, org_id: uuid.UUID) -> list[OrgInvitation]:
        rows = await self.session.execute(
            sa.select(OrgInvitation)
            .where(col(OrgInvitation.org_id) == org_id, col(OrgInvitation.accepted_at).is_(None))
            .order_by(col(OrgInvitation.created_at), col(OrgInvitation.id))
        )
        return list(rows.scalars())

    async def pending_invitations_for_email(self, email: str, *, now: datetime) -> list[tuple[OrgInvitation, str]]:
        """Open, unexpired invitations of an e-mail address, with the organisation's name."""
        rows = await self.session.execute(
            sa.select(OrgInvitation, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(OrgInvitation.org_id))
            .where(
                sa.func.lower(col(OrgInvitation.email)) == email.lower(),
                col(OrgInvitation.accepted_at).is_(None),
                col(OrgInvitation.expires_at) > now,
            )
            .order_by(col(OrgInvitation.created_at))
        )
        return [(inv, name) for inv, name in rows.all()]

    async def get_invitation(
        self, invitation_id: uuid.UUID, *, org_id: uuid.UUID | None = None, for_update: bool = False
    ) -> OrgInvitation | None:
        stmt = sa.select(OrgInvitation).where(
            col(OrgInvitation.id) == invitation_id, col(OrgInvitation.accepted_at).is_(None)
        )
        if org_id is not None:
            stmt = stmt.where(col(OrgInvitation.org_id) == org_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def invitation_by_token_hash(self, token_hash: str) -> OrgInvitation | None:
        stmt = (
            sa.select(OrgInvitation)
            .where(col(OrgInvitation.token_hash) == token_hash, col(OrgInvitation.accepted_at).is_(None))
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_invitation_for(self, org_id: uuid.UUID, email: str) -> OrgInvitation | None:
        stmt = (
            sa.select(OrgInvitation)
            .where(
                col(OrgInvitation.org_id) == org_id,
                sa.func.lower(col(OrgInvitation.email)) == email.lower(),
                col(OrgInvitation.accepted_at).is_(None),
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add_invitation(self, invitation: OrgInvitation) -> OrgInvitation:
        self.session.add(invitation)
        await self.session.flush()
        return invitation

    async def delete_invitation(self, invitation: OrgInvitation) -> None:
        await self.session.delete(invitation)
        await self.session.flush()

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> list[Organisation]:
        """The organisations among ``ids`` in id order, in one query (missing ids are left out)."""
        wanted = set(ids)
        if not wanted:
            return []
        stmt = sa.select(Organisation).where(col(Organisation.id).in_(wanted)).order_by(col(Organisation.id))
        return list((await self.session.execute(stmt)).scalars())

    async def names(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Organisation names by id for the ids a page shows, in one query."""
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(col(Organisation.id), col(Organisation.name)).where(col(Organisation.id).in_(wanted))
        )
        return {org_id: name for org_id, name in rows.all()}
