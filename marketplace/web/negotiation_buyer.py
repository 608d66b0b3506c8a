"""Buyer pages of the negotiation: a request's quotes (each with its version history, counter, accept,
decline), its negotiation settings, its drawings (upload under the NDA flag), the quote requests sent and
the message thread per factory; "Ask for a quote" from the matches list. Every action calls the same
service as the API; a refused action comes back to the page with its message."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote as urlquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from listings.repository import ListingsPageQueries
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.orgs.repository import OrgRepository
from marketplace.quotes import service as quotes
from marketplace.quotes.repository import QuoteRepository
from marketplace.requests import service as requests_service
from marketplace.requests.schemas import RequestUpdate
from marketplace.web.core import CsrfChecked, SignedIn, WebError, member_org, redirect, render
from marketplace.web.negotiation_views import (
    QuoteActionPath,
    page_helpers,
    quote_view,
    refusal_code,
    run_quote_action,
    url_refusal,
)
from marketplace.web.negotiation_wiring import add_drawing, invitations_of, invite, request_drawings, request_threads
from payments.errors import PaymentsError

router = APIRouter(prefix="/buyer/{org_id}", include_in_schema=False)
FAILURES = (AppError, PaymentsError, ValidationError, ValueError)


def _page(org_id: uuid.UUID, request_id: uuid.UUID) -> str:
    return f"/buyer/{org_id}/requests/{request_id}/quotes"


def _back(
    org_id: uuid.UUID, request_id: uuid.UUID, code: str | None = None, *, anchor: str = "", quote: Any = None
) -> Response:
    """Back to the request's quotes page; a refusal travels as a code (``refusal_code``), never as text, with
    the quote it concerns (its card shows the message)."""
    url = _page(org_id, request_id)
    which = f"&quote={quote}" if quote else ""
    return redirect(f"{url}?error={urlquote(code)}{which}{anchor}" if code else f"{url}{anchor}")


async def _request(session: SessionDep, user: Principal, *, org_id: uuid.UUID, request_id: uuid.UUID) -> Any:
    await member_org(session, user, org_id, role="buyer")
    try:
        row = await requests_service.get(session, user, request_id)
    except AppError:
        raise WebError(404, "not_found") from None
    if row.buyer_org_id != org_id:
        raise WebError(404, "not_found")
    return row


@router.get("/requests/{request_id}/quotes", response_class=HTMLResponse)
async def request_quotes(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    org = await member_org(session, user, org_id, role="buyer")
    req = await _request(session, user, org_id=org_id, request_id=request_id)
    rows = await quotes.list_for_request(session=session, principal=user, request_id=request_id)
    invitations = await invitations_of(session, user, request_id=request_id)
    unread = await request_threads(session, user, request_id=request_id)
    supplier_ids = {q.quote.supplier_org_id for q in rows} | {i.supplier_org_id for i in invitations} | set(unread)
    names = await OrgRepository(session).names(supplier_ids)
    titles = await ListingsPageQueries(session).titles([q.quote.asset_id for q in rows])
    views = [quote_view(q, titles=titles, names=names) for q in rows]
    error, quote_errors = url_refusal(request)
    ctx = {
        "org": org,
        "req": req,
        "quotes": views,
        "invitations": [
            {
                "supplier_name": names.get(i.supplier_org_id, ""),
                "status": i.status,
                "respond_by": i.respond_by,
                "via": i.via,
            }
            for i in invitations
        ],
        "drawings": await request_drawings(session, user, request_id=request_id),
        "suppliers": [
            {"id": s, "name": names.get(s, ""), "unread": unread.get(s, 0)}
            for s in sorted(supplier_ids, key=lambda s: names.get(s, ""))
        ],
        "errors": quote_errors,
        "error": error,
        "notice": None,
    }
    return render(request, "negotiation/buyer_request.html", {**ctx, **page_helpers(request)}, user=user)


@router.post("/requests/{request_id}/settings")
async def settings(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await _request(session, user, org_id=org_id, request_id=request_id)
    form = await request.form()
    try:
        data = RequestUpdate(
            audience="invited" if form.get("audience") == "invited" else "open",
            auto_cascade=bool(form.get("auto_cascade")),
            nda_required=bool(form.get("nda_required")),
        )
        await requests_service.update(session=session, principal=user, request_id=request_id, data=data)
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc), anchor="#settings")
    return _back(org_id, request_id, anchor="#settings")


@router.post("/requests/{request_id}/drawings")
async def upload_drawing(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await _request(session, user, org_id=org_id, request_id=request_id)
    form = await request.form()
    try:
        await add_drawing(request, session, user, org_id=org_id, request_id=request_id, upload=form.get("file"))
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc), anchor="#drawings")
    return _back(org_id, request_id, anchor="#drawings")


@router.post("/requests/{request_id}/invite")
async def ask_for_quote(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await _request(session, user, org_id=org_id, request_id=request_id)
    form = await request.form()
    try:
        await invite(session, user, request_id=request_id, asset_id=uuid.UUID(str(form.get("asset_id") or "")))
    except FAILURES as exc:
        await session.rollback()
        return redirect(f"/buyer/{org_id}/requests/{request_id}?error={refusal_code(exc)}")
    return _back(org_id, request_id, anchor="#invitations")


@router.post("/quotes/{quote_id}/{action}")
async def quote_action(
    request: Request, org_id: uuid.UUID, act: QuoteActionPath, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    quote_id, action = act.quote_id, act.action
    await member_org(session, user, org_id, role="buyer")
    current = await QuoteRepository(session).get(quote_id)
    if current is None or current.buyer_org_id != org_id:
        raise WebError(404, "not_found")
    request_id = current.request_id  # read now: a rollback below expires the row
    form = await request.form()
    anchor = f"#quote-{quote_id}"
    try:
        booking = await run_quote_action(request, session, user, current=current, action=action, form=form)
        if booking is not None:
            return redirect(f"/buyer/{org_id}/bookings/{booking.id}")
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc), anchor=anchor, quote=quote_id)
    return _back(org_id, request_id, anchor=anchor)
