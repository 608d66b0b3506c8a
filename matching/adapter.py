"""The one thin query adapter of ``matching``: loads :class:`matching.types.Candidate` objects from PostgreSQL.

Everything else in ``matching`` is pure; this module only turns rows into candidates. It never imports the
app shell: it gets an ``AsyncSession``, plain parameters, a ``BlockedTime`` (where booked time comes from,
as in :mod:`listings.service`) and a :class:`SupplierStats` provider (the bookings scorecard counts). The
shell's ``organisations`` and ``bookings`` tables are referenced read-only through lightweight
``sa.table`` clauses (the documented contract, see docs/architecture.md).

SQL prefilter (:func:`static_conditions`) = every hard constraint that does not depend on time: published
listing of a verified organisation, kind, ``process_codes && serving codes``, material, sorted envelope,
tolerance, certificates held (verified, valid at some point of the request window), distance (``earth_box``
for the index, then the engine's own haversine formula so the boundary agrees), region prefixes, currency
and budget (the engine's exact integer price). It is exact, so it never drops a candidate the engine would
accept; the engine then checks the time-dependent constraints and ranks.

Trade-off (``cap``): a request may pass the static filter for thousands of listings, and computing free
time for each costs Python time. :func:`load_for_request` therefore loads at most ``cap`` candidates,
chosen by a cheap SQL score (the request's price, distance and start weights applied to min-max normalised
total price, distance and ``next_free_at``) — the same shape as the engine's ranking, but without quality
and idle, and with the next free slot as a stand-in for the slot start. The engine normalises over the
loaded set only. With ``cap=None`` (or when fewer rows pass the filter) results are identical to running
the engine over every published listing; the benchmark reports how often the capped top 20 agrees.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings import availability as av
from listings.models import Asset, Certificate, Site
from listings.models import AvailabilityException as Exc
from listings.service import BlockedTime, machine_free
from matching.feasibility import EARTH_RADIUS_KM
from matching.types import Candidate, CertificateInfo, MatchRequest

DEFAULT_CAP = 200
CHUNK = 5000
UTILISATION_DAYS = 28
# Statuses whose booked time counts as used capacity for the utilisation (idle) component.
_NOT_USED = ("cancelled", "declined", "expired")
_TEXT_ARRAY = pg.ARRAY(sa.Text)
_DAY = timedelta(days=1)

# The shell's tables, referenced read-only (matching never imports the shell).
organisations = sa.table("organisations", sa.column("id"), sa.column("verification_status"))
bookings = sa.table(
    "bookings", sa.column("asset_id", sa.Uuid), sa.column("period", pg.TSTZRANGE), sa.column("status", sa.Text)
)


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


def norm_standard(name: str) -> str:
    return " ".join(name.split()).casefold()


def _norm_sql(expr: Any) -> Any:
    return sa.func.lower(sa.func.regexp_replace(sa.func.btrim(expr), r"\s+", " ", "g"))


def _haversine_sql(lat: float, lon: float) -> Any:
    """The engine's haversine (same radius) in SQL, in km."""
    p1, l1 = math.radians(lat), math.radians(lon)
    p2, l2 = sa.func.radians(col(Site.latitude)), sa.func.radians(col(Site.longitude))
    a = sa.func.power(sa.func.sin((p2 - p1) / 2), 2) + math.cos(p1) * sa.func.cos(p2) * sa.func.power(
        sa.func.sin((l2 - l1) / 2), 2
    )
    return 2 * EARTH_RADIUS_KM * sa.func.asin(sa.func.least(1.0, sa.func.sqrt(a)))


def price_sql(request: MatchRequest) -> Any:
    """The engine's exact total price (minor units) as an SQL expression, NULL when there is no rate."""
    if request.kind == "machine":
        assert request.duration_minutes is not None
        work = (2 * col(Asset.hourly_rate) * request.duration_minutes + 60) // 120  # integer division = half-up
        return work + sa.func.coalesce(col(Asset.setup_fee), 0)
    assert request.samples is not None
    return col(Asset.price_per_sample) * request.samples


def _cert_window(request: MatchRequest) -> tuple[date, date]:
    # Site-local dates can differ from UTC dates by a day either way.
    return request.earliest_start.astimezone(UTC).date() - _DAY, request.deadline.astimezone(UTC).date() + _DAY


def _material_ok(request: MatchRequest) -> Any:
    return col(Asset.materials).bool_op("@>")(sa.cast([request.material], _TEXT_ARRAY))


def _envelope_ok(request: MatchRequest) -> Any | None:
    if request.part_size_mm is None or request.kind != "machine":
        return None  # lab services have no work envelope and pass
    big, mid, small = sorted(request.part_size_mm, reverse=True)
    return sa.and_(
        col(Asset.envelope_max_mm) >= big, col(Asset.envelope_mid_mm) >= mid, col(Asset.envelope_min_mm) >= small
    )


def _certificates_ok(request: MatchRequest) -> Any | None:
    if not request.required_certificates:
        return None
    lo, hi = _cert_window(request)
    return sa.and_(
        *[
            sa.exists().where(
                col(Certificate.org_id) == col(Asset.org_id),
                sa.or_(col(Certificate.site_id).is_(None), col(Certificate.site_id) == col(Asset.site_id)),
                col(Certificate.status) == "verified",
                col(Certificate.valid_from) <= col(Certificate.valid_until),
                col(Certificate.valid_until) >= lo,
                col(Certificate.valid_from) <= hi,
                _norm_sql(col(Certificate.standard)) == std,
            )
            for std in sorted({norm_standard(r) for r in request.required_certificates})
        ]
    )


def _location_ok(request: MatchRequest) -> Any | None:
    parts: list[Any] = []
    if request.max_distance_km is not None and request.lat is not None and request.lon is not None:
        # earth_box uses its own earth radius: widen it by 1 % so the index never cuts a feasible site, then
        # decide with the engine's formula (plus a hair for floating point).
        box = sa.func.earth_box(sa.func.ll_to_earth(request.lat, request.lon), request.max_distance_km * 1010.0)
        parts.append(box.bool_op("@>")(sa.func.ll_to_earth(col(Site.latitude), col(Site.longitude))))
        parts.append(_haversine_sql(request.lat, request.lon) <= request.max_distance_km + 1e-9)
    if request.region_prefixes:
        parts.append(sa.or_(*[col(Site.region_code).startswith(p, autoescape=True) for p in request.region_prefixes]))
    return sa.and_(*parts) if parts else None


def _budget_ok(request: MatchRequest) -> Any:
    price = price_sql(request)
    if request.budget_max is None:
        return price.isnot(None)
    return price <= request.budget_max


def static_conditions(request: MatchRequest, serving_codes: Sequence[str] | set[str] | frozenset[str]) -> list[Any]:
    """WHERE clauses (over assets joined with sites) for every time-independent hard constraint."""
    conds: list[Any] = [
        col(Asset.kind) == request.kind,
        col(Asset.process_codes).bool_op("&&")(sa.cast(sorted(serving_codes), _TEXT_ARRAY)),
    ]
    if request.material is not None:
        conds.append(_material_ok(request))
    for extra in (_envelope_ok(request), _certificates_ok(request), _location_ok(request)):
        if extra is not None:
            conds.append(extra)
    if request.tolerance_mm is not None:
        conds.append(col(Asset.tolerance_mm) <= request.tolerance_mm)
    conds.append(col(Asset.currency) == request.currency)
    conds.append(_budget_ok(request))
    return conds


def _published() -> list[Any]:
    return [col(Asset.status) == "published", organisations.c.verification_status == "verified"]


def _base_select(*extra: Any) -> Any:
    return (
        sa.select(Asset, Site, organisations.c.verification_status, *extra)
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(organisations, organisations.c.id == col(Asset.org_id))
    )


def _minmax_best_low(expr: Any) -> Any:
    lo, hi = sa.func.min(expr).over(), sa.func.max(expr).over()
    return sa.func.coalesce((hi - expr) / sa.func.nullif(hi - lo, 0), 1.0)


async def load_for_request(
    session: AsyncSession,
    request: MatchRequest,
    serving_codes: Sequence[str] | set[str] | frozenset[str],
    *,
    blocked: BlockedTime,
    stats: SupplierStats,
    now: datetime,
    cap: int | None = DEFAULT_CAP,
) -> Loaded:
    """Candidates for one request: the SQL prefilter, best ``cap`` by the cheap score, then calendars."""
    w = request.effective_weights
    price = sa.cast(price_sql(request), sa.Float)
    start = sa.extract(
        "epoch", sa.func.greatest(sa.func.coalesce(col(Asset.next_free_at), request.deadline), request.earliest_start)
    )
    cheap = w.price * _minmax_best_low(price) + w.start * _minmax_best_low(start)
    if request.lat is not None and request.lon is not None:
        cheap = cheap + w.distance * _minmax_best_low(_haversine_sql(request.lat, request.lon))
    stmt = _base_select(sa.func.count().over().label("n")).where(
        *_published(), *static_conditions(request, serving_codes)
    )
    if cap is not None:
        stmt = stmt.order_by(cheap.desc(), col(Asset.id)).limit(cap)
    rows = (await session.execute(stmt)).all()
    total = int(rows[0].n) if rows else 0
    candidates = await build_candidates(
        session,
        [(r[0], r[1], r[2] == "verified") for r in rows],
        request.earliest_start,
        request.deadline,
        blocked=blocked,
        stats=stats,
        now=now,
    )
    return Loaded(candidates=candidates, prefiltered=total, capped=len(rows) < total)


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
    serving_codes: Sequence[str] | set[str] | frozenset[str] | None = None,
    currencies: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """Candidates for the given assets (or every published listing) with calendars over ``[start, end)``;
    no request-specific prefilter (the naive path, the supplier's view and the batch optimiser)."""
    stmt = _base_select()
    if published_only:
        stmt = stmt.where(*_published())
    if asset_ids is not None:
        stmt = stmt.where(col(Asset.id).in_(list(asset_ids)))
    if kind is not None:
        stmt = stmt.where(col(Asset.kind) == kind)
    if serving_codes is not None:
        stmt = stmt.where(col(Asset.process_codes).bool_op("&&")(sa.cast(sorted(serving_codes), _TEXT_ARRAY)))
    if currencies is not None:
        stmt = stmt.where(col(Asset.currency).in_(list(currencies)))
    stmt = stmt.order_by(col(Asset.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    out: list[Candidate] = []
    for i in range(0, len(rows), CHUNK):  # bounded IN lists (asyncpg takes at most 32767 parameters)
        chunk = rows[i : i + CHUNK]
        out += await build_candidates(
            session,
            [(r[0], r[1], r[2] == "verified") for r in chunk],
            start,
            end,
            blocked=blocked,
            stats=stats,
            now=now,
        )
    return out


async def static_rejections(
    session: AsyncSession, request: MatchRequest, serving_codes: Sequence[str] | set[str] | frozenset[str]
) -> dict[str, int]:
    """First failing time-independent constraint, counted over the published listings (of verified
    organisations) of the request's kind that offer the process, in the engine's order."""
    checks: list[tuple[str, Any]] = []
    if request.material is not None:
        checks.append(("material", _material_ok(request)))
    if (env := _envelope_ok(request)) is not None:
        checks.append(("envelope", env))
    if request.tolerance_mm is not None:
        checks.append(("tolerance", col(Asset.tolerance_mm) <= request.tolerance_mm))
    if (certs := _certificates_ok(request)) is not None:
        checks.append(("certificate", certs))
    if (loc := _location_ok(request)) is not None:
        checks.append(("location", loc))
    checks.append(("currency", col(Asset.currency) == request.currency))
    checks.append(("budget", _budget_ok(request)))
    reason = sa.case(*[(sa.not_(sa.func.coalesce(cond, False)), name) for name, cond in checks], else_=None)
    stmt = (
        sa.select(reason.label("reason"), sa.func.count())
        .select_from(Asset)
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(organisations, organisations.c.id == col(Asset.org_id))
        .where(
            *_published(),
            col(Asset.kind) == request.kind,
            col(Asset.process_codes).bool_op("&&")(sa.cast(sorted(serving_codes), _TEXT_ARRAY)),
        )
        .group_by(sa.literal_column("reason"))
    )
    return {str(r): int(n) for r, n in (await session.execute(stmt)).all() if r is not None}


# -- building candidates ------------------------------------------------------------------------------


def weekly_hours(plan: Sequence[Mapping[str, Any]]) -> float:
    """Open hours per week of a weekly plan (an end <= start crosses midnight; start == end is 24 h)."""
    total = 0
    for w in plan:
        sh, sm = (int(x) for x in str(w["start"]).split(":"))
        eh, em = (int(x) for x in str(w["end"]).split(":"))
        minutes = (eh * 60 + em - sh * 60 - sm) % 1440
        total += minutes or 1440
    return total / 60.0


async def utilisation(session: AsyncSession, assets: Sequence[Asset], now: datetime) -> dict[uuid.UUID, float]:
    """Booked hours / open hours over the last 28 days, per machine (one query); 0 without data.

    Open hours come from the weekly plan (availability exceptions are ignored)."""
    machines = [a for a in assets if a.kind == "machine"]
    if not machines:
        return {}
    lo = now - timedelta(days=UTILISATION_DAYS)
    window = sa.func.tstzrange(lo, now, "[)")
    clipped = bookings.c.period * window
    hours = sa.func.sum(sa.extract("epoch", sa.func.upper(clipped) - sa.func.lower(clipped))) / 3600.0
    rows = await session.execute(
        sa.select(bookings.c.asset_id, hours)
        .where(
            bookings.c.asset_id.in_([a.id for a in machines]),
            bookings.c.period.bool_op("&&")(window),
            bookings.c.status.notin_(_NOT_USED),
        )
        .group_by(bookings.c.asset_id)
    )
    booked = {a: float(h or 0) for a, h in rows.all()}
    out: dict[uuid.UUID, float] = {}
    for a in machines:
        open_hours = weekly_hours(a.weekly_plan) * UTILISATION_DAYS / 7
        used = booked.get(a.id, 0.0)
        out[a.id] = min(1.0, used / open_hours) if open_hours > 0 and used > 0 else 0.0
    return out


async def _certificates(
    session: AsyncSession, assets: Sequence[Asset], lo: date, hi: date
) -> dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]]:
    if not assets:
        return {}
    rows = await session.execute(
        sa.select(
            col(Certificate.org_id),
            col(Certificate.site_id),
            col(Certificate.standard),
            col(Certificate.valid_from),
            col(Certificate.valid_until),
        ).where(
            col(Certificate.org_id).in_(list({a.org_id for a in assets})),
            col(Certificate.status) == "verified",
            col(Certificate.valid_until) >= lo,
            col(Certificate.valid_from) <= hi,
        )
    )
    by_org: dict[uuid.UUID, list[tuple[uuid.UUID | None, CertificateInfo]]] = defaultdict(list)
    for org_id, site_id, standard, valid_from, valid_until in rows.all():
        by_org[org_id].append((site_id, CertificateInfo(standard, valid_from, valid_until)))
    return {
        (a.org_id, a.site_id): [c for s, c in by_org.get(a.org_id, []) if s is None or s == a.site_id] for a in assets
    }


async def _exceptions(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> dict[uuid.UUID, list[tuple[datetime, datetime, bool]]]:
    out: dict[uuid.UUID, list[tuple[datetime, datetime, bool]]] = defaultdict(list)
    if not asset_ids:
        return out
    rows = await session.execute(
        sa.select(col(Exc.asset_id), col(Exc.starts_at), col(Exc.ends_at), col(Exc.available)).where(
            col(Exc.asset_id).in_(list(asset_ids)), col(Exc.ends_at) > start, col(Exc.starts_at) < end
        )
    )
    for asset_id, s, e, available in rows.all():
        out[asset_id].append((s, e, available))
    return out


async def _lab_calendars(
    session: AsyncSession, labs: Sequence[tuple[Asset, Site]], start: datetime, end: datetime, blocked: BlockedTime
) -> dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]]:
    """Remaining samples per open day and closed days (site-local) for each lab over the window."""
    if not labs:
        return {}
    excs = await _exceptions(session, [a.id for a, _ in labs], start - 2 * _DAY, end + 2 * _DAY)
    out: dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]] = {}
    many = getattr(blocked, "lab_booked_many", None)
    firsts_lasts = {}
    for asset, site in labs:
        zone = ZoneInfo(site.timezone)
        firsts_lasts[asset.id] = (start.astimezone(zone).date(), end.astimezone(zone).date())
    booked_all: Mapping[uuid.UUID, Mapping[date, int]]
    if many is not None:
        lo = min(f for f, _ in firsts_lasts.values())
        hi = max(last for _, last in firsts_lasts.values())
        booked_all = await many(session, [a.id for a, _ in labs], lo, hi)
    else:
        booked_all = {a.id: await blocked.lab_booked(session, a.id, *firsts_lasts[a.id]) for a, _ in labs}
    for asset, site in labs:
        zone = ZoneInfo(site.timezone)
        first, last = firsts_lasts[asset.id]
        open_weekdays = {int(w["weekday"]) for w in asset.weekly_plan} or {0, 1, 2, 3, 4}
        cap = asset.daily_sample_capacity or 0
        booked = booked_all.get(asset.id, {})
        capacity: dict[date, int] = {}
        closed: set[date] = set()
        d = first
        while d <= last:
            day_start = datetime.combine(d, time(0), zone)
            day_end = datetime.combine(d + _DAY, time(0), zone)
            overlapping = [(s, e, ok) for s, e, ok in excs.get(asset.id, []) if s < day_end and e > day_start]
            is_open = d.weekday() in open_weekdays
            if any(ok for _, _, ok in overlapping):
                is_open = True
            if any(not ok for _, _, ok in overlapping):
                is_open = False
            if is_open:
                capacity[d] = max(cap - booked.get(d, 0), 0)
            else:
                closed.add(d)
            d += _DAY
        out[asset.id] = (capacity, frozenset(closed))
    return out


async def build_candidates(
    session: AsyncSession,
    rows: Sequence[tuple[Asset, Site, bool]],
    start: datetime,
    end: datetime,
    *,
    blocked: BlockedTime,
    stats: SupplierStats,
    now: datetime,
) -> list[Candidate]:
    """Candidates for (asset, site, org verified) rows with calendars over ``[start, end)``.

    Machine free time is ``listings.service.machine_free`` (plan + open exceptions - closed exceptions -
    blocking bookings), computed from the longest setup before ``start`` to the longest buffer after
    ``end`` so that a slot right at the window edge can still have its setup and buffer time checked."""
    if not rows:
        return []
    assets = [a for a, _, _ in rows]
    machines = [(a, s) for a, s, _ in rows if a.kind == "machine"]
    labs = [(a, s) for a, s, _ in rows if a.kind != "machine"]
    free: dict[uuid.UUID, list[av.Interval]] = {}
    if machines:
        before = timedelta(minutes=max(a.setup_minutes or 0 for a, _ in machines))
        after = timedelta(minutes=max(a.buffer_minutes or 0 for a, _ in machines))
        free = await machine_free(session, machines, start - before, end + after, blocked)
    lab_cal = await _lab_calendars(session, labs, start, end, blocked)
    lo, hi = start.astimezone(UTC).date() - _DAY, end.astimezone(UTC).date() + _DAY
    certs = await _certificates(session, assets, lo, hi)
    scorecard = await stats.supplier_stats(session, sorted({a.org_id for a in assets}))
    used = await utilisation(session, assets, now)
    out: list[Candidate] = []
    for asset, site, verified in rows:
        sc = scorecard.get(asset.org_id, {})
        envelope = (
            (asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm)
            if None not in (asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm)
            else None
        )
        capacity, closed = lab_cal.get(asset.id, ({}, frozenset()))
        out.append(
            Candidate(
                asset_id=str(asset.id),
                org_id=str(asset.org_id),
                site_id=str(asset.site_id),
                kind="machine" if asset.kind == "machine" else "lab_service",
                currency=asset.currency,
                timezone=site.timezone,
                process_codes=frozenset(asset.process_codes),
                materials=frozenset(asset.materials),
                envelope_mm=envelope,  # type: ignore[arg-type]
                tolerance_mm=asset.tolerance_mm,
                hourly_rate=asset.hourly_rate,
                setup_fee=asset.setup_fee or 0,
                min_booking_minutes=asset.min_booking_minutes or 0,
                slot_minutes=asset.slot_minutes or 15,
                buffer_minutes=asset.buffer_minutes or 0,
                setup_minutes=asset.setup_minutes or 0,
                free=free.get(asset.id, []),
                price_per_sample=asset.price_per_sample,
                turnaround_days=asset.turnaround_days,
                daily_sample_capacity=asset.daily_sample_capacity,
                lab_capacity=capacity,
                closed_days=closed,
                lat=site.latitude,
                lon=site.longitude,
                region_code=site.region_code,
                certificates=certs.get((asset.org_id, asset.site_id), []),
                org_verified=verified,
                status=asset.status,
                rating_sum=float(sc.get("rating_sum", 0) or 0),
                rating_count=int(sc.get("rating_count", 0) or 0),
                completed_count=int(sc.get("completed", 0) or 0),
                on_time_count=int(sc.get("on_time", 0) or 0),
                utilisation=used.get(asset.id, 0.0),
            )
        )
    return out
