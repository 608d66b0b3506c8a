"""The regional observatory: monthly rollups, who sees which regions, aggregation with k-anonymity
suppression, and the indicator table (JSON and CSV). Services never commit."""

from __future__ import annotations

import csv
import io
import json
import time as _time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics import conformance as quality
from marketplace.analytics import suppression as sup
from marketplace.analytics.periods import median, months_between, next_month, offered_hours, ratio, utc_midnight
from marketplace.analytics.repository import AnalyticsRepository, MonthParams
from marketplace.analytics.schemas import ConformanceCell, LabUtilisationCell, ObservatoryOut
from marketplace.core.errors import Forbidden, Unprocessable
from marketplace.core.principal import Principal as Caller

MAX_MONTHS = 36


class ObservatorySettings(Protocol):
    observatory_min_organisations: int
    observatory_complementary_suppression: bool
    observatory_region_depth: int
    analytics_max_days: int


class OutsideYourRegions(Forbidden):
    """The region lies outside the regions you were granted."""

    code = "outside_your_regions"


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
        plan_hours.append(offered_hours(json.loads(plan_text), tz, exceptions=[], start=m0, end=m1))
    ov_ids, ov_hours = [], []
    for item in await repo.listed_machines_with_exceptions(m0, m1):
        ov_ids.append(item["asset_id"])
        ov_hours.append(offered_hours(item["plan"], item["tz"], exceptions=item["exceptions"], start=m0, end=m1))
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
    session: AsyncSession, months: Sequence[date], *, prefix: str, today: date
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
            "utilization": ratio(self.booked, self.listed),
            "active_suppliers": len(self.active_s),
            "active_buyers": len(self.active_b),
            "bookings": self.bookings,
            "gmv": dict(sorted(self.gmv.items())),
            "requests": self.requests,
            "requests_closed": self.closed,
            "requests_booked": self.filled,
            "request_fill_rate": ratio(self.filled, self.closed),
            "median_minutes_to_match": median(self.minutes),
            "lab_tests": self.lab_tests,
            "lab_samples": self.lab_samples,
            "accredited_share": ratio(self.accredited, self.lab_tests),
        }


def _table(
    accs: Mapping[tuple[str, str], _Acc | _Simple], settings: ObservatorySettings
) -> tuple[list[str], list[str], set[tuple[Any, Any]]]:
    """The table's row and column keys (totals aside) and the cells suppression hides."""
    rows = sorted({k[0] for k in accs if k[0] != sup.TOTAL})
    cols = sorted({k[1] for k in accs if k[1] != sup.TOTAL})
    backing = {k: a.backing() for k, a in accs.items()}
    return (
        rows,
        cols,
        sup.suppress(
            rows,
            cols,
            backing,
            min_organisations=settings.observatory_min_organisations,
            complementary=settings.observatory_complementary_suppression,
        ),
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

    def add(
        self, row: dict[str, Any], bookings: int, *, hours: float = 0.0, samples: int = 0, accredited: int = 0
    ) -> None:
        self.bookings += bookings
        self.hours += hours
        self.samples += samples
        self.accredited += accredited
        self.sup.update(row["supplier_org_ids"] or [])
        self.buy.update(row["buyer_org_ids"] or [])

    def backing(self) -> sup.Backing:
        return sup.Backing(len(self.sup), len(self.buy), float(self.bookings))


def aggregate_month(
    month: date, *, prefix: str, depth: int, data: dict[str, list[dict[str, Any]]], settings: ObservatorySettings
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
    rows, cols, hidden = _table(accs, settings)
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
            flows[key].add(f, int(f["bookings"]), hours=float(f["booked_hours"]))
    f_rows, f_cols, f_hidden = _table(flows, settings)
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
            labs[key].add(t, int(t["tests"]), samples=int(t["samples"]), accredited=int(t["accredited_tests"]))
    l_rows, l_cols, l_hidden = _table(labs, settings)
    lab_out = [
        {
            "month": label, "prefix": prefix, "region": r, "test_standard": c, "suppressed": (r, c) in l_hidden,
            "tests": None if (r, c) in l_hidden else labs[(r, c)].bookings,
            "samples": None if (r, c) in l_hidden else labs[(r, c)].samples,
            "accredited_share": None if (r, c) in l_hidden else ratio(labs[(r, c)].accredited, labs[(r, c)].bookings),
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
    signals: dict[str, list[dict[str, Any]]] = {"conformance": [], "lab_utilisation": []}
    # Conformance and lab utilisation have no rollup table: computed from the raw rows, once per month.
    raw_quality = {m: await quality.quality_month(session, m) for m in months}

    def kept(cell: dict[str, Any]) -> bool:
        return process is None or cell["process_family"] in (process, sup.TOTAL)

    for prefix in prefixes:
        per_month = await _month_rows(session, months, prefix=prefix, today=today)
        for m in months:
            out = aggregate_month(m, prefix=prefix, depth=depth, data=per_month[m], settings=settings)
            cells += [c for c in out["cells"] if kept(c)]
            flows += out["flows"]
            labs += out["lab_tests"]
            q = quality.aggregate_quality(m, prefix=prefix, depth=depth, data=raw_quality[m], settings=settings)
            for kind, rows in q.items():
                signals[kind] += [c for c in rows if kept(c)]
    return ObservatoryOut.model_validate({
        "regions": prefixes, "from": months[0], "to": end, "depth": depth, "process": process,
        "min_organisations": settings.observatory_min_organisations,
        "complementary_suppression": settings.observatory_complementary_suppression,
        "cells": cells, "flows": flows, "lab_tests": labs, **signals,
    })  # fmt: skip


INDICATOR_COLUMNS = (
    "listed_hours", "booked_hours", "utilization", "active_suppliers", "active_buyers", "bookings", "requests",
    "requests_closed", "requests_booked", "request_fill_rate", "median_minutes_to_match", "lab_tests", "lab_samples",
    "accredited_share",
)  # fmt: skip


QUALITY_COLUMNS = (
    "reported_lots", "accepted_lots", "conformance_rate", "conformance_suppressed", "lab_offered_samples",
    "lab_booked_samples", "lab_utilization", "lab_utilization_suppressed",
)  # fmt: skip


def _quality_values(conf: ConformanceCell | None, use: LabUtilisationCell | None) -> list[Any]:
    def v(x: Any) -> Any:
        return "" if x is None else x

    c = (
        ["", "", "", ""]
        if conf is None
        else [v(conf.reported_lots), v(conf.accepted_lots), v(conf.conformance_rate), str(conf.suppressed).lower()]
    )
    u = (
        ["", "", "", ""]
        if use is None
        else [v(use.offered_samples), v(use.booked_samples), v(use.utilization), str(use.suppressed).lower()]
    )
    return [*c, *u]  # fmt: skip


def observatory_csv(out: ObservatoryOut) -> str:
    """One line per cell (totals use ``*``); a suppressed cell has ``suppressed=true`` and empty values.
    GMV is one ``gmv_<CUR>`` column per currency. The conformance and lab utilisation columns come from their
    own tables (suppressed on their own: ``conformance_suppressed``, ``lab_utilization_suppressed``); a
    region x family found only there gets a line with empty indicator columns."""
    currencies = sorted({c for cell in out.cells if cell.indicators for c in cell.indicators.gmv})
    conf = {(c.month, c.prefix, c.region, c.process_family): c for c in out.conformance}
    use = {(c.month, c.prefix, c.region, c.process_family): c for c in out.lab_utilisation}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["month", "prefix", "region", "process_family", "suppressed", *INDICATOR_COLUMNS,
                *(f"gmv_{c}" for c in currencies), *QUALITY_COLUMNS])  # fmt: skip
    seen = set()
    for cell in out.cells:
        key = (cell.month, cell.prefix, cell.region, cell.process_family)
        seen.add(key)
        ind = cell.indicators.model_dump() if cell.indicators else None
        values = ["" if ind is None or ind[k] is None else ind[k] for k in INDICATOR_COLUMNS]
        money = ["" if ind is None else ind["gmv"].get(c, 0) for c in currencies]
        w.writerow([*key, str(cell.suppressed).lower(), *values, *money,
                    *_quality_values(conf.get(key), use.get(key))])  # fmt: skip
    for key in sorted({*conf, *use} - seen):
        blank = [""] * (len(INDICATOR_COLUMNS) + len(currencies))
        w.writerow([*key, "false", *blank, *_quality_values(conf.get(key), use.get(key))])
    return buf.getvalue()
