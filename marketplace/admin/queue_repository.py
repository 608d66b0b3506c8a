"""Reads behind the admin queues (moderation, flags, disputes, certificates): one page at a time, oldest first, with the
names a page shows (owner, reporter, both parties) in the same query. Paging is a keyset on
``(created_at, id)`` (see :mod:`marketplace.core.pagination`), so a page never repeats or skips a row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from listings.models import Asset, Certificate, ListingFlag, Site
from marketplace.auth.models import User
from marketplace.bookings.models import Booking
from marketplace.orgs.models import Membership, Organisation

Keyset = tuple[datetime, uuid.UUID]


@dataclass
class PendingListing:
    id: uuid.UUID
    created_at: datetime
    title: str
    process_code: str | None
    submitted_at: datetime | None
    org_id: uuid.UUID
    org_name: str


@dataclass
class OpenFlag:
    id: uuid.UUID
    created_at: datetime
    reason_code: str
    reason: str
    asset_id: uuid.UUID
    asset_title: str
    asset_status: str
    owner_name: str
    reporter_name: str | None
    reporter_email: str | None
    reporter_org: str | None


@dataclass
class OpenDispute:
    id: uuid.UUID
    created_at: datetime
    asset_id: uuid.UUID
    asset_title: str
    buyer_org_id: uuid.UUID
    buyer_name: str
    supplier_org_id: uuid.UUID
    supplier_name: str
    amount: int
    currency: str
    dispute_reason: str | None
    updated_at: datetime


@dataclass
class PendingCertificate:
    id: uuid.UUID
    created_at: datetime
    org_id: uuid.UUID
    org_name: str
    site_name: str | None  # None: the certificate covers the whole company
    standard: str
    number: str
    issuer: str
    accreditation_body: str | None
    scope: str
    valid_from: date
    valid_until: date


def _oldest_first(stmt: Any, model: Any, *, after: Keyset | None, limit: int) -> Any:
    """A queue's page: ``model``'s rows by ``(created_at, id)``, continuing after ``after`` (the first page when
    None), at most ``limit`` of them."""
    created, ident = col(model.created_at), col(model.id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(created, ident) > sa.tuple_(*after))
    return stmt.order_by(created, ident).limit(limit)


class AdminQueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self) -> dict[str, int]:
        """How many rows wait in each queue (the overview's tiles)."""
        row = (
            await self.session.execute(
                sa.select(
                    sa.select(sa.func.count())
                    .select_from(Organisation)
                    .where(col(Organisation.verification_status) == "pending")
                    .scalar_subquery(),
                    sa.select(sa.func.count())
                    .select_from(Asset)
                    .where(col(Asset.status) == "pending_review")
                    .scalar_subquery(),
                    sa.select(sa.func.count())
                    .select_from(ListingFlag)
                    .where(col(ListingFlag.status) == "open")
                    .scalar_subquery(),
                    sa.select(sa.func.count())
                    .select_from(Booking)
                    .where(col(Booking.status) == "disputed")
                    .scalar_subquery(),
                    sa.select(sa.func.count())
                    .select_from(Certificate)
                    .where(col(Certificate.status) == "pending")
                    .scalar_subquery(),
                )
            )
        ).one()
        return dict(
            zip(("verification", "moderation", "flags", "disputes", "certificates"), (int(v) for v in row), strict=True)
        )

    async def pending_listings(self, *, after: Keyset | None, limit: int) -> list[PendingListing]:
        stmt = (
            sa.select(Asset, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(Asset.org_id))
            .where(col(Asset.status) == "pending_review")
        )
        stmt = _oldest_first(stmt, Asset, after=after, limit=limit)
        return [
            PendingListing(
                id=a.id,
                created_at=a.created_at,
                title=a.title,
                process_code=a.process_codes[0] if a.process_codes else None,
                submitted_at=a.submitted_at,
                org_id=a.org_id,
                org_name=name,
            )
            for a, name in (await self.session.execute(stmt)).all()
        ]

    async def open_flags(self, *, after: Keyset | None, limit: int) -> list[OpenFlag]:
        owner: Any = aliased(Organisation)
        # The reporter's organisation: the one they joined first (a person may belong to several).
        reporter_org = (
            sa.select(col(Organisation.name))
            .join(Membership, col(Membership.org_id) == col(Organisation.id))
            .where(col(Membership.user_id) == col(ListingFlag.reporter_user_id))
            .order_by(col(Membership.created_at))
            .limit(1)
            .correlate(ListingFlag)
            .scalar_subquery()
        )
        stmt = (
            sa.select(
                ListingFlag,
                col(Asset.title),
                col(Asset.status),
                owner.name,
                col(User.full_name),
                col(User.email),
                reporter_org,
            )
            .join(Asset, col(Asset.id) == col(ListingFlag.asset_id))
            .join(owner, owner.id == col(Asset.org_id))
            .outerjoin(User, col(User.id) == col(ListingFlag.reporter_user_id))
            .where(col(ListingFlag.status) == "open")
        )
        stmt = _oldest_first(stmt, ListingFlag, after=after, limit=limit)
        return [
            OpenFlag(
                id=f.id,
                created_at=f.created_at,
                reason_code=f.reason_code,
                reason=f.reason,
                asset_id=f.asset_id,
                asset_title=title,
                asset_status=status,
                owner_name=owner_name,
                reporter_name=full_name,
                reporter_email=email,
                reporter_org=org_name,
            )
            for f, title, status, owner_name, full_name, email, org_name in (await self.session.execute(stmt)).all()
        ]

    async def open_disputes(self, *, after: Keyset | None, limit: int) -> list[OpenDispute]:
        buyer: Any = aliased(Organisation)
        supplier: Any = aliased(Organisation)
        stmt = (
            sa.select(Booking, col(Asset.title), buyer.name, supplier.name)
            .join(Asset, col(Asset.id) == col(Booking.asset_id))
            .join(buyer, buyer.id == col(Booking.buyer_org_id))
            .join(supplier, supplier.id == col(Booking.supplier_org_id))
            .where(col(Booking.status) == "disputed")
        )
        stmt = _oldest_first(stmt, Booking, after=after, limit=limit)
        return [
            OpenDispute(
                id=b.id,
                created_at=b.created_at,
                asset_id=b.asset_id,
                asset_title=title,
                buyer_org_id=b.buyer_org_id,
                buyer_name=buyer_name,
                supplier_org_id=b.supplier_org_id,
                supplier_name=supplier_name,
                amount=b.amount,
                currency=b.currency,
                dispute_reason=b.dispute_reason,
                updated_at=b.updated_at,
            )
            for b, title, buyer_name, supplier_name in (await self.session.execute(stmt)).all()
        ]

    async def pending_certificates(self, *, after: Keyset | None, limit: int) -> list[PendingCertificate]:
        """Certificates waiting for an admin's check, the oldest first, with their organisation and site."""
        stmt = (
            sa.select(Certificate, col(Organisation.name), col(Site.name))
            .join(Organisation, col(Organisation.id) == col(Certificate.org_id))
            .outerjoin(Site, col(Site.id) == col(Certificate.site_id))
            .where(col(Certificate.status) == "pending")
        )
        stmt = _oldest_first(stmt, Certificate, after=after, limit=limit)
        return [
            PendingCertificate(
                id=c.id,
                created_at=c.created_at,
                org_id=c.org_id,
                org_name=org_name,
                site_name=site_name,
                standard=c.standard,
                number=c.number,
                issuer=c.issuer,
                accreditation_body=c.accreditation_body,
                scope=c.scope,
                valid_from=c.valid_from,
                valid_until=c.valid_until,
            )
            for c, org_name, site_name in (await self.session.execute(stmt)).all()
        ]
