"""Quote requests to factories (invitations), and who may see and quote on a request.

Stub interface (filled in by the invitations work); the quotes and messages rooms call these."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import Asset
from marketplace.requests.models import BuyerRequest


async def may_see(session: AsyncSession, *, request: BuyerRequest, supplier_org_id: uuid.UUID) -> bool:
    """May this supplier organisation see the (open) request as an opportunity? Open audience: one of its
    published listings can serve it and the organisation is verified; invited audience: it was invited."""
    return True


async def may_quote(session: AsyncSession, *, request: BuyerRequest, supplier_org_id: uuid.UUID, asset: Asset) -> bool:
    """May the supplier quote this listing for the request (it can see it, and the listing can serve it)?"""
    return True


async def on_quoted(session: AsyncSession, *, request_id: uuid.UUID, supplier_org_id: uuid.UUID) -> None:
    """A supplier quoted: its invitation (if any) is answered, so it no longer lapses or cascades."""
