from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import text_array_column, ts_column, utcnow


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
    # When the person proved they read this address (the link of the verification e-mail); NULL: not yet.
    email_verified_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


EMAIL_TOKEN_PURPOSES = ("verify_email", "reset_password")


class EmailToken(SQLModel, table=True):
    """A single-use link sent by e-mail. Only the SHA-256 of the 256-bit random token is stored, so a copy
    of the database cannot be turned into working links; ``used_at`` makes it single-use, ``expires_at``
    bounds its life."""

    __tablename__ = "email_tokens"
    __table_args__ = (
        sa.CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="ck_email_tokens_purpose"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    expires_at: datetime = Field(sa_column=ts_column())
    used_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


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


REFRESH_TOKEN_KINDS = ("api", "web")


class RefreshToken(SQLModel, table=True):
    """One sign-in session is a *family* of refresh tokens: each refresh rotates the token (the old row gets
    ``replaced_by``, a new row joins the family). Presenting a token that was already rotated means a copy
    is in someone else's hands: the whole family is revoked. Only the SHA-256 of the 256-bit random token is
    stored. A web sign-in is a family of kind ``web`` with one row whose token is never handed out: the
    session cookie carries the family id, and revoking the family ends the web session."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('api', 'web')", name="ck_refresh_tokens_kind"),
        # The sessions list and revoke-all read the user's live rows.
        sa.Index("ix_refresh_tokens_user_live", "user_id", postgresql_where=sa.text("revoked_at IS NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(default="api", max_length=8)
    token_hash: str = Field(max_length=64, unique=True)
    # When the family (the session) began; copied to each rotated token.
    started_at: datetime = Field(sa_column=ts_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    last_used_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    expires_at: datetime = Field(sa_column=ts_column())
    revoked_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    replaced_by: uuid.UUID | None = Field(default=None)
    user_agent: str | None = Field(default=None, max_length=300)
    ip: str | None = Field(default=None, max_length=64)


class UserTotp(SQLModel, table=True):
    """A user's TOTP second factor (RFC 6238). A row with ``confirmed_at`` NULL is a setup in progress (the
    secret was shown once, as a QR code); once confirmed the secret is never returned again. ``last_step`` is
    the 30-second step of the last code accepted: a code of that step or an earlier one is refused, so a
    code cannot be replayed. Only SHA-256 hashes of the (random, 50-bit) recovery codes are stored; using
    one removes its hash."""

    __tablename__ = "user_totp"

    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    secret: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    confirmed_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    last_step: int | None = Field(default=None, sa_type=sa.BigInteger)
    recovery_code_hashes: list[str] = Field(default_factory=list, sa_column=text_array_column())
