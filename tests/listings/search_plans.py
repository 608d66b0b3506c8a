"""The plan of a search's first page, for tests that check which index drives a sort."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from listings.repository import ListingsRepository
from listings.search import SearchQuery, _filters

PRICED_OUT = ("enable_seqscan", "enable_sort", "enable_bitmapscan")


async def first_page_plan(db: AsyncSession, q: SearchQuery, *, priced_out: Sequence[str] = PRICED_OUT) -> str:
    """``EXPLAIN`` of ``q``'s first page with ``priced_out`` turned off (default: sequential scans, bitmap scans
    and sorts, for the rest of the caller's transaction): an index the sort can use then shows up in the plan."""
    stmt, sort_expr = ListingsRepository(db).search_statement(_filters(q), q.sort)
    for setting in priced_out:
        await db.execute(sa.text(f"SET LOCAL {setting} = off"))
    sql = (
        stmt.order_by(sort_expr, Asset.id)
        .limit(q.limit)
        .compile(  # type: ignore[arg-type]
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    return "\n".join(r[0] for r in (await db.execute(sa.text(f"EXPLAIN {sql}"))).all())
