"""Commission rates: the platform default (a setting) with a per-organisation override."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from payments.errors import Invalid
from payments.models import CommissionOverride, utcnow


async def rate_for(session: AsyncSession, supplier_org_id: uuid.UUID, default: int) -> int:
    """The commission rate (basis points) snapshotted on a new booking of this supplier."""
    override = await session.get(CommissionOverride, supplier_org_id)
    return override.rate_bp if override is not None else default


async def set_override(session: AsyncSession, org_id: uuid.UUID, rate_bp: int | None) -> int | None:
    """Set (or, with None, remove) an organisation's commission rate. Returns the previous override."""
    if rate_bp is not None and not 0 <= rate_bp <= 10_000:
        raise Invalid("rate_bp must be between 0 and 10000.")
    previous = await session.get(CommissionOverride, org_id)
    before = previous.rate_bp if previous is not None else None
    if rate_bp is None:
        if previous is not None:
            await session.delete(previous)
    elif previous is not None:
        previous.rate_bp, previous.updated_at = rate_bp, utcnow()
    else:
        session.add(CommissionOverride(org_id=org_id, rate_bp=rate_bp))
    await session.flush()
    return before
