"""Pure free-interval computation for asset calendars.

Conventions (all functions):

* Intervals are half-open ``[start, end)`` pairs of timezone-aware datetimes.
  Outputs are always in UTC; naive datetimes are rejected with ``ValueError``
  because guessing a zone is how bookings end up an hour off.
* Weekly plans are local wall-clock times in an IANA zone, converted with ``zoneinfo``:

  - a window with ``end <= start`` crosses midnight and ends on the next local day;
    ``start == end`` means a 24-hour window (same wall-clock time the next day, so 23 or
    25 real hours on DST-change days);
  - a wall-clock time that does not exist (spring-forward gap) snaps to the end of the
    gap, i.e. the first real instant at which the local clock reads that time or later
    (02:30 on 2027-03-28 in Europe/Berlin becomes 03:00 CEST = 01:00 UTC);
  - an ambiguous wall-clock time (fall-back overlap) uses its first occurrence (fold=0).

  So a 00:00-06:00 shift in Berlin is 5 real hours on 2027-03-28 and 7 on 2027-10-31.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Interval: TypeAlias = tuple[datetime, datetime]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
# [0-9], not \d: \d also matches non-ASCII digits such as "١٢".
_HHMM = re.compile(r"([0-9]{2}):([0-9]{2})")
SLOT_STEPS: frozenset[str] = frozenset({"first", "all"})


@dataclass(frozen=True)
class WeeklyWindow:
    """One recurring open window in local wall-clock time.

    ``weekday`` is 0=Monday..6=Sunday and names the day the window *starts*.
    ``end <= start`` means the window crosses midnight into the next day;
    ``start == end`` means 24 hours.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday)..6 (Sunday), got {self.weekday}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("weekly window times are local wall-clock and must be naive")


@dataclass(frozen=True)
class ExceptionRange:
    """One-off calendar change: ``available=False`` closes, ``True`` adds open time."""

    start: datetime
    end: datetime
    available: bool

    def __post_init__(self) -> None:
        if _utc(self.start) >= _utc(self.end):
            raise ValueError("exception range must have start < end")


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is UTC:  # the common case (database values, earlier results): no conversion needed
        return dt
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"datetime {dt.isoformat()} must be timezone-aware")
    return dt.astimezone(UTC)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _wall_clock(utc: datetime, zone: ZoneInfo) -> datetime:
    return utc.astimezone(zone).replace(tzinfo=None)


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Local wall-clock time to UTC with the module's DST rules (see module doc)."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall_clock(first, zone) == naive:
        return first  # exists; for an ambiguous time fold=0 is the first occurrence
    # In a gap: fold=1 applies the post-transition offset (an instant before the
    # gap) and fold=0 the pre-transition one (after it). Binary-search the first
    # instant whose wall clock has reached `naive`, i.e. the transition itself.
    # Gaps occur at most twice a year, so the ~32 iterations are irrelevant.
    lo = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    hi = first
    lo_us, hi_us = 0, (hi - lo) // _ONE_US
    while hi_us - lo_us > 1:
        mid = (lo_us + hi_us) // 2
        if _wall_clock(lo + mid * _ONE_US, zone) >= naive:
            hi_us = mid
        else:
            lo_us = mid
    return lo + hi_us * _ONE_US


def expand_weekly(weekly: Sequence[WeeklyWindow], tz: str, *, start: datetime, end: datetime) -> list[Interval]:
    """Expand a weekly plan into merged UTC intervals clipped to ``[start, end)``."""
    start_utc, end_utc = _utc(start), _utc(end)
    if start_utc >= end_utc or not weekly:
        return []
    zone = _zone(tz)
    by_weekday: dict[int, list[WeeklyWindow]] = {}
    for w in weekly:
        by_weekday.setdefault(w.weekday, []).append(w)
    # Start one local day early: a shift begun yesterday may cross into the window.
    day = start_utc.astimezone(zone).date() - _DAY
    last = end_utc.astimezone(zone).date()
    out: list[Interval] = []
    while day <= last:
        for w in by_weekday.get(day.weekday(), ()):
            s = local_to_utc(day, w.start, zone)
            e = local_to_utc(day + _DAY if w.end <= w.start else day, w.end, zone)
            s, e = max(s, start_utc), min(e, end_utc)
            if s < e:
                out.append((s, e))
        day += _DAY
    return merge(out)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort, drop empty intervals, coalesce overlapping/adjacent ones; UTC output."""
    items = sorted((_utc(s), _utc(e)) for s, e in intervals)
    out: list[Interval] = []
    for s, e in items:
        if s >= e:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def subtract(base: Sequence[Interval], remove: Sequence[Interval]) -> list[Interval]:
    """``base`` minus ``remove`` by a linear sweep.

    Both are expected sorted and merged; they are normalised with :func:`merge`
    anyway (linear on sorted input) so a careless caller still gets a correct
    answer rather than a silently wrong calendar.
    """
    b, r = merge(base), merge(remove)
    out: list[Interval] = []
    j = 0
    for s, e in b:
        # Removals ending at or before this base interval cannot touch it or later ones.
        while j < len(r) and r[j][1] <= s:
            j += 1
        cur = s
        k = j
        while k < len(r) and r[k][0] < e:
            rs, re_ = r[k]
            if rs > cur:
                out.append((cur, rs))
            cur = max(cur, re_)
            if cur >= e:
                break  # r[k] may reach into the next base interval: keep it
            k += 1
        if cur < e:
            out.append((cur, e))
        j = k
    return out


def _clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    return merge((max(s, start), min(e, end)) for s, e in merge(intervals))


def free_intervals(
    weekly: Sequence[WeeklyWindow],
    tz: str,
    *,
    exceptions: Sequence[ExceptionRange],
    blocked: Sequence[Interval],
    start: datetime,
    end: datetime,
) -> list[Interval]:
    """``(plan | open exceptions) - closed exceptions - blocked`` in ``[start, end)``.

    Closing exceptions win over opening ones where they overlap.
    """
    start_utc, end_utc = _utc(start), _utc(end)
    if start_utc >= end_utc:
        return []
    plan = expand_weekly(weekly, tz, start=start_utc, end=end_utc)
    opened = [(x.start, x.end) for x in exceptions if x.available]
    closed = [(x.start, x.end) for x in exceptions if not x.available]
    available = _clip([*plan, *opened], start_utc, end_utc)
    return subtract(available, merge([*closed, *blocked]))


def _ceil_to_grid(t: datetime, grid_us: int) -> datetime:
    us = (t - _EPOCH) // _ONE_US
    return _EPOCH + (-(-us // grid_us) * grid_us) * _ONE_US


def find_slots(
    free: Sequence[Interval],
    duration: timedelta,
    *,
    granularity_minutes: int,
    earliest: datetime,
    latest_end: datetime,
    limit: int | None = None,
    step: str = "first",
) -> list[Interval]:
    """Slots ``[s, s + duration)`` inside ``free`` and ``[earliest, latest_end]``.

    Slot starts lie on a grid of ``granularity_minutes`` counted in UTC minutes
    since the Unix epoch, so e.g. 60 means whole UTC hours (whole local hours too,
    except in zones with a :30/:45 offset). ``step="first"`` yields at most one
    slot per free interval (its earliest), which is what a "next free slots" list
    wants; ``step="all"`` yields every grid start. Adjacent free intervals are
    merged first, so a slot may span their shared boundary.
    """
    if duration <= timedelta(0):
        raise ValueError("slot duration must be positive")
    if granularity_minutes < 1:
        raise ValueError("granularity_minutes must be >= 1")
    if step not in SLOT_STEPS:
        raise ValueError(f"step must be one of {sorted(SLOT_STEPS)}, got {step!r}")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    lo_bound, hi_bound = _utc(earliest), _utc(latest_end)
    grid_us = granularity_minutes * 60_000_000
    grid = timedelta(minutes=granularity_minutes)
    out: list[Interval] = []
    for fs, fe in merge(free):
        if limit is not None and len(out) >= limit:
            break
        hi = min(fe, hi_bound)
        s = _ceil_to_grid(max(fs, lo_bound), grid_us)
        while s + duration <= hi and (limit is None or len(out) < limit):
            out.append((s, s + duration))
            if step == "first":
                break
            s += grid
    return out


def earliest_slot(
    free: Sequence[Interval],
    duration: timedelta,
    *,
    granularity_minutes: int,
    earliest: datetime,
    latest_end: datetime,
) -> Interval | None:
    """The first slot :func:`find_slots` would return, or ``None``."""
    slots = find_slots(
        free,
        duration,
        granularity_minutes=granularity_minutes,
        earliest=earliest,
        latest_end=latest_end,
        limit=1,
    )
    return slots[0] if slots else None


def parse_hhmm(value: str, *, allow_end_of_day: bool = True) -> time:
    """Parse strict ``"HH:MM"`` (00:00..23:59); ``"24:00"`` means end-of-day midnight.

    ``"24:00"`` returns ``time(0, 0)``, which a :class:`WeeklyWindow` end reads as
    midnight of the next day. Pass ``allow_end_of_day=False`` for start-only fields.
    """
    m = _HHMM.fullmatch(value)
    if m is None:
        raise ValueError(f"invalid time {value!r}: expected 'HH:MM' with two-digit hour and minute")
    hour, minute = int(m.group(1)), int(m.group(2))
    if (hour, minute) == (24, 0):
        if not allow_end_of_day:
            raise ValueError(f"invalid time {value!r}: '24:00' is only allowed as an end time")
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"invalid time {value!r}: must be between 00:00 and 23:59 (or 24:00)")
    return time(hour, minute)


def weekly_windows(plan: Iterable[Mapping[str, Any]]) -> list[WeeklyWindow]:
    """A stored weekly plan (``{"weekday", "start", "end"}`` items) as :class:`WeeklyWindow` objects."""
    return [
        WeeklyWindow(
            weekday=int(w["weekday"]),
            start=parse_hhmm(w["start"], allow_end_of_day=False),
            end=parse_hhmm(w["end"]),
        )
        for w in plan
    ]


def working_days_after(day: date, n: int, closed: set[date]) -> date:
    """The ``n``-th working day after ``day`` (lab turnaround from the drop-off day).

    Saturdays, Sundays and ``closed`` dates are skipped; the drop-off day itself never
    counts, so Friday + 1 is Monday. ``n == 0`` returns ``day`` unchanged.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    current = day
    remaining = n
    while remaining:
        current += _DAY
        if current.weekday() < 5 and current not in closed:
            remaining -= 1
    return current
