"""Pure tests of the availability calendar maths (no database, synchronous)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listings.availability import (
    ExceptionRange,
    Interval,
    WeeklyWindow,
    earliest_slot,
    expand_weekly,
    find_slots,
    free_intervals,
    local_to_utc,
    merge,
    parse_hhmm,
    subtract,
    working_days_after,
)

BERLIN = "Europe/Berlin"
SHANGHAI = "Asia/Shanghai"
H = timedelta(hours=1)
MON, FRI, SAT, SUN = 0, 4, 5, 6


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def local(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz))


def win(weekday: int, start: str, end: str) -> WeeklyWindow:
    return WeeklyWindow(weekday, parse_hhmm(start), parse_hhmm(end))


def total(intervals: Sequence[Interval]) -> timedelta:
    return sum((e - s for s, e in intervals), timedelta(0))


# --- DST -------------------------------------------------------------------------------------------


def test_berlin_spring_forward_night_shift_is_five_hours() -> None:
    # 2027-03-28 is a Sunday; clocks jump 02:00 CET -> 03:00 CEST (01:00 UTC).
    assert date(2027, 3, 28).weekday() == SUN
    out = expand_weekly([win(SUN, "00:00", "06:00")], BERLIN, start=utc(2027, 3, 27), end=utc(2027, 3, 29))
    assert out == [(utc(2027, 3, 27, 23), utc(2027, 3, 28, 4))]
    assert total(out) == 5 * H


def test_berlin_fall_back_night_shift_is_seven_hours() -> None:
    # 2027-10-31 is a Sunday; clocks fall 03:00 CEST -> 02:00 CET (01:00 UTC).
    assert date(2027, 10, 31).weekday() == SUN
    out = expand_weekly([win(SUN, "00:00", "06:00")], BERLIN, start=utc(2027, 10, 30), end=utc(2027, 11, 1))
    assert out == [(utc(2027, 10, 30, 22), utc(2027, 10, 31, 5))]
    assert total(out) == 7 * H


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 3, 21), (utc(2027, 3, 21, 7), utc(2027, 3, 21, 17))),  # CET, UTC+1
        (date(2027, 3, 28), (utc(2027, 3, 28, 6), utc(2027, 3, 28, 16))),  # CEST, UTC+2
        (date(2027, 10, 31), (utc(2027, 10, 31, 7), utc(2027, 10, 31, 17))),  # CET again
    ],
)
def test_berlin_day_shift_is_ten_real_hours(day: date, expected: Interval) -> None:
    start = datetime.combine(day, time(0), tzinfo=UTC) - 12 * H
    out = expand_weekly([win(SUN, "08:00", "18:00")], BERLIN, start=start, end=start + 2 * 24 * H)
    assert out == [expected]
    assert total(out) == 10 * H


def test_nonexistent_time_snaps_to_end_of_gap() -> None:
    zone = ZoneInfo(BERLIN)
    # 02:30 does not exist on 2027-03-28: it becomes 03:00 CEST.
    assert local_to_utc(date(2027, 3, 28), time(2, 30), zone) == utc(2027, 3, 28, 1)
    assert local_to_utc(date(2027, 3, 28), time(2, 0), zone) == utc(2027, 3, 28, 1)
    assert local_to_utc(date(2027, 3, 28), time(3, 0), zone) == utc(2027, 3, 28, 1)
    # A window entirely inside the gap is empty.
    out = expand_weekly([win(SUN, "02:10", "02:50")], BERLIN, start=utc(2027, 3, 27), end=utc(2027, 3, 29))
    assert out == []
    # A window starting in the gap starts when the clock reads 03:00.
    out = expand_weekly([win(SUN, "02:30", "04:00")], BERLIN, start=utc(2027, 3, 27), end=utc(2027, 3, 29))
    assert out == [(utc(2027, 3, 28, 1), utc(2027, 3, 28, 2))]


def test_ambiguous_time_uses_first_occurrence() -> None:
    zone = ZoneInfo(BERLIN)
    # 02:30 happens twice on 2027-10-31: 00:30 UTC (CEST) and 01:30 UTC (CET).
    assert local_to_utc(date(2027, 10, 31), time(2, 30), zone) == utc(2027, 10, 31, 0, 30)


def test_24h_window_on_dst_days() -> None:
    # start == end means a full local day: 23 real hours in spring, 25 in autumn.
    spring = expand_weekly([win(SUN, "00:00", "00:00")], BERLIN, start=utc(2027, 3, 27), end=utc(2027, 3, 30))
    assert spring == [(utc(2027, 3, 27, 23), utc(2027, 3, 28, 22))]
    assert total(spring) == 23 * H
    autumn = expand_weekly([win(SUN, "00:00", "24:00")], BERLIN, start=utc(2027, 10, 30), end=utc(2027, 11, 2))
    assert total(autumn) == 25 * H


def test_shanghai_has_fixed_offset() -> None:
    weekly = [win(d, "08:30", "17:30") for d in range(5)]
    start = local(SHANGHAI, 2027, 3, 22)  # Monday
    out = expand_weekly(weekly, SHANGHAI, start=start, end=start + timedelta(days=7))
    assert len(out) == 5
    assert out[0] == (utc(2027, 3, 22, 0, 30), utc(2027, 3, 22, 9, 30))
    assert all(e - s == 9 * H for s, e in out)
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in out)


# --- cross-midnight & clipping -----------------------------------------------------------------------


def test_friday_night_shift_appears_in_saturday_window() -> None:
    # 22:00-06:00 Friday night; the query window starts Saturday 00:00 Shanghai time.
    assert date(2027, 4, 2).weekday() == FRI
    weekly = [win(FRI, "22:00", "06:00")]
    sat = local(SHANGHAI, 2027, 4, 3)
    out = expand_weekly(weekly, SHANGHAI, start=sat, end=sat + timedelta(days=1))
    assert out == [(utc(2027, 4, 2, 16), utc(2027, 4, 2, 22))]  # Sat 00:00-06:00 local
    assert total(out) == 6 * H


def test_end_midnight_means_until_midnight() -> None:
    out = expand_weekly([win(MON, "18:00", "24:00")], SHANGHAI, start=utc(2027, 3, 21), end=utc(2027, 3, 24))
    assert out == [(utc(2027, 3, 22, 10), utc(2027, 3, 22, 16))]


def test_clip_and_merge_adjacent_windows() -> None:
    weekly = [win(MON, "08:00", "12:00"), win(MON, "12:00", "18:00"), win(MON, "10:00", "11:00")]
    start = utc(2027, 3, 22, 2)  # Monday 10:00 Shanghai
    out = expand_weekly(weekly, SHANGHAI, start=start, end=utc(2027, 3, 22, 8))
    assert out == [(start, utc(2027, 3, 22, 8))]


def test_expand_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        expand_weekly([win(MON, "08:00", "18:00")], BERLIN, start=datetime(2027, 1, 1), end=utc(2027, 1, 2))
    with pytest.raises(ValueError, match="time zone"):
        expand_weekly([win(MON, "08:00", "18:00")], "Mars/Olympus", start=utc(2027, 1, 1), end=utc(2027, 1, 8))
    assert expand_weekly([win(MON, "08:00", "18:00")], BERLIN, start=utc(2027, 1, 8), end=utc(2027, 1, 1)) == []
    with pytest.raises(ValueError, match="weekday"):
        WeeklyWindow(7, time(8), time(9))
    with pytest.raises(ValueError, match="start < end"):
        ExceptionRange(utc(2027, 1, 2), utc(2027, 1, 1), available=False)


def test_non_utc_inputs_give_utc_outputs() -> None:
    plus8 = timezone(timedelta(hours=8))
    out = merge([(datetime(2027, 1, 1, 8, tzinfo=plus8), datetime(2027, 1, 1, 9, tzinfo=plus8))])
    assert out == [(utc(2027, 1, 1), utc(2027, 1, 1, 1))]
    assert out[0][0].tzinfo is UTC


# --- exceptions & blocked --------------------------------------------------------------------------


WEEKDAYS_8_18 = [win(d, "08:00", "18:00") for d in range(5)]


def test_closed_exception_removes_a_week() -> None:
    start = local(SHANGHAI, 2027, 3, 22)  # Monday
    end = start + timedelta(days=14)
    closed = ExceptionRange(start, start + timedelta(days=7), available=False)
    out = free_intervals(WEEKDAYS_8_18, SHANGHAI, exceptions=[closed], blocked=[], start=start, end=end)
    assert len(out) == 5
    assert out[0][0] == utc(2027, 3, 29, 0)  # next Monday 08:00 local
    assert total(out) == 50 * H


def test_open_exception_adds_sunday_hours() -> None:
    start = local(SHANGHAI, 2027, 3, 22)
    end = start + timedelta(days=7)
    sunday = local(SHANGHAI, 2027, 3, 28, 9)
    extra = ExceptionRange(sunday, sunday + 4 * H, available=True)
    out = free_intervals(WEEKDAYS_8_18, SHANGHAI, exceptions=[extra], blocked=[], start=start, end=end)
    assert out[-1] == (utc(2027, 3, 28, 1), utc(2027, 3, 28, 5))
    assert total(out) == 54 * H


def test_closed_beats_open_exception() -> None:
    start = local(SHANGHAI, 2027, 3, 22)
    sunday = local(SHANGHAI, 2027, 3, 28, 9)
    exc = [
        ExceptionRange(sunday, sunday + 4 * H, available=True),
        ExceptionRange(sunday + H, sunday + 2 * H, available=False),
    ]
    out = free_intervals([], SHANGHAI, exceptions=exc, blocked=[], start=start, end=start + timedelta(days=7))
    assert out == [(utc(2027, 3, 28, 1), utc(2027, 3, 28, 2)), (utc(2027, 3, 28, 3), utc(2027, 3, 28, 5))]


def test_blocked_intervals_are_subtracted() -> None:
    start = local(SHANGHAI, 2027, 3, 22)  # Monday 08:00-18:00 local = 00:00-10:00 UTC
    blocked = [(utc(2027, 3, 22, 2), utc(2027, 3, 22, 4)), (utc(2027, 3, 22, 9), utc(2027, 3, 22, 12))]
    out = free_intervals(
        WEEKDAYS_8_18, SHANGHAI, exceptions=[], blocked=blocked, start=start, end=start + timedelta(days=1)
    )
    assert out == [(utc(2027, 3, 22, 0), utc(2027, 3, 22, 2)), (utc(2027, 3, 22, 4), utc(2027, 3, 22, 9))]


def test_free_intervals_clipped_to_window() -> None:
    start = utc(2027, 3, 22, 3)
    extra = ExceptionRange(utc(2027, 3, 20), utc(2027, 3, 30), available=True)
    out = free_intervals([], SHANGHAI, exceptions=[extra], blocked=[], start=start, end=utc(2027, 3, 22, 5))
    assert out == [(start, utc(2027, 3, 22, 5))]


# --- merge / subtract examples -----------------------------------------------------------------------


def test_merge_examples() -> None:
    a, b, c, d = utc(2027, 1, 1, 1), utc(2027, 1, 1, 2), utc(2027, 1, 1, 3), utc(2027, 1, 1, 4)
    assert merge([(c, d), (a, b), (b, c)]) == [(a, d)]  # adjacent coalesce
    assert merge([(a, d), (b, c)]) == [(a, d)]  # contained
    assert merge([(a, a), (c, b)]) == []  # empty / inverted dropped
    assert merge([]) == []


def test_subtract_examples() -> None:
    t = [utc(2027, 1, 1, h) for h in range(12)]
    base = [(t[0], t[4]), (t[6], t[10])]
    # One removal spanning the gap between two base intervals.
    assert subtract(base, [(t[3], t[7])]) == [(t[0], t[3]), (t[7], t[10])]
    assert subtract(base, [(t[1], t[2]), (t[8], t[9])]) == [
        (t[0], t[1]),
        (t[2], t[4]),
        (t[6], t[8]),
        (t[9], t[10]),
    ]
    assert subtract(base, [(t[0], t[11])]) == []
    assert subtract(base, []) == base
    assert subtract([], [(t[0], t[1])]) == []


# --- slots -----------------------------------------------------------------------------------------


def test_find_slots_alignment_and_bounds() -> None:
    free = [
        (utc(2027, 3, 22, 0, 7), utc(2027, 3, 22, 3)),
        (utc(2027, 3, 22, 5, 50), utc(2027, 3, 22, 7, 10)),
        (utc(2027, 3, 22, 9), utc(2027, 3, 22, 9, 20)),  # too short
    ]
    d = timedelta(minutes=60)
    slots = find_slots(free, d, granularity_minutes=30, earliest=utc(2027, 3, 22), latest_end=utc(2027, 3, 23))
    assert slots == [
        (utc(2027, 3, 22, 0, 30), utc(2027, 3, 22, 1, 30)),
        (utc(2027, 3, 22, 6), utc(2027, 3, 22, 7)),
    ]
    # `earliest` pushes the first start; latest_end is an inclusive bound on the slot end.
    slots = find_slots(
        free, d, granularity_minutes=30, earliest=utc(2027, 3, 22, 1, 1), latest_end=utc(2027, 3, 22, 2, 30)
    )
    assert slots == [(utc(2027, 3, 22, 1, 30), utc(2027, 3, 22, 2, 30))]
    all_slots = find_slots(
        free, d, granularity_minutes=30, earliest=utc(2027, 3, 22), latest_end=utc(2027, 3, 23), step="all"
    )
    assert [s for s, _ in all_slots] == [
        utc(2027, 3, 22, 0, 30),
        utc(2027, 3, 22, 1),
        utc(2027, 3, 22, 1, 30),
        utc(2027, 3, 22, 2),
        utc(2027, 3, 22, 6),
    ]
    limited = find_slots(
        free, d, granularity_minutes=30, earliest=utc(2027, 3, 22), latest_end=utc(2027, 3, 23), limit=1
    )
    assert limited == [(utc(2027, 3, 22, 0, 30), utc(2027, 3, 22, 1, 30))]


def test_find_slots_grid_is_utc_epoch_minutes() -> None:
    # India is UTC+5:30: an hourly grid is on whole UTC hours, i.e. :30 local.
    kolkata = timezone(timedelta(hours=5, minutes=30))
    free = [(datetime(2027, 1, 4, 9, tzinfo=kolkata), datetime(2027, 1, 4, 17, tzinfo=kolkata))]
    slot = earliest_slot(free, H, granularity_minutes=60, earliest=utc(2027, 1, 1), latest_end=utc(2027, 2, 1))
    assert slot == (utc(2027, 1, 4, 4), utc(2027, 1, 4, 5))  # 09:30 local


def test_adjacent_free_intervals_allow_spanning_slot() -> None:
    free = [(utc(2027, 1, 1, 8), utc(2027, 1, 1, 9)), (utc(2027, 1, 1, 9), utc(2027, 1, 1, 10))]
    slot = earliest_slot(free, 2 * H, granularity_minutes=15, earliest=utc(2027, 1, 1), latest_end=utc(2027, 1, 2))
    assert slot == (utc(2027, 1, 1, 8), utc(2027, 1, 1, 10))


def test_earliest_slot_none_and_errors() -> None:
    free = [(utc(2027, 1, 1, 8), utc(2027, 1, 1, 9))]
    lo, hi = utc(2027, 1, 1), utc(2027, 1, 2)
    assert earliest_slot(free, 2 * H, granularity_minutes=15, earliest=lo, latest_end=hi) is None
    with pytest.raises(ValueError, match="duration"):
        find_slots(free, timedelta(0), granularity_minutes=15, earliest=lo, latest_end=hi)
    with pytest.raises(ValueError, match="granularity"):
        find_slots(free, H, granularity_minutes=0, earliest=lo, latest_end=hi)
    with pytest.raises(ValueError, match="step"):
        find_slots(free, H, granularity_minutes=15, earliest=lo, latest_end=hi, step="every")
    with pytest.raises(ValueError, match="limit"):
        find_slots(free, H, granularity_minutes=15, earliest=lo, latest_end=hi, limit=-1)
    assert find_slots(free, H, granularity_minutes=15, earliest=lo, latest_end=hi, limit=0) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        find_slots(free, H, granularity_minutes=15, earliest=datetime(2027, 1, 1), latest_end=hi)


# --- parsing & working days ------------------------------------------------------------------------


def test_parse_hhmm_valid() -> None:
    assert parse_hhmm("00:00") == time(0, 0)
    assert parse_hhmm("08:30") == time(8, 30)
    assert parse_hhmm("23:59") == time(23, 59)
    assert parse_hhmm("24:00") == time(0, 0)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "8:30",
        "08:3",
        "0830",
        "08-30",
        "24:01",
        "25:00",
        "12:60",
        " 08:30",
        "08:30\n",
        "08:30:00",
        "٠٨:٣٠",
    ],
)
def test_parse_hhmm_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_hhmm(value)


def test_parse_hhmm_24_only_as_end() -> None:
    with pytest.raises(ValueError, match="only allowed as an end"):
        parse_hhmm("24:00", allow_end_of_day=False)


def test_working_days_after() -> None:
    fri = date(2027, 4, 2)
    assert fri.weekday() == FRI
    assert working_days_after(fri, 0, set()) == fri
    assert working_days_after(fri, 1, set()) == date(2027, 4, 5)  # Monday
    assert working_days_after(fri, 3, set()) == date(2027, 4, 7)
    assert working_days_after(date(2027, 4, 3), 1, set()) == date(2027, 4, 5)  # Saturday drop-off
    # Qingming holiday on Monday 2027-04-05 pushes everything by one day.
    assert working_days_after(fri, 1, {date(2027, 4, 5)}) == date(2027, 4, 6)
    with pytest.raises(ValueError):
        working_days_after(fri, -1, set())


# --- properties ------------------------------------------------------------------------------------

T0 = utc(2027, 1, 1)


def _interval(a: int, length: int) -> Interval:
    return (T0 + timedelta(minutes=a), T0 + timedelta(minutes=a + length))


intervals_st = st.lists(
    st.builds(_interval, st.integers(0, 5000), st.integers(0, 600)),
    max_size=25,
)


def _disjoint_sorted(xs: Sequence[Interval]) -> bool:
    return all(s < e for s, e in xs) and all(xs[i][1] < xs[i + 1][0] for i in range(len(xs) - 1))


def _covered(point: datetime, xs: Sequence[Interval]) -> bool:
    return any(s <= point < e for s, e in xs)


@settings(max_examples=300, deadline=None)
@given(intervals_st)
def test_merge_idempotent_and_normalised(xs: list[Interval]) -> None:
    m = merge(xs)
    assert merge(m) == m
    assert _disjoint_sorted(m)  # adjacent intervals are coalesced, hence strict <
    assert total(m) <= total([(s, e) for s, e in xs if s < e])
    for s, e in xs:
        if s < e:
            assert any(ms <= s and e <= me for ms, me in m)


@settings(max_examples=300, deadline=None)
@given(intervals_st, intervals_st)
def test_subtract_properties(base_raw: list[Interval], remove_raw: list[Interval]) -> None:
    base, remove = merge(base_raw), merge(remove_raw)
    out = subtract(base, remove)
    # Sorted, non-empty, non-overlapping (pieces of merged base are never adjacent).
    assert _disjoint_sorted(out)
    for s, e in out:
        assert any(bs <= s and e <= be for bs, be in base)  # contained in base
        assert all(e <= rs or re_ <= s for rs, re_ in remove)  # disjoint from remove
    # Nothing lost: every minute start in base is either removed or kept.
    for s, e in base:
        point = s
        while point < e:
            assert _covered(point, out) != _covered(point, remove)
            point += timedelta(minutes=7)


@settings(max_examples=300, deadline=None)
@given(
    intervals_st,
    st.integers(1, 300),
    st.sampled_from([1, 5, 15, 30, 60]),
    st.integers(0, 3000),
    st.integers(0, 6000),
    st.sampled_from(["first", "all"]),
)
def test_find_slots_properties(
    free_raw: list[Interval], minutes: int, gran: int, lo: int, span: int, step: str
) -> None:
    free = merge(free_raw)
    duration = timedelta(minutes=minutes)
    earliest = T0 + timedelta(minutes=lo)
    latest_end = earliest + timedelta(minutes=span)
    slots = find_slots(free, duration, granularity_minutes=gran, earliest=earliest, latest_end=latest_end, step=step)
    for s, e in slots:
        assert e - s == duration
        assert earliest <= s and e <= latest_end
        assert any(fs <= s and e <= fe for fs, fe in free)
        assert int(s.timestamp()) % (gran * 60) == 0
    starts = [s for s, _ in slots]
    assert starts == sorted(set(starts))
    if step == "first":
        # At most one slot per free interval, and it is that interval's earliest.
        owners = [next(i for i, (fs, fe) in enumerate(free) if fs <= s < fe) for s in starts]
        assert len(owners) == len(set(owners))
        every = find_slots(
            free, duration, granularity_minutes=gran, earliest=earliest, latest_end=latest_end, step="all"
        )
        firsts: dict[int, datetime] = {}
        for s, _ in every:
            owner = next(i for i, (fs, fe) in enumerate(free) if fs <= s < fe)
            firsts.setdefault(owner, s)
        assert starts == list(firsts.values())
    first = earliest_slot(free, duration, granularity_minutes=gran, earliest=earliest, latest_end=latest_end)
    assert first == (slots[0] if slots else None)


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Shanghai", "Asia/Kolkata"]
hhmm_st = st.builds(time, st.integers(0, 23), st.sampled_from([0, 10, 15, 30, 45, 59]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.builds(WeeklyWindow, st.integers(0, 6), hhmm_st, hhmm_st), min_size=1, max_size=6),
    st.sampled_from(ZONES),
    st.integers(0, 365 * 24),
    st.integers(1, 21 * 24),
)
def test_expand_weekly_properties(weekly: list[WeeklyWindow], tz: str, offset_h: int, span_h: int) -> None:
    start = utc(2027, 1, 1) + offset_h * H
    end = start + span_h * H
    out = expand_weekly(weekly, tz, start=start, end=end)
    assert _disjoint_sorted(out)
    assert all(start <= s and e <= end and s.tzinfo is UTC for s, e in out)
    # Expanding a wider range and clipping gives the same answer (no edge effects).
    wide = expand_weekly(weekly, tz, start=start - 48 * H, end=end + 48 * H)
    assert out == merge((max(s, start), min(e, end)) for s, e in wide)
