"""Fapiao data exports and the platform's quarterly tax report (issue #18): JSON and CSV (UTF-8 with BOM, amounts
in major units). Formats: docs/tax.md."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal
from marketplace.billing import fapiao, tax_report
from marketplace.billing.fapiao import Fapiao, FapiaoExport, Kind
from marketplace.billing.tax_report import TaxReport
from marketplace.core.csv_export import csv_response, safe_cell
from marketplace.core.db import SessionDep
from marketplace.core.errors import Forbidden, NotFound, error_responses
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from payments import money

router = APIRouter(tags=["payments"])

KindParam = Annotated[Kind, Query(description="sales: the supplier's fapiao to its buyers; commission: the platform's")]
FromParam = Annotated[date | None, Query(alias="from", description="First settlement day (China); default: quarter")]
ToParam = Annotated[date | None, Query(alias="to", description="Last settlement day (China), inclusive")]
QuarterParam = Annotated[
    str | None,
    Query(
        max_length=7,
        pattern=r"^[0-9]{4}-Q[1-4]$",
        description="YYYY-Qn, e.g. 2026-Q4; default: the current quarter (China)",
    ),
]
_CSV_OK = {"content": {"text/csv": {}}, "description": "CSV, UTF-8 with a byte-order mark"}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def fapiao_reader(org_id: uuid.UUID, principal: Principal) -> None:
    """Members of the organisation (API keys with ``payments:read``) and platform admins; anyone else 404."""
    if not (principal.can_act_for(org_id) or principal.is_platform_admin):
        raise NotFound("Organisation not found.")
    if not principal.is_platform_admin and not principal.has_scope("payments:read"):
        raise Forbidden("This API key lacks the 'payments:read' scope.")


async def _export(
    request: Request, session: SessionDep, *, org_id: uuid.UUID, kind: Kind, days: fapiao.Period
) -> FapiaoExport:
    items = await fapiao.fapiao_data(session, _settings(request), org_id=org_id, kind=kind, days=days)
    return FapiaoExport(org_id=org_id, kind=kind, date_from=days.first, date_to=days.last, items=items)


@router.get(
    "/orgs/{org_id}/fapiao",
    response_model=FapiaoExport,
    response_model_by_alias=True,
    responses=error_responses(401, 403, 404, 422),
    tags=["organisations"],
    summary="Fapiao data of the organisation's settled bookings (数电发票 fields), by settlement day in China",
)
async def fapiao_json(
    org_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    kind: KindParam = "sales",
    date_from: FromParam = None,
    date_to: ToParam = None,
) -> FapiaoExport:
    fapiao_reader(org_id, principal)
    return await _export(request, session, org_id=org_id, kind=kind, days=fapiao.period(date_from, date_to))


def fapiao_csv_rows(items: list[Fapiao]) -> Iterator[list[object]]:
    """The header, then one row per fapiao line, amounts in major units of the currency."""
    yield list(fapiao.CSV_HEADER)
    for f in items:
        cur = f.currency
        for line in f.lines:
            yield [
                f.reference,
                f.kind,
                str(f.booking_id),
                safe_cell(f.platform_invoice_number),
                f.settlement_date.isoformat(),
                cur,
                safe_cell(f.seller.name),
                safe_cell(f.seller.uscc),
                safe_cell(f.buyer.name),
                safe_cell(f.buyer.uscc),
                line.line_no,
                safe_cell(line.item),
                safe_cell(line.specification),
                line.tax_code,
                safe_cell(line.tax_short_name),
                "" if line.quantity is None else format(line.quantity, "g"),
                safe_cell(line.unit),
                money.input_value(line.amount_excl_tax, cur),
                fapiao.rate_text(line.tax_rate_bp),
                money.input_value(line.tax, cur),
                money.input_value(line.amount, cur),
            ]


def fapiao_csv_response(export: FapiaoExport) -> StreamingResponse:
    name = f"fapiao-{export.kind}-{export.date_from:%Y%m%d}-{export.date_to:%Y%m%d}.csv"
    return csv_response(fapiao_csv_rows(export.items), filename=name)


@router.get(
    "/orgs/{org_id}/fapiao.csv",
    responses={**error_responses(401, 403, 404, 422), 200: _CSV_OK},
    response_class=StreamingResponse,
    tags=["organisations"],
    summary="The same fapiao data as CSV for invoicing software: one row per fapiao line, amounts in major units",
)
async def fapiao_csv(
    org_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    kind: KindParam = "sales",
    date_from: FromParam = None,
    date_to: ToParam = None,
) -> StreamingResponse:
    fapiao_reader(org_id, principal)
    export = await _export(request, session, org_id=org_id, kind=kind, days=fapiao.period(date_from, date_to))
    return fapiao_csv_response(export)


# -- the platform's quarterly tax report -----------------------------------------------------------------------


@router.get(
    "/admin/tax-report",
    response_model=TaxReport,
    response_model_by_alias=True,
    responses=error_responses(401, 403, 422),
    tags=["admin"],
    summary="Each supplier's identity and income through the platform in a quarter, with totals tied to the ledger",
)
async def tax_report_json(session: SessionDep, admin: AdminPrincipal, quarter: QuarterParam = None) -> TaxReport:
    label, days = tax_report.parse_quarter(quarter)
    return await tax_report.tax_report(session, quarter=label, days=days)


def tax_report_csv_rows(report: TaxReport) -> Iterator[list[object]]:
    """The header, one row per supplier and currency, then one TOTAL row per currency (major units)."""
    yield list(tax_report.CSV_HEADER)
    for s in report.suppliers:
        cur = s.currency
        yield [
            report.quarter,
            str(s.org_id),
            safe_cell(s.legal_name),
            safe_cell(s.name),
            safe_cell(s.uscc),
            s.country,
            safe_cell(s.contact_email),
            safe_cell(s.contact_name),
            cur,
            s.settlements,
            *(money.input_value(v, cur) for v in (s.gross, s.refunds, s.commission, s.net)),
        ]
    for t in report.totals:
        cur = t.currency
        amounts = (money.input_value(v, cur) for v in (t.gross, t.refunds, t.commission, t.net))
        yield [report.quarter, "TOTAL", "", "", "", "", "", "", cur, t.settlements, *amounts]


def tax_report_csv_response(report: TaxReport) -> StreamingResponse:
    return csv_response(tax_report_csv_rows(report), filename=f"tax-report-{report.quarter}.csv")


@router.get(
    "/admin/tax-report.csv",
    responses={**error_responses(401, 403, 422), 200: _CSV_OK},
    response_class=StreamingResponse,
    tags=["admin"],
    summary="The quarterly tax report as CSV: one row per supplier and currency, then the totals per currency",
)
async def tax_report_csv(session: SessionDep, admin: AdminPrincipal, quarter: QuarterParam = None) -> StreamingResponse:
    label, days = tax_report.parse_quarter(quarter)
    return tax_report_csv_response(await tax_report.tax_report(session, quarter=label, days=days))
