"""All SQL of notifications and webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from marketplace.auth.models import User
from marketplace.notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from marketplace.orgs.models import Membership

# Built once: every booking event asks it (the booking's hot path, issue #19).
_ACTIVE_ENDPOINTS = sa.select(WebhookEndpoint).where(
    col(WebhookEndpoint.org_id).in_(sa.bindparam("org_ids", expanding=True)), col(WebhookEndpoint.active)
)


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_member_locales(self, org_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """Each active member of the organisation with the locale its notifications are written in."""
        rows = await self.session.execute(
            sa.select(col(User.id), col(User.locale))
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(col(Membership.org_id) == org_id, col(User.is_active))
        )
        return [(user_id, locale) for user_id, locale in rows.all()]

    async def add(self, note: Notification) -> Notification:
        self.session.add(note)
        await self.session.flush()
        return note

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        return await self.session.get(Notification, notification_id)

    async def with_email_for_update(self, notification_id: uuid.UUID) -> tuple[Notification, str] | None:
        """The notification (locked, so two workers never both send it) and its recipient's address."""
        row = (
            await self.session.execute(
                sa.select(Notification, col(User.email))
                .join(User, col(User.id) == col(Notification.user_id))
                .where(col(Notification.id) == notification_id)
                .with_for_update(of=Notification)  # type: ignore[arg-type]
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def page(
        self, user_id: uuid.UUID | None, *, unread: bool, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Notification]:
        """A user's notifications, newest first, after the keyset cursor ``after``."""
        stmt = sa.select(Notification).where(col(Notification.user_id) == user_id)
        if unread:
            stmt = stmt.where(col(Notification.read_at).is_(None))
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Notification.created_at), col(Notification.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(Notification.created_at).desc(), col(Notification.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def mark_all_read(self, user_id: uuid.UUID | None, at: datetime) -> int:
        result = await self.session.execute(
            sa.update(Notification)
            .where(col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
            .values(read_at=at)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def unread_count(self, user_id: uuid.UUID | None) -> int:
        stmt = sa.select(sa.func.count()).where(
            col(Notification.user_id) == user_id, col(Notification.read_at).is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint

    async def get(self, webhook_id: uuid.UUID) -> WebhookEndpoint | None:
        return await self.session.get(WebhookEndpoint, webhook_id)

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)
        await self.session.flush()

    async def active_for(self, org_ids: Sequence[uuid.UUID]) -> list[WebhookEndpoint]:
        rows = await self.session.execute(_ACTIVE_ENDPOINTS, {"org_ids": list(org_ids)})
        return list(rows.scalars())

    async def add_delivery(self, delivery: WebhookDelivery) -> WebhookDelivery:
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def delivery_for_update(self, delivery_id: uuid.UUID) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
        """The delivery (locked: one attempt at a time) with its endpoint."""
        row = (
            await self.session.execute(
                sa.select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
                .where(col(WebhookDelivery.id) == delivery_id)
                .with_for_update(of=WebhookDelivery)  # type: ignore[arg-type]
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def with_recent_deliveries(
        self, org_id: uuid.UUID, *, per_endpoint: int = 50
    ) -> list[tuple[WebhookEndpoint, list[WebhookDelivery]]]:
        """The organisation's endpoints (oldest first), each with its newest ``per_endpoint`` deliveries
        (newest first), in one query: a LATERAL subquery per endpoint, not one query per endpoint."""
        recent_q = (
            sa.select(WebhookDelivery)
            .where(col(WebhookDelivery.endpoint_id) == col(WebhookEndpoint.id))
            .order_by(col(WebhookDelivery.created_at).desc())
            .limit(per_endpoint)
            .lateral("recent")
        )
        recent = aliased(WebhookDelivery, recent_q)
        rows = await self.session.execute(
            sa.select(WebhookEndpoint, recent)
            .select_from(WebhookEndpoint)
            .outerjoin(recent_q, sa.true())
            .where(col(WebhookEndpoint.org_id) == org_id)
            .order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id), recent_q.c.created_at.desc())
        )
        out: dict[uuid.UUID, tuple[WebhookEndpoint, list[WebhookDelivery]]] = {}
        for endpoint, delivery in rows.all():
            _, deliveries = out.setdefault(endpoint.id, (endpoint, []))
            if delivery is not None:
                deliveries.append(delivery)
        return list(out.values())
