"""The admin's books: the ledger (trial balance by account NAME, journal lines paged newest first) and the
audit log for people (when, who, what was done, to which object by its title, why), each with a CSV export
in the viewer's language (UTF-8 with BOM, formula-safe cells: marketplace/core/csv_export.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.admin.books_repository import Actor, BooksRepository, JournalLine, Target
from marketplace.admin.repository import AuditRepository
from marketplace.core.audit import AuditLog
from marketplace.core.csv_export import csv_response, safe_cell
from marketplace.core.db import SessionDep
from marketplace.core.errors import BadRequest
from marketplace.core.pagination import CursorParam, decode_cursor, encode_cursor
from marketplace.core.text import Line
from marketplace.web import account_2fa, i18n, labels
from marketplace.web.admin_queues import PAGE_SIZE, PageSize, next_url, require_admin
from marketplace.web.core import N_, SignedIn, WebError, locale_of, render
from payments import ledger, money

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])

CSV_BATCH = 500
ActionFilter = Annotated[Line | None, Query(max_length=100)]
ActorFilter = Annotated[Line | None, Query(max_length=320)]
_STALE_CURSOR = N_("This page link is out of date. Start again from the first page.")
_SYSTEM = N_("System")
_API_KEY = N_("API key “%(name)s”")
_DELETED = N_("Deleted user")
# What an audit entry was done to, when its title cannot be looked up (deleted, or a kind without a title).
TARGET_KINDS = {
    "asset": N_("Listing"), "organisation": N_("Organisation"), "booking": N_("Booking"),
    "listing_flag": N_("Report of a listing"), "certificate": N_("Certificate"), "invoice": N_("Invoice"),
    "quote": N_("Quote"), "request": N_("Request"), "document": N_("Document"),
    "observer_grant": N_("Observer access"), "observatory_month": N_("Market statistics"),
}  # fmt: skip

LEDGER_HEADER = (
    N_("Line"), N_("Posted at (UTC)"), N_("Journal"), N_("Account code"), N_("Account"), N_("Organisation"),
    N_("Currency"), N_("Debit"), N_("Credit"), N_("Memo"), N_("Booking"),
)  # fmt: skip
AUDIT_HEADER = (
    N_("When (UTC)"), N_("Actor"), N_("Actor e-mail"), N_("Action code"), N_("Action"), N_("Object type"),
    N_("Object ID"), N_("Object"), N_("Reason"),
)  # fmt: skip


def _line_id(request: Request, cursor: str | None) -> int | None:
    """The id a newest-first page of ids continues below; a tampered cursor is a friendly page."""
    try:
        values = decode_cursor(cursor)
    except BadRequest:
        values = [None]
    if values is None:
        return None
    if len(values) != 1 or not isinstance(values[0], int) or isinstance(values[0], bool):
        raise WebError(422, i18n.translations(locale_of(request)).gettext(_STALE_CURSOR))
    return values[0]


def _id_page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Cut ``limit + 1`` rows keyed by an integer id to a page and the cursor of the next one."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor([rows[limit - 1].id])


# -- ledger ---------------------------------------------------------------------------------------------------


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(
    request: Request, session: SessionDep, user: SignedIn, cursor: CursorParam = None, limit: PageSize = PAGE_SIZE
) -> HTMLResponse:
    """The trial balance per currency by account name, and the journal lines, newest first."""
    require_admin(user)
    rows = await BooksRepository(session).journal_lines(before_id=_line_id(request, cursor), limit=limit + 1)
    page, more = _id_page(rows, limit)
    return render(
        request,
        "admin/ledger.html",
        {
            "trial": await ledger.trial_balance(session),
            "lines": page,
            "first_page": cursor is None,
            "next_url": next_url("/admin/ledger", more, limit=limit if limit != PAGE_SIZE else None),
        },
        user=user,
    )


def _ledger_row(line: JournalLine, names: dict[str, Any]) -> list[object]:
    debit = money.input_value(line.amount, line.currency) if line.amount > 0 else ""
    credit = money.input_value(-line.amount, line.currency) if line.amount < 0 else ""
    return [
        line.id,
        line.created_at.astimezone(UTC),
        safe_cell(names["event_name"](line.kind)),
        line.account,
        safe_cell(names["account_name"](line.account)),
        safe_cell(line.org_name),
        line.currency,
        debit,
        credit,
        safe_cell(line.memo),
        safe_cell(line.booking_id),
    ]


async def _ledger_rows(
    maker: async_sessionmaker[AsyncSession], gettext: Callable[[str], str]
) -> AsyncIterator[list[object]]:
    """Every journal line, oldest first, one short transaction per batch (a slow download holds no
    connection; lines are immutable and numbered, so none is skipped or repeated)."""
    names = labels.helpers(gettext)
    yield [gettext(h) for h in LEDGER_HEADER]
    after: int | None = None
    while True:
        async with maker() as session:
            lines = await BooksRepository(session).journal_lines(before_id=after, limit=CSV_BATCH, newest_first=False)
        for line in lines:
            yield _ledger_row(line, names)
        if len(lines) < CSV_BATCH:
            return
        after = lines[-1].id


@router.get("/ledger.csv")
async def ledger_csv(request: Request, user: SignedIn) -> Response:
    """Every journal line as CSV: debit and credit in major units with the currency, account code and name."""
    require_admin(user)
    gettext = i18n.translations(locale_of(request)).gettext
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return csv_response(_ledger_rows(request.app.state.sessionmaker, gettext), filename=f"ledger-{stamp}.csv")


# -- audit log ------------------------------------------------------------------------------------------------


async def _audit_entries(
    session: AsyncSession, *, action: str | None, actor: str | None, before_id: int | None, limit: int
) -> list[AuditLog]:
    """A page of the audit log with the filters: an action code, and an actor ("system", or part of an
    e-mail address)."""
    repo = AuditRepository(session)
    who = (actor or "").strip()
    if who.lower() == "system":
        return await repo.entries(limit=limit, action=action, before_id=before_id, system_only=True)
    ids = await BooksRepository(session).actor_ids_by_email(who) if who else None
    return await repo.entries(limit=limit, action=action, before_id=before_id, actor_user_ids=ids)


def object_titles(
    entries: list[AuditLog], targets: dict[tuple[str, str], Target], gettext: Callable[[str], str]
) -> dict[int, Target]:
    """Each entry's object for people: its title (and link) when it can be looked up, else the kind of object
    with the name the entry recorded (a deleted document) or its month (market statistics)."""
    out: dict[int, Target] = {}
    for e in entries:
        found = targets.get((e.target_type, e.target_id))
        if found is None:
            kind = gettext(TARGET_KINDS.get(e.target_type, labels.OTHER))
            name = (e.before or {}).get("name") or (e.after or {}).get("name")
            if e.target_type == "observatory_month":
                name = e.target_id
            found = Target(f"{kind}: {name}" if name else kind)
        out[int(e.id or 0)] = found
    return out


def actor_text(actor: Actor | None, gettext: Callable[[str], str]) -> str:
    """Who did it, for people: the person's name, an API key's name, or "System"."""
    if actor is None or actor.kind == "system":
        return gettext(_SYSTEM)
    if actor.kind == "api_key":
        return gettext(_API_KEY) % {"name": actor.name or "–"}
    return actor.name or gettext(_DELETED)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    session: SessionDep,
    user: SignedIn,
    action: ActionFilter = None,
    actor: ActorFilter = None,
    cursor: CursorParam = None,
    limit: PageSize = PAGE_SIZE,
) -> HTMLResponse:
    """The audit log, newest first: when, who, what, on which object (by its title, linked), why."""
    require_admin(user)
    entries = await _audit_entries(
        session, action=action, actor=actor, before_id=_line_id(request, cursor), limit=limit + 1
    )
    page, more = _id_page(entries, limit)
    books = BooksRepository(session)
    gettext = i18n.translations(locale_of(request)).gettext
    actors = await books.actors(page)
    return render(
        request,
        "admin/audit.html",
        {
            "entries": page,
            "actors": {i: actor_text(a, gettext) for i, a in actors.items()},
            "emails": {i: a.email for i, a in actors.items() if a.email},
            "objects": object_titles(page, await books.targets(page), gettext),
            "action": action or "",
            "actor": actor or "",
            "actions": sorted(((c, gettext(n)) for c, n in labels.AUDIT_ACTIONS.items()), key=lambda kv: kv[1]),
            "next_url": next_url(
                "/admin/audit", more, action=action, actor=actor, limit=limit if limit != PAGE_SIZE else None
            ),
        },
        user=user,
    )


def _audit_row(e: AuditLog, *, who: Actor | None, target: Target, helpers: dict[str, Any]) -> list[object]:
    gettext = helpers["gettext"]
    return [
        e.created_at.astimezone(UTC),
        safe_cell(actor_text(who, gettext)),
        safe_cell(who.email if who else None),
        e.action,
        safe_cell(helpers["audit_action"](e.action)),
        e.target_type,
        safe_cell(e.target_id),
        safe_cell(target.title),
        safe_cell(e.reason),
    ]


async def _audit_rows(
    maker: async_sessionmaker[AsyncSession], gettext: Callable[[str], str], *, action: str | None, actor: str | None
) -> AsyncIterator[list[object]]:
    """The (filtered) audit log, newest first, one short transaction per batch."""
    helpers = {**labels.helpers(gettext), "gettext": gettext}
    yield [gettext(h) for h in AUDIT_HEADER]
    before: int | None = None
    while True:
        async with maker() as session:
            entries = await _audit_entries(session, action=action, actor=actor, before_id=before, limit=CSV_BATCH)
            books = BooksRepository(session)
            actors = await books.actors(entries)
            objects = object_titles(entries, await books.targets(entries), gettext)
        for e in entries:
            key = int(e.id or 0)
            yield _audit_row(e, who=actors.get(key), target=objects[key], helpers=helpers)
        if len(entries) < CSV_BATCH:
            return
        before = entries[-1].id


@router.get("/audit.csv")
async def audit_csv(
    request: Request, user: SignedIn, action: ActionFilter = None, actor: ActorFilter = None
) -> Response:
    """The audit log (with the page's filters) as CSV, in the viewer's language."""
    require_admin(user)
    gettext = i18n.translations(locale_of(request)).gettext
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    rows = _audit_rows(request.app.state.sessionmaker, gettext, action=action, actor=actor)
    return csv_response(rows, filename=f"audit-{stamp}.csv")
