"""Platform administration: the overview (what waits in each queue, whether the books balance, what happened
lately) and the actions behind the queue pages of admin_queues.py: moderating a listing, resolving a report,
resolving a dispute. Organisation verification is admin_verification.py; the ledger and audit log are
admin_books.py.

Every action is admin-only and CSRF-checked; a refused action saves nothing and comes back to its page with
the message beside the row's field, in the page's language (a code in the query, or for a dispute the page
re-rendered with the refund field's message)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from listings.errors import InvalidTransition, ListingsError, NotFound
from marketplace.admin import moderation
from marketplace.admin.books_repository import BooksRepository
from marketplace.admin.moderation import MODERATION_ACTIONS, ModerationAction
from marketplace.admin.queue_repository import AdminQueueRepository
from marketplace.admin.repository import AuditRepository
from marketplace.bookings import service as bookings
from marketplace.bookings.repository import BookingRepository
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line, Text
from marketplace.web import account_2fa, i18n
from marketplace.web.admin_books import actor_text, object_titles
from marketplace.web.admin_queues import disputes_page, messages, require_admin
from marketplace.web.core import (
    N_,
    CsrfChecked,
    FieldError,
    SignedIn,
    WebError,
    locale_of,
    parse_money_input,
    redirect,
    render,
)
from payments import ledger

# In production an admin without two-factor sign-in is refused every page here (see account_2fa.py).
router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)])

PREVIEW = 5  # the oldest rows of each queue shown on the overview
RECENT = 10  # audit entries shown on the overview

_ENTER_REFUND = N_("Enter the refund in %(currency)s; enter 0 for no refund.")
_REFUND_TOO_LARGE = N_("The refund can be at most the booking amount, %(amount)s.")
_ENTER_NOTE = N_("Write a note for both parties explaining the decision.")
_NOT_DISPUTED = N_("This booking is no longer in dispute. Reload the page.")
_NOT_RESOLVED = N_("The dispute could not be resolved. Check the amounts and try again.")

BackTo = Literal["moderation", "flags"]
FormCursor = Annotated[Line, Form(max_length=2000)]


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request, session: SessionDep, user: SignedIn, notice: Line | None = None, error: Line | None = None
) -> HTMLResponse:
    """What waits in each queue (with the oldest few), the trial balance, and the latest audit entries."""
    require_admin(user)
    queues = AdminQueueRepository(session)
    books = BooksRepository(session)
    recent = await AuditRepository(session).entries(limit=RECENT)
    gettext = i18n.translations(locale_of(request)).gettext
    actors = await books.actors(recent)
    return render(
        request,
        "admin/overview.html",
        {
            "counts": await queues.counts(),
            "listings": await queues.pending_listings(after=None, limit=PREVIEW),
            "flags": await queues.open_flags(after=None, limit=PREVIEW),
            "disputes": await queues.open_disputes(after=None, limit=PREVIEW),
            "trial": await ledger.trial_balance(session),
            "recent": recent,
            "actors": {i: actor_text(a, gettext) for i, a in actors.items()},
            "objects": object_titles(recent, await books.targets(recent), gettext),
            **messages(request, notice, error),
        },
        user=user,
    )


def _back(page: str, cursor: str, **query: str) -> Response:
    """Back to a queue page (the same page of it) with a notice or error code."""
    params = {**({"cursor": cursor} if cursor else {}), **query}
    return redirect(f"/admin/{page}?{urlencode(params)}")


@router.post("/assets/{asset_id}/{action}")
async def moderate(
    asset_id: uuid.UUID,
    action: Line,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    reason: Annotated[Text, Form()] = "",
    back: Annotated[BackTo, Form()] = "moderation",
    cursor: FormCursor = "",
) -> Response:
    """Approve, reject, suspend or reinstate a listing (reject and suspend need a reason for the owner)."""
    require_admin(user)
    if action not in MODERATION_ACTIONS:
        raise WebError(404, "not_found")
    reason = reason.strip()
    if action in ("reject", "suspend") and not reason:
        return _back(back, cursor, error="reason_required", row=str(asset_id))
    try:
        await moderation.moderate_asset(
            session=session,
            principal=user,
            asset_id=asset_id,
            action=cast(ModerationAction, action),  # checked against MODERATION_ACTIONS above
            reason=reason or None,
        )
    except NotFound:
        raise WebError(404, "not_found") from None
    except ListingsError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        code = "changed" if isinstance(exc, InvalidTransition) else "failed"
        return _back(back, cursor, error=code, row=str(asset_id))
    done = {"approve": "approved", "reject": "rejected", "suspend": "suspended", "reinstate": "reinstated"}
    return _back(back, cursor, notice=done[action])


@router.post("/flags/{flag_id}/resolve")
async def resolve_flag(
    flag_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    resolution: Annotated[Text, Form()] = "",
    cursor: FormCursor = "",
) -> Response:
    """Close a report of a listing with what was done about it (kept in the audit log)."""
    require_admin(user)
    resolution = resolution.strip()
    if not resolution:
        return _back("flags", cursor, error="resolution_required", row=str(flag_id))
    try:
        await moderation.resolve_flag(session=session, principal=user, flag_id=flag_id, resolution=resolution)
    except NotFound:
        raise WebError(404, "not_found") from None
    except ListingsError:
        await session.rollback()
        return _back("flags", cursor, error="failed", row=str(flag_id))
    return _back("flags", cursor, notice="flag_resolved")


async def _refund_of(request: Request, session: SessionDep, booking_id: uuid.UUID, *, typed: str) -> tuple[int, str]:
    """The refund typed in major units → minor units of the booking's currency, checked against the booking's
    amount; raises FieldError (in the page's language) beside the refund field, or on the form."""
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    booking = await BookingRepository(session).get(booking_id)
    if booking is None:
        raise WebError(404, "not_found")
    if booking.status != "disputed":
        raise FieldError("_", gettext(_NOT_DISPUTED))
    refund = parse_money_input(typed, booking.currency, field="refund_amount", locale=locale)
    if refund is None:
        raise FieldError("refund_amount", gettext(_ENTER_REFUND) % {"currency": booking.currency})
    if refund > booking.amount:
        amount = i18n.money(booking.amount, booking.currency, locale)
        raise FieldError("refund_amount", gettext(_REFUND_TOO_LARGE) % {"amount": amount})
    return refund, booking.currency


@router.post("/bookings/{booking_id}/resolve")
async def resolve_dispute(
    request: Request,
    booking_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    _csrf: CsrfChecked,
    refund_amount: Annotated[Line, Form()] = "",
    note: Annotated[Text, Form()] = "",
    cursor: FormCursor = "",
) -> Response:
    """Resolve a dispute: the refund to the buyer (major units, at most the booking's amount) and a note."""
    require_admin(user)
    errors: dict[str, str] = {}
    refund = 0
    try:
        refund, _currency = await _refund_of(request, session, booking_id, typed=refund_amount)
    except FieldError as exc:
        errors[exc.field] = exc.message
    if not note.strip() and "_" not in errors:
        errors["note"] = i18n.translations(locale_of(request)).gettext(_ENTER_NOTE)
    if not errors:
        try:
            await bookings.act(
                session=session,
                principal=user,
                booking_id=booking_id,
                action="resolve",
                deps=request.app.state.booking_deps,
                reason=note.strip(),
                refund_amount=refund,
            )
        except (AppError, ValueError):
            await session.rollback()  # nothing of the refused resolution is kept
            errors["_"] = i18n.translations(locale_of(request)).gettext(_NOT_RESOLVED)
    if errors:
        return await _refused_dispute(request, session, user, booking_id=booking_id, errors=errors, cursor=cursor)
    return _back("disputes", cursor, notice="dispute_resolved")


async def _refused_dispute(
    request: Request,
    session: SessionDep,
    user: Principal,
    *,
    booking_id: uuid.UUID,
    errors: dict[str, str],
    cursor: str,
) -> HTMLResponse:
    form = await request.form()
    typed = {name: str(form.get(name) or "") for name in ("refund_amount", "note")}
    return await disputes_page(request, session, user, cursor=cursor or None, errors={booking_id: errors}, form=typed)
