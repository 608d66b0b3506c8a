"""Planner settings turned off around one statement, where PostgreSQL's estimate would pick the wrong plan (the
search's distance sort and matching's nearest-first walk). Transaction-local (``set_config(..., true)``) and given
back after the statement, so the rest of the transaction plans freely."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


def settings_off(names: Sequence[str]) -> list[Any]:
    """Columns of one SELECT that return the ``names`` settings, then turn them off for the transaction (so a caller
    can fold them into a round trip it makes anyway)."""
    return [
        *[sa.func.current_setting(name) for name in names],
        *[sa.func.set_config(name, "off", True) for name in names],
    ]


async def restore_settings(session: AsyncSession, names: Sequence[str], previous: Sequence[Any]) -> None:
    """Give ``names`` back the values :func:`settings_off` returned. Call it after the statement succeeded only: a
    failed statement aborts the transaction, which discards the settings, and a restore would then replace the
    statement's error with "transaction aborted"."""
    await session.execute(
        sa.select(*[sa.func.set_config(name, str(value), True) for name, value in zip(names, previous, strict=True)])
    )
