"""Invoice pages for both sides of a booking: the buyer's and the factory's invoice lists (newest first,
paged), each invoice with the platform's payee bank details, and a clean printable view of it that the
browser can save as a PDF. Members of the organisation (or a platform admin) only; anyone else gets a 404."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from listings.repository import ListingsPageQueries
from marketplace.billing.invoice_repository import InvoiceListRepository, Side
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.pagination import CursorParam, decode_keyset, encode_cursor
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.orgs.repository import OrgRepository
from marketplace.web import i18n, voucher_views
from marketplace.web.core import N_, SignedIn, WebError, locale_of, member_org, render, viewer_tz
from marketplace.web.invoice_lines import instalment_caption, line_texts
from marketplace.web.invoices_state import INVOICE_STATUS, PAYMENT_STATE, UNITS, labeller, payment_state
from payments import invoices, ledger
from payments.models import Invoice
from payments.repository import PaymentsRepository

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
PathSide = Literal["buyer", "factory"]
_ROLE: dict[str, Side] = {"buyer": "buyer", "factory": "supplier"}
_STALE_CURSOR = N_("This page link is no longer valid. Start again from the first page.")


async def invoice_org(session: AsyncSession, user: Principal, org_id: uuid.UUID, *, side: PathSide) -> Organisation:
    """The organisation whose invoices are shown: its members (or a platform admin) only, others get 404."""
    return await member_org(session, user, org_id, role=_ROLE[side])


def invoice_base(side: PathSide, org_id: uuid.UUID) -> str:
    return f"/{side}/{org_id}/invoices"


def booking_link(side: PathSide, org_id: uuid.UUID, booking_id: uuid.UUID) -> str:
    """Where a booking of the invoice list is shown: the buyer's booking page or the factory's booking row."""
    if side == "buyer":
        return f"/buyer/{org_id}/bookings/{booking_id}"
    return f"/factory/{org_id}/bookings#booking-{booking_id}"


def local_day(value: datetime, tz_name: str) -> str:
    """The calendar day of ``value`` in the viewer's zone (ISO, unambiguous in both languages)."""
    return value.astimezone(i18n.zone(tz_name)).date().isoformat()


def page_cursor(request: Request, cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    try:
        return decode_keyset(cursor)
    except AppError:
        raise WebError(400, i18n.translations(locale_of(request)).gettext(_STALE_CURSOR)) from None


def label_helpers(locale: str) -> dict[str, Any]:
    return {
        "invoice_status": labeller(locale, INVOICE_STATUS),
        "payment_state": labeller(locale, PAYMENT_STATE),
        "unit": labeller(locale, UNITS),
        "line_text": line_texts(locale),
    }


# -- lists -------------------------------------------------------------------------------------------


async def _list_page(
    request: Request, session: AsyncSession, user: Principal, *, org_id: uuid.UUID, side: PathSide, cursor: str | None
) -> HTMLResponse:
    org = await invoice_org(session, user, org_id, side=side)
    repo = InvoiceListRepository(session)
    fetched = await repo.page(org_id, side=_ROLE[side], after=page_cursor(request, cursor), limit=PAGE_SIZE + 1)
    rows = fetched[:PAGE_SIZE]
    next_cursor = (
        encode_cursor([rows[-1].issued_at.isoformat(), str(rows[-1].id)]) if len(fetched) > PAGE_SIZE else None
    )
    balances = await repo.balances([r.booking_id for r in rows])
    assets = await repo.booking_assets([r.booking_id for r in rows])
    titles = await ListingsPageQueries(session).titles(list(set(assets.values())))
    other = await OrgRepository(session).names(r.supplier_org_id if side == "buyer" else r.buyer_org_id for r in rows)
    tz = viewer_tz(request)
    items = [
        {
            "invoice": r,
            "state": payment_state(r, balances.get(r.booking_id, {})),
            "due": max(balances.get(r.booking_id, {}).get(ledger.BUYER_RECEIVABLE, 0), 0),
            "issued": local_day(r.issued_at, tz),
            "title": titles.get(assets[r.booking_id], "") if r.booking_id in assets else "",
            "party": other.get(r.supplier_org_id if side == "buyer" else r.buyer_org_id, ""),
            "booking_url": booking_link(side, org_id, r.booking_id),
        }
        for r in rows
    ]
    return render(
        request,
        "invoices/list.html",
        {
            "org": org,
            "side": side,
            "base": invoice_base(side, org_id),
            "items": items,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            **label_helpers(locale_of(request)),
        },
        user=user,
    )


@router.get("/buyer/{org_id}/invoices", response_class=HTMLResponse)
async def buyer_invoices(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, cursor: CursorParam = None
) -> HTMLResponse:
    """The buyer's invoices, newest first."""
    return await _list_page(request, session, user, org_id=org_id, side="buyer", cursor=cursor)


@router.get("/factory/{org_id}/invoices", response_class=HTMLResponse)
async def factory_invoices(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn, cursor: CursorParam = None
) -> HTMLResponse:
    """The invoices of the factory's bookings (issued by the platform to its buyers), newest first."""
    return await _list_page(request, session, user, org_id=org_id, side="factory", cursor=cursor)


# -- one invoice ----------------------------------------------------------------------------------------


async def _own_invoice(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, invoice_id: uuid.UUID, side: PathSide
) -> tuple[Organisation, Invoice]:
    org = await invoice_org(session, user, org_id, side=side)
    invoice = await PaymentsRepository(session).invoice(invoice_id)
    owner = None if invoice is None else (invoice.buyer_org_id if side == "buyer" else invoice.supplier_org_id)
    if invoice is None or owner != org_id:
        raise WebError(404, "not_found")
    return org, invoice


def payee(request: Request) -> dict[str, str]:
    """The platform's bank account buyers pay into (settings), named in the page's language when a Chinese name
    is set."""
    settings = request.app.state.settings
    chinese = locale_of(request) == "zh-CN"
    return {
        "name": (settings.payee_name_zh if chinese else "") or settings.payee_name,
        "bank": (settings.payee_bank_zh if chinese else "") or settings.payee_bank,
        "account": settings.payee_account,
        "swift": settings.payee_swift,
    }


async def _invoice_page(
    request: Request, session: AsyncSession, user: Principal, *, ids: tuple[uuid.UUID, uuid.UUID], side: PathSide
) -> HTMLResponse:
    org_id, invoice_id = ids
    org, invoice = await _own_invoice(session, user, org_id=org_id, invoice_id=invoice_id, side=side)
    doc = await invoices.invoice_document(session, invoice)
    printing = request.url.path.endswith("/print")
    return render(
        request,
        "invoices/print.html" if printing else "invoices/invoice.html",
        {
            "org": org,
            "side": side,
            "doc": doc,
            "payee": payee(request),
            "issued": local_day(invoice.issued_at, viewer_tz(request)),
            "tax_percent": f"{invoice.tax_rate_bp / 100:g}%",
            "booking_url": booking_link(side, org_id, invoice.booking_id),
            "list_url": invoice_base(side, org_id),
            "print_url": f"{invoice_base(side, org_id)}/{invoice.id}/print",
            "voucher": await voucher_views.invoice_split(session, doc),  # issue #18: the voucher's share
            # Which instalment of its booking (a deposit, a milestone: issue #18 item 4), None for a whole one.
            "instalment": instalment_caption(doc["line_items"], i18n.translations(locale_of(request)).gettext),
            **label_helpers(locale_of(request)),
        },
        user=user,
    )


@router.get("/buyer/{org_id}/invoices/{invoice_id}", response_class=HTMLResponse)
async def buyer_invoice(
    request: Request, org_id: uuid.UUID, invoice_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _invoice_page(request, session, user, ids=(org_id, invoice_id), side="buyer")


@router.get("/buyer/{org_id}/invoices/{invoice_id}/print", response_class=HTMLResponse)
async def buyer_invoice_print(
    request: Request, org_id: uuid.UUID, invoice_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    """The invoice alone on the page, for printing or saving as PDF."""
    return await _invoice_page(request, session, user, ids=(org_id, invoice_id), side="buyer")


@router.get("/factory/{org_id}/invoices/{invoice_id}", response_class=HTMLResponse)
async def factory_invoice(
    request: Request, org_id: uuid.UUID, invoice_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _invoice_page(request, session, user, ids=(org_id, invoice_id), side="factory")


@router.get("/factory/{org_id}/invoices/{invoice_id}/print", response_class=HTMLResponse)
async def factory_invoice_print(
    request: Request, org_id: uuid.UUID, invoice_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> HTMLResponse:
    return await _invoice_page(request, session, user, ids=(org_id, invoice_id), side="factory")
