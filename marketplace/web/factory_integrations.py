"""Factory integrations and money: iCal feed links, API keys and webhooks (their secret shown once), and the
earnings statement (page and CSV)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from listings.models import AssetKind
from listings.repository import ListingsRepository
from marketplace.bookings.endpoints import calendar_token
from marketplace.bookings.schemas import WebhookCreate
from marketplace.core.csv_export import csv_response, safe_cell
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.notifications import webhooks
from marketplace.orgs import service as orgs
from marketplace.orgs.schemas import ApiKeyCreate
from marketplace.web import i18n, labels
from marketplace.web.core import N_, CsrfChecked, SignedIn, locale_of, redirect, render
from marketplace.web.factory import supplier_org
from marketplace.web.form_errors_service import error_code, errors_from_url
from payments import ledger, money

router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)


@router.get("/integrations", response_class=HTMLResponse)
async def integrations(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    return await _integrations_page(request, org_id, session, user=user)


async def _integrations_page(
    request: Request, org_id: uuid.UUID, session: SessionDep, *, user: SignedIn, new_secret: str | None = None
) -> HTMLResponse:
    """The integrations page; after creating an API key or a webhook, with its secret. The secret is shown in
    this one response (never stored in the session cookie, never cached) and cannot be shown again."""
    org = await supplier_org(session, user, org_id)
    keys = await orgs.list_api_keys(session, user, org_id)
    settings = request.app.state.settings
    machines = [
        a
        for a in await ListingsRepository(session).assets_of_org(org_id, None, after=None, limit=1000)
        if a.kind == AssetKind.machine
    ]
    feeds = [
        (a, f"{settings.public_url}/api/v1/assets/{a.id}/calendar.ics?token={calendar_token(settings, a.id)}")
        for a in machines
    ]
    # The endpoints only (the page shows no delivery log, so any member may see it): no deliveries loaded.
    listed = await webhooks.list_endpoints(session=session, principal=user, org_id=org_id, with_deliveries=False)
    hooks = [e for e, _ in listed]
    page = render(
        request,
        "factory/integrations.html",
        {
            "org": org,
            "keys": keys,
            "feeds": feeds,
            "hooks": hooks,
            "new_key": new_secret,
            # A refused key or webhook: the code in the URL, its message beside the field (key-name, hook-url).
            "errors": errors_from_url(
                request.query_params, locale=locale_of(request), prefixes={"key": "key-", "hook": "hook-"}
            ),
        },
        user=user,
    )
    if new_secret is not None:
        page.headers["Cache-Control"] = "no-store"
    return page


@router.post("/integrations/api-keys")
async def create_key(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    form = await request.form()
    try:
        data = ApiKeyCreate(name=str(form.get("name") or "").strip(), scopes=[str(s) for s in form.getlist("scopes")])
        _, secret = await orgs.create_api_key(session, user, org_id=org_id, data=data)
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/integrations?error={error_code(exc)}&form=key")  # a code, not text
    return await _integrations_page(request, org_id, session, user=user, new_secret=secret)  # shown once, here


@router.post("/integrations/api-keys/{key_id}/revoke")
async def revoke_key(
    org_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    await supplier_org(session, user, org_id)
    await orgs.revoke_api_key(session, user, org_id=org_id, key_id=key_id)
    return redirect(f"/factory/{org_id}/integrations")


# -- earnings --------------------------------------------------------------------------------------

EARNINGS_LINES = 100  # latest payable lines shown; the statement CSV has every line


@router.get("/earnings", response_class=HTMLResponse)
async def earnings(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> HTMLResponse:
    """Ledger lines of the factory's payable account: what it earned (net of commission) and was paid."""
    org = await supplier_org(session, user, org_id)
    # Totals over every line, summed in SQL; the table shows the latest lines (the CSV export has them all).
    totals = await ledger.statement_totals(session, org_id=org_id)
    payable = {cur: t[ledger.SUPPLIER_PAYABLE] for cur, t in totals.items() if ledger.SUPPLIER_PAYABLE in t}
    # The payable is a liability: credits are earnings, debits are payouts; what is owed is credits - debits.
    earned = {cur: t["credits"] for cur, t in payable.items()}
    balances = {cur: -t["balance"] for cur, t in payable.items()}
    lines = await ledger.statement_lines(session, org_id=org_id, limit=EARNINGS_LINES, account=ledger.SUPPLIER_PAYABLE)
    return render(
        request,
        "factory/earnings.html",
        {"org": org, "lines": lines, "balances": balances, "earned": earned, "shown": EARNINGS_LINES},
        user=user,
    )


EARNINGS_CSV_HEADER = (
    N_("Date"),
    N_("Entry"),
    N_("Account"),
    N_("Currency"),
    N_("Debit"),
    N_("Credit"),
    N_("Balance"),
    N_("Booking ID"),
)
_EARNINGS_BATCH = 2000


async def earnings_rows(
    maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, *, locale: str
) -> AsyncIterator[list[str]]:
    """The header in ``locale``, then every ledger line of the organisation, oldest first: the entry and account
    in words, the debit or credit in major units beside its currency, the account's running balance. Each
    batch is read in its own short transaction; lines are immutable and keyed by increasing id."""
    gettext = i18n.translations(locale).gettext
    words = labels.helpers(gettext, locale)
    yield [gettext(h) for h in EARNINGS_CSV_HEADER]
    running: dict[tuple[str, str], int] = {}
    after: int | None = None
    while True:
        async with maker() as session:
            lines = await ledger.statement_lines(
                session, org_id=org_id, limit=_EARNINGS_BATCH, after_id=after, newest_first=False
            )
        if not lines:
            return
        for line in lines:
            amount, currency = int(line["amount"]), str(line["currency"])
            key = (str(line["account"]), currency)
            running[key] = running.get(key, 0) + amount
            yield [
                safe_cell(line["created_at"]),
                safe_cell(words["ledger_text"](line["kind"], line["memo"])),
                safe_cell(words["account_name"](line["account"])),
                currency,
                money.input_value(amount, currency) if amount > 0 else "",
                money.input_value(-amount, currency) if amount < 0 else "",
                money.input_value(running[key], currency),
                str(line["booking_id"] or ""),
            ]
        if len(lines) < _EARNINGS_BATCH:
            return
        after = int(lines[-1]["line_id"])


@router.get("/earnings.csv")
async def earnings_csv(request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn) -> Response:
    """The organisation's whole statement as CSV for spreadsheets, in the page's language (the API's
    statement CSV stays as it is, for programs)."""
    await supplier_org(session, user, org_id)
    rows = earnings_rows(request.app.state.sessionmaker, org_id, locale=locale_of(request))
    return csv_response(rows, filename=f"earnings-{org_id}.csv")


@router.post("/integrations/webhooks")
async def create_webhook(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, _csrf: CsrfChecked
) -> Response:
    """Register an outbound webhook (owners only; the secret is shown once, in this response, like an API key)."""
    await supplier_org(session, user, org_id)
    form = await request.form()
    try:
        data = WebhookCreate.model_validate({"url": form.get("url"), "events": list(form.getlist("events"))})
        endpoint = await webhooks.create_endpoint(
            session,
            principal=user,
            org_id=org_id,
            url=str(data.url),
            events=list(data.events),
            settings=request.app.state.settings,
        )
    except (ValidationError, AppError) as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        return redirect(f"/factory/{org_id}/integrations?error={error_code(exc)}&form=hook")  # a code, not text
    return await _integrations_page(request, org_id, session, user=user, new_secret=endpoint.secret)
