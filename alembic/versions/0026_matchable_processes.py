"""matching: ``matchable_processes``, one row per (matchable listing, process code), for a nearest-first walk

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:20:00

Issue #19 item 3. Hand-written. Matching read every listing that passed a request's hard filters to score it: at
1M listings a request without a distance limit reached up to 41,423 of them, so its time grew with the market
(match p95 3.96x from 100k to 1M listings). Matching now reads only the ``NEAREST`` listings of
each serving process nearest to the request and ranks those that pass the filters, found by a walk in distance order
that meets only listings of the process (``listings.read_model_repository.nearest_first``):

* ``matchable_processes``: the read model (migration 0007) once per process code: its columns and
  ``process_code``, so the walk filters and scores the rows it meets without a second lookup per row (which
  doubled the walk's cost). Kept from ``matchable_assets`` by two triggers: a statement-level one on INSERT (one
  set-based insert per statement, so COPY seeding stays fast) and a row-level one on UPDATE (the refresh only
  updates rows that changed): new process codes replace the rows, anything else (the next free slot after a
  booking, a price) updates them in place, HOT (no indexed column changes; fillfactor 90). A read-model row's
  deletion cascades.
* ``ix_matchable_processes_near``: GiST on (process code, position) (btree_gist for the code): the walk's
  ``process_code = $1 ORDER BY position <-> here LIMIT nearest`` visits that process's listings nearest first; a
  distance limit becomes an index condition on the same index.
* ``ix_matchable_assets_earth`` (migration 0025) is dropped: the radius is now tested on this index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


COLUMNS = (
    "asset_id, org_id, site_id, kind, currency, process_codes, materials, envelope_max_mm, envelope_mid_mm,"
    " envelope_min_mm, tolerance_mm, hourly_rate, setup_fee, price_per_sample, next_free_at, latitude, longitude"
)  # migration 0007's
_NAMES = [c.strip() for c in COLUMNS.split(",")]
_UPDATED = ", ".join(_NAMES[1:])
_NEW = ", ".join(f"NEW.{c}" for c in _NAMES[1:])


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE matchable_processes (
            process_code text NOT NULL,
            LIKE matchable_assets,
            PRIMARY KEY (asset_id, process_code),
            FOREIGN KEY (asset_id) REFERENCES matchable_assets (asset_id) ON DELETE CASCADE
        ) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05)
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION matchable_processes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO matchable_processes (process_code, {COLUMNS})
            SELECT code, {", ".join(f"c.{n}" for n in _NAMES)} FROM changed c, unnest(c.process_codes) AS code
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION matchable_processes_updated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.process_codes IS DISTINCT FROM NEW.process_codes THEN
                DELETE FROM matchable_processes WHERE asset_id = NEW.asset_id;
                INSERT INTO matchable_processes (process_code, {COLUMNS})
                SELECT code, {", ".join(f"NEW.{n}" for n in _NAMES)} FROM unnest(NEW.process_codes) AS code
                ON CONFLICT DO NOTHING;
            ELSE
                UPDATE matchable_processes SET ({_UPDATED}) = ({_NEW}) WHERE asset_id = NEW.asset_id;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER tr_matchable_processes_insert AFTER INSERT ON matchable_assets"
        " REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION matchable_processes_inserted()"
    )
    op.execute(
        "CREATE TRIGGER tr_matchable_processes_update AFTER UPDATE ON matchable_assets FOR EACH ROW"
        " WHEN (OLD IS DISTINCT FROM NEW) EXECUTE FUNCTION matchable_processes_updated()"
    )
    op.execute(
        f"INSERT INTO matchable_processes (process_code, {COLUMNS})"
        f" SELECT code, {', '.join(f'm.{n}' for n in _NAMES)} FROM matchable_assets m, unnest(m.process_codes) AS code"
        " ON CONFLICT DO NOTHING"
    )
    op.execute(
        "CREATE INDEX ix_matchable_processes_near ON matchable_processes"
        " USING gist (process_code, ll_to_earth(latitude, longitude))"
    )
    op.execute("DROP INDEX IF EXISTS ix_matchable_assets_earth")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX ix_matchable_assets_earth ON matchable_assets USING gist (ll_to_earth(latitude, longitude))"
    )
    op.execute("DROP TRIGGER tr_matchable_processes_update ON matchable_assets")
    op.execute("DROP TRIGGER tr_matchable_processes_insert ON matchable_assets")
    op.execute("DROP TABLE matchable_processes")
    op.execute("DROP FUNCTION matchable_processes_updated()")
    op.execute("DROP FUNCTION matchable_processes_inserted()")
