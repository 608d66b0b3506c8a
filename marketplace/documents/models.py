"""Tables of the document store: documents (the bytes are stored once per SHA-256), what each document is
attached to, and the download log."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from marketplace.core.sqltypes import ts_column, utcnow


class Document(SQLModel, table=True):
    """One upload. Rows with the same ``sha256`` share one stored blob (key = the SHA-256 hex)."""

    __tablename__ = "documents"
    __table_args__ = (
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="ck_documents_sha256"),
        sa.CheckConstraint("size >= 0", name="ck_documents_size"),
        sa.Index("ix_documents_sha256", "sha256"),
        sa.Index("ix_documents_org_created", "org_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    org_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    name: str = Field(max_length=255)
    size: int = Field(sa_type=sa.BigInteger)
    content_type: str = Field(max_length=100)
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    deleted_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class DocumentLink(SQLModel, table=True):
    """A document attached to something of another room (``"booking"``, ``"request"``, ``"message"`` ...)."""

    __tablename__ = "document_links"
    __table_args__ = (sa.Index("ix_document_links_target", "target_kind", "target_id"),)

    document_id: uuid.UUID = Field(foreign_key="documents.id", ondelete="CASCADE", primary_key=True)
    target_kind: str = Field(max_length=32, primary_key=True)
    target_id: uuid.UUID = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))


class DocumentDownload(SQLModel, table=True):
    """Every download: through the API (signed in) or through a signed link."""

    __tablename__ = "document_downloads"
    __table_args__ = (
        sa.CheckConstraint("via IN ('api', 'link')", name="ck_document_downloads_via"),
        sa.Index("ix_document_downloads_document_at", "document_id", "at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(foreign_key="documents.id", ondelete="CASCADE")
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    org_id: uuid.UUID | None = Field(default=None, foreign_key="organisations.id", ondelete="SET NULL")
    at: datetime = Field(default_factory=utcnow, sa_column=ts_column(default_now=True))
    via: str = Field(max_length=8)
