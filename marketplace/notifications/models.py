"""Stored notifications and outbound webhooks: how the platform tells people and systems what happened."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, text_array_column, ts_column, utcnow


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_user_created", "user_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(max_length=50)
    subject: str = Field(max_length=300)
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    locale: str = Field(max_length=8)
    data: dict[str, Any] | None = Field(default=None, sa_column=jsonb_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    read_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    delivery_attempts: int = 0


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)  # shared HMAC key; shown once at creation
    events: list[str] = Field(default_factory=list, sa_column=text_array_column())
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_status"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id", index=True, ondelete="CASCADE")
    event: str = Field(max_length=50)
    payload: dict[str, Any] = Field(sa_column=jsonb_column(nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    delivered_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
