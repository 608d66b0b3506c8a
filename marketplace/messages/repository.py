"""All SQL of the messages room: threads, messages, read marks, digest marks and NDA acceptances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from marketplace.auth.models import User
from marketplace.documents.models import Document, DocumentLink
from marketplace.messages.models import Message, MessageDigestMark, MessageRead, MessageThread, NdaAcceptance
from marketplace.orgs.models import Membership, Organisation

_NEVER = sa.literal(datetime(1970, 1, 1, tzinfo=UTC), sa.DateTime(timezone=True))


@dataclass(frozen=True)
class ThreadRow:
    thread: MessageThread
    unread: int
    buyer_name: str
    supplier_name: str


def _unread_for(user_id: uuid.UUID) -> sa.ColumnElement[int]:
    """Correlated count of the thread's messages the user has not read, written by someone outside the user's
    organisations (the other side, or a platform admin other than the user)."""
    read_until = (
        sa.select(col(MessageRead.read_until))
        .where(col(MessageRead.thread_id) == col(MessageThread.id), col(MessageRead.user_id) == user_id)
        .scalar_subquery()
    )
    own = sa.select(col(Membership.org_id)).where(col(Membership.user_id) == user_id)
    return (
        sa.select(sa.func.count())
        .select_from(Message)
        .where(
            col(Message.thread_id) == col(MessageThread.id),
            col(Message.created_at) > sa.func.coalesce(read_until, _NEVER),
            sa.or_(col(Message.author_org_id).is_(None), col(Message.author_org_id).not_in(own)),
            col(Message.author_user_id).is_distinct_from(user_id),
        )
        .correlate(MessageThread)
        .scalar_subquery()
    )


def _thread_rows(user_id: uuid.UUID) -> sa.Select[MessageThread, int, str, str]:
    """Threads with the user's unread count and the buyer's and the supplier's organisation names."""
    buyer = aliased(Organisation)
    supplier = aliased(Organisation)
    return (
        sa.select(MessageThread, _unread_for(user_id), col(buyer.name), col(supplier.name))
        .join(buyer, col(buyer.id) == col(MessageThread.buyer_org_id))
        .join(supplier, col(supplier.id) == col(MessageThread.supplier_org_id))
    )


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- threads ------------------------------------------------------------------------------------

    async def request_thread(self, request_id: uuid.UUID, supplier_org_id: uuid.UUID) -> MessageThread | None:
        stmt = sa.select(MessageThread).where(
            col(MessageThread.request_id) == request_id, col(MessageThread.supplier_org_id) == supplier_org_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def booking_thread(self, booking_id: uuid.UUID) -> MessageThread | None:
        stmt = sa.select(MessageThread).where(col(MessageThread.booking_id) == booking_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_thread(self, thread: MessageThread) -> MessageThread:
        """Insert the thread unless its (request, supplier) or booking already has one (two first messages at
        once both end in the same thread); returns the stored thread."""
        values = {c: getattr(thread, c) for c in ("id", "request_id", "booking_id", "buyer_org_id", "supplier_org_id")}
        await self.session.execute(insert(MessageThread).values(**values).on_conflict_do_nothing())
        found = (
            await self.booking_thread(thread.booking_id)
            if thread.booking_id is not None
            else await self.request_thread(thread.request_id, thread.supplier_org_id)  # type: ignore[arg-type]
        )
        if found is None:  # the insert or the concurrent one that won must be there
            raise RuntimeError("message thread missing after its insert")
        return found

    async def thread_of_message(self, message_id: uuid.UUID) -> MessageThread | None:
        stmt = (
            sa.select(MessageThread)
            .join(Message, col(Message.thread_id) == col(MessageThread.id))
            .where(col(Message.id) == message_id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def threads_for(
        self,
        *,
        user_id: uuid.UUID,
        org_ids: Sequence[uuid.UUID],
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ThreadRow]:
        """The organisations' threads, most recently active first, each with the user's unread count and the
        two organisations' names, in one statement."""
        stmt = _thread_rows(user_id).where(
            sa.or_(
                col(MessageThread.buyer_org_id).in_(list(org_ids)),
                col(MessageThread.supplier_org_id).in_(list(org_ids)),
            )
        )
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(MessageThread.last_message_at), col(MessageThread.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(MessageThread.last_message_at).desc(), col(MessageThread.id).desc()).limit(limit)
        return await self._thread_rows_of(stmt)

    async def _thread_rows_of(self, stmt: sa.Select[MessageThread, int, str, str]) -> list[ThreadRow]:
        rows = (await self.session.execute(stmt)).all()
        return [ThreadRow(thread=t, unread=int(n), buyer_name=b, supplier_name=s) for t, n, b, s in rows]

    async def unread_in(self, thread_id: uuid.UUID, user_id: uuid.UUID) -> int:
        stmt = sa.select(_unread_for(user_id)).select_from(MessageThread).where(col(MessageThread.id) == thread_id)
        return int((await self.session.execute(stmt)).scalar_one())

    # -- messages -----------------------------------------------------------------------------------

    async def add_message(self, thread: MessageThread, message: Message) -> Message:
        self.session.add(message)
        thread.last_message_at = message.created_at
        await self.session.flush()
        return message

    async def page(
        self, thread_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Message]:
        """The thread's messages, newest first, after the keyset cursor ``after``."""
        stmt = sa.select(Message).where(col(Message.thread_id) == thread_id)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Message.created_at), col(Message.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def files_of(self, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Document]]:
        """The live documents attached to each of the messages (one statement for a page of messages)."""
        if not message_ids:
            return {}
        stmt = (
            sa.select(col(DocumentLink.target_id), Document)
            .join(DocumentLink, col(DocumentLink.document_id) == col(Document.id))
            .where(
                col(DocumentLink.target_kind) == "message",
                col(DocumentLink.target_id).in_(list(message_ids)),
                col(Document.deleted_at).is_(None),
            )
            .order_by(col(Document.created_at), col(Document.id))
        )
        out: dict[uuid.UUID, list[Document]] = {}
        for target_id, doc in (await self.session.execute(stmt)).all():
            out.setdefault(target_id, []).append(doc)
        return out

    async def newest_at(self, thread_id: uuid.UUID) -> datetime | None:
        stmt = sa.select(sa.func.max(col(Message.created_at))).where(col(Message.thread_id) == thread_id)
        return (await self.session.execute(stmt)).scalar_one()

    async def mark_read(self, thread_id: uuid.UUID, user_id: uuid.UUID, until: datetime) -> None:
        """Move the user's read mark forward to ``until`` (never backwards)."""
        stmt = insert(MessageRead).values(thread_id=thread_id, user_id=user_id, read_until=until)
        stmt = stmt.on_conflict_do_update(
            index_elements=["thread_id", "user_id"],
            set_={"read_until": sa.func.greatest(MessageRead.__table__.c.read_until, stmt.excluded.read_until)},  # type: ignore[attr-defined]
        )
        await self.session.execute(stmt)

    # -- digest -------------------------------------------------------------------------------------

    def _digestable(self, cutoff: datetime) -> sa.Select[uuid.UUID, uuid.UUID]:
        """(user, thread) pairs with a message the user has not read, written by the other side before
        ``cutoff`` and after the user's last digest."""
        own = aliased(Membership)
        return (
            sa.select(col(Membership.user_id), col(MessageThread.id))
            .select_from(Message)
            .join(MessageThread, col(MessageThread.id) == col(Message.thread_id))
            .join(
                Membership,
                col(Membership.org_id).in_([col(MessageThread.buyer_org_id), col(MessageThread.supplier_org_id)]),
            )
            .join(User, sa.and_(col(User.id) == col(Membership.user_id), col(User.is_active)))
            .outerjoin(
                MessageRead,
                sa.and_(
                    col(MessageRead.thread_id) == col(MessageThread.id),
                    col(MessageRead.user_id) == col(Membership.user_id),
                ),
            )
            .outerjoin(MessageDigestMark, col(MessageDigestMark.user_id) == col(Membership.user_id))
            .where(
                col(Message.created_at) <= cutoff,
                col(Message.created_at) > sa.func.coalesce(col(MessageRead.read_until), _NEVER),
                col(Message.created_at) > sa.func.coalesce(col(MessageDigestMark.sent_at), _NEVER),
                col(Message.author_user_id).is_distinct_from(col(Membership.user_id)),
                ~sa.exists().where(
                    col(own.user_id) == col(Membership.user_id), col(own.org_id) == col(Message.author_org_id)
                ),
            )
        )

    async def digest_users(self, cutoff: datetime) -> list[uuid.UUID]:
        sub = self._digestable(cutoff).subquery()
        rows = await self.session.execute(sa.select(sub.c[0]).distinct())
        return [r[0] for r in rows.all()]

    async def lock_digest_mark(self, user_id: uuid.UUID) -> MessageDigestMark | None:
        """The user's digest mark, locked (two sweeps never mail the same user at once); None before the first."""
        await self.session.execute(sa.select(col(User.id)).where(col(User.id) == user_id).with_for_update())
        stmt = sa.select(MessageDigestMark).where(col(MessageDigestMark.user_id) == user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def digest_threads(self, user_id: uuid.UUID, cutoff: datetime) -> list[ThreadRow]:
        """The user's threads that have something to mail, with the user's unread counts and the names."""
        due = self._digestable(cutoff).where(col(Membership.user_id) == user_id).subquery()
        stmt = (
            _thread_rows(user_id)
            .where(col(MessageThread.id).in_(sa.select(due.c[1])))
            .order_by(col(MessageThread.last_message_at).desc())
        )
        return await self._thread_rows_of(stmt)

    async def user(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def user_org_ids(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        rows = await self.session.execute(sa.select(col(Membership.org_id)).where(col(Membership.user_id) == user_id))
        return {r[0] for r in rows.all()}

    async def set_digest_mark(self, user_id: uuid.UUID, sent_at: datetime) -> None:
        stmt = insert(MessageDigestMark).values(user_id=user_id, sent_at=sent_at)
        stmt = stmt.on_conflict_do_update(index_elements=["user_id"], set_={"sent_at": stmt.excluded.sent_at})
        await self.session.execute(stmt)

    # -- NDA ----------------------------------------------------------------------------------------

    async def nda_acceptance(self, request_id: uuid.UUID, org_id: uuid.UUID) -> NdaAcceptance | None:
        return await self.session.get(NdaAcceptance, (request_id, org_id))

    async def accepted_orgs(self, request_id: uuid.UUID, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        stmt = sa.select(col(NdaAcceptance.org_id)).where(
            col(NdaAcceptance.request_id) == request_id, col(NdaAcceptance.org_id).in_(list(org_ids))
        )
        return {r[0] for r in (await self.session.execute(stmt)).all()}

    async def accept_nda(self, acceptance: NdaAcceptance) -> NdaAcceptance:
        """Record the acceptance unless the organisation already accepted for this request (the first stays)."""
        values = {
            "request_id": acceptance.request_id,
            "org_id": acceptance.org_id,
            "user_id": acceptance.user_id,
            "version": acceptance.version,
            "accepted_at": acceptance.accepted_at,
        }
        await self.session.execute(insert(NdaAcceptance).values(**values).on_conflict_do_nothing())
        stmt = sa.select(NdaAcceptance).where(
            col(NdaAcceptance.request_id) == acceptance.request_id, col(NdaAcceptance.org_id) == acceptance.org_id
        )
        return (await self.session.execute(stmt.execution_options(populate_existing=True))).scalar_one()
