"""matching read model: ``matchable_assets`` (kept by triggers) and covering indexes for scorecards and utilisation

Hand-written. Per-request matching reads every listing that passes the static filter to normalise its cheap
pre-score; on the wide ``assets`` rows (~1 kB, joined to sites and organisations) that cost 40-80 ms for
requests matching 3,000-15,000 listings. ``matchable_assets`` holds only the published listings of verified
organisations, with just the columns the prefilter and the pre-score read (~280 bytes a row, site position
included), so the same scan touches about a fifth of the pages and joins nothing.

The table is derived data, kept exact by statement-level triggers with transition tables (one set-based
refresh per statement, so COPY seeding and MES bulk syncs stay fast):

* ``assets`` INSERT / UPDATE (any column: status, process codes, prices, next free slot ...) refresh those
  assets; DELETE cascades through the foreign key;
* ``sites`` UPDATE (position) and ``organisations`` UPDATE (verification) refresh the assets they carry.

A refresh first locks the asset rows it rewrites (in id order), so two transactions that touch the same
listing through different tables (a site move and a price edit, say) refresh it one after the other and
the later refresh, which runs with a fresh snapshot, sees both changes; READ COMMITTED would otherwise
let the second writer store a row built from the first one's stale view.

Covering indexes (index-only scans, no heap visits for the aggregates matching runs per request):
``ix_bookings_supplier`` gains the scorecard columns, ``ix_bookings_asset_status`` gains ``period``
(booked hours over the utilisation window).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 05:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "asset_id, org_id, site_id, kind, currency, process_codes, materials, envelope_max_mm, envelope_mid_mm,"
    " envelope_min_mm, tolerance_mm, hourly_rate, setup_fee, price_per_sample, next_free_at, latitude, longitude"
)
SOURCE = (
    "SELECT a.id, a.org_id, a.site_id, a.kind, a.currency, a.process_codes, a.materials, a.envelope_max_mm,"
    " a.envelope_mid_mm, a.envelope_min_mm, a.tolerance_mm, a.hourly_rate, a.setup_fee, a.price_per_sample,"
    " a.next_free_at, s.latitude, s.longitude"
    " FROM assets a JOIN sites s ON s.id = a.site_id JOIN organisations o ON o.id = a.org_id"
    " WHERE a.status = 'published' AND o.verification_status = 'verified'"
)

UPDATABLE = [c.strip() for c in COLUMNS.split(",")][1:]
_TARGET = ", ".join(UPDATABLE)
_CURRENT = ", ".join(f"m.{c}" for c in UPDATABLE)
_NEW = ", ".join(f"EXCLUDED.{c}" for c in UPDATABLE)
# Rewrites the rows of ``ids``: deletes those no longer matchable, upserts the others. The upsert skips rows
# that did not change (an organisation renamed, a description edited) and otherwise updates in place, so with
# the table's fillfactor most updates (the next free slot after a booking) are HOT: no index entries, dead
# versions pruned on the page. The tests load this text to restore it after their lock-free control.
REFRESH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION matchable_assets_refresh(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM assets WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    DELETE FROM matchable_assets m WHERE m.asset_id = ANY(ids)
       AND NOT EXISTS ({SOURCE} AND a.id = m.asset_id);
    INSERT INTO matchable_assets AS m ({COLUMNS}) {SOURCE} AND a.id = ANY(ids)
    ON CONFLICT (asset_id) DO UPDATE SET ({_TARGET}) = ({_NEW}) WHERE ({_CURRENT}) IS DISTINCT FROM ({_NEW});
END $$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE matchable_assets (
            asset_id uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
            org_id uuid NOT NULL,
            site_id uuid NOT NULL,
            kind varchar(16) NOT NULL,
            currency varchar(3) NOT NULL,
            process_codes text[] NOT NULL,
            materials text[] NOT NULL,
            envelope_max_mm double precision,
            envelope_mid_mm double precision,
            envelope_min_mm double precision,
            tolerance_mm double precision,
            hourly_rate bigint,
            setup_fee bigint,
            price_per_sample bigint,
            next_free_at timestamptz,
            latitude double precision NOT NULL,
            longitude double precision NOT NULL
        ) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05)
        """
    )
    op.execute("CREATE INDEX ix_matchable_assets_process_codes ON matchable_assets USING gin (process_codes)")
    op.execute("CREATE INDEX ix_matchable_assets_site_id ON matchable_assets (site_id)")
    op.execute(REFRESH_FUNCTION)
    op.execute(
        """
        CREATE FUNCTION matchable_assets_from_assets() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM matchable_assets_refresh(ARRAY(SELECT id FROM changed));
            RETURN NULL;
        END $$
        """
    )
    # Sites (position) and organisations (verification) refresh the assets they carry.
    for table, key in (("sites", "site_id"), ("organisations", "org_id")):
        op.execute(
            f"""
            CREATE FUNCTION matchable_assets_from_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM matchable_assets_refresh(
                    ARRAY(SELECT a.id FROM assets a WHERE a.{key} IN (SELECT id FROM changed)));
                RETURN NULL;
            END $$
            """
        )
    for table, event in (("assets", "INSERT"), ("assets", "UPDATE"), ("sites", "UPDATE"), ("organisations", "UPDATE")):
        op.execute(
            f"CREATE TRIGGER tr_matchable_assets_{event.lower()} AFTER {event} ON {table}"
            f" REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
            f" EXECUTE FUNCTION matchable_assets_from_{table}()"
        )
    op.execute(f"INSERT INTO matchable_assets ({COLUMNS}) {SOURCE}")

    op.execute("DROP INDEX ix_bookings_supplier")
    op.execute(
        "CREATE INDEX ix_bookings_supplier ON bookings (supplier_org_id, created_at)"
        " INCLUDE (status, kind, completed_at, end_at, due_date, cancelled_by)"
    )
    op.execute("DROP INDEX ix_bookings_asset_status")
    op.execute("CREATE INDEX ix_bookings_asset_status ON bookings (asset_id, status) INCLUDE (period)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_bookings_asset_status")
    op.execute("CREATE INDEX ix_bookings_asset_status ON bookings (asset_id, status)")
    op.execute("DROP INDEX ix_bookings_supplier")
    op.execute("CREATE INDEX ix_bookings_supplier ON bookings (supplier_org_id, created_at)")
    for table, event in (("assets", "INSERT"), ("assets", "UPDATE"), ("sites", "UPDATE"), ("organisations", "UPDATE")):
        op.execute(f"DROP TRIGGER tr_matchable_assets_{event.lower()} ON {table}")
    op.execute("DROP FUNCTION matchable_assets_from_organisations()")
    op.execute("DROP FUNCTION matchable_assets_from_sites()")
    op.execute("DROP FUNCTION matchable_assets_from_assets()")
    op.execute("DROP FUNCTION matchable_assets_refresh(uuid[])")
    op.execute("DROP TABLE matchable_assets")
