"""Web downloads of the tax exports (issue #18): a factory's fapiao data of the current quarter (sales and
commission) from its earnings page, and the admin's quarterly tax report from the ledger page. Same files as the
API's (docs/tax.md); the pages only link here."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from marketplace.billing import fapiao, tax_report
from marketplace.billing.fapiao import FapiaoExport
from marketplace.billing.fapiao_endpoints import fapiao_csv_response, tax_report_csv_response
from marketplace.core.db import SessionDep
from marketplace.web import account_2fa
from marketplace.web.admin_queues import require_admin
from marketplace.web.core import SignedIn
from marketplace.web.factory import supplier_org

factory_router = APIRouter(prefix="/factory/{org_id}", include_in_schema=False)
# In production an admin without two-factor sign-in is refused (see account_2fa.py), as on the other admin pages.
admin_router = APIRouter(
    prefix="/admin", include_in_schema=False, dependencies=[Depends(account_2fa.admin_two_factor_gate)]
)
router = APIRouter(include_in_schema=False)

QuarterChoice = Annotated[
    str,
    Query(max_length=8, pattern=r"^(current|previous|[0-9]{4}-Q[1-4])$", description="current, previous or YYYY-Qn"),
]


@factory_router.get("/fapiao.csv")
async def factory_fapiao_csv(
    request: Request,
    org_id: uuid.UUID,
    session: SessionDep,
    user: SignedIn,
    kind: Literal["sales", "commission"] = "sales",
) -> Response:
    """The factory's fapiao data of the current quarter (China), one row per fapiao line."""
    await supplier_org(session, user, org_id)
    days = fapiao.quarter_of(fapiao.china_today())
    items = await fapiao.fapiao_data(session, request.app.state.settings, org_id=org_id, kind=kind, days=days)
    export = FapiaoExport(org_id=org_id, kind=kind, date_from=days.first, date_to=days.last, items=items)
    return fapiao_csv_response(export)


@admin_router.get("/tax-report.csv")
async def admin_tax_report_csv(session: SessionDep, user: SignedIn, quarter: QuarterChoice = "current") -> Response:
    """The platform's tax report of a quarter: the current one, the previous one, or any YYYY-Qn."""
    require_admin(user)
    current = fapiao.quarter_of(fapiao.china_today())
    if quarter in ("current", "previous"):
        days = current if quarter == "current" else tax_report.previous(current)
        label = tax_report.label(days)
    else:
        label, days = tax_report.parse_quarter(quarter)
    return tax_report_csv_response(await tax_report.tax_report(session, quarter=label, days=days))


router.include_router(factory_router)
router.include_router(admin_router)
