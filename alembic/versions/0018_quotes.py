"""quotes and their versions (offers and counter-offers); bookings remember the accepted quote

Written by hand. A partial unique index allows one open quote (submitted or countered) per request, supplier
organisation and listing; a partial index on the open quotes' valid_until serves the expiry sweep.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('submitted', 'countered')"


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest_by", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decline_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('submitted', 'countered', 'accepted', 'declined', 'withdrawn', 'expired', 'closed')",
            name="ck_quotes_status",
        ),
        sa.CheckConstraint("kind IN ('machine', 'lab_service')", name="ck_quotes_kind"),
        sa.CheckConstraint("latest_by IN ('buyer', 'supplier')", name="ck_quotes_latest_by"),
        sa.CheckConstraint("buyer_org_id <> supplier_org_id", name="ck_quotes_not_own_request"),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["buyer_org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["supplier_org_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_quotes_one_open",
        "quotes",
        ["request_id", "supplier_org_id", "asset_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
    )
    op.create_index("ix_quotes_request", "quotes", ["request_id", "created_at"], unique=False)
    op.create_index("ix_quotes_open_valid_until", "quotes", ["valid_until"], postgresql_where=sa.text(OPEN))
    op.create_index(op.f("ix_quotes_supplier_org_id"), "quotes", ["supplier_org_id"], unique=False)
    op.create_table(
        "quote_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quote_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("party", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drop_off_date", sa.Date(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("party IN ('buyer', 'supplier')", name="ck_quote_versions_party"),
        sa.CheckConstraint("amount > 0", name="ck_quote_versions_amount"),
        sa.CheckConstraint(
            "(start_at IS NOT NULL AND end_at IS NOT NULL AND start_at < end_at AND drop_off_date IS NULL)"
            " OR (drop_off_date IS NOT NULL AND samples > 0 AND start_at IS NULL)",
            name="ck_quote_versions_shape",
        ),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("quote_id", "number", name="uq_quote_versions_number"),
    )
    op.add_column("bookings", sa.Column("quote_id", sa.Uuid(), nullable=True))
    op.create_foreign_key("bookings_quote_id_fkey", "bookings", "quotes", ["quote_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    op.drop_constraint("bookings_quote_id_fkey", "bookings", type_="foreignkey")
    op.drop_column("bookings", "quote_id")
    op.drop_table("quote_versions")
    op.drop_index(op.f("ix_quotes_supplier_org_id"), table_name="quotes")
    op.drop_index("ix_quotes_open_valid_until", table_name="quotes", postgresql_where=sa.text(OPEN))
    op.drop_index("ix_quotes_request", table_name="quotes")
    op.drop_index("uq_quotes_one_open", table_name="quotes", postgresql_where=sa.text(OPEN))
    op.drop_table("quotes")
