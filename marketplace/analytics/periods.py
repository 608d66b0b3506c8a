"""Time and arithmetic shared by factory analytics and the observatory: months, buckets, exact offered hours
(DST-correct through listings.availability) and rounded ratios/medians."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from listings import availability as av

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
    *,
    exceptions: Sequence[tuple[datetime, datetime, bool]],
    start: datetime,
    end: datetime,
) -> float:
    """Hours the weekly plan (plus opening, minus closing exceptions) offers in [start, end)."""
    excs = [av.ExceptionRange(start=s, end=e, available=a) for s, e, a in exceptions]
    return _hours(av.free_intervals(_weekly(plan), tz, exceptions=excs, blocked=[], start=start, end=end))


def lab_open_days(plan: list[dict[str, Any]], tz: str, *, excs: Sequence[Any], first: date, last: date) -> int:
    """Drop-off days in [first, last), the rule of listings.service.lab_capacity: weekdays with a window in the
    weekly plan (Monday-Friday when it is empty), opened or closed by exceptions ``(asset_id, starts_at, ends_at,
    available)`` overlapping the local day (a closing one wins)."""
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


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None
