"""transactional outbox: jobs are rows written in the same transaction as the change that causes them

Hand-written. ``outbox`` holds jobs until the relay (``marketplace relay``) sends them to Celery and deletes
them. A statement-level trigger notifies channel ``outbox`` on insert; PostgreSQL delivers a NOTIFY only
when the inserting transaction commits (and folds duplicates within one transaction into one), so the relay
wakes for committed work only and a rolled-back job is never seen.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("args", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["due_at", "id"], unique=False)
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tr_outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
