"""Conformance signals of make + verify (issue #17): a factory's first-pass yield (its scorecard), and the
observatory's conformance rate and lab utilisation by region x process family, suppressed by the same
k-anonymity rule as every other observatory table. Computed from the inspection and booking tables when
asked (no rollup table). Services never commit; definitions in docs/indicators.md."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics import suppression as sup
from marketplace.analytics.inspection_repository import ConformanceRepository
from marketplace.analytics.periods import lab_open_days, next_month, ratio, utc_midnight
from marketplace.analytics.repository import AnalyticsRepository
from marketplace.analytics.schemas import FirstPassYield

if TYPE_CHECKING:
    from marketplace.analytics.observatory import ObservatorySettings

# Below this many inspected lots a factory's first-pass yield is not shown as a percentage ("not enough
# inspected lots"): one rejected lot out of two says little about a factory.
MIN_INSPECTED_LOTS = 5


def first_pass_out(inspected: int, accepted: int) -> FirstPassYield:
    enough = inspected >= MIN_INSPECTED_LOTS
    return FirstPassYield(
        inspected_lots=inspected,
        accepted_first_time=accepted,
        first_pass_yield=ratio(accepted, inspected) if enough else None,
        min_inspected_lots=MIN_INSPECTED_LOTS,
        enough_lots=enough,
    )


async def first_pass_yield(
    session: AsyncSession, org_id: uuid.UUID, *, since: datetime | None = None, until: datetime | None = None
) -> FirstPassYield:
    """The factory's first-pass yield: of its produced lots with a report that gates the payment, the share
    whose first such report accepted the lot (all time, or lots first reported in ``[since, until)``)."""
    inspected, accepted = await ConformanceRepository(session).first_pass(org_id, since=since, until=until)
    return first_pass_out(inspected, accepted)


async def scorecard_fields(session: AsyncSession, org_id: uuid.UUID) -> dict[str, Any]:
    """The figures the public scorecard's ``as_supplier`` gains (all time)."""
    fpy = await first_pass_yield(session, org_id)
    return {
        "first_pass_yield": fpy.first_pass_yield,
        "inspected_lots": fpy.inspected_lots,
        "accepted_first_time": fpy.accepted_first_time,
        "min_inspected_lots": fpy.min_inspected_lots,
    }


# -- the observatory ---------------------------------------------------------------------------------------


async def quality_month(session: AsyncSession, month: date) -> dict[str, list[dict[str, Any]]]:
    """One month's finest rows (full site region code x family): gating reports, and per lab service its
    offered samples, plus the month's counted lab bookings."""
    repo = ConformanceRepository(session)
    m0, m1 = utc_midnight(month), utc_midnight(next_month(month))
    labs = await repo.listed_labs(m1)
    excs: dict[Any, list[Any]] = defaultdict(list)
    for row in await AnalyticsRepository(session).exceptions_for([lab["id"] for lab in labs], m0, m1):
        excs[row[0]].append(row)
    days_by_plan: dict[tuple[str, str], int] = {}
    offered = []
    for lab in labs:
        if excs[lab["id"]]:
            days = lab_open_days(lab["weekly_plan"] or [], lab["timezone"], excs=excs[lab["id"]], first=month,
                                 last=next_month(month))  # fmt: skip
        else:
            key = (json.dumps(lab["weekly_plan"] or [], sort_keys=True), lab["timezone"])
            if key not in days_by_plan:
                days_by_plan[key] = lab_open_days(lab["weekly_plan"] or [], lab["timezone"], excs=[], first=month,
                                                  last=next_month(month))  # fmt: skip
            days = days_by_plan[key]
        offered.append({"region_code": lab["region_code"], "process_family": lab["process_family"],
                        "offered_samples": days * int(lab["capacity"]), "lab_org_id": lab["org_id"]})  # fmt: skip
    return {
        "reports": await repo.gating_reports(m0, m1),
        "lab_offered": offered,
        "lab_booked": await repo.lab_bookings(m0.date(), m1.date()),
    }


class _Conf:
    def __init__(self) -> None:
        self.reported = self.accepted = 0
        self.factories: set[Any] = set()
        self.labs: set[Any] = set()
        self.buyers: set[Any] = set()

    def backing(self) -> sup.Backing:
        # The factories and the labs are each a supplier side: the smaller count must reach k.
        return sup.Backing(min(len(self.factories), len(self.labs)), len(self.buyers), float(self.reported))


class _LabUse:
    def __init__(self) -> None:
        self.offered = self.booked = 0
        self.labs: set[Any] = set()
        self.buyers: set[Any] = set()

    def backing(self) -> sup.Backing:
        return sup.Backing(len(self.labs), len(self.buyers), float(self.offered))


def _hidden(accs: Mapping[tuple[str, str], _Conf | _LabUse], settings: ObservatorySettings) -> set[Any]:
    rows = sorted({k[0] for k in accs if k[0] != sup.TOTAL})
    cols = sorted({k[1] for k in accs if k[1] != sup.TOTAL})
    return sup.suppress(
        rows,
        cols,
        {k: a.backing() for k, a in accs.items()},
        min_organisations=settings.observatory_min_organisations,
        complementary=settings.observatory_complementary_suppression,
    )


def _keys(region: str, family: str) -> tuple[tuple[str, str], ...]:
    t = sup.TOTAL
    return ((region, family), (region, t), (t, family), (t, t))


def _order(key: tuple[str, str]) -> tuple[bool, str, bool, str]:
    return (key[0] == sup.TOTAL, key[0], key[1] == sup.TOTAL, key[1])


def aggregate_quality(
    month: date, *, prefix: str, depth: int, data: dict[str, list[dict[str, Any]]], settings: ObservatorySettings
) -> dict[str, list[dict[str, Any]]]:
    """The month's conformance and lab utilisation tables at ``depth`` inside ``prefix``, with totals, each
    suppressed like the observatory's other tables (computed on the full table; filter afterwards)."""
    width = max(depth, len(prefix))
    label = month.strftime("%Y-%m")
    conf: dict[tuple[str, str], _Conf] = defaultdict(_Conf)
    for r in data["reports"]:
        if not str(r["region_code"]).startswith(prefix):
            continue
        for key in _keys(str(r["region_code"])[:width], r["process_family"]):
            c = conf[key]
            c.reported += 1
            c.accepted += r["verdict"] == "accepted"
            c.factories.add(r["supplier_org_id"])
            c.labs.add(r["lab_org_id"])
            c.buyers.add(r["buyer_org_id"])
    use: dict[tuple[str, str], _LabUse] = defaultdict(_LabUse)
    for o in data["lab_offered"]:
        if not str(o["region_code"]).startswith(prefix):
            continue
        for key in _keys(str(o["region_code"])[:width], o["process_family"]):
            use[key].offered += int(o["offered_samples"])
            use[key].labs.add(o["lab_org_id"])
    for b in data["lab_booked"]:
        if not str(b["region_code"]).startswith(prefix):
            continue
        for key in _keys(str(b["region_code"])[:width], b["process_family"]):
            use[key].booked += int(b["samples"])
            use[key].labs.add(b["supplier_org_id"])
            use[key].buyers.add(b["buyer_org_id"])
    c_hidden, u_hidden = _hidden(conf, settings), _hidden(use, settings)
    conformance = [
        {
            "month": label, "prefix": prefix, "region": k[0], "process_family": k[1], "suppressed": k in c_hidden,
            "reported_lots": None if k in c_hidden else conf[k].reported,
            "accepted_lots": None if k in c_hidden else conf[k].accepted,
            "conformance_rate": None if k in c_hidden else ratio(conf[k].accepted, conf[k].reported),
        }
        for k in sorted(conf, key=_order)
    ]  # fmt: skip
    lab_use = [
        {
            "month": label, "prefix": prefix, "region": k[0], "process_family": k[1], "suppressed": k in u_hidden,
            "offered_samples": None if k in u_hidden else use[k].offered,
            "booked_samples": None if k in u_hidden else use[k].booked,
            "utilization": None if k in u_hidden else ratio(use[k].booked, use[k].offered),
        }
        for k in sorted(use, key=_order)
    ]  # fmt: skip
    return {"conformance": conformance, "lab_utilisation": lab_use}
