"""matching: ``matchable_processes``, one row per (matchable listing, process code), for a nearest-first walk

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:20:00

Issue #19 item 3. Hand-written. Matching read every listing that passed a request's hard filters to score it: at
1M listings a request without a distance limit reached up to 41,423 of them, so its time grew with the market
(match p95 3.96x from 100k to 1M listings). Matching now ranks at most the nearest ``NEAREST`` listings that pass
the filters, found by a walk in distance order that meets only listings of the requested process
(``listings.read_model_repository.nearest_first``):

* ``matchable_processes``: the read model's (migration 0007) process codes, one row each, with the listing's
  position. Kept from ``matchable_assets`` by two triggers: a statement-level one on INSERT (one set-based insert
  per statement, so COPY seeding stays fast) and a row-level one on UPDATE that fires only when the codes or the
  position change (``WHEN``, evaluated without calling a function), so the next-free update after every booking
  costs nothing here. A read-model row's deletion cascades.
* ``ix_matchable_processes_near``: GiST on (process code, position) (btree_gist for the code): the walk's
  ``process_code = $1 ORDER BY position <-> here`` visits that process's listings nearest first and stops after
  enough have passed the filters; a distance limit becomes an index condition on the same index.
* ``ix_matchable_assets_earth`` (migration 0025) is dropped: the radius is now tested on this index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE matchable_processes (
            asset_id uuid NOT NULL REFERENCES matchable_assets (asset_id) ON DELETE CASCADE,
            process_code text NOT NULL,
            latitude double precision NOT NULL,
            longitude double precision NOT NULL,
            PRIMARY KEY (asset_id, process_code)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION matchable_processes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO matchable_processes (asset_id, process_code, latitude, longitude)
            SELECT c.asset_id, code, c.latitude, c.longitude FROM changed c, unnest(c.process_codes) AS code
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION matchable_processes_updated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM matchable_processes WHERE asset_id = NEW.asset_id;
            INSERT INTO matchable_processes (asset_id, process_code, latitude, longitude)
            SELECT NEW.asset_id, code, NEW.latitude, NEW.longitude FROM unnest(NEW.process_codes) AS code
            ON CONFLICT DO NOTHING;
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
        " WHEN ((OLD.process_codes, OLD.latitude, OLD.longitude) IS DISTINCT FROM"
        " (NEW.process_codes, NEW.latitude, NEW.longitude))"
        " EXECUTE FUNCTION matchable_processes_updated()"
    )
    op.execute(
        "INSERT INTO matchable_processes (asset_id, process_code, latitude, longitude)"
        " SELECT m.asset_id, code, m.latitude, m.longitude FROM matchable_assets m, unnest(m.process_codes) AS code"
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
