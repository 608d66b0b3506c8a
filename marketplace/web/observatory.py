"""The regional observatory for observers (industrial parks, city bureaus) and admins: indicator trends,
a table by region and process family with suppressed cells marked, and a CSV download."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from marketplace.analytics import service as analytics
from marketplace.core.db import SessionDep
from marketplace.core.errors import AppError
from marketplace.core.text import Line
from marketplace.web import charts
from marketplace.web.core import SignedIn, WebError, locale_of, render

router = APIRouter(include_in_schema=False)


def _months_back(today: date, n: int) -> date:
    year, month = today.year, today.month - n
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, 1)


@dataclass
class Filters:
    """The page's and the CSV's query: region, months (YYYY-MM) and process family, each optional."""

    region: Line | None = None
    date_from: Line | None = None
    date_to: Line | None = None
    process: Line | None = None


async def _indicators(request: Request, session: SessionDep, user: Any, *, q: Filters) -> analytics.ObservatoryOut:
    start, end = _dates(q.date_from, q.date_to)
    try:
        return await analytics.observatory_indicators(
            session,
            user,
            request.app.state.settings,
            region=q.region or None,
            start=start,
            end=end,
            process=q.process or None,
        )
    except AppError as exc:
        await session.rollback()  # the failed service call may have flushed part of its work
        raise WebError(exc.status_code if exc.status_code in (403, 404) else 400, exc.detail) from None


def _dates(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    try:
        start = date.fromisoformat(date_from + "-01") if date_from else _months_back(today, 5)
        end = date.fromisoformat(date_to + "-28") if date_to else today
    except ValueError:
        raise WebError(400, "Dates are months: YYYY-MM.") from None
    return start, end


@router.get("/observatory", response_class=HTMLResponse)
async def observatory(
    request: Request, session: SessionDep, user: SignedIn, q: Annotated[Filters, Depends()]
) -> HTMLResponse:
    out = await _indicators(request, session, user, q=q)
    months = sorted(
        {c.month for c in out.cells} | {c.month for c in out.conformance} | {c.month for c in out.lab_utilisation}
    )
    latest = months[-1] if months else None
    table = [c for c in out.cells if c.month == latest]
    trend = [
        (m, next((c for c in out.cells if c.month == m and c.region == "*" and c.process_family == "*"), None))
        for m in months
    ]
    chart = charts.trend_svg(
        [
            (m, c.indicators.utilization if c and c.indicators and c.indicators.utilization is not None else None)
            for m, c in trend
        ],
        locale_of(request),
    )
    quality_chart = charts.quality_trend_svg(
        months,
        conformance=[_grand_total(out.conformance, m, "conformance_rate") for m in months],
        lab_use=[_grand_total(out.lab_utilisation, m, "utilization") for m in months],
        locale=locale_of(request),
    )
    return render(
        request,
        "observatory.html",
        {
            "out": out,
            "table": table,
            "conformance": [c for c in out.conformance if c.month == latest],
            "lab_use": [c for c in out.lab_utilisation if c.month == latest],
            "quality_chart": quality_chart,
            "trend": trend,
            "chart": chart,
            "latest": latest,
            "params": {
                "region": q.region or "",
                "from": q.date_from or "",
                "to": q.date_to or "",
                "process": q.process or "",
            },
        },
        user=user,
    )


def _grand_total(cells: Sequence[Any], month: str, field: str) -> float | None:
    """The month's whole-prefix figure of a conformance or lab utilisation table (None: none or suppressed)."""
    cell = next((c for c in cells if c.month == month and c.region == "*" and c.process_family == "*"), None)
    value: float | None = getattr(cell, field) if cell is not None else None
    return value


@router.get("/observatory.csv")
async def observatory_csv(
    request: Request, session: SessionDep, user: SignedIn, q: Annotated[Filters, Depends()]
) -> Response:
    out = await _indicators(request, session, user, q=q)
    return Response(
        analytics.observatory_csv(out),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="observatory.csv"'},
    )
