"""Tables of quote requests (invitations) to factories and of the cascade's end.

A row of ``quote_invitations`` is one supplier organisation's engagement with one buyer request: asked by the
buyer (``via = 'buyer'``) or by the cascade (``'cascade'``) to quote within ``respond_by``, or, without an
invitation, quoting from the job board (``'board'``, recorded by :func:`marketplace.quotes.invitations.on_quoted`
so the cascade never asks an organisation that already quoted). One row per (request, organisation): the unique
constraint makes a redelivered cascade job a no-op.

Statuses::

    invited ──quote──▶ quoted
       │ ──decline──▶ declined
       │ ──respond_by passed──▶ lapsed
       └──request closed──▶ withdrawn
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import ts_column, utcnow


class InvitationStatus(StrEnum):
    invited = "invited"
    quoted = "quoted"
    declined = "declined"
    lapsed = "lapsed"
    withdrawn = "withdrawn"


class QuoteInvitation(SQLModel, table=True):
    __tablename__ = "quote_invitations"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('invited', 'quoted', 'declined', 'lapsed', 'withdrawn')", name="ck_quote_invitations_status"
        ),
        sa.CheckConstraint("via IN ('buyer', 'cascade', 'board')", name="ck_quote_invitations_via"),
        sa.UniqueConstraint("request_id", "supplier_org_id", name="uq_quote_invitations_request_org"),
        sa.Index("ix_quote_invitations_supplier", "supplier_org_id", "request_id"),
        sa.Index("ix_quote_invitations_due", "status", "respond_by"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID = Field(foreign_key="requests.id", ondelete="CASCADE")
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    asset_id: uuid.UUID | None = Field(default=None, foreign_key="assets.id", ondelete="SET NULL")
    rank: int | None = None
    status: str = Field(default=InvitationStatus.invited, max_length=16)
    via: str = Field(max_length=8)
    reason: str | None = Field(default=None, max_length=1000)
    invited_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    respond_by: datetime = Field(sa_column=ts_column())
    answered_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class CascadeEnd(SQLModel, table=True):
    """An auto-cascade request whose ranked matches were all asked: the buyer was told once, at ``exhausted_at``."""

    __tablename__ = "request_cascade_ends"

    request_id: uuid.UUID = Field(foreign_key="requests.id", primary_key=True, ondelete="CASCADE")
    exhausted_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
