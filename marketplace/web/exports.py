"""CSV downloads of an organisation's bookings and invoices (buyer and factory side), for spreadsheets:
streamed in batches (each batch in its own short transaction), UTF-8 with BOM, headers and statuses in the
page's language, amounts in major units beside a currency column, times in ISO 8601 with their zone, and
every text cell safe from formula injection (:mod:`marketplace.core.csv_export`). Members of the
organisation (or a platform admin) only; anyone else gets a 404. The factory's earnings statement is
``/factory/{org_id}/earnings.csv`` (factory_integrations)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from listings.repository import ListingsPageQueries
from marketplace.billing.invoice_repository import BookingExportRepository, InvoiceListRepository, Side
from marketplace.core.csv_export import csv_response, safe_cell
from marketplace.core.db import SessionDep
from marketplace.orgs.repository import OrgRepository
from marketplace.web import i18n, labels
from marketplace.web.core import LABELS, N_, SignedIn, locale_of
from marketplace.web.invoice_lines import lines_summary
from marketplace.web.invoices import PathSide, invoice_org
from marketplace.web.invoices_state import INVOICE_STATUS, PAYMENT_STATE, payment_state
from payments import ledger, money

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

BATCH = 500
Translate = Callable[[str], str]

BOOKING_HEADER = (
    N_("Booking ID"),
    N_("Created"),
    N_("Status"),
    N_("Listing"),
    "Counterparty",  # named by _party_header
    N_("Start"),
    N_("End"),
    N_("Site time zone"),
    N_("Drop-off date"),
    N_("Samples"),
    N_("Currency"),
    N_("Amount"),
    N_("Refunded"),
)
INVOICE_HEADER = (
    N_("Invoice number"),
    N_("Status"),
    N_("Payment state"),
    N_("Booking ID"),
    N_("Listing"),
    "Counterparty",  # named by _party_header
    N_("Issued"),
    N_("Due date"),
    N_("Currency"),
    N_("Subtotal (excluding tax)"),
    N_("Tax"),
    N_("Total"),
    N_("Amount due"),
    N_("Line items"),
)


def _party_header(header: str, side: Side) -> str:
    """The other party's column is named after who it is: the factory for a buyer, the buyer for a factory."""
    if header != "Counterparty":
        return header
    return N_("Factory") if side == "buyer" else N_("Buyer")


def _label(gettext: Translate, table: dict[str, str], code: str) -> str:
    """A code in words; a code without a name reads "Other" (labels), never the code itself."""
    if code in table:
        return gettext(table[code])
    logger.warning("no name for code %r in a CSV export; showing 'Other'", code)
    return gettext(labels.OTHER)


def _major(amount: int | None, currency: str) -> str:
    return money.input_value(int(amount or 0), currency)


async def _lookups(
    session: AsyncSession, *, asset_ids: list[uuid.UUID], org_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    titles = await ListingsPageQueries(session).titles(list(set(asset_ids)))
    names = await OrgRepository(session).names(org_ids)
    return titles, names


async def booking_rows(
    maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, *, side: Side, gettext: Translate
) -> AsyncIterator[list[str]]:
    """The header, then every booking of the organisation, newest first."""
    yield [gettext(_party_header(h, side)) for h in BOOKING_HEADER]
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with maker() as session:
            rows = await BookingExportRepository(session).batch(org_id, side=side, after=after, limit=BATCH)
            other = [b.supplier_org_id if side == "buyer" else b.buyer_org_id for b in rows]
            titles, names = await _lookups(session, asset_ids=[b.asset_id for b in rows], org_ids=other)
        if not rows:
            return
        for b, party in zip(rows, other, strict=True):
            yield [
                str(b.id),
                safe_cell(b.created_at),
                safe_cell(_label(gettext, LABELS, b.status)),
                safe_cell(titles.get(b.asset_id, "")),
                safe_cell(names.get(party, "")),
                safe_cell(b.start_at),
                safe_cell(b.end_at),
                safe_cell(b.site_timezone),
                safe_cell(b.drop_off_date.isoformat() if b.drop_off_date else None),
                safe_cell(b.samples),
                b.currency,
                _major(b.amount, b.currency),
                _major(b.refund_amount, b.currency) if b.refund_amount else "",
            ]
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


async def invoice_rows(
    maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, *, side: Side, gettext: Translate
) -> AsyncIterator[list[str]]:
    """The header, then every invoice of the organisation, newest first, with its payment state."""
    yield [gettext(_party_header(h, side)) for h in INVOICE_HEADER]
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with maker() as session:
            repo = InvoiceListRepository(session)
            rows = await repo.page(org_id, side=side, after=after, limit=BATCH)
            booking_ids = [r.booking_id for r in rows]
            balances = await repo.balances(booking_ids)
            assets = await repo.booking_assets(booking_ids)
            other = [r.supplier_org_id if side == "buyer" else r.buyer_org_id for r in rows]
            titles, names = await _lookups(session, asset_ids=list(assets.values()), org_ids=other)
        if not rows:
            return
        for r, party in zip(rows, other, strict=True):
            booking_balances = balances.get(r.booking_id, {})
            asset = assets.get(r.booking_id)
            yield [
                safe_cell(r.number),
                safe_cell(_label(gettext, INVOICE_STATUS, r.status)),
                safe_cell(_label(gettext, PAYMENT_STATE, payment_state(r, booking_balances))),
                str(r.booking_id),
                safe_cell(titles.get(asset, "") if asset else ""),
                safe_cell(names.get(party, "")),
                safe_cell(r.issued_at),
                r.due_date.isoformat(),
                r.currency,
                _major(r.subtotal, r.currency),
                _major(r.tax, r.currency),
                _major(r.total, r.currency),
                _major(max(booking_balances.get(ledger.BUYER_RECEIVABLE, 0), 0), r.currency),
                safe_cell(lines_summary(r.line_items, gettext)),
            ]
        if len(rows) < BATCH:
            return
        after = (rows[-1].issued_at, rows[-1].id)


_ROLE: dict[str, Side] = {"buyer": "buyer", "factory": "supplier"}


async def _export(
    request: Request, session: SessionDep, user: SignedIn, *, org_id: uuid.UUID, what: str, side: PathSide
) -> StreamingResponse:
    await invoice_org(session, user, org_id, side=side)
    gettext = i18n.translations(locale_of(request)).gettext
    maker = request.app.state.sessionmaker
    rows = booking_rows if what == "bookings" else invoice_rows
    return csv_response(rows(maker, org_id, side=_ROLE[side], gettext=gettext), filename=f"{side}-{what}-{org_id}.csv")


@router.get("/buyer/{org_id}/bookings.csv")
async def buyer_bookings_csv(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> StreamingResponse:
    """Every booking of the buyer organisation as CSV."""
    return await _export(request, session, user, org_id=org_id, what="bookings", side="buyer")


@router.get("/factory/{org_id}/bookings.csv")
async def factory_bookings_csv(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> StreamingResponse:
    """Every booking of the factory organisation as CSV."""
    return await _export(request, session, user, org_id=org_id, what="bookings", side="factory")


@router.get("/buyer/{org_id}/invoices.csv")
async def buyer_invoices_csv(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> StreamingResponse:
    """Every invoice of the buyer organisation as CSV."""
    return await _export(request, session, user, org_id=org_id, what="invoices", side="buyer")


@router.get("/factory/{org_id}/invoices.csv")
async def factory_invoices_csv(
    request: Request, org_id: uuid.UUID, session: SessionDep, user: SignedIn
) -> StreamingResponse:
    """Every invoice of the factory's bookings as CSV."""
    return await _export(request, session, user, org_id=org_id, what="invoices", side="factory")
