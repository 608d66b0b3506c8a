"""batch plans are worker jobs with a status; statements page an organisation's lines by line id

Hand-written.

* ``match_plans`` gets a ``status`` (queued → running → done | failed), the admin's inputs the job needs
  (``requested_ids``, ``time_limit_seconds``), ``error``, ``attempts``, ``started_at``/``finished_at``; the
  result columns become nullable because a queued plan has no result yet. Existing plans are ``done``.
* ``ix_journal_entries_org`` becomes ``(org_id, id)``: a statement page is an index range scan in line order
  (keyset on the line id) instead of a sort of every line of the organisation.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESULT_COLUMNS = ("value", "bound", "gap", "matched_hours")


def upgrade() -> None:
    # Plans stored before this revision were computed in the request: they are done.
    op.add_column(
        "match_plans",
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), server_default="done", nullable=False),
    )
    op.alter_column("match_plans", "status", server_default="queued")
    op.create_check_constraint(
        "ck_match_plans_status", "match_plans", "status IN ('queued', 'running', 'done', 'failed')"
    )
    op.add_column("match_plans", sa.Column("requested_ids", postgresql.ARRAY(sa.Uuid()), nullable=True))
    op.add_column("match_plans", sa.Column("time_limit_seconds", sa.Float(), nullable=True))
    op.add_column("match_plans", sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    op.add_column("match_plans", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("match_plans", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("match_plans", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE match_plans SET started_at = created_at, finished_at = created_at")
    for column in _RESULT_COLUMNS:
        op.alter_column("match_plans", column, existing_type=sa.Float(), nullable=True)
    op.alter_column(
        "match_plans", "method", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
    )

    op.drop_index("ix_journal_entries_org", table_name="journal_entries")
    op.create_index("ix_journal_entries_org", "journal_entries", ["org_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_journal_entries_org", table_name="journal_entries")
    op.create_index("ix_journal_entries_org", "journal_entries", ["org_id"], unique=False)

    # Plans without a result cannot exist before this revision.
    op.execute("DELETE FROM match_plans WHERE status <> 'done'")
    op.alter_column(
        "match_plans", "method", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
    )
    for column in _RESULT_COLUMNS:
        op.alter_column("match_plans", column, existing_type=sa.Float(), nullable=False)
    op.drop_column("match_plans", "finished_at")
    op.drop_column("match_plans", "started_at")
    op.drop_column("match_plans", "attempts")
    op.drop_column("match_plans", "error")
    op.drop_column("match_plans", "time_limit_seconds")
    op.drop_column("match_plans", "requested_ids")
    op.drop_constraint("ck_match_plans_status", "match_plans", type_="check")
    op.drop_column("match_plans", "status")
