"""vouchers: programmes, vouchers, redemptions and monthly claims; the programme role

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 01:45:56

Issue #18 (innovation vouchers). Reviewed by hand:
* ``organisations.roles`` may hold ``programme`` (a voucher programme's operator).
* ``voucher_programmes``, ``vouchers`` (one per programme and buyer), ``voucher_redemptions`` (one per booking:
  the programme's share, counted against the budget and the buyer's yearly cap while active, settled or
  claimed), ``voucher_claims`` (one per programme and month, gap-free number) and ``voucher_claim_lines`` (one
  per redemption). Everything money refers to is ON DELETE RESTRICT.
* ``bookings.voucher_id``, ``voucher_share`` (the share when booked; 0 for existing bookings) and
  ``voucher_payer_org_id`` (the programme's organisation when it pays in advance: the ledger's programme
  receivable), with ``ck_bookings_voucher``.
* ``ix_journals_kind_created``: the fapiao data and the quarterly tax report read settlement and credit-note
  journals by period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voucher_programmes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("region_prefix", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("eligible_kinds", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("eligible_families", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("cap_per_booking", sa.BigInteger(), nullable=False),
        sa.Column("cap_per_buyer_year", sa.BigInteger(), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("payment_mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("partner_programme_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        sa.Column("auto_grant", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "cardinality(eligible_kinds) > 0 AND eligible_kinds <@ ARRAY['machine', 'lab_service']::text[]",
            name="ck_voucher_programmes_kinds",
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_voucher_programmes_currency"),
        sa.CheckConstraint("payment_mode IN ('advance', 'after_use')", name="ck_voucher_programmes_mode"),
        sa.CheckConstraint("region_prefix ~ '^[0-9]{2,6}$'", name="ck_voucher_programmes_region"),
        sa.CheckConstraint("status IN ('active', 'closed')", name="ck_voucher_programmes_status"),
        sa.CheckConstraint(
            "cap_per_booking > 0 AND cap_per_buyer_year > 0 AND budget > 0", name="ck_voucher_programmes_caps"
        ),
        sa.CheckConstraint("rate_bp BETWEEN 1 AND 10000", name="ck_voucher_programmes_rate"),
        sa.CheckConstraint("valid_from <= valid_until", name="ck_voucher_programmes_validity"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_voucher_programmes_org_id"), "voucher_programmes", ["org_id"], unique=False)
    op.create_table(
        "voucher_claims",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("approved", sa.BigInteger(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("payment_reference", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('open', 'decided', 'paid')", name="ck_voucher_claims_status"),
        sa.CheckConstraint("total >= 0 AND approved >= 0 AND approved <= total", name="ck_voucher_claims_amounts"),
        sa.ForeignKeyConstraint(["paid_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["programme_id"], ["voucher_programmes.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("programme_id", "month", name="uq_voucher_claims_programme_month"),
    )
    op.create_index(op.f("ix_voucher_claims_programme_id"), "voucher_claims", ["programme_id"], unique=False)
    op.create_table(
        "vouchers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("applied_by", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('applied', 'granted', 'rejected', 'revoked')", name="ck_vouchers_status"),
        sa.ForeignKeyConstraint(["applied_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["buyer_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["programme_id"], ["voucher_programmes.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("programme_id", "buyer_org_id", name="uq_vouchers_programme_buyer"),
    )
    op.create_index(op.f("ix_vouchers_buyer_org_id"), "vouchers", ["buyer_org_id"], unique=False)
    op.create_table(
        "voucher_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("voucher_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("booked_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_mode", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("payment_mode IN ('advance', 'after_use')", name="ck_voucher_redemptions_mode"),
        sa.CheckConstraint(
            "status IN ('active', 'settled', 'released', 'claimed', 'rejected')", name="ck_voucher_redemptions_status"
        ),
        sa.CheckConstraint("amount >= 0 AND amount <= booked_amount", name="ck_voucher_redemptions_amount"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["buyer_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["programme_id"], ["voucher_programmes.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["supplier_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["voucher_id"], ["vouchers.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id"),
    )
    op.create_index(
        "ix_voucher_redemptions_buyer_year",
        "voucher_redemptions",
        ["programme_id", "buyer_org_id", "year"],
        unique=False,
    )
    op.create_index("ix_voucher_redemptions_programme", "voucher_redemptions", ["programme_id", "status"], unique=False)
    op.create_index(op.f("ix_voucher_redemptions_voucher_id"), "voucher_redemptions", ["voucher_id"], unique=False)
    op.create_table(
        "voucher_claim_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("redemption_id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="ck_voucher_claim_lines_status"),
        sa.CheckConstraint("amount > 0", name="ck_voucher_claim_lines_amount"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["claim_id"], ["voucher_claims.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["redemption_id"], ["voucher_redemptions.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("redemption_id"),
    )
    op.create_index(op.f("ix_voucher_claim_lines_claim_id"), "voucher_claim_lines", ["claim_id"], unique=False)
    op.add_column("bookings", sa.Column("voucher_id", sa.Uuid(), nullable=True))
    op.add_column("bookings", sa.Column("voucher_share", sa.BigInteger(), server_default="0", nullable=False))
    op.add_column("bookings", sa.Column("voucher_payer_org_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "bookings_voucher_id_fkey", "bookings", "vouchers", ["voucher_id"], ["id"], ondelete="RESTRICT"
    )
    op.create_check_constraint(
        "ck_bookings_voucher",
        "bookings",
        "voucher_share >= 0 AND voucher_share <= amount AND (voucher_payer_org_id IS NULL OR voucher_id IS NOT NULL)",
    )
    op.drop_constraint("ck_organisations_roles", "organisations", type_="check")
    op.create_check_constraint(
        "ck_organisations_roles", "organisations", "roles <@ ARRAY['supplier', 'buyer', 'programme']::text[]"
    )
    op.create_index("ix_journals_kind_created", "journals", ["kind", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_journals_kind_created", table_name="journals")
    op.drop_constraint("ck_organisations_roles", "organisations", type_="check")
    op.create_check_constraint("ck_organisations_roles", "organisations", "roles <@ ARRAY['supplier', 'buyer']::text[]")
    op.drop_constraint("ck_bookings_voucher", "bookings", type_="check")
    op.drop_constraint("bookings_voucher_id_fkey", "bookings", type_="foreignkey")
    op.drop_column("bookings", "voucher_payer_org_id")
    op.drop_column("bookings", "voucher_share")
    op.drop_column("bookings", "voucher_id")
    op.drop_index(op.f("ix_voucher_claim_lines_claim_id"), table_name="voucher_claim_lines")
    op.drop_table("voucher_claim_lines")
    op.drop_index(op.f("ix_voucher_redemptions_voucher_id"), table_name="voucher_redemptions")
    op.drop_index("ix_voucher_redemptions_programme", table_name="voucher_redemptions")
    op.drop_index("ix_voucher_redemptions_buyer_year", table_name="voucher_redemptions")
    op.drop_table("voucher_redemptions")
    op.drop_index(op.f("ix_vouchers_buyer_org_id"), table_name="vouchers")
    op.drop_table("vouchers")
    op.drop_index(op.f("ix_voucher_claims_programme_id"), table_name="voucher_claims")
    op.drop_table("voucher_claims")
    op.drop_index(op.f("ix_voucher_programmes_org_id"), table_name="voucher_programmes")
    op.drop_table("voucher_programmes")
