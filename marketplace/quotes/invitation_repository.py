"""SQL of quote requests (invitations), the cascade and the factories' job board (opportunities)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset
from marketplace.quotes.invitation_models import CascadeEnd, InvitationStatus, QuoteInvitation
from marketplace.requests.models import BuyerRequest, RequestStatus

_inv: sa.Table = QuoteInvitation.__table__  # type: ignore[attr-defined]
_ends: sa.Table = CascadeEnd.__table__  # type: ignore[attr-defined]
_S = InvitationStatus


def _holding(request_id: Any, now: datetime) -> sa.ColumnElement[bool]:
    """Rows that stop the cascade from moving on: a pending invitation, or an invited factory that quoted."""
    return sa.and_(
        _inv.c.request_id == request_id,
        sa.or_(
            sa.and_(_inv.c.status == _S.invited, _inv.c.respond_by > now),
            sa.and_(_inv.c.status == _S.quoted, _inv.c.via != "board"),
        ),
    )


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- invitations ---------------------------------------------------------------------------------

    async def add(self, row: QuoteInvitation) -> QuoteInvitation | None:
        """Insert the invitation; ``None`` when the organisation already has a row for the request (the unique
        constraint decides, so two deliveries of one cascade job cannot both invite)."""
        values = {c.name: getattr(row, c.name) for c in _inv.columns}
        inserted = await self.session.execute(
            pg_insert(_inv)
            .values(**values)
            .on_conflict_do_nothing(constraint="uq_quote_invitations_request_org")
            .returning(_inv.c.id)
        )
        if inserted.first() is None:
            return None
        return await self.get(row.id)

    async def get(self, invitation_id: uuid.UUID, *, for_update: bool = False) -> QuoteInvitation | None:
        stmt = sa.select(QuoteInvitation).where(col(QuoteInvitation.id) == invitation_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()

    async def of_org(
        self, request_id: uuid.UUID, org_id: uuid.UUID, *, for_update: bool = False
    ) -> QuoteInvitation | None:
        stmt = sa.select(QuoteInvitation).where(
            col(QuoteInvitation.request_id) == request_id, col(QuoteInvitation.supplier_org_id) == org_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()

    async def for_request(self, request_id: uuid.UUID) -> list[QuoteInvitation]:
        """The request's invitations (job-board rows excluded), oldest first."""
        stmt = (
            sa.select(QuoteInvitation)
            .where(col(QuoteInvitation.request_id) == request_id, col(QuoteInvitation.via) != "board")
            .order_by(col(QuoteInvitation.invited_at), col(QuoteInvitation.id))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def org_ids(self, request_id: uuid.UUID) -> set[uuid.UUID]:
        """Every organisation with a row for the request (asked, answered or quoted from the board)."""
        rows = await self.session.execute(
            sa.select(col(QuoteInvitation.supplier_org_id)).where(col(QuoteInvitation.request_id) == request_id)
        )
        return set(rows.scalars())

    async def holds_cascade(self, request_id: uuid.UUID, now: datetime) -> bool:
        """Whether the request's cascade waits: an invitation awaits its answer, or an invited factory quoted."""
        found = await self.session.execute(sa.select(sa.literal(1)).where(_holding(request_id, now)).limit(1))
        return found.first() is not None

    async def of_org_for_requests(
        self, org_id: uuid.UUID, request_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, QuoteInvitation]:
        if not request_ids:
            return {}
        rows = await self.session.execute(
            sa.select(QuoteInvitation).where(
                col(QuoteInvitation.supplier_org_id) == org_id, col(QuoteInvitation.request_id).in_(list(request_ids))
            )
        )
        return {r.request_id: r for r in rows.scalars()}

    async def mark_quoted(self, *, request_id: uuid.UUID, org_id: uuid.UUID, now: datetime) -> None:
        """The organisation quoted: its invitation (not withdrawn) becomes ``quoted``; without one, a ``board``
        row records it (the cascade then never asks this organisation)."""
        await self.session.execute(
            pg_insert(_inv)
            .values(
                id=uuid.uuid4(),
                request_id=request_id,
                supplier_org_id=org_id,
                status=_S.quoted,
                via="board",
                invited_at=now,
                respond_by=now,
                answered_at=now,
            )
            .on_conflict_do_update(
                constraint="uq_quote_invitations_request_org",
                set_={"status": _S.quoted.value, "answered_at": now},
                where=_inv.c.status.in_([_S.invited, _S.lapsed, _S.declined]),
            )
        )

    async def lapse(self, invitation_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
        """Lapse one overdue invitation; returns its request id (``None``: not invited or not yet due)."""
        done = await self.session.execute(
            sa.update(_inv)
            .where(_inv.c.id == invitation_id, _inv.c.status == _S.invited, _inv.c.respond_by <= now)
            .values(status=_S.lapsed, answered_at=now)
            .returning(_inv.c.request_id)
        )
        return done.scalar_one_or_none()

    async def lapse_due(self, now: datetime, limit: int = 500) -> list[uuid.UUID]:
        """Lapse overdue invitations (oldest due first, skipping rows another sweep holds); their request ids."""
        due = (
            sa.select(_inv.c.id)
            .where(_inv.c.status == _S.invited, _inv.c.respond_by <= now)
            .order_by(_inv.c.respond_by)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        done = await self.session.execute(
            sa.update(_inv)
            .where(_inv.c.id.in_(due))
            .values(status=_S.lapsed, answered_at=now)
            .returning(_inv.c.request_id)
        )
        return sorted(set(done.scalars()))

    async def withdraw_closed(self, now: datetime, *, request_id: uuid.UUID | None = None) -> int:
        """Invitations still waiting on requests that are no longer open (or on ``request_id`` only) are
        withdrawn."""
        req: sa.Table = BuyerRequest.__table__  # type: ignore[attr-defined]
        stmt = sa.update(_inv).where(
            _inv.c.status == _S.invited,
            _inv.c.request_id == req.c.id,
            req.c.status != RequestStatus.open,
        )
        if request_id is not None:
            stmt = stmt.where(_inv.c.request_id == request_id)
        done = await self.session.execute(stmt.values(status=_S.withdrawn, answered_at=now))
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def stalled_cascades(self, now: datetime, limit: int = 200) -> list[uuid.UUID]:
        """Open auto-cascade requests with nothing pending and not exhausted (a lost job is picked up here)."""
        waiting = sa.exists().where(_holding(col(BuyerRequest.id), now))
        ended = sa.exists().where(col(CascadeEnd.request_id) == col(BuyerRequest.id))
        rows = await self.session.execute(
            sa.select(col(BuyerRequest.id))
            .where(
                col(BuyerRequest.status) == RequestStatus.open,
                col(BuyerRequest.auto_cascade).is_(True),
                col(BuyerRequest.deadline) > now,
                ~waiting,
                ~ended,
            )
            .order_by(col(BuyerRequest.created_at))
            .limit(limit)
        )
        return list(rows.scalars())

    async def mark_exhausted(self, request_id: uuid.UUID) -> bool:
        """Record that the cascade ran out of matches; False when it was already recorded (tell the buyer once)."""
        done = await self.session.execute(
            pg_insert(_ends).values(request_id=request_id).on_conflict_do_nothing().returning(_ends.c.request_id)
        )
        return done.first() is not None

    # -- the job board -------------------------------------------------------------------------------

    async def published_assets(self, org_id: uuid.UUID) -> list[Asset]:
        rows = await self.session.execute(
            sa.select(Asset)
            .where(col(Asset.org_id) == org_id, col(Asset.status) == "published")
            .order_by(col(Asset.id))
        )
        return list(rows.scalars())

    async def board_page(
        self,
        *,
        org_id: uuid.UUID,
        kinds: Sequence[str],
        codes: Sequence[str],
        currencies: Sequence[str],
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[BuyerRequest]:
        """Open requests of other organisations, newest first after the keyset ``(created_at, id)``, whose
        kind, process and currency one of the organisation's listings offers, or to which it was invited (the
        engine then decides which listings really fit)."""
        invited = sa.exists().where(
            _inv.c.request_id == col(BuyerRequest.id),
            _inv.c.supplier_org_id == org_id,
            _inv.c.status != _S.withdrawn,
        )
        offered = sa.and_(
            col(BuyerRequest.kind).in_(list(kinds) or [""]),
            col(BuyerRequest.process_code).in_(list(codes) or [""]),
            col(BuyerRequest.currency).in_(list(currencies) or [""]),
        )
        stmt = sa.select(BuyerRequest).where(
            col(BuyerRequest.status) == RequestStatus.open,
            col(BuyerRequest.deadline) > now,
            col(BuyerRequest.buyer_org_id) != org_id,
            sa.or_(offered, invited),
        )
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(BuyerRequest.created_at), col(BuyerRequest.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(BuyerRequest.created_at).desc(), col(BuyerRequest.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
