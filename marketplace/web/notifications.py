"""The notification centre: the signed-in person's notifications (newest first), mark one or all read, and
the unread count the navigation bar loads after the page."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.pagination import CursorParam, decode_keyset, encode_cursor
from marketplace.notifications import service as notifications
from marketplace.web.core import CsrfChecked, SignedIn, WebError, WebUser, locale_of, redirect, render
from marketplace.web.negotiation_views import page_helpers

router = APIRouter(include_in_schema=False)
PAGE = 50


@router.get("/notifications", response_class=HTMLResponse)
async def centre(request: Request, session: SessionDep, user: SignedIn, cursor: CursorParam = None) -> HTMLResponse:
    if user.user_id is None:
        raise WebError(403, "forbidden")
    try:
        after = decode_keyset(cursor)
    except AppError:
        raise WebError(404, "not_found") from None
    rows = await notifications.page(session=session, user_id=user.user_id, unread=False, after=after, limit=PAGE + 1)
    next_cursor = (
        encode_cursor([rows[PAGE - 1].created_at.isoformat(), str(rows[PAGE - 1].id)]) if len(rows) > PAGE else None
    )
    unread = await notifications.unread_count(session, user_id=user.user_id)
    locale = locale_of(request)
    items = [(n, *notifications.shown_in(n, locale)) for n in rows[:PAGE]]
    return render(
        request,
        "messages/notifications.html",
        {"items": items, "next_cursor": next_cursor, "unread": unread, "error": None, **page_helpers(request)},
        user=user,
    )


@router.post("/notifications/read-all")
async def read_all(session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    if user.user_id is None:
        raise WebError(403, "forbidden")
    await notifications.mark_all_read(session, user_id=user.user_id)
    return redirect("/notifications")


@router.post("/notifications/{notification_id}/read")
async def read_one(notification_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    try:
        await notifications.mark_read(session=session, user_id=user.user_id, notification_id=notification_id)
    except AppError:
        raise WebError(404, "not_found") from None
    return redirect("/notifications")


@router.get("/notifications/badge", response_class=HTMLResponse)
async def badge(request: Request, session: SessionDep, user: WebUser) -> HTMLResponse:
    """The unread count next to the bell (an empty fragment for a visitor or when nothing is unread)."""
    count = await notifications.unread_count(session, user_id=user.user_id) if user and user.user_id else 0
    return render(request, "messages/_badge.html", {"count": count}, user=user)
