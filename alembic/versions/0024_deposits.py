"""deposits and milestones: a listing's deposit, a quote's milestones, a booking's payment schedule

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 02:20:00

Issue #18 item 4. Reviewed by hand:
* ``assets.deposit_percent`` (NULL: no deposit) with ``ck_assets_deposit_percent`` (1..90).
* ``quote_versions.milestones`` (NULL: none): ``[{"label", "percent"}]``, checked by the API (2..6, sum 100).
* ``bookings.instalments`` (NULL: one invoice for the whole amount, as before): the schedule snapshotted at
  placement.
* ``invoices.instalment`` (0: the whole-booking invoice, every existing invoice): the unique
  ``invoices_booking_id_key`` becomes ``uq_invoices_booking_instalment`` (booking_id, instalment); its index
  still serves lookups by booking. The downgrade fails if a booking has more than one invoice (it would lose
  money records): delete them by hand first, deliberately.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("deposit_percent", sa.SmallInteger(), nullable=True))
    op.create_check_constraint(
        "ck_assets_deposit_percent", "assets", "deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 90"
    )
    op.add_column("quote_versions", sa.Column("milestones", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("bookings", sa.Column("instalments", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("invoices", sa.Column("instalment", sa.SmallInteger(), server_default="0", nullable=False))
    op.create_check_constraint("ck_invoices_instalment", "invoices", "instalment >= 0")
    op.create_unique_constraint("uq_invoices_booking_instalment", "invoices", ["booking_id", "instalment"])
    op.drop_constraint("invoices_booking_id_key", "invoices", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("invoices_booking_id_key", "invoices", ["booking_id"])
    op.drop_constraint("uq_invoices_booking_instalment", "invoices", type_="unique")
    op.drop_constraint("ck_invoices_instalment", "invoices", type_="check")
    op.drop_column("invoices", "instalment")
    op.drop_column("bookings", "instalments")
    op.drop_column("quote_versions", "milestones")
    op.drop_constraint("ck_assets_deposit_percent", "assets", type_="check")
    op.drop_column("assets", "deposit_percent")
