"""perimeter: webhook delivery errors become categories

Delivery errors used to be stored as the raw exception text ("All connection attempts failed", "[Errno 111]
Connection refused" ...), which made the delivery log a port-scan oracle. New attempts store a category
(``timeout``, ``refused``, ``tls``, ``dns``, ``blocked``, ``network``, ``http_<status>``); this rewrites the
texts already stored. The old texts cannot be restored, so the downgrade leaves the categories in place.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        r"""
        UPDATE webhook_deliveries
        SET last_error = CASE
            WHEN last_error ~ '^HTTP [0-9]{3}$' THEN 'http_' || substr(last_error, 6)
            WHEN last_error ILIKE '%timeout%' OR last_error ILIKE '%timed out%' THEN 'timeout'
            WHEN last_error ILIKE '%ssl%' OR last_error ILIKE '%certificate%' THEN 'tls'
            WHEN last_error ILIKE '%public internet%' THEN 'blocked'
            WHEN last_error ILIKE '%resolve%' THEN 'dns'
            WHEN last_error ILIKE '%refused%' OR last_error ILIKE '%connect%' THEN 'refused'
            ELSE 'network'
        END
        WHERE last_error IS NOT NULL
          AND last_error NOT IN ('timeout', 'refused', 'tls', 'dns', 'blocked', 'network')
          AND last_error !~ '^http_[0-9]{3}$'
        """
    )


def downgrade() -> None:
    pass
