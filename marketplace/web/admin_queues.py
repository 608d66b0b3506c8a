"""The admin's work queues, one page each and paged by cursor: listings waiting for review, open flags (the
listing's title, the reason in the viewer's language, who reported it), open disputes (both parties, the
amount, a refund typed in major units) and every organisation by verification status.

The POST actions behind these pages live in admin.py; they come back here with a notice or error CODE in the
query (``?error=reason_required&row=<id>``), shown beside the row's field in the page's language, or, for a
dispute, re-render the page through :func:`disputes_page`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from marketplace.admin.queue_repository import AdminQueueRepository, Keyset
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest
from marketplace.core.pagination import CursorParam, decode_keyset, keyset_page
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.orgs import service as orgs
from marketplace.web import account_2fa, i18n
from marketplace.web.core import N_, SignedIn, WebError, locale_of, render
from marketplace.web.flags import reason_label

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])

PAGE_SIZE = 25
PageSize = Annotated[int, Query(ge=1, le=100)]

# What an action reports back to its page (a code in the query; never free text through the URL).
NOTICES = {
    "saved": N_("Saved."),
    "approved": N_("The listing is approved and published."),
    "rejected": N_("The listing is rejected; the owner sees your reason."),
    "suspended": N_("The listing is suspended; the owner sees your reason."),
    "reinstated": N_("The listing is reinstated."),
    "flag_resolved": N_("The report is resolved."),
    "dispute_resolved": N_("The dispute is resolved."),
}
ERRORS = {
    "reason_required": N_("Give a reason so the owner knows what to fix."),
    "resolution_required": N_("Describe how the report was resolved."),
    "changed": N_("This item has changed in the meantime. Reload the page and check it again."),
    "failed": N_("The action could not be completed. Please try again."),
}
_STALE_CURSOR = N_("This page link is out of date. Start again from the first page.")

OrgStatus = Literal["unverified", "pending", "verified", "rejected"]
ORG_STATUSES: tuple[OrgStatus, ...] = ("pending", "unverified", "verified", "rejected")


def require_admin(user: Principal) -> Principal:
    """Platform admins only: anyone else gets 403 on every admin page and action."""
    if not user.is_platform_admin:
        raise WebError(403, "admin")
    return user


def keyset_of(request: Request, cursor: str | None) -> Keyset | None:
    """The ``(created_at, id)`` a page continues after; a tampered or stale cursor is a friendly page."""
    try:
        return decode_keyset(cursor)
    except BadRequest:
        raise WebError(422, i18n.translations(locale_of(request)).gettext(_STALE_CURSOR)) from None


def next_url(path: str, next_cursor: str | None, **query: Any) -> str | None:
    """The link to the next page (None on the last page), keeping the page's filters."""
    if next_cursor is None:
        return None
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode({**kept, 'cursor': next_cursor})}"


def messages(
    request: Request,
    notice: str | None,
    error: str | None,
    *,
    notices: dict[str, str] = NOTICES,
    errors: dict[str, str] = ERRORS,
) -> dict[str, str | None]:
    """A page's notice and error codes in the viewer's language (an unknown code shows nothing)."""
    gettext = i18n.translations(locale_of(request)).gettext
    return {
        "notice": gettext(notices[notice]) if notice in notices else None,
        "error": gettext(errors[error]) if error in errors else None,
    }


@dataclass(frozen=True)
class QueueQuery:
    """What a queue page is asked for: the page (cursor, size) and what the last action reported (codes)."""

    cursor: str | None
    limit: int
    notice: str | None
    error: str | None
    row: uuid.UUID | None

    def next_url(self, path: str, more: str | None) -> str | None:
        return next_url(path, more, limit=self.limit if self.limit != PAGE_SIZE else None)


def queue_query(
    *,
    cursor: CursorParam = None,
    limit: PageSize = PAGE_SIZE,
    notice: Line | None = None,
    error: Line | None = None,
    row: uuid.UUID | None = None,
) -> QueueQuery:
    return QueueQuery(cursor, limit, notice, error, row)


Queue = Annotated[QueueQuery, Depends(queue_query)]


@router.get("/moderation", response_class=HTMLResponse)
async def moderation(request: Request, session: SessionDep, user: SignedIn, q: Queue) -> HTMLResponse:
    """Listings waiting for review, the longest waiting first, with their owner: approve or reject."""
    require_admin(user)
    rows = await AdminQueueRepository(session).pending_listings(after=keyset_of(request, q.cursor), limit=q.limit + 1)
    page, more = keyset_page(rows, q.limit)
    return render(
        request,
        "admin/moderation.html",
        {
            "rows": page,
            "cursor": q.cursor or "",
            "next_url": q.next_url("/admin/moderation", more),
            "row": q.row,
            **messages(request, q.notice, q.error),
        },
        user=user,
    )


@router.get("/flags", response_class=HTMLResponse)
async def flags(request: Request, session: SessionDep, user: SignedIn, q: Queue) -> HTMLResponse:
    """Open reports of listings, the oldest first: the listing's title and link, the reason in the viewer's
    language, the reporter and their organisation; resolve the report or suspend the listing."""
    require_admin(user)
    locale = locale_of(request)
    rows = await AdminQueueRepository(session).open_flags(after=keyset_of(request, q.cursor), limit=q.limit + 1)
    page, more = keyset_page(rows, q.limit)
    return render(
        request,
        "admin/flags.html",
        {
            "rows": [(f, reason_label(f.reason_code, locale), f.reason) for f in page],
            "cursor": q.cursor or "",
            "next_url": q.next_url("/admin/flags", more),
            "row": q.row,
            **messages(request, q.notice, q.error),
        },
        user=user,
    )


async def disputes_page(
    request: Request,
    session: SessionDep,
    user: Principal,
    *,
    cursor: str | None,
    limit: int = PAGE_SIZE,
    notice: str | None = None,
    errors: dict[uuid.UUID, dict[str, str]] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The open disputes page; after a refused resolution, ``errors`` holds that booking's field messages
    (already in the page's language) and ``form`` what the admin typed."""
    rows = await AdminQueueRepository(session).open_disputes(after=keyset_of(request, cursor), limit=limit + 1)
    page, more = keyset_page(rows, limit)
    return render(
        request,
        "admin/disputes.html",
        {
            "rows": page,
            "cursor": cursor or "",
            "next_url": next_url("/admin/disputes", more, limit=limit if limit != PAGE_SIZE else None),
            "errors": errors or {},
            "form": form or {},
            **messages(request, notice, None),
        },
        status=422 if errors else 200,
        user=user,
    )


@router.get("/disputes", response_class=HTMLResponse)
async def disputes(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    cursor: CursorParam = None,
    limit: PageSize = PAGE_SIZE,
    notice: Line | None = None,
) -> HTMLResponse:
    """Open disputes, the oldest first: both parties, the amount, the buyer's reason and the resolve form."""
    require_admin(user)
    return await disputes_page(request, session, user, cursor=cursor, limit=limit, notice=notice)


@router.get("/orgs", response_class=HTMLResponse)
async def organisations(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    status: OrgStatus | None = None,
    cursor: CursorParam = None,
    limit: PageSize = PAGE_SIZE,
) -> HTMLResponse:
    """Every organisation (or those of one verification status), the oldest first."""
    require_admin(user)
    rows = await orgs.list_orgs_for_admin(session, status, after=keyset_of(request, cursor), limit=limit + 1)
    page, more = keyset_page(rows, limit)
    return render(
        request,
        "admin/orgs.html",
        {
            "rows": page,
            "status": status,
            "statuses": ORG_STATUSES,
            "next_url": next_url("/admin/orgs", more, status=status, limit=limit if limit != PAGE_SIZE else None),
        },
        user=user,
    )
