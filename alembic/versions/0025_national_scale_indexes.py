"""national-scale indexes: the matching read model's position, and the next-free sort per listing kind

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 08:50:00

Issue #19 item 3, measured on the 1M-listing market (docs/performance.md, "National scale"). Reviewed by hand:

* ``ix_matchable_assets_earth``: GiST on the read model's own copy of its site's position (migration 0007). The
  candidate statement tests a request's radius there instead of going through the sites in the radius, so
  PostgreSQL ANDs this bitmap with the GIN process-code bitmap. At 1M listings a 150 km radius holds ~28,000
  sites, and ``site_id = ANY(those sites)`` visited all ~246,000 listings on them. The expression is the one
  ``ix_sites_earth`` indexes (migration 0002), so the same ``earth_box`` condition uses it.
* ``ix_assets_search_next_free_kind``: ``ix_assets_search_next_free`` (migration 0002) led by the kind. Search
  states the kind a process implies, and a machine process sorted by next free slot then walks machines only;
  through the kind-less index it passed every lab service first (free from today: 37,374 rows for 20 hits at
  1M listings). The kind-less index stays for searches without a process or kind.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_matchable_assets_earth ON matchable_assets USING gist (ll_to_earth(latitude, longitude))"
    )
    op.execute(
        "CREATE INDEX ix_assets_search_next_free_kind ON assets "
        "(kind, (coalesce(next_free_at, '9999-12-31T00:00:00Z'::timestamptz)), id) WHERE status = 'published'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_assets_search_next_free_kind")
    op.execute("DROP INDEX IF EXISTS ix_matchable_assets_earth")
