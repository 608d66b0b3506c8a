"""listing_flags.reason_code: the reason a reporter chose, in its own column instead of a "[code] " prefix

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 20:40:00

Until now a chosen reason was kept inside the free-text ``reason`` as a prefix (``"[prohibited_item] sells
ivory"``). The upgrade moves a known prefix into ``reason_code`` and leaves the reporter's words in ``reason``;
rows without a prefix (flags sent with words only) become ``other``. The downgrade writes every code back as
the prefix, which the code before this revision reads as the same reason.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CODES = ("misleading_description", "wrong_capacity_or_price", "not_a_real_company", "prohibited_item", "other")
_ALLOWED = ", ".join(f"'{code}'" for code in CODES)
_PREFIX = r"^\[(" + "|".join(CODES) + r")\] ?"


def upgrade() -> None:
    op.add_column(
        "listing_flags", sa.Column("reason_code", sa.String(length=32), server_default="other", nullable=False)
    )
    op.create_check_constraint("ck_listing_flags_reason_code", "listing_flags", f"reason_code IN ({_ALLOWED})")
    op.execute(
        sa.text(
            "UPDATE listing_flags SET reason_code = substring(reason from :prefix), "
            "reason = regexp_replace(reason, :prefix, '') WHERE reason ~ :prefix"
        ).bindparams(prefix=_PREFIX)
    )


def downgrade() -> None:
    op.execute("UPDATE listing_flags SET reason = rtrim('[' || reason_code || '] ' || reason, ' ')")
    op.drop_constraint("ck_listing_flags_reason_code", "listing_flags", type_="check")
    op.drop_column("listing_flags", "reason_code")
