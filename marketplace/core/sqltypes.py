"""Column helpers shared by the shell's models: aware timestamps, JSONB and text arrays."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts_column(*, nullable: bool = False, default_now: bool = False, index: bool = False) -> Any:
    return sa.Column(
        sa.DateTime(timezone=True),
        nullable=nullable,
        server_default=sa.func.now() if default_now else None,
        index=index,
    )


def jsonb_column(*, nullable: bool = True) -> Any:
    return sa.Column(pg.JSONB, nullable=nullable)


def text_array_column(*, nullable: bool = False) -> Any:
    return sa.Column(pg.ARRAY(sa.Text), nullable=nullable, server_default="{}")
