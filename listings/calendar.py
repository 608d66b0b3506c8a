"""Calendar expansion for many assets at once: weekly plans, exceptions and booked time → free time, lab
capacity per day and utilisation (matching loads its candidates' calendars through here).

Weekly plans arrive as JSON text (the column cast to text, so a plan shared by many listings is parsed and
expanded once per call, see :class:`Plans`); exceptions and booked hours are fetched for all assets in one
query each (:mod:`listings.calendar_repository`), booked periods come through :class:`BlockedTime`.
The single-asset equivalents are :func:`listings.slots.machine_free` and :func:`listings.slots.lab_capacity`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings.calendar_repository import booked_hours, exceptions_by_asset
from listings.ports import BlockedTime

UTILISATION_DAYS = 28
_DAY = timedelta(days=1)

ExceptionRows = Sequence[tuple[datetime, datetime, bool]]  # (start, end, available)


class CalendarRow(Protocol):
    """The columns of an asset (and its site) that calendar expansion reads."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def weekly_plan(self) -> str: ...  # JSON text
    @property
    def timezone(self) -> str: ...
    @property
    def setup_minutes(self) -> int | None: ...
    @property
    def buffer_minutes(self) -> int | None: ...
    @property
    def daily_sample_capacity(self) -> int | None: ...


def weekly_hours(plan: Sequence[Mapping[str, Any]]) -> float:
    """Open hours per week of a weekly plan (an end <= start crosses midnight; start == end is 24 h)."""
    total = 0
    for w in plan:
        sh, sm = (int(x) for x in str(w["start"]).split(":"))
        eh, em = (int(x) for x in str(w["end"]).split(":"))
        minutes = (eh * 60 + em - sh * 60 - sm) % 1440
        total += minutes or 1440
    return total / 60.0


class Plans:
    """Per-call cache of weekly plans: parsed once per distinct JSON text, expanded once per (plan, time zone,
    window). Listings share a handful of plans, so this removes most of the calendar arithmetic."""

    def __init__(self) -> None:
        self._parsed: dict[str, list[dict[str, Any]]] = {}
        self._windows: dict[str, list[av.WeeklyWindow]] = {}
        self._hours: dict[str, float] = {}
        self._expanded: dict[tuple[str, str, datetime, datetime], list[av.Interval]] = {}

    def parsed(self, text: str) -> list[dict[str, Any]]:
        hit = self._parsed.get(text)
        if hit is None:
            hit = self._parsed[text] = list(json.loads(text) or [])
        return hit

    def hours(self, text: str) -> float:
        hit = self._hours.get(text)
        if hit is None:
            hit = self._hours[text] = weekly_hours(self.parsed(text))
        return hit

    def windows(self, text: str) -> list[av.WeeklyWindow]:
        """As :func:`listings.slots.weekly_windows`."""
        hit = self._windows.get(text)
        if hit is None:
            hit = self._windows[text] = av.weekly_windows(self.parsed(text))
        return hit

    def expanded(self, text: str, tz: str, *, start: datetime, end: datetime) -> list[av.Interval]:
        key = (text, tz, start, end)
        hit = self._expanded.get(key)
        if hit is None:
            hit = self._expanded[key] = av.expand_weekly(self.windows(text), tz, start=start, end=end)
        return hit


def free_time(
    plan: Sequence[av.Interval],
    *,
    exceptions: ExceptionRows,
    booked: Sequence[av.Interval],
    start: datetime,
    end: datetime,
) -> list[av.Interval]:
    """:func:`listings.availability.free_intervals` with the weekly plan already expanded over ``[start, end)``
    (``plan`` = ``expand_weekly(...)``, merged and clipped): ``(plan | open) - closed - booked``."""
    if start >= end:
        return []
    opened = [(s, e) for s, e, ok in exceptions if ok]
    closed = [(s, e) for s, e, ok in exceptions if not ok]
    available: Sequence[av.Interval] = plan
    if opened:
        available = av.merge((max(s, start), min(e, end)) for s, e in av.merge([*plan, *opened]))
    if not closed and not booked:
        return list(available)
    return av.subtract(available, [*closed, *booked])


@dataclass(frozen=True)
class Calendars:
    """Availability exceptions and booked periods of some machines, fetched for ``[lo, hi)``."""

    lo: datetime
    hi: datetime
    exceptions: Mapping[uuid.UUID, list[tuple[datetime, datetime, bool]]]
    booked: Mapping[uuid.UUID, list[tuple[datetime, datetime]]]


def calendar_span(rows: Sequence[CalendarRow], start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """From the longest setup before ``start`` to the longest buffer after ``end``, so a slot at the window edge
    can have its setup and buffer checked."""
    lo = (start - timedelta(minutes=max(r.setup_minutes or 0 for r in rows))).astimezone(UTC)
    hi = (end + timedelta(minutes=max(r.buffer_minutes or 0 for r in rows))).astimezone(UTC)
    return lo, hi


async def machine_calendars(
    session: AsyncSession, rows: Sequence[CalendarRow], *, start: datetime, end: datetime, blocked: BlockedTime
) -> Calendars:
    """Two queries (exceptions, bookings) for all rows, covering :func:`machine_free_time` over ``[start, end)``."""
    if not rows:
        return Calendars(start, end, {}, {})
    lo, hi = calendar_span(rows, start, end)
    ids = [r.id for r in rows]
    return Calendars(
        lo,
        hi,
        await exceptions_by_asset(session, ids, start=lo, end=hi),
        await blocked.machine_blocked(session, ids, start=lo, end=hi),
    )


async def machine_free_time(
    session: AsyncSession,
    rows: Sequence[CalendarRow],
    *,
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
    plans: Plans | None = None,
    calendars: Calendars | None = None,
) -> dict[uuid.UUID, list[av.Interval]]:
    """Free time per machine (as :func:`listings.slots.machine_free`) over :func:`calendar_span`, from
    ``calendars`` when they cover it (exceptions and bookings beyond the span do not change free time within
    it: opening exceptions are clipped, closing ones and bookings only subtracted), else fetched."""
    if not rows:
        return {}
    plans = plans or Plans()
    lo, hi = calendar_span(rows, start, end)
    if calendars is None or calendars.lo > lo or calendars.hi < hi:
        calendars = await machine_calendars(session, rows, start=start, end=end, blocked=blocked)
    excs, booked = calendars.exceptions, calendars.booked
    return {
        r.id: free_time(
            plans.expanded(r.weekly_plan, r.timezone, start=lo, end=hi),
            exceptions=excs.get(r.id, ()),
            booked=booked.get(r.id, []),
            start=lo,
            end=hi,
        )
        for r in rows
    }


async def utilisation(
    session: AsyncSession,
    rows: Sequence[CalendarRow],
    now: datetime,
    *,
    plans: Plans | None = None,
    booked: Mapping[uuid.UUID, float] | None = None,
) -> dict[uuid.UUID, float]:
    """Booked hours / open hours over the last 28 days, per machine (one query unless the ``booked`` hours were
    already fetched); 0 without data.

    Open hours come from the weekly plan (availability exceptions are ignored)."""
    machines = [a for a in rows if a.kind == "machine"]
    if not machines:
        return {}
    plans = plans or Plans()
    if booked is None:
        ids = [a.id for a in machines]
        booked = await booked_hours(session, ids, start=now - timedelta(days=UTILISATION_DAYS), end=now)
    out: dict[uuid.UUID, float] = {}
    for a in machines:
        open_hours = plans.hours(a.weekly_plan) * UTILISATION_DAYS / 7
        used = booked.get(a.id, 0.0)
        out[a.id] = min(1.0, used / open_hours) if open_hours > 0 and used > 0 else 0.0
    return out


def lab_days(
    open_weekdays: set[int], exceptions: ExceptionRows, *, zone: ZoneInfo, first: date, last: date
) -> tuple[list[date], set[date]]:
    """Open and closed site-local days in ``[first, last]``: the weekly plan's weekdays (Mon-Fri without a plan),
    a day touched by an opening exception is open, one touched by a closing exception closed (closing wins)."""
    opened: list[date] = []
    closed: set[date] = set()
    d = first
    while d <= last:
        is_open = d.weekday() in open_weekdays
        if exceptions:
            day_start = datetime.combine(d, time(0), zone)
            day_end = datetime.combine(d + _DAY, time(0), zone)
            overlapping = [(s, e, ok) for s, e, ok in exceptions if s < day_end and e > day_start]
            if any(ok for _, _, ok in overlapping):
                is_open = True
            if any(not ok for _, _, ok in overlapping):
                is_open = False
        if is_open:
            opened.append(d)
        else:
            closed.add(d)
        d += _DAY
    return opened, closed


def open_weekdays(plan: Sequence[Mapping[str, Any]]) -> set[int]:
    return {int(w["weekday"]) for w in plan} or {0, 1, 2, 3, 4}


async def lab_calendars(
    session: AsyncSession,
    labs: Sequence[CalendarRow],
    *,
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
    plans: Plans,
) -> dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]]:
    """Remaining samples per open day and closed days (site-local) for each lab over the window."""
    if not labs:
        return {}
    excs = await exceptions_by_asset(session, [a.id for a in labs], start=start - 2 * _DAY, end=end + 2 * _DAY)
    out: dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]] = {}
    firsts_lasts = {}
    for a in labs:
        zone = ZoneInfo(a.timezone)
        firsts_lasts[a.id] = (start.astimezone(zone).date(), end.astimezone(zone).date())
    lo = min(f for f, _ in firsts_lasts.values())
    hi = max(last for _, last in firsts_lasts.values())
    booked_all = await blocked.lab_booked(session, [a.id for a in labs], start=lo, end=hi)
    for asset in labs:
        first, last = firsts_lasts[asset.id]
        opened, closed = lab_days(
            open_weekdays(plans.parsed(asset.weekly_plan)),
            excs.get(asset.id, []),
            zone=ZoneInfo(asset.timezone),
            first=first,
            last=last,
        )
        cap = asset.daily_sample_capacity or 0
        booked = booked_all.get(asset.id, {})
        out[asset.id] = ({d: max(cap - booked.get(d, 0), 0) for d in opened}, frozenset(closed))
    return out
