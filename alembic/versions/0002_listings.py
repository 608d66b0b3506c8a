"""listings: sites, certificates, assets, availability exceptions, flags, moderation history

Reviewed by hand. Four indexes are hand-written (autogenerate cannot express them and env.py tells it
to leave them alone): a GiST index on the site's earth position for distance search (earthdistance),
a text_pattern_ops index for region-code prefix search, and two expression indexes for the search sort
orders.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:28:29.950596
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sites',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_sites_org_id'), 'sites', ['org_id'], unique=False)
    op.create_table('assets',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('process_codes', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('materials', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('envelope_x_mm', sa.Float(), nullable=True),
    sa.Column('envelope_y_mm', sa.Float(), nullable=True),
    sa.Column('envelope_z_mm', sa.Float(), nullable=True),
    sa.Column('envelope_max_mm', sa.Float(), nullable=True),
    sa.Column('envelope_mid_mm', sa.Float(), nullable=True),
    sa.Column('envelope_min_mm', sa.Float(), nullable=True),
    sa.Column('max_part_mass_kg', sa.Float(), nullable=True),
    sa.Column('tolerance_mm', sa.Float(), nullable=True),
    sa.Column('hourly_rate', sa.BigInteger(), nullable=True),
    sa.Column('setup_fee', sa.BigInteger(), nullable=True),
    sa.Column('min_booking_minutes', sa.Integer(), nullable=True),
    sa.Column('slot_minutes', sa.Integer(), nullable=True),
    sa.Column('buffer_minutes', sa.Integer(), nullable=True),
    sa.Column('setup_minutes', sa.Integer(), nullable=True),
    sa.Column('operator_included', sa.Boolean(), nullable=True),
    sa.Column('photo_urls', postgresql.ARRAY(sa.Text()), server_default='{}', nullable=False),
    sa.Column('weekly_plan', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('test_standard', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('accredited', sa.Boolean(), nullable=True),
    sa.Column('price_per_sample', sa.BigInteger(), nullable=True),
    sa.Column('turnaround_days', sa.Integer(), nullable=True),
    sa.Column('daily_sample_capacity', sa.Integer(), nullable=True),
    sa.Column('sample_requirements', sa.Text(), nullable=True),
    sa.Column('cancellation_policy', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('next_free_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind <> 'lab_service' OR (price_per_sample IS NOT NULL AND daily_sample_capacity > 0 AND turnaround_days >= 0)", name='ck_assets_lab_fields'),
    sa.CheckConstraint("kind <> 'machine' OR (hourly_rate IS NOT NULL AND slot_minutes > 0 AND min_booking_minutes > 0)", name='ck_assets_machine_fields'),
    sa.CheckConstraint("kind IN ('machine', 'lab_service')", name='ck_assets_kind'),
    sa.CheckConstraint("status IN ('draft', 'pending_review', 'published', 'rejected', 'suspended', 'archived')", name='ck_assets_status'),
    sa.CheckConstraint('coalesce(hourly_rate, 0) >= 0 AND coalesce(setup_fee, 0) >= 0 AND coalesce(price_per_sample, 0) >= 0', name='ck_assets_prices_nonnegative'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_assets_materials', 'assets', ['materials'], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_assets_org_id'), 'assets', ['org_id'], unique=False)
    op.create_index('ix_assets_process_codes', 'assets', ['process_codes'], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_assets_site_id'), 'assets', ['site_id'], unique=False)
    op.create_index('ix_assets_status_kind', 'assets', ['status', 'kind'], unique=False)
    op.create_table('certificates',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=True),
    sa.Column('standard', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('accreditation_body', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('scope', sa.Text(), server_default='', nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('document_ref', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'verified', 'rejected')", name='ck_certificates_status'),
    sa.CheckConstraint('valid_until >= valid_from', name='ck_certificates_validity'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_certificates_org_standard', 'certificates', ['org_id', 'standard'], unique=False)
    op.create_table('asset_status_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('asset_id', sa.Uuid(), nullable=False),
    sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_asset_status_events_asset_id'), 'asset_status_events', ['asset_id'], unique=False)
    op.create_table('availability_exceptions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('asset_id', sa.Uuid(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name='ck_availability_exceptions_order'),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_availability_exceptions_asset_start', 'availability_exceptions', ['asset_id', 'starts_at'], unique=False)
    op.create_table('listing_flags',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('asset_id', sa.Uuid(), nullable=False),
    sa.Column('reporter_user_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'resolved')", name='ck_listing_flags_status'),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_listing_flags_asset_id'), 'listing_flags', ['asset_id'], unique=False)
    op.create_index(op.f('ix_listing_flags_status'), 'listing_flags', ['status'], unique=False)
    op.execute("CREATE INDEX ix_sites_earth ON sites USING gist (ll_to_earth(latitude, longitude))")
    op.execute("CREATE INDEX ix_sites_region_code ON sites (region_code text_pattern_ops)")
    # Search sorts published listings by these expressions (keyset on (expression, id)); the indexes let
    # PostgreSQL walk them in order and stop after a page instead of sorting every match.
    op.execute(
        "CREATE INDEX ix_assets_search_next_free ON assets "
        "((coalesce(next_free_at, '9999-12-31T00:00:00Z'::timestamptz)), id) WHERE status = 'published'"
    )
    op.execute(
        "CREATE INDEX ix_assets_search_price ON assets "
        "((coalesce(hourly_rate, price_per_sample)), id) WHERE status = 'published'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_assets_search_price")
    op.execute("DROP INDEX IF EXISTS ix_assets_search_next_free")
    op.execute("DROP INDEX IF EXISTS ix_sites_region_code")
    op.execute("DROP INDEX IF EXISTS ix_sites_earth")
    op.drop_index(op.f('ix_listing_flags_status'), table_name='listing_flags')
    op.drop_index(op.f('ix_listing_flags_asset_id'), table_name='listing_flags')
    op.drop_table('listing_flags')
    op.drop_index('ix_availability_exceptions_asset_start', table_name='availability_exceptions')
    op.drop_table('availability_exceptions')
    op.drop_index(op.f('ix_asset_status_events_asset_id'), table_name='asset_status_events')
    op.drop_table('asset_status_events')
    op.drop_index('ix_certificates_org_standard', table_name='certificates')
    op.drop_table('certificates')
    op.drop_index('ix_assets_status_kind', table_name='assets')
    op.drop_index(op.f('ix_assets_site_id'), table_name='assets')
    op.drop_index('ix_assets_process_codes', table_name='assets', postgresql_using='gin')
    op.drop_index(op.f('ix_assets_org_id'), table_name='assets')
    op.drop_index('ix_assets_materials', table_name='assets', postgresql_using='gin')
    op.drop_table('assets')
    op.drop_index(op.f('ix_sites_org_id'), table_name='sites')
    op.drop_table('sites')

