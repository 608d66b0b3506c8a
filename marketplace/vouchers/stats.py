"""A programme's statistics (issue #18): what the budget bought, for its operators' reports to their bureau.

``used`` is what counting redemptions (active, settled, claimed) hold, ``paid`` what the programme paid on its
claims; ``firms_served`` the distinct buyers with a counting redemption. Breakdowns by the service's kind, its
process families (the first segment of each process code; a service of two families counts in both) and the
month the booking was placed (China Standard Time).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.principal import Principal
from marketplace.vouchers.claim_repository import ClaimRepository
from marketplace.vouchers.claim_schemas import Breakdown, StatisticsOut
from marketplace.vouchers.claims import operated_programme


async def statistics(session: AsyncSession, principal: Principal, *, programme_id: uuid.UUID) -> StatisticsOut:
    programme = await operated_programme(session, principal, programme_id)
    repo = ClaimRepository(session)
    totals = await repo.totals(programme.id)
    return StatisticsOut(
        programme_id=programme.id,
        currency=programme.currency,
        budget=programme.budget,
        used=totals["used"],
        paid=totals["paid"],
        remaining=max(programme.budget - totals["used"], 0),
        bookings=totals["bookings"],
        firms_served=totals["firms_served"],
        by_kind=[Breakdown(**row) for row in await repo.breakdown(programme.id, "kind")],
        by_family=[Breakdown(**row) for row in await repo.breakdown(programme.id, "family")],
        by_month=[Breakdown(**row) for row in await repo.breakdown(programme.id, "month")],
    )
