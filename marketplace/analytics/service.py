"""Business rules of analytics: who may see what, offered-hour expansion, rollups, aggregation and suppression.

Services never commit. Functions meant for the web pages (another engineer builds them) are listed in
``__all__``; they return plain Pydantic models / dicts that the JSON endpoints serialise unchanged."""

from __future__ import annotations

import csv
import io
import json
import statistics
import time as _time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from marketplace.analytics import suppression as sup
from marketplace.analytics.models import ObserverGrant
from marketplace.analytics.repository import COUNTED_STATUSES, AnalyticsRepository, MonthParams
from marketplace.analytics.schemas import (
    FactoryAnalytics,
    ObservatoryOut,
    ObserverGrantIn,
    ObserverGrantOut,
)
from marketplace.core import audit
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal as Caller

__all__ = [
    "OutsideYourRegions",
    "compute_month",
    "create_grant",
    "delete_grant",
    "factory_analytics",
    "factory_analytics_csv",
    "list_grants",
    "observatory_csv",
    "observatory_indicators",
    "rollup_month",
    "visible_prefixes",
]

ANALYTICS_SCOPE = "analytics:read"
MAX_MONTHS = 36


class ObservatorySettings(Protocol):
    observatory_min_organisations: int
    observatory_complementary_suppression: bool
    observatory_region_depth: int
    analytics_max_days: int


class OutsideYourRegions(Forbidden):
    """The region lies outside the regions you were granted."""

    code = "outside_your_regions"


# -- time helpers ------------------------------------------------------------------------------------------


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def utc_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), UTC)


def months_between(start: date, end: date) -> list[date]:
    """Calendar months from the month of ``start`` to the month of ``end`` inclusive."""
    out, m = [], month_start(start)
    while m <= end:
        out.append(m)
        m = next_month(m)
    return out


def buckets(start: date, end: date, granularity: str) -> list[tuple[date, date]]:
    """[start, end) buckets (UTC days): ISO weeks from Monday, or calendar months, covering start..end."""
    if granularity == "week":
        b = start - timedelta(days=start.weekday())
        step = lambda d: d + timedelta(days=7)  # noqa: E731
    else:
        b = month_start(start)
        step = next_month
    out = []
    while b <= end:
        out.append((b, step(b)))
        b = step(b)
    return out


# -- offered hours (exact, DST-correct: listings.availability) ---------------------------------------------


def _weekly(plan: Iterable[dict[str, Any]]) -> list[av.WeeklyWindow]:
    return [
        av.WeeklyWindow(
            weekday=int(w["weekday"]),
            start=av.parse_hhmm(w["start"], allow_end_of_day=False),
            end=av.parse_hhmm(w["end"]),
        )
        for w in plan
    ]


def _hours(intervals: Iterable[av.Interval]) -> float:
    return sum((e - s).total_seconds() for s, e in intervals) / 3600.0


def offered_hours(
    plan: Iterable[dict[str, Any]],
    tz: str,
    exceptions: Sequence[tuple[datetime, datetime, bool]],
    start: datetime,
    end: datetime,
) -> float:
    """Hours the weekly plan (plus opening, minus closing exceptions) offers in [start, end)."""
    excs = [av.ExceptionRange(start=s, end=e, available=a) for s, e, a in exceptions]
    return _hours(av.free_intervals(_weekly(plan), tz, excs, [], start, end))


async def month_params(session: AsyncSession, month: date) -> MonthParams:
    """Offered hours are expanded exactly in Python once per distinct (weekly plan, time zone) pair and once
    per machine that has exceptions in the month; PostgreSQL joins them back to the machines."""
    repo = AnalyticsRepository(session)
    m0, m1 = utc_midnight(month), utc_midnight(next_month(month))
    pairs = await repo.distinct_plans(m1)
    plan_json, plan_tz, plan_hours = [], [], []
    for plan_text, tz in pairs:
        plan_json.append(plan_text)
        plan_tz.append(tz)
        plan_hours.append(offered_hours(json.loads(plan_text), tz, [], m0, m1))
    ov_ids, ov_hours = [], []
    for item in await repo.listed_machines_with_exceptions(m0, m1):
        ov_ids.append(item["asset_id"])
        ov_hours.append(offered_hours(item["plan"], item["tz"], item["exceptions"], m0, m1))
    return MonthParams(month, m0, m1, plan_json, plan_tz, plan_hours, ov_ids, ov_hours)


# -- rollups -----------------------------------------------------------------------------------------------


async def rollup_month(session: AsyncSession, year: int, month: int) -> dict[str, Any]:
    """Recompute and store one month of every observatory rollup table (idempotent: delete + insert)."""
    started = _time.perf_counter()
    m = date(year, month, 1)
    repo = AnalyticsRepository(session)
    params = await month_params(session, m)
    rows = await repo.replace_month(params)
    seconds = _time.perf_counter() - started
    await repo.record_run(m, seconds, rows)
    return {"month": m.isoformat(), "rows": rows, "seconds": round(seconds, 3)}


async def compute_month(session: AsyncSession, month: date) -> dict[str, list[dict[str, Any]]]:
    """One month of every rollup table computed from the raw rows, without storing it."""
    repo = AnalyticsRepository(session)
    params = await month_params(session, month)
    return {kind: await repo.compute(kind, params) for kind in ("cells", "gmv", "flows", "lab_tests")}


async def _month_rows(
    session: AsyncSession, months: Sequence[date], prefix: str, today: date
) -> dict[date, dict[str, list[dict[str, Any]]]]:
    """Stored rollups for past months that were rolled up; the current month (and any month never rolled up)
    is computed on demand."""
    repo = AnalyticsRepository(session)
    stored = await repo.rolled_up_months(months)
    out: dict[date, dict[str, list[dict[str, Any]]]] = {}
    for m in months:
        if m in stored and next_month(m) <= today:
            out[m] = {kind: await repo.stored(kind, m, prefix) for kind in ("cells", "gmv", "flows", "lab_tests")}
        else:
            live = await compute_month(session, m)
            out[m] = {kind: [r for r in rows if _row_in_prefix(kind, r, prefix)] for kind, rows in live.items()}
    return out


def _row_in_prefix(kind: str, row: dict[str, Any], prefix: str) -> bool:
    if kind == "flows":
        return str(row["buyer_region"]).startswith(prefix) or str(row["supplier_region"]).startswith(prefix)
    return str(row["region_code"]).startswith(prefix)


# -- who sees which regions --------------------------------------------------------------------------------


async def visible_prefixes(session: AsyncSession, caller: Caller, region: str | None) -> list[str]:
    """The region prefixes the caller may see for a query (``[""]`` = everything, for admins).

    Observers without ``region`` get each of their granted prefixes; a region outside their grants is
    403 ``outside_your_regions``; a user with no grant is 403 ``forbidden``."""
    if caller.is_platform_admin:
        return [region or ""]
    if caller.user_id is None:
        raise Forbidden("The observatory needs a signed-in observer or administrator.")
    grants = await AnalyticsRepository(session).prefixes_of(caller.user_id)
    if not grants:
        raise Forbidden("You are not an observer: a platform administrator grants the observer role.")
    if region is None:
        return [g for g in grants if not any(g != o and g.startswith(o) for o in grants)]
    if not any(region.startswith(g) for g in grants):
        raise OutsideYourRegions(f"Region {region!r} lies outside your regions ({', '.join(grants)}).")
    return [region]


# -- aggregation and suppression ---------------------------------------------------------------------------


def _region_key(code: str, prefix: str, depth: int) -> str:
    return code[: max(depth, len(prefix))]


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


class _Acc:
    __slots__ = (
        "accredited",
        "active_b",
        "active_s",
        "booked",
        "bookings",
        "buy",
        "closed",
        "filled",
        "gmv",
        "lab_samples",
        "lab_tests",
        "listed",
        "minutes",
        "requests",
        "sup",
    )  # fmt: skip

    def __init__(self) -> None:
        self.listed = self.booked = 0.0
        self.bookings = self.lab_tests = self.lab_samples = self.accredited = 0
        self.requests = self.closed = self.filled = 0
        self.minutes: list[float] = []
        self.active_s: set[Any] = set()
        self.active_b: set[Any] = set()
        self.sup: set[Any] = set()
        self.buy: set[Any] = set()
        self.gmv: dict[str, int] = defaultdict(int)

    def add(self, r: dict[str, Any]) -> None:
        self.listed += float(r["listed_hours"])
        self.booked += float(r["booked_hours"])
        self.bookings += int(r["bookings"])
        self.lab_tests += int(r["lab_tests"])
        self.lab_samples += int(r["lab_samples"])
        self.accredited += int(r["accredited_tests"])
        self.requests += int(r["requests"])
        self.closed += int(r["requests_closed"])
        self.filled += int(r["requests_booked"])
        self.minutes.extend(r["match_minutes"] or [])
        self.active_s.update(r["active_supplier_org_ids"] or [])
        self.active_b.update(r["active_buyer_org_ids"] or [])
        self.sup.update(r["supplier_org_ids"] or [])
        self.buy.update(r["buyer_org_ids"] or [])

    def backing(self) -> sup.Backing:
        return sup.Backing(len(self.sup), len(self.buy), self.booked + self.listed)

    def indicators(self) -> dict[str, Any]:
        return {
            "listed_hours": round(self.listed, 2),
            "booked_hours": round(self.booked, 2),
            "utilization": _ratio(self.booked, self.listed),
            "active_suppliers": len(self.active_s),
            "active_buyers": len(self.active_b),
            "bookings": self.bookings,
            "gmv": dict(sorted(self.gmv.items())),
            "requests": self.requests,
            "requests_closed": self.closed,
            "requests_booked": self.filled,
            "request_fill_rate": _ratio(self.filled, self.closed),
            "median_minutes_to_match": _median(self.minutes),
            "lab_tests": self.lab_tests,
            "lab_samples": self.lab_samples,
            "accredited_share": _ratio(self.accredited, self.lab_tests),
        }


def _table(
    rows: Sequence[str], cols: Sequence[str], accs: dict[tuple[str, str], Any], settings: ObservatorySettings
) -> set[tuple[Any, Any]]:
    backing = {k: a.backing() for k, a in accs.items()}
    return sup.suppress(
        rows,
        cols,
        backing,
        settings.observatory_min_organisations,
        complementary=settings.observatory_complementary_suppression,
    )


class _Simple:
    """Accumulator of the flow and lab-test tables."""

    def __init__(self) -> None:
        self.bookings = 0
        self.hours = 0.0
        self.samples = 0
        self.accredited = 0
        self.sup: set[Any] = set()
        self.buy: set[Any] = set()

    def backing(self) -> sup.Backing:
        return sup.Backing(len(self.sup), len(self.buy), float(self.bookings))


def aggregate_month(
    month: date, prefix: str, depth: int, data: dict[str, list[dict[str, Any]]], settings: ObservatorySettings
) -> dict[str, list[dict[str, Any]]]:
    """Aggregate one month's finest rows to region-at-depth x process family with totals, then suppress."""
    T = sup.TOTAL
    accs: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    for r in data["cells"]:
        reg = _region_key(r["region_code"], prefix, depth)
        for key in ((reg, r["process_family"]), (reg, T), (T, r["process_family"]), (T, T)):
            accs[key].add(r)
    for g in data["gmv"]:
        reg = _region_key(g["region_code"], prefix, depth)
        for key in ((reg, g["process_family"]), (reg, T), (T, g["process_family"]), (T, T)):
            accs[key].gmv[g["currency"]] += int(g["amount"])
    rows = sorted({k[0] for k in accs if k[0] != T})
    cols = sorted({k[1] for k in accs if k[1] != T})
    hidden = _table(rows, cols, accs, settings)
    label = month.strftime("%Y-%m")
    cells = []
    for rk in [*rows, T]:
        for ck in [*cols, T]:
            if (rk, ck) not in accs:
                continue
            suppressed = (rk, ck) in hidden
            cells.append({
                "month": label, "prefix": prefix, "region": rk, "process_family": ck, "suppressed": suppressed,
                "indicators": None if suppressed else accs[(rk, ck)].indicators(),
            })  # fmt: skip

    # Flows: in-prefix regions at depth, anything outside collapsed to "outside".
    def side(code: str) -> str:
        return _region_key(code, prefix, depth) if code.startswith(prefix) else "outside"

    flows: dict[tuple[str, str], _Simple] = defaultdict(_Simple)
    for f in data["flows"]:
        b, s = side(f["buyer_region"]), side(f["supplier_region"])
        if b == "outside" and s == "outside":
            continue
        for key in ((b, s), (b, T), (T, s), (T, T)):
            acc = flows[key]
            acc.bookings += int(f["bookings"])
            acc.hours += float(f["booked_hours"])
            acc.sup.update(f["supplier_org_ids"] or [])
            acc.buy.update(f["buyer_org_ids"] or [])
    f_rows = sorted({k[0] for k in flows if k[0] != T})
    f_cols = sorted({k[1] for k in flows if k[1] != T})
    f_hidden = _table(f_rows, f_cols, flows, settings)  # type: ignore[arg-type]
    flow_out = [
        {
            "month": label, "prefix": prefix, "buyer_region": b, "supplier_region": s, "suppressed": (b, s) in f_hidden,
            "bookings": None if (b, s) in f_hidden else flows[(b, s)].bookings,
            "booked_hours": None if (b, s) in f_hidden else round(flows[(b, s)].hours, 2),
        }
        for b in [*f_rows, T] for s in [*f_cols, T] if (b, s) in flows
    ]  # fmt: skip

    labs: dict[tuple[str, str], _Simple] = defaultdict(_Simple)
    for t in data["lab_tests"]:
        reg = _region_key(t["region_code"], prefix, depth)
        std = t["test_standard"] or "unspecified"
        for key in ((reg, std), (reg, T), (T, std), (T, T)):
            acc = labs[key]
            acc.bookings += int(t["tests"])
            acc.samples += int(t["samples"])
            acc.accredited += int(t["accredited_tests"])
            acc.sup.update(t["supplier_org_ids"] or [])
            acc.buy.update(t["buyer_org_ids"] or [])
    l_rows = sorted({k[0] for k in labs if k[0] != T})
    l_cols = sorted({k[1] for k in labs if k[1] != T})
    l_hidden = _table(l_rows, l_cols, labs, settings)  # type: ignore[arg-type]
    lab_out = [
        {
            "month": label, "prefix": prefix, "region": r, "test_standard": c, "suppressed": (r, c) in l_hidden,
            "tests": None if (r, c) in l_hidden else labs[(r, c)].bookings,
            "samples": None if (r, c) in l_hidden else labs[(r, c)].samples,
            "accredited_share": None if (r, c) in l_hidden else _ratio(labs[(r, c)].accredited, labs[(r, c)].bookings),
        }
        for r in [*l_rows, T] for c in [*l_cols, T] if (r, c) in labs
    ]  # fmt: skip
    return {"cells": cells, "flows": flow_out, "lab_tests": lab_out}


async def observatory_indicators(
    session: AsyncSession,
    caller: Caller,
    settings: ObservatorySettings,
    *,
    region: str | None,
    start: date,
    end: date,
    process: str | None = None,
    depth: int | None = None,
    today: date | None = None,
) -> ObservatoryOut:
    """Suppressed indicators by region x process family x month for the caller's regions."""
    if end < start:
        raise Unprocessable("`to` must not be before `from`.")
    months = months_between(start, end)
    if len(months) > MAX_MONTHS:
        raise Unprocessable(f"At most {MAX_MONTHS} months per query.")
    prefixes = await visible_prefixes(session, caller, region)
    today = today or datetime.now(UTC).date()
    depth = settings.observatory_region_depth if depth is None else depth
    cells: list[dict[str, Any]] = []
    flows: list[dict[str, Any]] = []
    labs: list[dict[str, Any]] = []
    for prefix in prefixes:
        per_month = await _month_rows(session, months, prefix, today)
        for m in months:
            out = aggregate_month(m, prefix, depth, per_month[m], settings)
            cells += [c for c in out["cells"] if process is None or c["process_family"] in (process, sup.TOTAL)]
            flows += out["flows"]
            labs += out["lab_tests"]
    return ObservatoryOut.model_validate({
        "regions": prefixes, "from": months[0], "to": end, "depth": depth, "process": process,
        "min_organisations": settings.observatory_min_organisations,
        "complementary_suppression": settings.observatory_complementary_suppression,
        "cells": cells, "flows": flows, "lab_tests": labs,
    })  # fmt: skip


INDICATOR_COLUMNS = (
    "listed_hours", "booked_hours", "utilization", "active_suppliers", "active_buyers", "bookings", "requests",
    "requests_closed", "requests_booked", "request_fill_rate", "median_minutes_to_match", "lab_tests", "lab_samples",
    "accredited_share",
)  # fmt: skip


def observatory_csv(out: ObservatoryOut) -> str:
    """One line per cell (totals use ``*``); a suppressed cell has ``suppressed=true`` and empty values.
    GMV is one ``gmv_<CUR>`` column per currency."""
    currencies = sorted({c for cell in out.cells if cell.indicators for c in cell.indicators.gmv})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["month", "prefix", "region", "process_family", "suppressed", *INDICATOR_COLUMNS,
                *(f"gmv_{c}" for c in currencies)])  # fmt: skip
    for cell in out.cells:
        ind = cell.indicators.model_dump() if cell.indicators else None
        values = ["" if ind is None or ind[k] is None else ind[k] for k in INDICATOR_COLUMNS]
        money = ["" if ind is None else ind["gmv"].get(c, 0) for c in currencies]
        w.writerow([cell.month, cell.prefix, cell.region, cell.process_family, str(cell.suppressed).lower(),
                    *values, *money])  # fmt: skip
    return buf.getvalue()


# -- factory and buyer analytics ---------------------------------------------------------------------------


def _overlap_hours(s: datetime, e: datetime, b0: datetime, b1: datetime) -> float:
    lo, hi = max(s, b0), min(e, b1)
    return max(0.0, (hi - lo).total_seconds() / 3600.0)


def _lab_open_days(plan: list[dict[str, Any]], tz: str, excs: Sequence[Any], first: date, last: date) -> int:
    """Drop-off days in [first, last), the rule of listings.service.lab_capacity."""
    zone = ZoneInfo(tz)
    open_weekdays = {int(w["weekday"]) for w in plan} or {0, 1, 2, 3, 4}
    n, d = 0, first
    while d < last:
        d0 = datetime.combine(d, time(0), zone)
        d1 = datetime.combine(d + timedelta(days=1), time(0), zone)
        over = [x for x in excs if x[1] < d1 and x[2] > d0]
        is_open = d.weekday() in open_weekdays
        if any(x[3] for x in over):
            is_open = True
        if any(not x[3] for x in over):
            is_open = False
        n += is_open
        d += timedelta(days=1)
    return n


def _empty_metrics() -> dict[str, Any]:
    return {
        "offered_hours": 0.0, "booked_hours": 0.0, "idle_shared_hours": 0.0, "utilization": None,
        "earnings": {}, "bookings": 0, "cancelled": 0, "cancelled_by_supplier": 0, "declined_or_expired": 0,
        "cancellation_rate": None, "completed": 0, "on_time": 0, "on_time_rate": None,
    }  # fmt: skip


def _finish(m: dict[str, Any]) -> dict[str, Any]:
    m["offered_hours"] = round(m["offered_hours"], 2)
    m["booked_hours"] = round(m["booked_hours"], 2)
    m["idle_shared_hours"] = round(max(0.0, m["offered_hours"] - m["booked_hours"]), 2)
    m["utilization"] = _ratio(m["booked_hours"], m["offered_hours"])
    m["cancellation_rate"] = _ratio(m["cancelled"], m["bookings"])
    m["on_time_rate"] = _ratio(m["on_time"], m["completed"])
    m["earnings"] = dict(sorted(m["earnings"].items()))
    return m


def _add(into: dict[str, Any], m: dict[str, Any]) -> None:
    for k in ("offered_hours", "booked_hours", "bookings", "cancelled", "cancelled_by_supplier",
              "declined_or_expired", "completed", "on_time"):  # fmt: skip
        into[k] += m[k]
    for cur, amount in m["earnings"].items():
        into["earnings"][cur] = into["earnings"].get(cur, 0) + amount


async def _require_org_access(caller: Caller, org_id: uuid.UUID) -> None:
    if caller.is_platform_admin and caller.user_id is not None:
        return
    if not caller.is_member(org_id):
        raise NotFound("Organisation not found.")
    if not caller.has_scope(ANALYTICS_SCOPE):
        raise Forbidden(f"This API key lacks the '{ANALYTICS_SCOPE}' scope.")


async def factory_analytics(
    session: AsyncSession,
    caller: Caller,
    settings: ObservatorySettings,
    org_id: uuid.UUID,
    *,
    start: date,
    end: date,
    granularity: str = "week",
) -> FactoryAnalytics:
    """Per machine, site and organisation (and lab service / test standard, and as a buyer) by week or month.

    Buckets are UTC calendar weeks (Monday) or months covering ``start``..``end`` (inclusive days)."""
    await _require_org_access(caller, org_id)
    if end < start:
        raise Unprocessable("`to` must not be before `from`.")
    if (end - start).days > settings.analytics_max_days:
        raise Unprocessable(f"At most {settings.analytics_max_days} days per query.")
    if granularity not in ("week", "month"):
        raise Unprocessable("granularity must be week or month.")
    repo = AnalyticsRepository(session)
    bks = buckets(start, end, granularity)
    w0, w1 = utc_midnight(bks[0][0]), utc_midnight(bks[-1][1])
    assets = await repo.org_assets(org_id)
    by_id = {a["id"]: a for a in assets}
    excs: dict[Any, list[tuple[datetime, datetime, bool]]] = defaultdict(list)
    lab_excs: dict[Any, list[Any]] = defaultdict(list)
    for row in await repo.exceptions_for([a["id"] for a in assets], w0 - timedelta(days=1), w1 + timedelta(days=1)):
        excs[row[0]].append((row[1], row[2], row[3]))
        lab_excs[row[0]].append(row)
    bookings = await repo.org_bookings(org_id, w0, w1)
    money = await repo.org_money(org_id, w0, w1)
    counted = set(COUNTED_STATUSES)

    out_buckets = []
    for b0d, b1d in bks:
        b0, b1 = utc_midnight(b0d), utc_midnight(b1d)
        metrics: dict[Any, dict[str, Any]] = {}
        labs: dict[Any, dict[str, Any]] = {}
        for a in assets:
            listed = a["status"] == "published" and a["published_at"] is not None and a["published_at"] < b1
            m = metrics[a["id"]] = _empty_metrics()
            if a["kind"] == "machine":
                if listed:
                    m["offered_hours"] = offered_hours(a["weekly_plan"], a["timezone"], excs[a["id"]], b0, b1)
            else:
                days = _lab_open_days(a["weekly_plan"], a["timezone"], lab_excs[a["id"]], b0d, b1d) if listed else 0
                labs[a["id"]] = {"offered_samples": days * int(a["daily_sample_capacity"] or 0), "booked_samples": 0,
                                 "tests": 0}  # fmt: skip
        buyer_bookings = 0
        spend: dict[str, int] = defaultdict(int)
        suppliers_used: set[Any] = set()
        lead_hours: list[float] = []
        for bk in bookings:
            is_machine = bk["kind"] == "machine"
            starts = bk["start_at"] if is_machine else (
                utc_midnight(bk["drop_off_date"]) if bk["drop_off_date"] else None)  # fmt: skip
            if bk["supplier_org_id"] == org_id and bk["asset_id"] in metrics:
                target = metrics[bk["asset_id"]]
                lab = labs.get(bk["asset_id"])
                if bk["status"] in counted:
                    if is_machine and bk["start_at"] is not None:
                        target["booked_hours"] += _overlap_hours(bk["start_at"], bk["end_at"], b0, b1)
                    if lab is not None and bk["drop_off_date"] and b0d <= bk["drop_off_date"] < b1d:
                        lab["booked_samples"] += int(bk["samples"] or 0)
                        lab["tests"] += 1
                if starts is not None and b0 <= starts < b1:
                    target["bookings"] += 1
                    if bk["status"] == "cancelled":
                        target["cancelled"] += 1
                        target["cancelled_by_supplier"] += bk["cancelled_by"] == "supplier"
                    if bk["status"] in ("declined", "expired"):
                        target["declined_or_expired"] += 1
                if bk["completed_at"] is not None and b0 <= bk["completed_at"] < b1:
                    target["completed"] += 1
                    if is_machine:
                        target["on_time"] += bk["end_at"] is not None and bk["completed_at"] <= bk["end_at"]
                    else:
                        done = bk["completed_at"].astimezone(ZoneInfo(bk["site_timezone"])).date()
                        target["on_time"] += bk["due_date"] is not None and done <= bk["due_date"]
            if bk["buyer_org_id"] == org_id and b0 <= bk["created_at"] < b1 and bk["status"] in counted:
                buyer_bookings += 1
                suppliers_used.add(bk["supplier_org_id"])
                if bk["request_created_at"] is not None:
                    lead_hours.append((bk["created_at"] - bk["request_created_at"]).total_seconds() / 3600)
        for row in money:
            if not (b0 <= row["created_at"] < b1):
                continue
            if row["what"] == "earnings":
                if row["asset_id"] in metrics:
                    earn = metrics[row["asset_id"]]["earnings"]
                    earn[row["currency"]] = earn.get(row["currency"], 0) + int(row["amount"])
            else:
                spend[row["currency"]] += int(row["amount"])

        org_total = _empty_metrics()
        sites: dict[Any, dict[str, Any]] = {}
        machine_out = []
        for asset_id, m in metrics.items():
            a = by_id[asset_id]
            site = sites.setdefault(
                a["site_id"],
                {"site_id": a["site_id"], "name": a["site_name"], "region_code": a["region_code"], **_empty_metrics()},
            )
            _add(site, m)
            _add(org_total, m)
            if a["kind"] == "machine":
                machine_out.append({"asset_id": asset_id, "title": a["title"], "site_id": a["site_id"], **_finish(m)})
        standards: dict[str, dict[str, int]] = defaultdict(lambda: {"offered_samples": 0, "booked_samples": 0,
                                                                    "tests": 0})  # fmt: skip
        lab_out = []
        for asset_id, lab in labs.items():
            a = by_id[asset_id]
            std = a["test_standard"] or "unspecified"
            for k in ("offered_samples", "booked_samples", "tests"):
                standards[std][k] += lab[k]
            lab_out.append({
                "asset_id": asset_id, "title": a["title"], "site_id": a["site_id"], "test_standard": std,
                "accredited": bool(a["accredited"]), "offered_samples": lab["offered_samples"],
                "booked_samples": lab["booked_samples"], "tests": lab["tests"],
                "sample_utilization": _ratio(lab["booked_samples"], lab["offered_samples"]),
                "earnings": dict(sorted(metrics[asset_id]["earnings"].items())),
            })  # fmt: skip
        out_buckets.append({
            "start": b0d, "end": b1d,
            "organisation": _finish(org_total),
            "sites": [_finish(s) for s in sites.values()],
            "machines": machine_out,
            "labs": lab_out,
            "lab_standards": [
                {"test_standard": k, **v, "sample_utilization": _ratio(v["booked_samples"], v["offered_samples"])}
                for k, v in sorted(standards.items())
            ],
            "buyer": {
                "bookings": buyer_bookings, "spend": dict(sorted(spend.items())),
                "suppliers_used": len(suppliers_used), "median_lead_time_hours": _median(lead_hours),
            },
        })  # fmt: skip
    return FactoryAnalytics.model_validate(
        {"org_id": org_id, "from": start, "to": end, "granularity": granularity, "buckets": out_buckets}
    )


FACTORY_CSV_COLUMNS = (
    "offered_hours", "booked_hours", "idle_shared_hours", "utilization", "bookings", "cancelled",
    "cancelled_by_supplier", "declined_or_expired", "cancellation_rate", "completed", "on_time", "on_time_rate",
)  # fmt: skip


def factory_analytics_csv(out: FactoryAnalytics) -> str:
    """Flat lines: level organisation | site | machine | lab | buyer; money as ``CUR:amount;…``."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "bucket_start",
            "bucket_end",
            "level",
            "id",
            "name",
            *FACTORY_CSV_COLUMNS,
            "earnings",
            "offered_samples",
            "booked_samples",
            "tests",
            "spend",
            "suppliers_used",
            "median_lead_time_hours",
        ]
    )

    def money(d: dict[str, int]) -> str:
        return ";".join(f"{k}:{v}" for k, v in sorted(d.items()))

    for b in out.buckets:
        head = [b.start.isoformat(), b.end.isoformat()]
        blank_m = [""] * len(FACTORY_CSV_COLUMNS)
        org = b.organisation.model_dump()
        w.writerow([*head, "organisation", str(out.org_id), "", *(org[k] for k in FACTORY_CSV_COLUMNS),
                    money(org["earnings"]), "", "", "", "", "", ""])  # fmt: skip
        for s in b.sites:
            d = s.model_dump()
            w.writerow([*head, "site", str(s.site_id), s.name, *(d[k] for k in FACTORY_CSV_COLUMNS),
                        money(d["earnings"]), "", "", "", "", "", ""])  # fmt: skip
        for m in b.machines:
            d = m.model_dump()
            w.writerow([*head, "machine", str(m.asset_id), m.title, *(d[k] for k in FACTORY_CSV_COLUMNS),
                        money(d["earnings"]), "", "", "", "", "", ""])  # fmt: skip
        for lab in b.labs:
            w.writerow([*head, "lab", str(lab.asset_id), lab.title, *blank_m, money(lab.earnings),
                        lab.offered_samples, lab.booked_samples, lab.tests, "", "", ""])  # fmt: skip
        w.writerow([*head, "buyer", str(out.org_id), "", *blank_m, "", "", "", b.buyer.bookings,
                    money(b.buyer.spend), b.buyer.suppliers_used,
                    "" if b.buyer.median_lead_time_hours is None else b.buyer.median_lead_time_hours])  # fmt: skip
    return buf.getvalue()


# -- observer grants (admin) -------------------------------------------------------------------------------


def _grant_out(g: ObserverGrant) -> ObserverGrantOut:
    return ObserverGrantOut.model_validate(g, from_attributes=True)


async def create_grant(session: AsyncSession, admin: Caller, data: ObserverGrantIn) -> ObserverGrantOut:
    repo = AnalyticsRepository(session)
    user_id = data.user_id
    if user_id is None and data.user_email is not None:
        user_id = await repo.user_id_by_email(data.user_email)
    if user_id is None or not await repo.user_exists(user_id):
        raise NotFound("User not found.")
    grant = ObserverGrant(user_id=user_id, region_prefixes=sorted(set(data.region_prefixes)),
                          created_by=admin.user_id)  # fmt: skip
    session.add(grant)
    await session.flush()
    out = _grant_out(grant)
    await audit.record(
        session, actor_user_id=admin.user_id, action="observer.grant", target_type="observer_grant",
        target_id=grant.id, after=out.model_dump(mode="json"),
    )  # fmt: skip
    return out


async def list_grants(session: AsyncSession) -> list[ObserverGrantOut]:
    import sqlalchemy as sa

    rows = await session.execute(sa.select(ObserverGrant).order_by(sa.text("created_at"), sa.text("id")))
    return [_grant_out(g) for g in rows.scalars().all()]


async def delete_grant(session: AsyncSession, admin: Caller, grant_id: uuid.UUID) -> None:
    grant = await session.get(ObserverGrant, grant_id)
    if grant is None:
        raise NotFound("Observer grant not found.")
    before = _grant_out(grant).model_dump(mode="json")
    await session.delete(grant)
    await session.flush()
    await audit.record(
        session, actor_user_id=admin.user_id, action="observer.revoke", target_type="observer_grant",
        target_id=grant_id, before=before,
    )  # fmt: skip
