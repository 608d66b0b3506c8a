from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.sqltypes import text_array_column, ts_column, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        # E-mail is unique regardless of case; we also store it lower-cased.
        sa.Index("uq_users_email_lower", sa.func.lower(sa.text("email")), unique=True),
        sa.CheckConstraint("locale IN ('zh-CN', 'en')", name="ck_users_locale"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320)
    password_hash: str = Field(max_length=255)
    full_name: str = Field(max_length=200)
    locale: str = Field(default="en", max_length=8)
    is_platform_admin: bool = Field(default=False)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class ApiKey(SQLModel, table=True):
    """An organisation's integration credential. Only a SHA-256 of the secret is stored; the secret is
    shown once at creation. Keys are 256-bit random, so a fast hash is enough (no brute force)."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(default_factory=list, sa_column=text_array_column())
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    last_used_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
