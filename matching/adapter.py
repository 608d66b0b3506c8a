"""The one thin query adapter of ``matching``: loads :class:`matching.types.Candidate` objects from PostgreSQL.

Everything else in ``matching`` is pure. The candidate statement lives in :mod:`matching.repository` (its
conditions in :mod:`matching.conditions_repository`), calendar expansion (free time, lab capacity, utilisation) in
:mod:`listings.calendar` (listings owns availability); this module selects rows, asks for their calendars,
certificates and scorecards, and turns them into candidates. It never imports the app shell: it gets an
``AsyncSession``, plain parameters, a ``BlockedTime`` (where booked time comes from,
:class:`listings.ports.BlockedTime`) and a :class:`SupplierStats` provider (the bookings scorecard counts).

Trade-off (``cap``): a request may pass the static filter for thousands of listings, and computing free
time for each costs Python time. :func:`load_for_request` therefore loads at most ``cap`` candidates,
chosen by a cheap SQL score (the request's price, distance and start weights applied to min-max normalised
total price, distance and ``next_free_at``) — the same shape as the engine's ranking, but without quality
and idle, and with the next free slot as a stand-in for the slot start. The engine normalises over the
loaded set only. With ``cap=None`` (or when fewer rows pass the filter) results are identical to running
the engine over every published listing; the benchmark reports how often the capped top 20 agrees.

Speed: weekly plans are parsed and expanded once per distinct (plan, time zone, window) per call; exceptions
and bookings are fetched once for the whole window, and machine free time is computed over a short first
window, widened only for candidates without a slot there (:func:`load_for_request`; exact).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings import calendar
from listings.calendar import Calendars
from listings.calendar import Plans as _Plans
from listings.calendar_repository import uuid_array as _uuids
from listings.models import Asset, Certificate
from listings.ports import BlockedTime
from listings.read_model_repository import TEXT_ARRAY
from matching.conditions_repository import published, static_rejections
from matching.feasibility import check
from matching.prefilter import NEAREST, AssetRow, ServingCodes
from matching.repository import DEFAULT_CAP, asset_rows_of, row_select, select_rows
from matching.types import Candidate, CertificateInfo, FeasibleMatch, MatchRequest, Rejection

# Names other code (the requests room, tests, benchmarks) reads from here.
__all__ = [
    "CHUNK",
    "DEFAULT_CAP",
    "NEAREST",
    "Loaded",
    "NoStats",
    "SupplierStats",
    "build_candidates",
    "first_window_end",
    "load_assets",
    "load_certificates",
    "load_for_request",
    "select_rows",
    "static_rejections",
]

CHUNK = 5000
# Machine free time is first computed over [earliest_start, earliest_start + max(FIRST_WINDOW, FIRST_WINDOW_JOBS x
# the job's duration)) and widened to the whole request window only for candidates without a slot there.
FIRST_WINDOW = timedelta(days=3)
FIRST_WINDOW_JOBS = 6
_DAY = timedelta(days=1)


class SupplierStats(Protocol):
    """Scorecard counts per supplier organisation: completed, on_time, rating_count, rating_sum."""

    async def supplier_stats(
        self, session: AsyncSession, org_ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, Mapping[str, Any]]: ...


class NoStats:
    async def supplier_stats(
        self, session: AsyncSession, org_ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, Mapping[str, Any]]:
        return {}


@dataclass(frozen=True)
class Loaded:
    candidates: list[Candidate]
    prefiltered: int  # rows that passed the SQL prefilter
    capped: bool  # True when fewer than ``prefiltered`` were loaded
    # The engine's verdict (``matching.feasibility.check``) per candidate, aligned with ``candidates``.
    checks: list[FeasibleMatch | Rejection] = field(default_factory=list)
    nearest: int | None = None  # set when only the listings among this many nearest of a process were ranked


def first_window_end(request: MatchRequest) -> datetime:
    """End of the short first window over which machine free time is computed (see :func:`load_for_request`)."""
    need = timedelta(minutes=request.duration_minutes or 0)
    return min(request.deadline, request.earliest_start + max(FIRST_WINDOW, FIRST_WINDOW_JOBS * need))


async def load_for_request(
    session: AsyncSession,
    request: MatchRequest,
    serving_codes: ServingCodes,
    *,
    blocked: BlockedTime,
    stats: SupplierStats,
    now: datetime,
    cap: int | None = DEFAULT_CAP,
    nearest: int = NEAREST,
) -> Loaded:
    """Candidates for one request: the SQL prefilter (a located request reads only the ``nearest`` listings of
    each serving process, and ranks those of them that pass), best ``cap`` by the cheap score, then calendars.

    Machine free time is first computed over a short window from ``earliest_start``
    (:func:`first_window_end`); only candidates without a valid slot there (engine rejection
    ``availability`` or ``certificate``) get their calendar widened to the whole request window. This is
    exact: free time is only cut off at the end, so a slot found in the short window is the engine's
    earliest slot over the whole window too. ``Loaded.checks`` holds the engine's verdict per candidate."""
    # Booked hours for the utilisation component come with the rows (an index-only probe per selected asset).
    selected = await select_rows(session, request, serving_codes=serving_codes, cap=cap, now=now, nearest=nearest)
    rows, total = selected.rows, selected.total
    start, end = request.earliest_start, request.deadline
    cut = first_window_end(request)
    plans = _Plans()
    # Exceptions and bookings for the whole window at once: widening below then needs no second round trip.
    machines = [r for r in rows if r.kind == "machine"]
    calendars = await calendar.machine_calendars(session, machines, start=start, end=end, blocked=blocked)
    candidates = await build_candidates(
        session,
        rows,
        start=start,
        end=end,
        blocked=blocked,
        stats=stats,
        now=now,
        free_end=cut,
        plans=plans,
        certificates=selected.certificates,
        booked_hours=selected.booked_hours,
        calendars=calendars,
    )
    codes = frozenset(serving_codes)
    checks = [check(request, c, codes) for c in candidates]
    if cut < end:
        redo = [
            i
            for i, (c, result) in enumerate(zip(candidates, checks, strict=True))
            if c.kind == "machine" and result in (Rejection.AVAILABILITY, Rejection.CERTIFICATE)
        ]
        if redo:
            wide = await calendar.machine_free_time(
                session,
                [rows[i] for i in redo],
                start=start,
                end=end,
                blocked=blocked,
                plans=plans,
                calendars=calendars,
            )
            for i in redo:
                candidates[i] = replace(candidates[i], free=wide[rows[i].id])
                checks[i] = check(request, candidates[i], codes)
    return Loaded(
        candidates=candidates, prefiltered=total, capped=len(rows) < total, checks=checks, nearest=selected.nearest
    )


async def load_assets(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    blocked: BlockedTime,
    stats: SupplierStats,
    now: datetime,
    asset_ids: Sequence[uuid.UUID] | None = None,
    published_only: bool = True,
    kind: str | None = None,
    serving_codes: ServingCodes | None = None,
    currencies: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """Candidates for the given assets (or every published listing) with calendars over ``[start, end)``;
    no request-specific prefilter (the naive path, the supplier's view and the batch optimiser)."""
    stmt = row_select()
    if published_only:
        stmt = stmt.where(*published())
    if asset_ids is not None:
        stmt = stmt.where(col(Asset.id).in_(list(asset_ids)))
    if kind is not None:
        stmt = stmt.where(col(Asset.kind) == kind)
    if serving_codes is not None:
        stmt = stmt.where(col(Asset.process_codes).bool_op("&&")(sa.cast(sorted(serving_codes), TEXT_ARRAY)))
    if currencies is not None:
        stmt = stmt.where(col(Asset.currency).in_(list(currencies)))
    stmt = stmt.order_by(col(Asset.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = asset_rows_of((await session.execute(stmt)).all())
    plans = _Plans()
    out: list[Candidate] = []
    for i in range(0, len(rows), CHUNK):  # bounded IN lists (asyncpg takes at most 32767 parameters)
        out += await build_candidates(
            session, rows[i : i + CHUNK], start=start, end=end, blocked=blocked, stats=stats, now=now, plans=plans
        )
    return out


async def build_candidates(
    session: AsyncSession,
    rows: Sequence[AssetRow],
    *,
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
    stats: SupplierStats,
    now: datetime,
    free_end: datetime | None = None,
    plans: _Plans | None = None,
    certificates: Mapping[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]] | None = None,
    booked_hours: Mapping[uuid.UUID, float] | None = None,
    calendars: Calendars | None = None,
) -> list[Candidate]:
    """Candidates for ``rows`` with calendars over ``[start, end)`` (machine free time only up to ``free_end``
    when given, see :func:`load_for_request`)."""
    if not rows:
        return []
    plans = plans or _Plans()
    machines = [r for r in rows if r.kind == "machine"]
    labs = [r for r in rows if r.kind != "machine"]
    free = await calendar.machine_free_time(
        session, machines, start=start, end=min(end, free_end or end), blocked=blocked, plans=plans, calendars=calendars
    )
    lab_cal = await calendar.lab_calendars(session, labs, start=start, end=end, blocked=blocked, plans=plans)
    lo, hi = start.astimezone(UTC).date() - _DAY, end.astimezone(UTC).date() + _DAY
    certs = certificates if certificates is not None else await load_certificates(session, rows, lo=lo, hi=hi)
    scorecard = await stats.supplier_stats(session, sorted({a.org_id for a in rows}))
    used = await calendar.utilisation(session, rows, now, plans=plans, booked=booked_hours)
    out: list[Candidate] = []
    for a in rows:
        sc = scorecard.get(a.org_id, {})
        envelope = (
            (a.envelope_x_mm, a.envelope_y_mm, a.envelope_z_mm)
            if a.envelope_x_mm is not None and a.envelope_y_mm is not None and a.envelope_z_mm is not None
            else None
        )
        capacity, closed = lab_cal.get(a.id, ({}, frozenset()))
        out.append(
            Candidate(
                asset_id=str(a.id),
                org_id=str(a.org_id),
                site_id=str(a.site_id),
                kind="machine" if a.kind == "machine" else "lab_service",
                currency=a.currency,
                timezone=a.timezone,
                process_codes=frozenset(a.process_codes),
                materials=frozenset(a.materials),
                envelope_mm=envelope,
                tolerance_mm=a.tolerance_mm,
                hourly_rate=a.hourly_rate,
                setup_fee=a.setup_fee or 0,
                min_booking_minutes=a.min_booking_minutes or 0,
                slot_minutes=a.slot_minutes or 15,
                buffer_minutes=a.buffer_minutes or 0,
                setup_minutes=a.setup_minutes or 0,
                free=free.get(a.id, []),
                price_per_sample=a.price_per_sample,
                turnaround_days=a.turnaround_days,
                daily_sample_capacity=a.daily_sample_capacity,
                lab_capacity=capacity,
                closed_days=closed,
                lat=a.latitude,
                lon=a.longitude,
                region_code=a.region_code,
                certificates=certs.get((a.org_id, a.site_id), []),
                org_verified=a.verified,
                status=a.status,
                rating_sum=float(sc.get("rating_sum", 0) or 0),
                rating_count=int(sc.get("rating_count", 0) or 0),
                completed_count=int(sc.get("completed", 0) or 0),
                on_time_count=int(sc.get("on_time", 0) or 0),
                utilisation=used.get(a.id, 0.0),
            )
        )
    return out


async def load_certificates(
    session: AsyncSession, rows: Sequence[AssetRow], *, lo: date, hi: date
) -> dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]]:
    """Verified certificates valid at some point of ``[lo, hi]`` per (organisation, site) of ``rows``."""
    if not rows:
        return {}
    result = await session.execute(
        sa.select(
            col(Certificate.org_id),
            col(Certificate.site_id),
            col(Certificate.standard),
            col(Certificate.valid_from),
            col(Certificate.valid_until),
        ).where(
            col(Certificate.org_id) == sa.any_(_uuids({a.org_id for a in rows})),
            col(Certificate.status) == "verified",
            col(Certificate.valid_until) >= lo,
            col(Certificate.valid_from) <= hi,
        )
    )
    by_org: dict[uuid.UUID, list[tuple[uuid.UUID | None, CertificateInfo]]] = defaultdict(list)
    for org_id, site_id, standard, valid_from, valid_until in result.all():
        by_org[org_id].append((site_id, CertificateInfo(standard, valid_from, valid_until)))
    return {
        (a.org_id, a.site_id): [c for s, c in by_org.get(a.org_id, []) if s is None or s == a.site_id] for a in rows
    }
