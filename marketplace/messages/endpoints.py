"""Routes of the messages room: request and booking threads, the thread list, drawings and the NDA."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, status

from marketplace.auth.deps import CurrentPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.pagination import CursorParam, LimitParam, decode_keyset, encode_cursor
from marketplace.core.settings import Settings
from marketplace.documents import service as documents
from marketplace.messages import drawings, nda, notices, service
from marketplace.messages.models import Message
from marketplace.messages.repository import ThreadRow
from marketplace.messages.schemas import (
    DocumentRef,
    DrawingsIn,
    DrawingsOut,
    MessageIn,
    MessageOut,
    MessagePage,
    NdaAcceptanceOut,
    NdaAcceptIn,
    NdaOut,
    ReadOut,
    ThreadOut,
    ThreadPage,
)

router = APIRouter(tags=["messages"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _docs(rows: Sequence[Any]) -> list[DocumentRef]:
    return [DocumentRef.model_validate(documents.document_out(d), from_attributes=True) for d in rows]


def _message_out(message: Message, files: Sequence[Any], seat: service.Seat) -> MessageOut:
    """A message as the seat sees it; the factory's side of a request thread never learns who the buyer is."""
    thread = seat.thread or seat.new  # the first message opened the thread: same parties
    side = "platform"
    if thread is not None and message.author_org_id is not None:
        side = "buyer" if message.author_org_id == thread.buyer_org_id else "supplier"
    hide = (
        side == "buyer" and thread is not None and notices.buyer_hidden(thread, {seat.org_id} if seat.org_id else set())
    )
    return MessageOut(
        id=message.id,
        thread_id=message.thread_id,
        author_side=side,
        author_org_id=None if hide else message.author_org_id,
        author_user_id=None if hide else message.author_user_id,
        body=message.body,
        created_at=message.created_at,
        documents=_docs(files),
    )


async def _page(session: Any, seat: service.Seat, rows: list[Message], *, limit: int) -> MessagePage:
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1]
        nxt = encode_cursor([last.created_at.isoformat(), str(last.id)])
    files = await service.files_of(session, rows[:limit])
    items = [_message_out(m, files.get(m.id, []), seat) for m in rows[:limit]]
    return MessagePage(items=items, next_cursor=nxt, thread_id=seat.thread.id if seat.thread else None)


def _thread_out(row: ThreadRow, viewer_org_ids: frozenset[uuid.UUID]) -> ThreadOut:
    t = row.thread
    return ThreadOut(
        id=t.id,
        kind="booking" if t.booking_id else "request",
        request_id=t.request_id,
        booking_id=t.booking_id,
        buyer_org_id=None if notices.buyer_hidden(t, viewer_org_ids) else t.buyer_org_id,
        buyer_name=None if notices.buyer_hidden(t, viewer_org_ids) else row.buyer_name,
        supplier_org_id=t.supplier_org_id,
        supplier_name=row.supplier_name,
        last_message_at=t.last_message_at,
        unread=row.unread,
    )


# -- request threads -------------------------------------------------------------------------------


@router.post(
    "/requests/{request_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Write in the thread between a request's buyer and one supplier organisation",
)
async def post_request_message(
    request_id: uuid.UUID, data: MessageIn, session: SessionDep, principal: CurrentPrincipal
) -> MessageOut:
    seat = await service.request_seat(
        session, principal, request_id=request_id, supplier_org_id=data.supplier_org_id, write=True
    )
    message = await service.post(session, principal, seat=seat, body=data.body, document_ids=data.document_ids)
    files = await documents.attached(session, target_kind="message", target_id=message.id)
    return _message_out(message, files, seat)


@router.get(
    "/requests/{request_id}/messages",
    response_model=MessagePage,
    responses=error_responses(400, 401, 403, 404, 422),
    summary="Read a request thread, newest first (the buyer names supplier_org_id); marks it read",
)
async def get_request_messages(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    supplier_org_id: uuid.UUID | None = None,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> MessagePage:
    seat = await service.request_seat(
        session, principal, request_id=request_id, supplier_org_id=supplier_org_id, write=False
    )
    rows = await service.read_page(session, principal, seat=seat, after=decode_keyset(cursor), limit=limit + 1)
    return await _page(session, seat, rows, limit=limit)


@router.post(
    "/requests/{request_id}/messages/read",
    response_model=ReadOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Mark a request thread read",
)
async def read_request_thread(
    request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal, supplier_org_id: uuid.UUID | None = None
) -> ReadOut:
    seat = await service.request_seat(
        session, principal, request_id=request_id, supplier_org_id=supplier_org_id, write=False
    )
    return ReadOut(unread=await service.mark_read(session, principal, seat=seat))


# -- booking threads -------------------------------------------------------------------------------


@router.post(
    "/bookings/{booking_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Write in a booking's thread (its two organisations; admins while it is disputed or resolved)",
)
async def post_booking_message(
    booking_id: uuid.UUID, data: MessageIn, session: SessionDep, principal: CurrentPrincipal
) -> MessageOut:
    seat = await service.booking_seat(session, principal, booking_id=booking_id, write=True)
    message = await service.post(session, principal, seat=seat, body=data.body, document_ids=data.document_ids)
    files = await documents.attached(session, target_kind="message", target_id=message.id)
    return _message_out(message, files, seat)


@router.get(
    "/bookings/{booking_id}/messages",
    response_model=MessagePage,
    responses=error_responses(400, 401, 403, 404, 422),
    summary="Read a booking's thread, newest first; marks it read",
)
async def get_booking_messages(
    booking_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: LimitParam = 50,
    cursor: CursorParam = None,
) -> MessagePage:
    seat = await service.booking_seat(session, principal, booking_id=booking_id, write=False)
    rows = await service.read_page(session, principal, seat=seat, after=decode_keyset(cursor), limit=limit + 1)
    return await _page(session, seat, rows, limit=limit)


@router.post(
    "/bookings/{booking_id}/messages/read",
    response_model=ReadOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Mark a booking's thread read",
)
async def read_booking_thread(booking_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> ReadOut:
    seat = await service.booking_seat(session, principal, booking_id=booking_id, write=False)
    return ReadOut(unread=await service.mark_read(session, principal, seat=seat))


@router.get(
    "/messages/threads",
    response_model=ThreadPage,
    responses=error_responses(400, 401, 422),
    summary="My organisations' threads, most recently active first, with my unread counts",
)
async def list_threads(
    session: SessionDep, principal: CurrentPrincipal, limit: LimitParam = 50, cursor: CursorParam = None
) -> ThreadPage:
    rows = await service.threads(session, principal, after=decode_keyset(cursor), limit=limit + 1)
    nxt = None
    if len(rows) > limit:
        last = rows[limit - 1].thread
        nxt = encode_cursor([last.last_message_at.isoformat(), str(last.id)])
    return ThreadPage(items=[_thread_out(r, principal.org_ids) for r in rows[:limit]], next_cursor=nxt)


# -- drawings and the NDA --------------------------------------------------------------------------


@router.post(
    "/requests/{request_id}/drawings",
    status_code=status.HTTP_201_CREATED,
    response_model=DrawingsOut,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Attach uploaded drawings to an open request (the buyer)",
)
async def add_drawings(
    request_id: uuid.UUID, data: DrawingsIn, session: SessionDep, principal: CurrentPrincipal
) -> DrawingsOut:
    rows = await drawings.add(session, principal, request_id=request_id, document_ids=data.document_ids)
    request = await nda.load_request(session, request_id)
    return DrawingsOut(request_id=request_id, nda_required=request.nda_required, items=_docs(rows))


@router.get(
    "/requests/{request_id}/drawings",
    response_model=DrawingsOut,
    responses=error_responses(401, 403, 404, 422),
    summary="A request's drawings (suppliers: after accepting the NDA when the request requires it)",
)
async def list_drawings(request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> DrawingsOut:
    nda_required, rows = await drawings.listed(session, principal, request_id=request_id)
    return DrawingsOut(request_id=request_id, nda_required=nda_required, items=_docs(rows))


@router.get(
    "/nda",
    response_model=NdaOut,
    responses=error_responses(429, 503),
    summary="The platform NDA suppliers accept before seeing drawings",
)
async def get_nda(request: Request) -> NdaOut:
    return NdaOut(version=_settings(request).nda_version, text_en=nda.NDA_TEXT_EN, text_zh=nda.NDA_TEXT_ZH)


@router.post(
    "/requests/{request_id}/nda",
    response_model=NdaAcceptanceOut,
    responses=error_responses(401, 403, 404, 422),
    summary="Accept the NDA for a request (a supplier that may see it); idempotent",
)
async def accept_nda(
    request_id: uuid.UUID, data: NdaAcceptIn, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> NdaAcceptanceOut:
    row = await nda.accept(session, principal, settings=_settings(request), request_id=request_id, version=data.version)
    return NdaAcceptanceOut.model_validate(row)
