"""Factory and buyer analytics: utilization, earnings, cancellations and on-time figures per machine, site,
lab service and organisation, by week or month (JSON and CSV). Services never commit."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics.conformance import first_pass_yield
from marketplace.analytics.observatory import ObservatorySettings
from marketplace.analytics.periods import buckets, lab_open_days, median, offered_hours, ratio, utc_midnight
from marketplace.analytics.repository import COUNTED_STATUSES, AnalyticsRepository
from marketplace.analytics.schemas import FactoryAnalytics
from marketplace.core.errors import Forbidden, NotFound, Unprocessable
from marketplace.core.principal import Principal as Caller

ANALYTICS_SCOPE = "analytics:read"


def _overlap_hours(s: datetime, e: datetime, *, b0: datetime, b1: datetime) -> float:
    lo, hi = max(s, b0), min(e, b1)
    return max(0.0, (hi - lo).total_seconds() / 3600.0)


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
    m["utilization"] = ratio(m["booked_hours"], m["offered_hours"])
    m["cancellation_rate"] = ratio(m["cancelled"], m["bookings"])
    m["on_time_rate"] = ratio(m["on_time"], m["completed"])
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
    *,
    session: AsyncSession,
    principal: Caller,
    settings: ObservatorySettings,
    org_id: uuid.UUID,
    start: date,
    end: date,
    granularity: str = "week",
) -> FactoryAnalytics:
    """Per machine, site and organisation (and lab service / test standard, and as a buyer) by week or month.

    Buckets are UTC calendar weeks (Monday) or months covering ``start``..``end`` (inclusive days)."""
    await _require_org_access(principal, org_id)
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
                    m["offered_hours"] = offered_hours(
                        a["weekly_plan"], a["timezone"], exceptions=excs[a["id"]], start=b0, end=b1
                    )
            else:
                days = (
                    lab_open_days(a["weekly_plan"], a["timezone"], excs=lab_excs[a["id"]], first=b0d, last=b1d)
                    if listed
                    else 0
                )
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
                        target["booked_hours"] += _overlap_hours(bk["start_at"], bk["end_at"], b0=b0, b1=b1)
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
                "sample_utilization": ratio(lab["booked_samples"], lab["offered_samples"]),
                "earnings": dict(sorted(metrics[asset_id]["earnings"].items())),
            })  # fmt: skip
        out_buckets.append({
            "start": b0d, "end": b1d,
            "organisation": _finish(org_total),
            "sites": [_finish(s) for s in sites.values()],
            "machines": machine_out,
            "labs": lab_out,
            "lab_standards": [
                {"test_standard": k, **v, "sample_utilization": ratio(v["booked_samples"], v["offered_samples"])}
                for k, v in sorted(standards.items())
            ],
            "buyer": {
                "bookings": buyer_bookings, "spend": dict(sorted(spend.items())),
                "suppliers_used": len(suppliers_used), "median_lead_time_hours": median(lead_hours),
            },
        })  # fmt: skip
    fpy = await first_pass_yield(
        session, org_id, since=utc_midnight(start), until=utc_midnight(end + timedelta(days=1))
    )
    return FactoryAnalytics.model_validate({
        "org_id": org_id, "from": start, "to": end, "granularity": granularity, "buckets": out_buckets,
        "first_pass_yield": fpy,
    })  # fmt: skip


@dataclass(frozen=True)
class WeeklyUse:
    """One listing's figures per bucket, in bucket order: ``(used, capacity)``, booked and offered hours for a
    machine, booked and offered samples for a lab service (capacity 0: not listed or closed that bucket)."""

    asset_id: uuid.UUID
    title: str
    lab: bool
    points: list[tuple[float, float]]


def weekly_use(out: FactoryAnalytics) -> list[WeeklyUse]:
    """Per listing (machines first, then lab services, each by title) the use of its capacity per bucket: the
    series of the dashboard's utilisation charts."""
    n = len(out.buckets)
    found: dict[tuple[bool, uuid.UUID], tuple[str, list[tuple[float, float]]]] = {}
    for i, b in enumerate(out.buckets):
        for m in b.machines:
            found.setdefault((False, m.asset_id), (m.title, [(0.0, 0.0)] * n))[1][i] = (m.booked_hours, m.offered_hours)
        for lab in b.labs:
            points = found.setdefault((True, lab.asset_id), (lab.title, [(0.0, 0.0)] * n))[1]
            points[i] = (float(lab.booked_samples), float(lab.offered_samples))
    return sorted(
        (WeeklyUse(asset_id=key[1], title=title, lab=key[0], points=points) for key, (title, points) in found.items()),
        key=lambda u: (u.lab, u.title.casefold(), str(u.asset_id)),
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
