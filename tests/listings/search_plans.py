"""The plan of a search's first page, for tests that check which index drives a sort."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from listings.repository import ListingsRepository
from listings.search import SearchQuery, _filters


async def first_page_plan(db: AsyncSession, q: SearchQuery) -> str:
    """``EXPLAIN`` of ``q``'s first page with sequential scans, bitmap scans and sorts priced out (the rest of the
    caller's transaction keeps those settings): an index the sort can use then shows up in the plan."""
    stmt, sort_expr = ListingsRepository(db).search_statement(_filters(q), q.sort)
    for setting in ("enable_seqscan", "enable_sort", "enable_bitmapscan"):
        await db.execute(sa.text(f"SET LOCAL {setting} = off"))
    sql = (
        stmt.order_by(sort_expr, Asset.id)
        .limit(q.limit)
        .compile(  # type: ignore[arg-type]
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    return "\n".join(r[0] for r in (await db.execute(sa.text(f"EXPLAIN {sql}"))).all())
