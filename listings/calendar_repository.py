"""SQL of calendar expansion (:mod:`listings.calendar`): availability exceptions and booked hours of many assets.

The shell's ``bookings`` table is referenced read-only through an ``sa.table`` clause (listings never imports
the shell; booked *periods* come through :class:`listings.ports.BlockedTime`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import AvailabilityException as Exc

# Statuses whose booked time does not count as used capacity for the utilisation (idle) component: the
# complement of the shell's blocking statuses (marketplace.bookings.models.BLOCKING, which listings cannot
# import; tests/bookings/test_booked_time_kept.py keeps the two in step). A released booking counts only up
# to its completion (its period was shortened).
NOT_USED = ("cancelled", "declined", "expired")

bookings = sa.table(
    "bookings", sa.column("asset_id", sa.Uuid), sa.column("period", pg.TSTZRANGE), sa.column("status", sa.Text)
)


def uuid_array(ids: Iterable[uuid.UUID]) -> Any:
    """An array parameter for ``= ANY(...)``: unlike an expanding ``IN`` its statement text (and so the driver's
    prepared statement) does not change with the number of ids."""
    return sa.bindparam("ids", list(ids), type_=pg.ARRAY(sa.Uuid()), unique=True)


def booked_hours_in(window: Any) -> Any:
    """Hours of ``bookings.period`` inside the ``tstzrange`` ``window`` (an aggregate)."""
    clipped = bookings.c.period * window
    return sa.func.sum(sa.extract("epoch", sa.func.upper(clipped) - sa.func.lower(clipped))) / 3600.0


async def exceptions_by_asset(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> dict[uuid.UUID, list[tuple[datetime, datetime, bool]]]:
    """(start, end, available) of every exception overlapping ``[start, end)``, per asset."""
    out: dict[uuid.UUID, list[tuple[datetime, datetime, bool]]] = defaultdict(list)
    if not asset_ids:
        return out
    rows = await session.execute(
        sa.select(col(Exc.asset_id), col(Exc.starts_at), col(Exc.ends_at), col(Exc.available)).where(
            col(Exc.asset_id) == sa.any_(uuid_array(asset_ids)), col(Exc.ends_at) > start, col(Exc.starts_at) < end
        )
    )
    for asset_id, s, e, available in rows.all():
        out[asset_id].append((s, e, available))
    return out


async def booked_hours(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
) -> dict[uuid.UUID, float]:
    """Hours booked (statuses that use capacity) within ``[start, end)``, per asset that has any."""
    window = sa.func.tstzrange(start, end, "[)")
    result = await session.execute(
        sa.select(bookings.c.asset_id, booked_hours_in(window))
        .where(
            bookings.c.asset_id == sa.any_(uuid_array(asset_ids)),
            bookings.c.period.bool_op("&&")(window),
            bookings.c.status.notin_(NOT_USED),
        )
        .group_by(bookings.c.asset_id)
    )
    return {a: float(h or 0) for a, h in result.all()}
