"""Message threads: who may read and write which thread, posting (with attached documents), reading (which
moves the reader's read mark) and the list of a user's threads with unread counts.

A request thread belongs to the request's buyer organisation and one supplier organisation (one that
``invitations.may_see`` lets see the request, or that already has the thread). A booking thread belongs to
the booking's two organisations; platform admins may read and write it while the booking is disputed or
resolved (they handle the dispute). Everyone else gets 404, as if the thread did not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.bookings.models import Booking, BookingStatus
from marketplace.bookings.repository import BookingRepository
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal
from marketplace.documents import service as documents
from marketplace.documents.access import register_party_check
from marketplace.messages import notices
from marketplace.messages.models import Message, MessageThread
from marketplace.messages.repository import MessageRepository, ThreadRow
from marketplace.quotes import invitations
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import RequestRepository

ADMIN_STATUSES = frozenset({BookingStatus.disputed, BookingStatus.resolved})


class ThreadNotFound(NotFound):
    """Thread not found."""


@dataclass(frozen=True)
class Seat:
    """Where the caller sits in a thread: the organisation it writes for (None: a platform admin)."""

    thread: MessageThread | None  # None: the thread does not exist yet (no message so far)
    org_id: uuid.UUID | None
    new: MessageThread | None = None  # the thread to open on the first message


def _need_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")


async def _request(session: AsyncSession, request_id: uuid.UUID) -> BuyerRequest:
    row = await RequestRepository(session).get(request_id)
    if row is None:
        raise ThreadNotFound()
    return row


async def request_seat(
    session: AsyncSession,
    principal: Principal,
    *,
    request_id: uuid.UUID,
    supplier_org_id: uuid.UUID | None,
    write: bool,
) -> Seat:
    """The caller's seat in a request thread. The buyer names the supplier organisation; a supplier's thread is
    its own (``supplier_org_id`` picks one of its organisations if it has several)."""
    _need_scope(principal, "requests:write" if write else "requests:read")
    request = await _request(session, request_id)
    repo = MessageRepository(session)
    if supplier_org_id is not None and principal.is_member(supplier_org_id):
        candidates = [supplier_org_id] if supplier_org_id != request.buyer_org_id else []
    elif principal.is_member(request.buyer_org_id):
        if supplier_org_id is None:
            raise Unprocessable("supplier_org_id: say which supplier organisation's thread you mean.")
        thread = await repo.request_thread(request_id, supplier_org_id)
        if thread is None and not await invitations.may_see(session, request=request, supplier_org_id=supplier_org_id):
            raise ThreadNotFound()
        return Seat(thread=thread, org_id=request.buyer_org_id, new=_new_request_thread(request, supplier_org_id))
    elif supplier_org_id is not None:
        raise ThreadNotFound()
    else:
        candidates = sorted(principal.org_ids - {request.buyer_org_id})
    for org_id in candidates:
        thread = await repo.request_thread(request_id, org_id)
        if thread is not None or await invitations.may_see(session, request=request, supplier_org_id=org_id):
            return Seat(thread=thread, org_id=org_id, new=_new_request_thread(request, org_id))
    raise ThreadNotFound()


def _new_request_thread(request: BuyerRequest, supplier_org_id: uuid.UUID) -> MessageThread:
    return MessageThread(request_id=request.id, buyer_org_id=request.buyer_org_id, supplier_org_id=supplier_org_id)


async def booking_seat(session: AsyncSession, principal: Principal, *, booking_id: uuid.UUID, write: bool) -> Seat:
    """The caller's seat in a booking thread: one of the booking's organisations, or an admin on a dispute."""
    booking: Booking | None = await BookingRepository(session).get(booking_id)
    if booking is None:
        raise ThreadNotFound()
    new = MessageThread(
        booking_id=booking.id, buyer_org_id=booking.buyer_org_id, supplier_org_id=booking.supplier_org_id
    )
    thread = await MessageRepository(session).booking_thread(booking_id)
    for org_id in (booking.buyer_org_id, booking.supplier_org_id):
        if principal.is_member(org_id):
            _need_scope(principal, "bookings:write" if write else "bookings:read")
            return Seat(thread=thread, org_id=org_id, new=new)
    if principal.is_platform_admin and booking.status in ADMIN_STATUSES:
        return Seat(thread=thread, org_id=None, new=new)
    raise ThreadNotFound()


async def post(
    session: AsyncSession, principal: Principal, *, seat: Seat, body: str, document_ids: list[uuid.UUID]
) -> Message:
    """Write a message (opening the thread on the first one), attach the documents to it and tell the other
    side in-app (no immediate e-mail: unread messages go out in the digest)."""
    if not body.strip():
        raise Unprocessable("body: write a message.")
    repo = MessageRepository(session)
    thread = seat.thread
    if thread is None:
        if seat.new is None:
            raise ThreadNotFound()
        thread = await repo.open_thread(seat.new)
    message = await repo.add_message(
        thread, Message(thread_id=thread.id, author_org_id=seat.org_id, author_user_id=principal.user_id, body=body)
    )
    if document_ids:
        await documents.attach(
            session, principal=principal, document_ids=document_ids, target_kind="message", target_id=message.id
        )
    if principal.user_id is not None:
        await repo.mark_read(thread.id, principal.user_id, message.created_at)
    await notices.message_received(session, thread=thread, message=message)
    return message


async def read_page(
    session: AsyncSession,
    principal: Principal,
    *,
    seat: Seat,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Message]:
    """A page of the thread (newest first). Reading the first page marks the thread read up to its newest
    message for the calling user."""
    if seat.thread is None:
        return []
    repo = MessageRepository(session)
    rows = await repo.page(seat.thread.id, after=after, limit=limit)
    if after is None and rows and principal.user_id is not None:
        await repo.mark_read(seat.thread.id, principal.user_id, rows[0].created_at)
    return rows


async def files_of(session: AsyncSession, messages: list[Message]) -> dict[uuid.UUID, list[Any]]:
    """The documents attached to each message of a page, read at once."""
    return dict(await MessageRepository(session).files_of([m.id for m in messages]))


async def mark_read(session: AsyncSession, principal: Principal, *, seat: Seat) -> int:
    """Mark the whole thread read for the caller; returns the unread count left (0)."""
    if seat.thread is None or principal.user_id is None:
        return 0
    repo = MessageRepository(session)
    newest = await repo.newest_at(seat.thread.id)
    if newest is not None:
        await repo.mark_read(seat.thread.id, principal.user_id, newest)
    return await repo.unread_in(seat.thread.id, principal.user_id)


async def threads(
    session: AsyncSession, principal: Principal, *, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ThreadRow]:
    """The threads of the caller's organisations, most recently active first, with the caller's unread counts."""
    if principal.user_id is None or not principal.org_ids:
        return []
    return await MessageRepository(session).threads_for(
        user_id=principal.user_id, org_ids=sorted(principal.org_ids), after=after, limit=limit
    )


async def may_read_message_files(session: AsyncSession, message_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
    """Party check of documents attached to a message: the two organisations of its thread."""
    thread = await MessageRepository(session).thread_of_message(message_id)
    return thread is not None and bool({thread.buyer_org_id, thread.supplier_org_id} & org_ids)


register_party_check("message", may_read_message_files)
