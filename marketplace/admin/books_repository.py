"""Reads behind the admin's books: the ledger's journal lines (newest first, keyed by the line's identity) and
the audit log with WHO did it (a person, an API key or the system) and WHAT it was done to (the object's
title), both resolved for a whole page in one query per kind."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from listings.models import Asset, Certificate, ListingFlag
from marketplace.auth.models import ApiKey, User
from marketplace.bookings.models import Booking
from marketplace.core.audit import AuditLog
from marketplace.orgs.models import Organisation
from marketplace.quotes.models import Quote
from marketplace.requests.models import BuyerRequest
from payments.models import Invoice, Journal, JournalEntry


@dataclass(frozen=True)
class JournalLine:
    id: int
    created_at: datetime
    kind: str
    memo: str
    booking_id: uuid.UUID | None
    account: str
    org_id: uuid.UUID | None
    org_name: str | None
    currency: str
    amount: int


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "api_key" or "system"
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Target:
    title: str
    link: str | None = None


class BooksRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def journal_lines(self, *, before_id: int | None, limit: int, newest_first: bool = True) -> list[JournalLine]:
        """Up to ``limit`` ledger lines after line ``before_id`` (smaller ids newest first, larger oldest first)."""
        line_id = col(JournalEntry.id)
        stmt = (
            sa.select(JournalEntry, Journal, col(Organisation.name))
            .join(Journal, col(Journal.id) == col(JournalEntry.journal_id))
            .outerjoin(Organisation, col(Organisation.id) == col(JournalEntry.org_id))
        )
        if before_id is not None:
            stmt = stmt.where(line_id < before_id if newest_first else line_id > before_id)
        stmt = stmt.order_by(line_id.desc() if newest_first else line_id.asc()).limit(limit)
        return [
            JournalLine(
                id=int(e.id or 0),
                created_at=j.created_at,
                kind=j.kind,
                memo=j.memo,
                booking_id=j.booking_id,
                account=e.account,
                org_id=e.org_id,
                org_name=name,
                currency=e.currency,
                amount=e.amount,
            )
            for e, j, name in (await self.session.execute(stmt)).all()
        ]

    async def actors(self, entries: Iterable[AuditLog]) -> dict[int, Actor]:
        """Who wrote each audit entry: the person's name and e-mail, the API key's name, or the system."""
        entries = list(entries)
        user_ids = {e.actor_user_id for e in entries if e.actor_user_id}
        key_ids = {e.actor_api_key_id for e in entries if e.actor_api_key_id}
        users: dict[uuid.UUID, tuple[str, str]] = {}
        keys: dict[uuid.UUID, str] = {}
        if user_ids:
            rows = await self.session.execute(
                sa.select(col(User.id), col(User.full_name), col(User.email)).where(col(User.id).in_(user_ids))
            )
            users = {uid: (name, email) for uid, name, email in rows.all()}
        if key_ids:
            named = await self.session.execute(
                sa.select(col(ApiKey.id), col(ApiKey.name)).where(col(ApiKey.id).in_(key_ids))
            )
            keys = {kid: name for kid, name in named.all()}
        out: dict[int, Actor] = {}
        for e in entries:
            if e.actor_api_key_id is not None:
                out[int(e.id or 0)] = Actor("api_key", keys.get(e.actor_api_key_id))
            elif e.actor_user_id is not None and e.actor_user_id in users:
                name, email = users[e.actor_user_id]
                out[int(e.id or 0)] = Actor("user", name, email)
            elif e.actor_user_id is not None:
                out[int(e.id or 0)] = Actor("user")  # a person since deleted
            else:
                out[int(e.id or 0)] = Actor("system")
        return out

    async def actor_ids_by_email(self, email: str) -> list[uuid.UUID]:
        """The users whose e-mail contains ``email`` (the audit log's actor filter), at most 50."""
        rows = await self.session.execute(
            sa.select(col(User.id))
            .where(col(User.email).ilike(f"%{_like_escape(email.lower())}%", escape="\\"))
            .limit(50)
        )
        return list(rows.scalars())

    async def targets(self, entries: Iterable[AuditLog]) -> dict[tuple[str, str], Target]:
        """The title (and admin link) of each entry's object, one query per kind of object on the page."""
        wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
        for e in entries:
            try:
                wanted[e.target_type].add(uuid.UUID(e.target_id))
            except ValueError:
                continue
        out: dict[tuple[str, str], Target] = {}
        for kind, ids in wanted.items():
            loader = _TITLE_LOADERS.get(kind)
            if loader is not None:
                for ident, target in (await loader(self.session, ids)).items():
                    out[(kind, str(ident))] = target
        return out


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _assets(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(sa.select(col(Asset.id), col(Asset.title)).where(col(Asset.id).in_(ids)))
    return {i: Target(title, f"/listings/{i}") for i, title in rows.all()}


async def _orgs(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(
        sa.select(col(Organisation.id), col(Organisation.name), col(Organisation.verification_status)).where(
            col(Organisation.id).in_(ids)
        )
    )
    return {i: Target(name, f"/admin/orgs?status={status}") for i, name, status in rows.all()}


async def _bookings(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    buyer: Any = aliased(Organisation)
    rows = await session.execute(
        sa.select(col(Booking.id), col(Booking.buyer_org_id), col(Asset.title), buyer.name)
        .join(Asset, col(Asset.id) == col(Booking.asset_id))
        .join(buyer, buyer.id == col(Booking.buyer_org_id))
        .where(col(Booking.id).in_(ids))
    )
    return {
        i: Target(f"{title} · {buyer_name} · {str(i)[:8].upper()}", f"/buyer/{buyer_id}/bookings/{i}")
        for i, buyer_id, title, buyer_name in rows.all()
    }


async def _flags(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(
        sa.select(col(ListingFlag.id), col(Asset.id), col(Asset.title))
        .join(Asset, col(Asset.id) == col(ListingFlag.asset_id))
        .where(col(ListingFlag.id).in_(ids))
    )
    return {i: Target(title, f"/listings/{asset_id}") for i, asset_id, title in rows.all()}


async def _certificates(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(
        sa.select(col(Certificate.id), col(Certificate.standard), col(Certificate.number), col(Organisation.name))
        .join(Organisation, col(Organisation.id) == col(Certificate.org_id))
        .where(col(Certificate.id).in_(ids))
    )
    return {i: Target(f"{standard} {number} · {org}") for i, standard, number, org in rows.all()}


async def _invoices(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(sa.select(col(Invoice.id), col(Invoice.number)).where(col(Invoice.id).in_(ids)))
    return {i: Target(str(number)) for i, number in rows.all()}


async def _quotes(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(
        sa.select(col(Quote.id), col(Asset.id), col(Asset.title), col(Organisation.name))
        .join(Asset, col(Asset.id) == col(Quote.asset_id))
        .join(Organisation, col(Organisation.id) == col(Quote.supplier_org_id))
        .where(col(Quote.id).in_(ids))
    )
    return {i: Target(f"{title} · {org}", f"/listings/{asset_id}") for i, asset_id, title, org in rows.all()}


async def _requests(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Target]:
    rows = await session.execute(
        sa.select(col(BuyerRequest.id), col(BuyerRequest.buyer_org_id), col(Organisation.name))
        .join(Organisation, col(Organisation.id) == col(BuyerRequest.buyer_org_id))
        .where(col(BuyerRequest.id).in_(ids))
    )
    return {
        i: Target(f"{org} · {str(i)[:8].upper()}", f"/buyer/{org_id}/requests/{i}") for i, org_id, org in rows.all()
    }


_TITLE_LOADERS = {
    "quote": _quotes,
    "request": _requests,
    "asset": _assets,
    "organisation": _orgs,
    "booking": _bookings,
    "listing_flag": _flags,
    "certificate": _certificates,
    "invoice": _invoices,
}
