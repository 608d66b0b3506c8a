"""message threads, messages, read marks, digest marks and NDA acceptances

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, default_now: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()") if default_now else None, nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "message_threads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("booking_id", sa.Uuid(), nullable=True),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        _ts("created_at", default_now=True),
        _ts("last_message_at", default_now=True),
        sa.CheckConstraint("(request_id IS NULL) <> (booking_id IS NULL)", name="ck_message_threads_one_subject"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["buyer_org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["supplier_org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "supplier_org_id", name="uq_message_threads_request_supplier"),
        sa.UniqueConstraint("booking_id", name="uq_message_threads_booking"),
    )
    op.create_index("ix_message_threads_buyer", "message_threads", ["buyer_org_id", "last_message_at"])
    op.create_index("ix_message_threads_supplier", "message_threads", ["supplier_org_id", "last_message_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.Column("author_org_id", sa.Uuid(), nullable=True),
        sa.Column("author_user_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        _ts("created_at", default_now=True),
        sa.ForeignKeyConstraint(["thread_id"], ["message_threads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_org_id"], ["organisations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_thread_created", "messages", ["thread_id", "created_at", "id"])
    op.create_table(
        "message_reads",
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        _ts("read_until"),
        sa.ForeignKeyConstraint(["thread_id"], ["message_threads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("thread_id", "user_id"),
    )
    op.create_table(
        "message_digest_marks",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        _ts("sent_at"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "nda_acceptances",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.String(length=20), nullable=False),
        _ts("accepted_at", default_now=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("request_id", "org_id"),
    )


def downgrade() -> None:
    op.drop_table("nda_acceptances")
    op.drop_table("message_digest_marks")
    op.drop_table("message_reads")
    op.drop_index("ix_messages_thread_created", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_message_threads_supplier", table_name="message_threads")
    op.drop_index("ix_message_threads_buyer", table_name="message_threads")
    op.drop_table("message_threads")
