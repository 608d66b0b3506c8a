"""Message threads between a buyer and a supplier organisation, per-user read marks, e-mail digest marks and
NDA acceptances (who accepted the platform NDA for which request, when, and which text version)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import ts_column, utcnow


class MessageThread(SQLModel, table=True):
    """One thread per (request, supplier organisation) and one per booking."""

    __tablename__ = "message_threads"
    __table_args__ = (
        sa.CheckConstraint("(request_id IS NULL) <> (booking_id IS NULL)", name="ck_message_threads_one_subject"),
        sa.UniqueConstraint("request_id", "supplier_org_id", name="uq_message_threads_request_supplier"),
        sa.UniqueConstraint("booking_id", name="uq_message_threads_booking"),
        sa.Index("ix_message_threads_buyer", "buyer_org_id", "last_message_at"),
        sa.Index("ix_message_threads_supplier", "supplier_org_id", "last_message_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    request_id: uuid.UUID | None = Field(default=None, foreign_key="requests.id", ondelete="CASCADE")
    booking_id: uuid.UUID | None = Field(default=None, foreign_key="bookings.id", ondelete="CASCADE")
    buyer_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    supplier_org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    last_message_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class Message(SQLModel, table=True):
    """A message; ``author_org_id`` is null for a platform admin handling a dispute."""

    __tablename__ = "messages"
    __table_args__ = (sa.Index("ix_messages_thread_created", "thread_id", "created_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    thread_id: uuid.UUID = Field(foreign_key="message_threads.id", ondelete="CASCADE")
    author_org_id: uuid.UUID | None = Field(default=None, foreign_key="organisations.id", ondelete="SET NULL")
    author_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    body: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class MessageRead(SQLModel, table=True):
    """How far a user has read a thread: every message created up to ``read_until``."""

    __tablename__ = "message_reads"

    thread_id: uuid.UUID = Field(foreign_key="message_threads.id", ondelete="CASCADE", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    read_until: datetime = Field(sa_column=ts_column())


class MessageDigestMark(SQLModel, table=True):
    """When a user was last sent the unread-messages digest (messages older than that are not mailed again)."""

    __tablename__ = "message_digest_marks"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    sent_at: datetime = Field(sa_column=ts_column())


class NdaAcceptance(SQLModel, table=True):
    """A supplier organisation accepted the platform NDA (text ``version``) for a request."""

    __tablename__ = "nda_acceptances"

    request_id: uuid.UUID = Field(foreign_key="requests.id", ondelete="CASCADE", primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE", primary_key=True)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    version: str = Field(max_length=20)
    accepted_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
