"""Factory pages of the negotiation: the job board of open requests my listings fit (no buyer identity), an
opportunity with its facts, the NDA and the drawings, the quote form, my quotes with counter, accept,
decline and withdraw, and declining a quote request. Every action calls the same service as the API."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote as urlquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape
from pydantic import ValidationError

from listings.repository import ListingsPageQueries
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.pagination import CursorParam
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.orgs.repository import OrgRepository
from marketplace.quotes import service as quotes
from marketplace.quotes.repository import QuoteRepository
from marketplace.quotes.schemas import QuoteCreate
from marketplace.web import i18n
from marketplace.web.core import (
    CsrfChecked,
    SignedIn,
    WebError,
    WebUser,
    form_errors,
    locale_of,
    redirect,
    render,
)
from marketplace.web.factory import supplier_org
from marketplace.web.form_errors import placed
from marketplace.web.instalment_views import milestone_fields
from marketplace.web.negotiation_views import (
    REFUSALS,
    QuoteActionPath,
    page_helpers,
    quote_view,
    refusal,
    refusal_code,
    refusal_text,
    run_quote_action,
    terms_payload,
    url_refusal,
)
from marketplace.web.negotiation_wiring import (
    accept_nda,
    decline_invitation,
    nda_state,
    opportunity_for,
    opportunity_page,
    request_drawings,
    request_threads,
)
from payments.errors import PaymentsError

router = APIRouter(include_in_schema=False)
FAILURES = (AppError, PaymentsError, ValidationError, ValueError)


async def _supplier_orgs(session: SessionDep, user: Principal) -> list[Organisation]:
    return [o for o in await OrgRepository(session).by_ids(user.org_ids) if "supplier" in o.roles]


@router.get("/nav/opportunities", response_class=HTMLResponse)
async def nav_link(request: Request, session: SessionDep, user: WebUser) -> HTMLResponse:
    """The navigation's "Opportunities" link, for members of a factory (loaded after the page)."""
    orgs = await _supplier_orgs(session, user) if user else []
    html = ""
    if orgs:
        text = i18n.translations(locale_of(request)).gettext("Opportunities")
        html = f'<a href="/opportunities" id="nav-opportunities">{escape(text)}</a>'
    return HTMLResponse(html)


@router.get("/opportunities")
async def my_opportunities(session: SessionDep, user: SignedIn) -> Response:
    orgs = await _supplier_orgs(session, user)
    if not orgs:
        raise WebError(404, "not_found")
    return redirect(f"/factory/{orgs[0].id}/opportunities")


@router.get("/factory/{org_id}/opportunities", response_class=HTMLResponse)
async def board(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, cursor: CursorParam = None
) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    try:
        items, next_cursor = await opportunity_page(session, user, org_id=org_id, cursor=cursor)
    except AppError:
        raise WebError(404, "not_found") from None
    ctx = {
        "org": org,
        "items": items,
        "next_cursor": next_cursor,
        "error": refusal_text(request, request.query_params.get("error")),
    }
    return render(request, "negotiation/opportunities.html", {**ctx, **page_helpers(request)}, user=user)


async def _opportunity_page(
    request: Request,
    session: SessionDep,
    user: Principal,
    *,
    org_id: uuid.UUID,
    request_id: uuid.UUID,
    form: Any = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    org = await supplier_org(session, user, org_id)
    opp = await opportunity_for(session, user, org_id=org_id, request_id=request_id)
    if opp is None:
        raise WebError(404, "not_found")
    nda, accepted_at = await nda_state(
        session,
        request_id=request_id,
        org_id=org_id,
        locale=locale_of(request),
        version=request.app.state.settings.nda_version,
    )
    needs_nda = opp.nda_required and accepted_at is None
    drawings = [] if needs_nda else await request_drawings(session, user, request_id=request_id)
    try:
        rows = await quotes.list_for_request(session=session, principal=user, request_id=request_id)
    except AppError:  # no quote yet
        rows = []
    rows = [q for q in rows if q.quote.supplier_org_id == org_id]
    titles = await ListingsPageQueries(session).titles([q.quote.asset_id for q in rows])
    error, quote_errors = url_refusal(request)
    ctx = {
        "org": org,
        "o": opp,
        "nda": nda,
        "needs_nda": needs_nda,
        "nda_accepted_at": accepted_at,
        "drawings": drawings,
        "listings": opp.listings_full,
        "quotes": [quote_view(q, titles=titles) for q in rows],
        "unread": (await request_threads(session, user, request_id=request_id)).get(org_id, 0),
        "form": form or {},
        "errors": errors or {},
        "quote_errors": quote_errors,
        "error": error,
        "notice": None,
    }
    status = 200 if errors is None else 422
    return render(request, "negotiation/opportunity.html", {**ctx, **page_helpers(request)}, status=status, user=user)


@router.get("/factory/{org_id}/opportunities/{request_id}", response_class=HTMLResponse)
async def opportunity(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _opportunity_page(request, session, user, org_id=org_id, request_id=request_id)


def _back(org_id: uuid.UUID, request_id: uuid.UUID, code: str | None = None, *, quote: Any = None) -> Response:
    """Back to the opportunity; a refusal travels as a code (``refusal_code``), never as text, with the quote
    it concerns (its card shows the message)."""
    page = f"/factory/{org_id}/opportunities/{request_id}"
    which = f"&quote={quote}" if quote else ""
    return redirect(f"{page}?error={urlquote(code)}{which}" if code else page)


@router.post("/factory/{org_id}/opportunities/{request_id}/nda")
async def nda_accept(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    try:
        await accept_nda(session, user, request, request_id=request_id)
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc))
    return _back(org_id, request_id)


@router.post("/factory/{org_id}/opportunities/{request_id}/decline")
async def decline(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    form = await request.form()
    try:
        await decline_invitation(
            session, user, org_id=org_id, request_id=request_id, reason=str(form.get("reason") or "")
        )
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc))
    return redirect(f"/factory/{org_id}/opportunities")


@router.post("/factory/{org_id}/opportunities/{request_id}/quotes", response_class=HTMLResponse)
async def submit_quote(
    request: Request, org_id: uuid.UUID, request_id: uuid.UUID, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    form = await request.form()
    opp = await opportunity_for(session, user, org_id=org_id, request_id=request_id)
    if opp is None:
        raise WebError(404, "not_found")
    currencies = {str(a.id): a.currency for a in opp.listings_full}
    asset_id = str(form.get("asset_id") or "")
    try:
        payload = terms_payload(request, form, kind=opp.kind, currency=currencies.get(asset_id, opp.currency))
        payload.update(asset_id=asset_id, currency=currencies.get(asset_id, opp.currency))
        data = QuoteCreate.model_validate(payload)
        await quotes.submit(session=session, principal=user, request_id=request_id, data=data)
    except FAILURES as exc:
        await session.rollback()
        return await _opportunity_page(
            request, session, user, org_id=org_id, request_id=request_id, form=form, errors=_quote_errors(request, exc)
        )
    return _back(org_id, request_id)


# Where the quote form shows each field of QuoteCreate.
QUOTE_FIELDS = {
    "asset_id": "asset_id",
    "currency": "asset_id",
    "amount": "amount",
    "drop_off_date": "drop_off_date",
    "samples": "samples",
    "start": "start",
    "end": "end",
    "valid_until": "valid_until",
    "note": "note",
    **milestone_fields(),  # the payment milestones' rows (issue #18 item 4)
}


def _quote_errors(request: Request, exc: Exception) -> dict[str, str]:
    """Field errors next to their fields; a refusal of the quote rules above the form, translated."""
    if getattr(exc, "code", None) in REFUSALS:
        return {"_": refusal(request, exc)}
    return placed(form_errors(exc, locale=locale_of(request), aliases=QUOTE_FIELDS), QUOTE_FIELDS.values())


@router.post("/factory/{org_id}/quotes/{quote_id}/{action}")
async def quote_action(
    request: Request, org_id: uuid.UUID, act: QuoteActionPath, session: SessionDep, user: SignedIn, _c: CsrfChecked
) -> Response:
    quote_id, action = act.quote_id, act.action
    await supplier_org(session, user, org_id)
    current = await QuoteRepository(session).get(quote_id)
    if current is None or current.supplier_org_id != org_id:
        raise WebError(404, "not_found")
    request_id = current.request_id  # read now: a rollback below expires the row
    form = await request.form()
    try:
        await run_quote_action(request, session, user, current=current, action=action, form=form)
    except FAILURES as exc:
        await session.rollback()
        return _back(org_id, request_id, refusal_code(exc), quote=quote_id)
    if action == "accept":
        return redirect(f"/factory/{org_id}/bookings")
    return _back(org_id, request_id)
