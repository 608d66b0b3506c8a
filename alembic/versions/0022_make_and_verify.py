"""make and verify: quality documents, inspections, reports, verifiable documents

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 22:24:49

Issue #17 (make + verify). Reviewed by hand:
* ``assets.quality_documents``: the quality documents a machine listing sells, ``{kind: price}``; existing
  listings offer none (``{}``).
* ``booking_quality_documents``: what a booking ordered, at the price when booked, and what the factory supplied.
* ``inspections``: the buyer's ISO 2859-1 plan and its lab booking. ``uq_inspections_open_per_booking`` keeps
  one open inspection per produced lot (a rework gets a new one once the last is reported); ``ix_inspections_due``
  serves the overdue sweep. ``ck_inspections_reported``: a verdict exactly when reported.
* ``inspection_reports``: the lab's measurements and the computed verdict, one per inspection.
* ``verifiable_documents``: the public register behind ``GET /verify/{hash}``.
Bookings, inspections and reports are referenced ON DELETE RESTRICT: evidence of a payment decision never
vanishes with a row it points at.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_quality_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("provided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provided_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('coc', 'fai', 'material_cert')", name="ck_booking_quality_documents_kind"),
        sa.CheckConstraint("price >= 0", name="ck_booking_quality_documents_price"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["provided_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_id", "kind", name="uq_booking_quality_documents_kind"),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("production_booking_id", sa.Uuid(), nullable=False),
        sa.Column("lab_booking_id", sa.Uuid(), nullable=False),
        sa.Column("buyer_org_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_org_id", sa.Uuid(), nullable=False),
        sa.Column("lab_org_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("characteristics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sampling_standard", sa.String(length=20), nullable=False),
        sa.Column("inspection_level", sa.String(length=4), nullable=False),
        sa.Column("aql", sa.String(length=8), nullable=False),
        sa.Column("lot_size", sa.Integer(), nullable=False),
        sa.Column("code_letter", sa.String(length=1), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("accept_number", sa.Integer(), nullable=False),
        sa.Column("reject_number", sa.Integer(), nullable=False),
        sa.Column("require_accreditation", sa.Boolean(), nullable=False),
        sa.Column("transit_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tracking_reference", sa.String(length=200), nullable=True),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("gates_payment", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(status = 'reported') = (verdict IS NOT NULL)", name="ck_inspections_reported"),
        sa.CheckConstraint(
            "status IN ('planned', 'shipped', 'received', 'reported', 'waived', 'cancelled')",
            name="ck_inspections_status",
        ),
        sa.CheckConstraint("verdict IS NULL OR verdict IN ('accepted', 'rejected')", name="ck_inspections_verdict"),
        sa.CheckConstraint(
            "lot_size >= 2 AND sample_size >= 1 AND sample_size <= lot_size AND accept_number >= 0"
            " AND reject_number = accept_number + 1 AND transit_days >= 0",
            name="ck_inspections_plan",
        ),
        sa.ForeignKeyConstraint(["buyer_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["lab_booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["lab_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["production_booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["supplier_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lab_booking_id"),
    )
    op.create_index(
        "ix_inspections_due",
        "inspections",
        ["due_date"],
        unique=False,
        postgresql_where=sa.text("status IN ('planned', 'shipped', 'received')"),
    )
    op.create_index("ix_inspections_lab_org", "inspections", ["lab_org_id", "created_at"], unique=False)
    op.create_index(
        op.f("ix_inspections_production_booking_id"), "inspections", ["production_booking_id"], unique=False
    )
    op.create_index("ix_inspections_supplier_org", "inspections", ["supplier_org_id", "created_at"], unique=False)
    op.create_index(
        "uq_inspections_open_per_booking",
        "inspections",
        ["production_booking_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('planned', 'shipped', 'received')"),
    )
    op.create_table(
        "verifiable_documents",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("issuer_org_id", sa.Uuid(), nullable=False),
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name="ck_verifiable_documents_hash"),
        sa.CheckConstraint("kind IN ('inspection_report', 'coc')", name="ck_verifiable_documents_kind"),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["issuer_org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_index("ix_verifiable_documents_booking", "verifiable_documents", ["booking_id"], unique=False)
    op.create_index("ix_verifiable_documents_file", "verifiable_documents", ["file_sha256"], unique=False)
    op.create_table(
        "inspection_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=False),
        sa.Column("lab_booking_id", sa.Uuid(), nullable=False),
        sa.Column("tested_on", sa.Date(), nullable=False),
        sa.Column("test_standard", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=200), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("signed_document_id", sa.Uuid(), nullable=True),
        sa.Column("units", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("nonconforming", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("accreditation", sa.String(length=32), nullable=False),
        sa.Column("certificate_id", sa.Uuid(), nullable=True),
        sa.Column("gates_payment", sa.Boolean(), nullable=False),
        sa.Column("pdf_document_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "accreditation IN ('covered', 'no_certificate', 'not_valid_on_test_date', 'out_of_scope')",
            name="ck_inspection_reports_accreditation",
        ),
        sa.CheckConstraint("verdict IN ('accepted', 'rejected')", name="ck_inspection_reports_verdict"),
        sa.CheckConstraint("nonconforming >= 0", name="ck_inspection_reports_nonconforming"),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificates.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspections.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["lab_booking_id"], ["bookings.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["pdf_document_id"], ["documents.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["signed_document_id"], ["documents.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inspection_id"),
        sa.UniqueConstraint("lab_booking_id"),
    )
    op.add_column(
        "assets",
        sa.Column("quality_documents", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("assets", "quality_documents")
    op.drop_table("inspection_reports")
    op.drop_index("ix_verifiable_documents_file", table_name="verifiable_documents")
    op.drop_index("ix_verifiable_documents_booking", table_name="verifiable_documents")
    op.drop_table("verifiable_documents")
    op.drop_index(
        "uq_inspections_open_per_booking",
        table_name="inspections",
        postgresql_where=sa.text("status IN ('planned', 'shipped', 'received')"),
    )
    op.drop_index("ix_inspections_supplier_org", table_name="inspections")
    op.drop_index(op.f("ix_inspections_production_booking_id"), table_name="inspections")
    op.drop_index("ix_inspections_lab_org", table_name="inspections")
    op.drop_index(
        "ix_inspections_due",
        table_name="inspections",
        postgresql_where=sa.text("status IN ('planned', 'shipped', 'received')"),
    )
    op.drop_table("inspections")
    op.drop_table("booking_quality_documents")
