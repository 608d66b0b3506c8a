"""request negotiation settings: audience (open / invited), auto-cascade, NDA required

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("audience", sa.String(length=8), server_default="open", nullable=False))
    op.add_column("requests", sa.Column("auto_cascade", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("requests", sa.Column("nda_required", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_check_constraint("ck_requests_audience", "requests", "audience IN ('open', 'invited')")


def downgrade() -> None:
    op.drop_constraint("ck_requests_audience", "requests", type_="check")
    op.drop_column("requests", "nda_required")
    op.drop_column("requests", "auto_cascade")
    op.drop_column("requests", "audience")
