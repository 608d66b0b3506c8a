"""All SQL of the quotes room."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset
from marketplace.orgs.models import Organisation
from marketplace.quotes.models import OPEN, Quote, QuoteVersion


@dataclass(frozen=True)
class QuotableAsset:
    asset: Asset
    org_verified: bool
    org_roles: list[str]


class QuoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def quotable_asset(self, asset_id: uuid.UUID) -> QuotableAsset | None:
        """The listing with whether its organisation is verified and its roles, in one query."""
        row = (
            await self.session.execute(
                sa.select(Asset, col(Organisation.verification_status), col(Organisation.roles))
                .join(Organisation, col(Organisation.id) == col(Asset.org_id))
                .where(col(Asset.id) == asset_id)
            )
        ).first()
        if row is None:
            return None
        return QuotableAsset(row[0], row[1] == "verified", list(row[2] or []))

    async def insert(self, quote: Quote, version: QuoteVersion) -> bool:
        """Insert a new quote with its first version; False when the supplier already has an open quote for
        this request and listing (the partial unique index ``uq_quotes_one_open`` decides)."""
        try:
            async with self.session.begin_nested():
                self.session.add(quote)
                await self.session.flush()
                self.session.add(version)
                await self.session.flush()
        except IntegrityError as exc:
            if "uq_quotes_one_open" in str(exc.orig):
                return False
            raise
        return True

    async def add_version(self, version: QuoteVersion) -> None:
        self.session.add(version)
        await self.session.flush()

    async def get(self, quote_id: uuid.UUID, *, for_update: bool = False) -> Quote | None:
        stmt = sa.select(Quote).where(col(Quote.id) == quote_id).execution_options(populate_existing=True)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_request(self, request_id: uuid.UUID, supplier_org_ids: Sequence[uuid.UUID] | None) -> list[Quote]:
        """The request's quotes, oldest first; only those of ``supplier_org_ids`` unless it is None."""
        stmt = sa.select(Quote).where(col(Quote.request_id) == request_id)
        if supplier_org_ids is not None:
            stmt = stmt.where(col(Quote.supplier_org_id).in_(list(supplier_org_ids)))
        rows = await self.session.execute(stmt.order_by(col(Quote.created_at), col(Quote.id)))
        return list(rows.scalars())

    async def versions(self, quote_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[QuoteVersion]]:
        """Every version of the given quotes, in order, in one query."""
        found: dict[uuid.UUID, list[QuoteVersion]] = {q: [] for q in quote_ids}
        if not quote_ids:
            return found
        rows = await self.session.execute(
            sa.select(QuoteVersion)
            .where(col(QuoteVersion.quote_id).in_(list(quote_ids)))
            .order_by(col(QuoteVersion.quote_id), col(QuoteVersion.number))
        )
        for v in rows.scalars():
            found[v.quote_id].append(v)
        return found

    async def latest_version(self, quote: Quote) -> QuoteVersion:
        row = await self.session.execute(
            sa.select(QuoteVersion).where(
                col(QuoteVersion.quote_id) == quote.id, col(QuoteVersion.number) == quote.version
            )
        )
        return row.scalar_one()

    async def other_open(self, request_id: uuid.UUID, except_id: uuid.UUID) -> list[Quote]:
        """The request's other open quotes, locked (accepting one closes them)."""
        rows = await self.session.execute(
            sa.select(Quote)
            .where(col(Quote.request_id) == request_id, col(Quote.id) != except_id, col(Quote.status).in_(OPEN))
            .order_by(col(Quote.id))
            .with_for_update()
        )
        return list(rows.scalars())

    async def due(self, now: datetime, limit: int = 200) -> list[Quote]:
        """Open quotes past their validity, locked, skipping those another transaction holds."""
        rows = await self.session.execute(
            sa.select(Quote)
            .where(col(Quote.status).in_(OPEN), col(Quote.valid_until) <= now)
            .order_by(col(Quote.valid_until))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars())
