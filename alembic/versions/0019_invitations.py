"""quote requests (invitations) to factories, the cascade's ranked order

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quote_invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('invited', 'quoted', 'declined', 'lapsed', 'withdrawn')", name="ck_quote_invitations_status"
        ),
        sa.CheckConstraint("via IN ('buyer', 'cascade', 'board')", name="ck_quote_invitations_via"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["supplier_org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "supplier_org_id", name="uq_quote_invitations_request_org"),
    )
    op.create_index("ix_quote_invitations_supplier", "quote_invitations", ["supplier_org_id", "request_id"])
    op.create_index("ix_quote_invitations_due", "quote_invitations", ["status", "respond_by"])
    op.create_table(
        "request_cascade_ends",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("exhausted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("request_id"),
    )


def downgrade() -> None:
    op.drop_table("request_cascade_ends")
    op.drop_index("ix_quote_invitations_due", table_name="quote_invitations")
    op.drop_index("ix_quote_invitations_supplier", table_name="quote_invitations")
    op.drop_table("quote_invitations")
