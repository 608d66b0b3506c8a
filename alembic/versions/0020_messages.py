"""message threads, messages, read marks, digest marks and NDA acceptances

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
