"""Hard constraints: is a candidate able to serve a request, and at which earliest slot.

:func:`check` returns a :class:`FeasibleMatch` or the first failing :class:`Rejection`
(in enum order). The time-dependent checks run last because they need a slot: first
"is there any free slot at all" (``availability``), then "is there a free slot during
which every required certificate is valid" (otherwise ``certificate``). So a certificate
that expires mid-window still lets an earlier slot through, and one that starts
mid-window lets a later slot through.

Certificate validity is judged on site-local dates; several certificates of the same
standard are combined (a renewal that starts the day after the old one ends covers a
slot spanning both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from listings.availability import Interval, earliest_slot, find_slots, local_to_utc, merge, working_days_after
from matching.types import Candidate, CertificateInfo, FeasibleMatch, MatchRequest, PriceBreakdown, Rejection

_T = TypeVar("_T", datetime, int)  # interval ends: aware datetimes or integer microseconds

EARTH_RADIUS_KM = 6371.0088
_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)


@lru_cache(maxsize=512)
def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def haversine_km(*, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up, in exact integer arithmetic (both >= 0)."""
    return (2 * numerator + denominator) // (2 * denominator)


def slot_minutes_for(request: MatchRequest, candidate: Candidate) -> int:
    """A machine booking lasts the job's duration, but never less than the asset's minimum booking."""
    return max(request.minutes, candidate.min_booking_minutes)


def price_for(request: MatchRequest, candidate: Candidate) -> PriceBreakdown | None:
    """Price in the candidate's currency, or ``None`` if the candidate has no rate for this kind."""
    if request.kind == "machine":
        if candidate.hourly_rate is None or request.duration_minutes is None:
            return None
        work = half_up_div(candidate.hourly_rate * request.duration_minutes, 60)
        return PriceBreakdown(
            currency=candidate.currency,
            work=work,
            setup_fee=candidate.setup_fee,
            total=work + candidate.setup_fee,
            billed_minutes=request.duration_minutes,
        )
    if candidate.price_per_sample is None or request.samples is None:
        return None
    work = candidate.price_per_sample * request.samples
    return PriceBreakdown(currency=candidate.currency, work=work, setup_fee=0, total=work, samples=request.samples)


def distance_km(request: MatchRequest, candidate: Candidate) -> float | None:
    if request.lat is None or request.lon is None or candidate.lat is None or candidate.lon is None:
        return None
    return haversine_km(lat1=request.lat, lon1=request.lon, lat2=candidate.lat, lon2=candidate.lon)


def fits_envelope(part: tuple[float, float, float], envelope: tuple[float, float, float]) -> bool:
    """Sorted comparison: a part fits if some axis-aligned rotation fits."""
    return all(p <= e for p, e in zip(sorted(part), sorted(envelope), strict=True))


def _norm_standard(name: str) -> str:
    return " ".join(name.split()).casefold()


def has_certificates(required: Sequence[str], certificates: Sequence[CertificateInfo]) -> bool:
    held = {_norm_standard(c.standard) for c in certificates if c.valid_from <= c.valid_until}
    return all(_norm_standard(r) in held for r in required)


def intersect(a: Sequence[tuple[_T, _T]], b: Sequence[tuple[_T, _T]]) -> list[tuple[_T, _T]]:
    """Intersection of two sorted, merged interval lists (linear sweep); datetimes or integer microseconds."""
    out: list[tuple[_T, _T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


def certificate_windows(
    required: Sequence[str], certificates: Sequence[CertificateInfo], tz: str
) -> list[Interval] | None:
    """UTC time during which every required standard is valid; ``None`` when nothing is required.

    A certificate valid ``from..until`` (inclusive dates) covers
    ``[from 00:00, until+1 00:00)`` site-local.
    """
    if not required:
        return None
    z = zone(tz)
    result: list[Interval] | None = None
    for std in {_norm_standard(r) for r in required}:
        windows = merge(
            (local_to_utc(c.valid_from, _MIDNIGHT, z), local_to_utc(c.valid_until + _DAY, _MIDNIGHT, z))
            for c in certificates
            if _norm_standard(c.standard) == std and c.valid_from <= c.valid_until
        )
        result = windows if result is None else intersect(result, windows)
    return result or []


def within(slot: Interval, windows: Sequence[Interval]) -> bool:
    return any(s <= slot[0] and slot[1] <= e for s, e in windows)


def fit_windows(free: Sequence[Interval], setup_minutes: int, buffer_minutes: int) -> list[Interval]:
    """Where a slot may lie so that its setup before and buffer after are free too.

    ``[s - setup, e + buffer)`` inside a free interval ``[fs, fe)`` <=> ``[s, e)`` inside
    ``[fs + setup, fe - buffer)``; after :func:`merge` the free intervals are disjoint and
    non-adjacent, so shrinking them cannot glue two together.
    """
    setup, buffer = timedelta(minutes=setup_minutes), timedelta(minutes=buffer_minutes)
    out: list[Interval] = []
    for fs, fe in merge(free):
        s, e = fs + setup, fe - buffer
        if s < e:
            out.append((s, e))
    return out


def static_rejection(request: MatchRequest, candidate: Candidate, serving_codes: Set[str]) -> Rejection | None:
    """The first failing constraint that does not depend on time, or ``None``."""
    if candidate.status != "published" or not candidate.org_verified:
        return Rejection.STATUS
    if candidate.kind != request.kind or candidate.process_codes.isdisjoint(serving_codes):
        return Rejection.PROCESS
    if request.material is not None and request.material not in candidate.materials:
        return Rejection.MATERIAL
    if request.part_size_mm is not None:
        # Lab services have no work envelope; an unknown machine envelope cannot be shown to fit.
        if candidate.envelope_mm is not None:
            if not fits_envelope(request.part_size_mm, candidate.envelope_mm):
                return Rejection.ENVELOPE
        elif candidate.kind == "machine":
            return Rejection.ENVELOPE
    if request.tolerance_mm is not None and (
        candidate.tolerance_mm is None or candidate.tolerance_mm > request.tolerance_mm
    ):
        return Rejection.TOLERANCE
    if not has_certificates(request.required_certificates, candidate.certificates):
        return Rejection.CERTIFICATE
    if not _location_ok(request, candidate):
        return Rejection.LOCATION
    if candidate.currency != request.currency:
        return Rejection.CURRENCY
    price = price_for(request, candidate)
    if price is None or (request.budget_max is not None and price.total > request.budget_max):
        return Rejection.BUDGET
    return None


def _location_ok(request: MatchRequest, candidate: Candidate) -> bool:
    if request.max_distance_km is not None:
        d = distance_km(request, candidate)
        if d is None or d > request.max_distance_km:
            return False
    if request.region_prefixes:
        code = candidate.region_code
        if code is None or not code.startswith(tuple(request.region_prefixes)):
            return False
    return True


def _machine_slot(request: MatchRequest, candidate: Candidate) -> Interval | Rejection:
    length = timedelta(minutes=slot_minutes_for(request, candidate))
    fits = fit_windows(candidate.free, candidate.setup_minutes, candidate.buffer_minutes)
    grid, lo, hi = candidate.slot_minutes, request.earliest_start, request.deadline
    slot = earliest_slot(fits, length, granularity_minutes=grid, earliest=lo, latest_end=hi)
    if slot is None:
        return Rejection.AVAILABILITY
    certs = certificate_windows(request.required_certificates, candidate.certificates, candidate.timezone)
    if certs is not None:
        slot = earliest_slot(intersect(fits, certs), length, granularity_minutes=grid, earliest=lo, latest_end=hi)
        if slot is None:
            return Rejection.CERTIFICATE
    return slot


def machine_slots(request: MatchRequest, candidate: Candidate, *, limit: int | None = None) -> list[Interval]:
    """Every valid machine slot start (free incl. setup/buffer, in window, certificates valid), in time order."""
    length = timedelta(minutes=slot_minutes_for(request, candidate))
    fits = fit_windows(candidate.free, candidate.setup_minutes, candidate.buffer_minutes)
    certs = certificate_windows(request.required_certificates, candidate.certificates, candidate.timezone)
    if certs is not None:
        fits = intersect(fits, certs)
    return find_slots(
        fits,
        length,
        granularity_minutes=candidate.slot_minutes,
        earliest=request.earliest_start,
        latest_end=request.deadline,
        limit=limit,
        step="all",
    )


def lab_days(request: MatchRequest, candidate: Candidate) -> tuple[date, date]:
    """First and last possible site-local drop-off/completion dates of the request window."""
    z = zone(candidate.timezone)
    return request.earliest_start.astimezone(z).date(), request.deadline.astimezone(z).date()


def lab_slot(candidate: Candidate, drop_off: date, completion: date) -> Interval:
    z = zone(candidate.timezone)
    return local_to_utc(drop_off, _MIDNIGHT, z), local_to_utc(completion + _DAY, _MIDNIGHT, z)


def _lab_slot(request: MatchRequest, candidate: Candidate) -> tuple[date, date] | Rejection:
    """Earliest drop-off day (a working day with capacity whose turnaround ends by the deadline date)."""
    if candidate.turnaround_days is None or candidate.turnaround_days < 0:
        return Rejection.AVAILABILITY
    first, last = lab_days(request, candidate)
    closed = set(candidate.closed_days)
    certs = certificate_windows(request.required_certificates, candidate.certificates, candidate.timezone)
    had_free_day = False
    day = first
    while day <= last:
        if day.weekday() < 5 and day not in closed:
            completion = working_days_after(day, candidate.turnaround_days, closed)
            if completion > last:
                break  # completion only moves later with later drop-off days
            remaining = candidate.lab_capacity.get(day, candidate.daily_sample_capacity or 0)
            if remaining >= request.sample_count:
                had_free_day = True
                if certs is None or within(lab_slot(candidate, day, completion), certs):
                    return day, completion
        day += _DAY
    return Rejection.CERTIFICATE if had_free_day else Rejection.AVAILABILITY


def check(request: MatchRequest, candidate: Candidate, serving_codes: Set[str]) -> FeasibleMatch | Rejection:
    """Feasible match at the earliest valid slot, or the first failing constraint."""
    rejection = static_rejection(request, candidate, serving_codes)
    if rejection is not None:
        return rejection
    price = price_for(request, candidate)
    if price is None:  # static_rejection returned BUDGET for a missing rate already
        return Rejection.BUDGET
    dist = distance_km(request, candidate)
    if request.kind == "machine":
        slot = _machine_slot(request, candidate)
        if isinstance(slot, Rejection):
            return slot
        start, end = slot
        return FeasibleMatch(
            candidate=candidate,
            slot_start=start,
            slot_end=end,
            block_start=start - timedelta(minutes=candidate.setup_minutes),
            block_end=end + timedelta(minutes=candidate.buffer_minutes),
            price=price,
            distance_km=dist,
        )
    days = _lab_slot(request, candidate)
    if isinstance(days, Rejection):
        return days
    start, end = lab_slot(candidate, *days)
    return FeasibleMatch(
        candidate=candidate,
        slot_start=start,
        slot_end=end,
        block_start=start,
        block_end=end,
        price=price,
        distance_km=dist,
        drop_off_day=days[0],
        completion_day=days[1],
    )
