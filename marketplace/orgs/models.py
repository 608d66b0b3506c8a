from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import jsonb_column, text_array_column, ts_column, utcnow


class OrgRole(StrEnum):
    supplier = "supplier"
    buyer = "buyer"
    programme = "programme"  # a voucher programme's operator (issue #18): a bureau or a park operator


class VerificationStatus(StrEnum):
    unverified = "unverified"
    pending = "pending"
    verified = "verified"
    rejected = "rejected"


class MemberRole(StrEnum):
    owner = "owner"
    member = "member"


class Organisation(SQLModel, table=True):
    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint(
            "verification_status IN ('unverified', 'pending', 'verified', 'rejected')",
            name="ck_organisations_verification_status",
        ),
        sa.CheckConstraint("roles <@ ARRAY['supplier', 'buyer', 'programme']::text[]", name="ck_organisations_roles"),
        sa.CheckConstraint("cardinality(roles) > 0", name="ck_organisations_roles_nonempty"),
        sa.Index("uq_organisations_uscc", "uscc", unique=True, postgresql_where=sa.text("uscc IS NOT NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    legal_name: str | None = Field(default=None, max_length=300)
    country: str = Field(max_length=2)
    uscc: str | None = Field(default=None, max_length=18)
    roles: list[str] = Field(default_factory=list, sa_column=text_array_column())
    verification_status: str = Field(default=VerificationStatus.unverified, max_length=16, index=True)
    verification_reason: str | None = Field(default=None, max_length=1000)
    verification_submitted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    verification_decided_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    verification_documents: dict[str, Any] | None = Field(default=None, sa_column=jsonb_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (sa.CheckConstraint("role IN ('owner', 'member')", name="ck_memberships_role"),)

    org_id: uuid.UUID = Field(foreign_key="organisations.id", primary_key=True, ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="users.id", primary_key=True, index=True, ondelete="CASCADE")
    role: str = Field(default=MemberRole.member, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


INVITATION_LIFETIME_DAYS = 7


class OrgInvitation(SQLModel, table=True):
    """An owner's invitation of an e-mail address. Nobody joins until the holder of that address accepts it:
    with the link's token (only its SHA-256 is stored; a resend replaces it) or, signed in with that verified
    address, from their list of pending invitations. Revoking deletes the row."""

    __tablename__ = "org_invitations"
    __table_args__ = (
        sa.Index(
            "uq_org_invitations_open",
            "org_id",
            "email",
            unique=True,
            postgresql_where=sa.text("accepted_at IS NULL"),
        ),
        sa.CheckConstraint("role IN ('owner', 'member')", name="ck_org_invitations_role"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    email: str = Field(max_length=320, index=True)
    role: str = Field(default=MemberRole.member, max_length=16)
    invited_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    accepted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    expires_at: datetime = Field(sa_column=ts_column())
