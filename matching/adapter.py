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

Speed (docs/performance.md, "Matching"): one statement selects the candidates, built once per request *shape*
(which constraints a request has) and executed with the request's values as bind parameters. It scans the
narrow read model ``matchable_assets`` (published listings of verified organisations, kept by triggers,
migration 0007): sites inside the radius first, then their listings via ``site_id = ANY(...)`` AND the GIN
process index; a materialised CTE of id, price, start and distance feeds a one-row aggregate, the best ``cap``
are picked by the cheap score and only those are joined back to their asset/site columns, certificates and
recently booked hours. It runs under ``plan_cache_mode = force_custom_plan`` (the driver's prepared statements
otherwise get generic plans). Weekly plans are parsed and expanded once per distinct (plan, time zone, window)
per call; exceptions and bookings are fetched once for the whole window, and machine free time is computed
over a short first window, widened only for candidates without a slot there (:func:`load_for_request`;
exact).
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from listings.service import BlockedTime
from matching.feasibility import EARTH_RADIUS_KM, check
from matching.types import Candidate, CertificateInfo, FeasibleMatch, MatchRequest, Rejection

DEFAULT_CAP = 200
CHUNK = 5000
# Machine free time is first computed over [earliest_start, earliest_start + max(FIRST_WINDOW, FIRST_WINDOW_JOBS x
# the job's duration)) and widened to the whole request window only for candidates without a slot there.
FIRST_WINDOW = timedelta(days=3)
FIRST_WINDOW_JOBS = 6
UTILISATION_DAYS = 28
# Statuses whose booked time does not count as used capacity for the utilisation (idle) component: the
# complement of the shell's blocking statuses (marketplace.bookings.models.BLOCKING, which matching cannot
# import; tests/bookings/test_booked_time_kept.py keeps the two in step). A released booking counts only up
# to its completion (its period was shortened).
_NOT_USED = ("cancelled", "declined", "expired")
_TEXT_ARRAY = pg.ARRAY(sa.Text)
_DAY = timedelta(days=1)

# The shell's tables, referenced read-only (matching never imports the shell).
organisations = sa.table("organisations", sa.column("id"), sa.column("verification_status"))
bookings = sa.table(
    "bookings", sa.column("asset_id", sa.Uuid), sa.column("period", pg.TSTZRANGE), sa.column("status", sa.Text)
)
# Matching's read model (migration 0007): the published listings of verified organisations with only the columns
# the prefilter and the cheap pre-score read, site position included; kept exact by triggers on assets, sites
# and organisations. Its columns carry the names of the ``assets`` columns they copy (``asset_id`` = ``id``).
matchable = sa.table(
    "matchable_assets",
    sa.column("asset_id", sa.Uuid),
    sa.column("org_id", sa.Uuid),
    sa.column("site_id", sa.Uuid),
    sa.column("kind", sa.Text),
    sa.column("currency", sa.Text),
    sa.column("process_codes", _TEXT_ARRAY),
    sa.column("materials", _TEXT_ARRAY),
    sa.column("envelope_max_mm", sa.Float),
    sa.column("envelope_mid_mm", sa.Float),
    sa.column("envelope_min_mm", sa.Float),
    sa.column("tolerance_mm", sa.Float),
    sa.column("hourly_rate", sa.BigInteger),
    sa.column("setup_fee", sa.BigInteger),
    sa.column("price_per_sample", sa.BigInteger),
    sa.column("next_free_at", sa.DateTime(timezone=True)),
    sa.column("latitude", sa.Float),
    sa.column("longitude", sa.Float),
)
# The condition builders below read their columns from ``src``: the ``assets`` table (default) or ``matchable``.
ASSETS: Any = Asset.__table__.c  # type: ignore[attr-defined]


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


def _uuids(ids: Iterable[uuid.UUID]) -> Any:
    """An array parameter for ``= ANY(...)``: unlike an expanding ``IN`` its statement text (and so the driver's
    prepared statement) does not change with the number of ids."""
    return sa.bindparam("ids", list(ids), type_=pg.ARRAY(sa.Uuid()), unique=True)


def norm_standard(name: str) -> str:
    return " ".join(name.split()).casefold()


def _norm_sql(expr: Any) -> Any:
    return sa.func.lower(sa.func.regexp_replace(sa.func.btrim(expr), r"\s+", " ", "g"))


# -- request values as bind parameters ------------------------------------------------------------------
#
# Every value a request contributes to the candidate statement has a name here. Builders ask a ``Binder`` for
# it: an ad-hoc binder embeds the value (an anonymous bind parameter, as a literal would), a shape binder
# returns a named placeholder. The hot path (:func:`select_rows`) builds its statement once per request
# *shape* (:func:`_shape`: which constraints are present) and executes it with :func:`request_values`, which
# saves building the SQLAlchemy expression tree and its cache key on every request (~8 ms CPU).

_BIND_TYPES: dict[str, Any] = {
    "kind": sa.Text(),
    "codes": _TEXT_ARRAY,
    "material": _TEXT_ARRAY,
    "env_big": sa.Float(),
    "env_mid": sa.Float(),
    "env_small": sa.Float(),
    "cert_lo": sa.Date(),
    "cert_hi": sa.Date(),
    "lat": sa.Float(),
    "lon": sa.Float(),
    "box_m": sa.Float(),
    "max_km": sa.Float(),
    "hv_p1": sa.Float(),
    "hv_l1": sa.Float(),
    "hv_cos_p1": sa.Float(),
    "tolerance": sa.Float(),
    "currency": sa.Text(),
    "budget": sa.BigInteger(),
    "duration": sa.Integer(),
    "samples": sa.Integer(),
    "w_price": sa.Float(),
    "w_start": sa.Float(),
    "w_distance": sa.Float(),
    "earliest": sa.DateTime(timezone=True),
    "deadline": sa.DateTime(timezone=True),
    "used_from": sa.DateTime(timezone=True),
    "used_until": sa.DateTime(timezone=True),
    "cap": sa.Integer(),
}


def _bind_type(name: str) -> Any:
    return _BIND_TYPES.get(name) or sa.Text()  # cert_<i>, region_<i>


def _like_prefix(prefix: str) -> str:
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _standards(request: MatchRequest) -> list[str]:
    return sorted({norm_standard(r) for r in request.required_certificates})


def _cert_window(request: MatchRequest) -> tuple[date, date]:
    # Site-local dates can differ from UTC dates by a day either way.
    return request.earliest_start.astimezone(UTC).date() - _DAY, request.deadline.astimezone(UTC).date() + _DAY


def _distance_limited(request: MatchRequest) -> bool:
    return request.max_distance_km is not None and request.lat is not None and request.lon is not None


def request_values(
    request: MatchRequest,
    serving_codes: Sequence[str] | set[str] | frozenset[str],
    *,
    now: datetime | None = None,
    cap: int | None = None,
) -> dict[str, Any]:
    """The request's values by bind parameter name (those of constraints it lacks are simply unused)."""
    cert_lo, cert_hi = _cert_window(request)
    w = request.effective_weights
    values: dict[str, Any] = {
        "kind": request.kind,
        "codes": sorted(serving_codes),
        "material": [request.material],
        "cert_lo": cert_lo,
        "cert_hi": cert_hi,
        "lat": request.lat,
        "lon": request.lon,
        "tolerance": request.tolerance_mm,
        "currency": request.currency,
        "budget": request.budget_max,
        "duration": request.duration_minutes,
        "samples": request.samples,
        "w_price": w.price,
        "w_start": w.start,
        "w_distance": w.distance,
        "earliest": request.earliest_start,
        "deadline": request.deadline,
        "cap": cap,
    }
    if request.part_size_mm is not None:
        values["env_big"], values["env_mid"], values["env_small"] = sorted(request.part_size_mm, reverse=True)
    for i, std in enumerate(_standards(request)):
        values[f"cert_{i}"] = std
    if request.max_distance_km is not None and request.lat is not None and request.lon is not None:
        p1 = math.radians(request.lat)
        # earth_box uses its own earth radius: widen it by 1 % so the index never cuts a feasible site; the
        # engine's formula (plus a hair for floating point) then decides.
        values.update(
            box_m=request.max_distance_km * 1010.0,
            max_km=request.max_distance_km + 1e-9,
            hv_p1=p1,
            hv_l1=math.radians(request.lon),
            hv_cos_p1=math.cos(p1),
        )
    for i, prefix in enumerate(request.region_prefixes):
        values[f"region_{i}"] = _like_prefix(prefix)
    if now is not None:
        values["used_from"], values["used_until"] = now - timedelta(days=UTILISATION_DAYS), now
    return values


def _shape(request: MatchRequest, *, cap: int | None, now: datetime | None) -> tuple[Any, ...]:
    """Everything that changes the structure of the candidate statement (not its values)."""
    return (
        request.kind,
        request.material is not None,
        request.part_size_mm is not None,
        len(_standards(request)),
        _distance_limited(request),
        len(request.region_prefixes),
        request.lat is not None and request.lon is not None,
        request.tolerance_mm is not None,
        request.budget_max is not None,
        cap is None,
        now is not None,
    )


class Binder:
    """``binder(name)``: the request value ``name`` as a bind parameter, embedded (``values`` given) or a named
    placeholder filled at execution (``values=None``)."""

    def __init__(self, values: Mapping[str, Any] | None) -> None:
        self.values = values

    def __call__(self, name: str) -> Any:
        if self.values is None:
            return sa.bindparam(name, type_=_bind_type(name))
        return sa.bindparam(None, self.values[name], type_=_bind_type(name))


def _binder(request: MatchRequest, serving_codes: Sequence[str] | set[str] | frozenset[str]) -> Binder:
    return Binder(request_values(request, serving_codes))


# -- the static prefilter -------------------------------------------------------------------------------


def _haversine_sql(p: Binder, lat: Any, lon: Any) -> Any:
    """The engine's haversine (same radius) in SQL, in km, from the request's point to (``lat``, ``lon``)."""
    p2, l2 = sa.func.radians(lat), sa.func.radians(lon)
    a = sa.func.power(sa.func.sin((p2 - p("hv_p1")) / 2), 2) + p("hv_cos_p1") * sa.func.cos(p2) * sa.func.power(
        sa.func.sin((l2 - p("hv_l1")) / 2), 2
    )
    return 2 * EARTH_RADIUS_KM * sa.func.asin(sa.func.least(1.0, sa.func.sqrt(a)))


def price_sql(request: MatchRequest, src: Any, p: Binder) -> Any:
    """The engine's exact total price (minor units) as an SQL expression, NULL when there is no rate."""
    if request.kind == "machine":
        work = (2 * src.hourly_rate * p("duration") + 60) // 120  # integer division = half-up
        return work + sa.func.coalesce(src.setup_fee, 0)
    return src.price_per_sample * p("samples")


def _material_ok(p: Binder, src: Any = ASSETS) -> Any:
    return src.materials.bool_op("@>")(sa.cast(p("material"), _TEXT_ARRAY))


def _envelope_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any | None:
    if request.part_size_mm is None or request.kind != "machine":
        return None  # lab services have no work envelope and pass
    return sa.and_(
        src.envelope_max_mm >= p("env_big"), src.envelope_mid_mm >= p("env_mid"), src.envelope_min_mm >= p("env_small")
    )


def _certificates_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any | None:
    if not request.required_certificates:
        return None
    return sa.and_(
        *[
            sa.exists().where(
                col(Certificate.org_id) == src.org_id,
                sa.or_(col(Certificate.site_id).is_(None), col(Certificate.site_id) == src.site_id),
                col(Certificate.status) == "verified",
                col(Certificate.valid_from) <= col(Certificate.valid_until),
                col(Certificate.valid_until) >= p("cert_lo"),
                col(Certificate.valid_from) <= p("cert_hi"),
                _norm_sql(col(Certificate.standard)) == p(f"cert_{i}"),
            )
            for i in range(len(_standards(request)))
        ]
    )


def _location_ok(request: MatchRequest, p: Binder) -> Any | None:
    """Distance limit and region prefixes, over ``sites``."""
    parts: list[Any] = []
    if _distance_limited(request):
        box = sa.func.earth_box(sa.func.ll_to_earth(p("lat"), p("lon")), p("box_m"))
        parts.append(box.bool_op("@>")(sa.func.ll_to_earth(col(Site.latitude), col(Site.longitude))))
        parts.append(_haversine_sql(p, col(Site.latitude), col(Site.longitude)) <= p("max_km"))
    if request.region_prefixes:
        parts.append(
            sa.or_(
                *[col(Site.region_code).like(p(f"region_{i}"), escape="/") for i in range(len(request.region_prefixes))]
            )
        )
    return sa.and_(*parts) if parts else None


def _budget_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any:
    price = price_sql(request, src, p)
    if request.budget_max is None:
        return price.isnot(None)
    return price <= p("budget")


def static_conditions(
    request: MatchRequest,
    serving_codes: Sequence[str] | set[str] | frozenset[str],
    *,
    location: bool = True,
    src: Any = ASSETS,
    p: Binder | None = None,
) -> list[Any]:
    """WHERE clauses (over assets joined with sites, or over ``matchable`` with ``location=False``) for every
    time-independent hard constraint (without the location constraint when ``location`` is false: the caller
    applies :func:`_location_ok` itself). Values come from ``p`` (default: embedded)."""
    p = p or _binder(request, serving_codes)
    conds: list[Any] = [
        src.kind == p("kind"),
        src.process_codes.bool_op("&&")(sa.cast(p("codes"), _TEXT_ARRAY)),
    ]
    if request.material is not None:
        conds.append(_material_ok(p, src))
    for extra in (
        _envelope_ok(request, p, src),
        _certificates_ok(request, p, src),
        _location_ok(request, p) if location else None,
    ):
        if extra is not None:
            conds.append(extra)
    if request.tolerance_mm is not None:
        conds.append(src.tolerance_mm <= p("tolerance"))
    conds.append(src.currency == p("currency"))
    conds.append(_budget_ok(request, p, src))
    return conds


def _published() -> list[Any]:
    return [col(Asset.status) == "published", organisations.c.verification_status == "verified"]


_ROW_COLUMNS: tuple[Any, ...] = (
    col(Asset.id),
    col(Asset.org_id),
    col(Asset.site_id),
    col(Asset.kind),
    col(Asset.status),
    col(Asset.currency),
    col(Asset.process_codes),
    col(Asset.materials),
    col(Asset.envelope_x_mm),
    col(Asset.envelope_y_mm),
    col(Asset.envelope_z_mm),
    col(Asset.tolerance_mm),
    col(Asset.hourly_rate),
    col(Asset.setup_fee),
    col(Asset.min_booking_minutes),
    col(Asset.slot_minutes),
    col(Asset.buffer_minutes),
    col(Asset.setup_minutes),
    col(Asset.price_per_sample),
    col(Asset.turnaround_days),
    col(Asset.daily_sample_capacity),
    sa.cast(col(Asset.weekly_plan), sa.Text),  # decoded once per distinct plan (see _Plans)
    col(Site.timezone),
    col(Site.latitude),
    col(Site.longitude),
    col(Site.region_code),
    organisations.c.verification_status == "verified",
)


@dataclass(frozen=True, slots=True)
class AssetRow:
    """The asset, site and organisation columns a candidate needs (plain column select, no ORM entities)."""

    id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID
    kind: str
    status: str
    currency: str
    process_codes: list[str]
    materials: list[str]
    envelope_x_mm: float | None
    envelope_y_mm: float | None
    envelope_z_mm: float | None
    tolerance_mm: float | None
    hourly_rate: int | None
    setup_fee: int | None
    min_booking_minutes: int | None
    slot_minutes: int | None
    buffer_minutes: int | None
    setup_minutes: int | None
    price_per_sample: int | None
    turnaround_days: int | None
    daily_sample_capacity: int | None
    weekly_plan: str  # JSON text
    timezone: str
    latitude: float | None
    longitude: float | None
    region_code: str | None
    verified: bool


def _row_select(*extra: Any) -> Any:
    return (
        sa.select(*_ROW_COLUMNS, *extra)
        .select_from(Asset)
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(organisations, organisations.c.id == col(Asset.org_id))
    )


def _asset_rows(rows: Sequence[Any]) -> list[AssetRow]:
    n = len(_ROW_COLUMNS)
    return [AssetRow(*r[:n]) for r in rows]


@dataclass(frozen=True)
class Selected:
    rows: list[AssetRow]
    total: int  # rows passing the prefilter (more than ``len(rows)`` when capped)
    certificates: dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]]
    booked_hours: dict[uuid.UUID, float] | None  # machines' booked hours over the utilisation window


def _extra_columns(p: Binder, with_hours: bool) -> list[Any]:
    """Correlated subqueries (per selected asset): its certificates as JSON (as :func:`_certificates`) and,
    ``with_hours``, its booked hours over the utilisation window (as :func:`utilisation`)."""
    certs = (
        sa.select(
            sa.func.json_agg(
                sa.func.json_build_array(
                    col(Certificate.standard), col(Certificate.valid_from), col(Certificate.valid_until)
                )
            )
        )
        .where(
            col(Certificate.org_id) == col(Asset.org_id),
            sa.or_(col(Certificate.site_id).is_(None), col(Certificate.site_id) == col(Asset.site_id)),
            col(Certificate.status) == "verified",
            col(Certificate.valid_until) >= p("cert_lo"),
            col(Certificate.valid_from) <= p("cert_hi"),
        )
        .scalar_subquery()
    )
    out = [certs]
    if with_hours:
        window = sa.func.tstzrange(p("used_from"), p("used_until"), "[)")
        clipped = bookings.c.period * window
        hours = (
            sa.select(sa.func.sum(sa.extract("epoch", sa.func.upper(clipped) - sa.func.lower(clipped))) / 3600.0)
            .where(
                bookings.c.asset_id == col(Asset.id),
                col(Asset.kind) == "machine",
                bookings.c.period.bool_op("&&")(window),
                bookings.c.status.notin_(_NOT_USED),
            )
            .scalar_subquery()
        )
        out.append(hours)
    return out


def _selected(rows: Sequence[Any], total: int, with_hours: bool) -> Selected:
    n = len(_ROW_COLUMNS)
    assets = _asset_rows(rows)
    certs: dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]] = {}
    hours: dict[uuid.UUID, float] = {}
    for a, r in zip(assets, rows, strict=True):
        raw = r[n]
        items = json.loads(raw) if isinstance(raw, str) else raw or []
        certs[(a.org_id, a.site_id)] = [
            CertificateInfo(std, date.fromisoformat(frm), date.fromisoformat(until)) for std, frm, until in items
        ]
        if with_hours and r[n + 1] is not None:
            hours[a.id] = float(r[n + 1])
    return Selected(assets, total, certs, hours if with_hours else None)


async def _custom_plan(session: AsyncSession, stmt: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """Run ``stmt`` with a plan made for its actual parameters.

    The driver prepares statements and PostgreSQL switches a prepared statement to a generic plan after five
    executions; for the candidate query (earth box, process codes, budget ...) a generic plan can be an order
    of magnitude slower than the custom one. The setting is transaction-local (it also applies to the rest of
    the caller's transaction, where it only costs planning time)."""
    await session.execute(sa.select(sa.func.set_config("plan_cache_mode", "force_custom_plan", True)))
    return list((await session.execute(stmt, dict(params) if params else None)).all())


async def select_rows(
    session: AsyncSession,
    request: MatchRequest,
    serving_codes: Sequence[str] | set[str] | frozenset[str],
    cap: int | None = DEFAULT_CAP,
    *,
    now: datetime | None = None,
) -> Selected:
    """Rows passing the static prefilter (all of them, or the best ``cap`` by the cheap score) and their count.

    One statement: a narrow CTE (id, price, start, distance — each computed once per matching row) feeds a
    one-row min/max/count aggregate, the best ``cap`` ids are picked by the cheap score, and only those are
    joined back to their asset, site and organisation columns, with their certificates and (given ``now``)
    recently booked hours as correlated subqueries."""
    shape = _shape(request, cap=cap, now=now)
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        stmt = _candidate_statement(request, Binder(None), capped=cap is not None, with_hours=now is not None)
        if len(_STATEMENTS) >= 256:
            _STATEMENTS.clear()
        _STATEMENTS[shape] = stmt
    rows = await _custom_plan(session, stmt, request_values(request, serving_codes, now=now, cap=cap))
    if cap is None:
        return _selected(rows, len(rows), now is not None)
    return _selected(rows, int(rows[0][-1]) if rows else 0, now is not None)


_STATEMENTS: dict[tuple[Any, ...], Any] = {}  # candidate statements by request shape (see _shape)


def _candidate_statement(request: MatchRequest, p: Binder, *, capped: bool, with_hours: bool) -> Any:
    """The statement of :func:`select_rows` for requests of ``request``'s shape (values from ``p``)."""
    extras = _extra_columns(p, with_hours)
    near_ok = _location_ok(request, p)
    near_ids: Any = None
    if near_ok is not None:
        # Sites first (GiST earth index / region prefix index), then the assets of those sites: the planner
        # otherwise walks every nearby site and its assets one by one.
        near = sa.select(col(Site.id)).where(near_ok).cte("near").prefix_with("MATERIALIZED")
        near_ids = sa.any_(sa.func.array(sa.select(near.c.id).scalar_subquery()))
    if not capped:
        where = [*_published(), *static_conditions(request, (), location=False, p=p)]
        if near_ids is not None:
            where.append(col(Asset.site_id) == near_ids)
        return _row_select(*extras).where(*where)
    # Every matching row is read once here, so it is read from the narrow read model, not the wide assets rows.
    ma = matchable.c
    where = static_conditions(request, (), location=False, src=ma, p=p)
    if near_ids is not None:
        # Measured: filtering the process-code matches by distance on their own coordinates instead is no faster.
        where.append(ma.site_id == near_ids)
    values: list[Any] = [
        sa.cast(price_sql(request, ma, p), sa.Float).label("p"),
        sa.cast(
            sa.extract("epoch", sa.func.greatest(sa.func.coalesce(ma.next_free_at, p("deadline")), p("earliest"))),
            sa.Float,  # float, not numeric, arithmetic in the ORDER BY
        ).label("t"),
    ]
    located = request.lat is not None and request.lon is not None
    if located:
        # Only ranks (min-max normalised): earthdistance's great-circle ``<@>`` (miles, one C call per row) orders
        # like the engine's haversine; the distance limit itself is decided with the engine's formula.
        here = sa.func.point(p("lon"), p("lat"))
        values.append(sa.func.point(ma.longitude, ma.latitude).op("<@>")(here).label("d"))
    matched = sa.select(ma.asset_id.label("id"), *values).where(*where).cte("matched").prefix_with("MATERIALIZED")
    m = matched.c
    # The cheap score is sum(w * (max - v) / (max - min)) (w alone where max = min). Dropping what is the same
    # for every row, its order is that of sum(k * v) ascending with k = w / (max - min) (0 where max = min):
    # the span CTE computes the k once, so each row costs three multiplications instead of a dozen calls.
    names = ("p", "t", "d") if located else ("p", "t")
    weight = {"p": p("w_price"), "t": p("w_start"), "d": p("w_distance")}
    factors = [
        sa.case(
            (sa.func.max(m[name]) > sa.func.min(m[name]), weight[name] / (sa.func.max(m[name]) - sa.func.min(m[name]))),
            else_=0.0,
        ).label(f"k{name}")
        for name in names
    ]
    span = sa.select(sa.func.count().label("n"), *factors).select_from(matched).cte("span").prefix_with("MATERIALIZED")
    r = span.c
    order = sum((r[f"k{name}"] * m[name] for name in names[1:]), r["kp"] * m.p)
    best = (
        sa.select(m.id, r.n)
        .select_from(matched.join(span, sa.true()))
        .order_by(order, m.id)
        .limit(p("cap"))
        .subquery("best")
    )
    return _row_select(*extras, best.c.n).join(best, best.c.id == col(Asset.id))


def first_window_end(request: MatchRequest) -> datetime:
    """End of the short first window over which machine free time is computed (see :func:`load_for_request`)."""
    need = timedelta(minutes=request.duration_minutes or 0)
    return min(request.deadline, request.earliest_start + max(FIRST_WINDOW, FIRST_WINDOW_JOBS * need))


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
    """Candidates for one request: the SQL prefilter, best ``cap`` by the cheap score, then calendars.

    Machine free time is first computed over a short window from ``earliest_start``
    (:func:`first_window_end`); only candidates without a valid slot there (engine rejection
    ``availability`` or ``certificate``) get their calendar widened to the whole request window. This is
    exact: free time is only cut off at the end, so a slot found in the short window is the engine's
    earliest slot over the whole window too. ``Loaded.checks`` holds the engine's verdict per candidate."""
    # Booked hours for the utilisation component come with the rows (an index-only probe per selected asset).
    selected = await select_rows(session, request, serving_codes, cap, now=now)
    rows, total = selected.rows, selected.total
    start, end = request.earliest_start, request.deadline
    cut = first_window_end(request)
    plans = _Plans()
    # Exceptions and bookings for the whole window at once: widening below then needs no second round trip.
    calendars = await machine_calendars(session, [r for r in rows if r.kind == "machine"], start, end, blocked)
    candidates = await build_candidates(
        session,
        rows,
        start,
        end,
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
            wide = await machine_free(session, [rows[i] for i in redo], start, end, blocked, plans, calendars)
            for i in redo:
                candidates[i] = replace(candidates[i], free=wide[rows[i].id])
                checks[i] = check(request, candidates[i], codes)
    return Loaded(candidates=candidates, prefiltered=total, capped=len(rows) < total, checks=checks)


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
    stmt = _row_select()
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
    rows = _asset_rows((await session.execute(stmt)).all())
    plans = _Plans()
    out: list[Candidate] = []
    for i in range(0, len(rows), CHUNK):  # bounded IN lists (asyncpg takes at most 32767 parameters)
        out += await build_candidates(
            session, rows[i : i + CHUNK], start, end, blocked=blocked, stats=stats, now=now, plans=plans
        )
    return out


async def static_rejections(
    session: AsyncSession, request: MatchRequest, serving_codes: Sequence[str] | set[str] | frozenset[str]
) -> dict[str, int]:
    """First failing time-independent constraint, counted over the published listings (of verified
    organisations) of the request's kind that offer the process, in the engine's order."""
    p = _binder(request, serving_codes)
    checks: list[tuple[str, Any]] = []
    if request.material is not None:
        checks.append(("material", _material_ok(p)))
    if (env := _envelope_ok(request, p)) is not None:
        checks.append(("envelope", env))
    if request.tolerance_mm is not None:
        checks.append(("tolerance", col(Asset.tolerance_mm) <= p("tolerance")))
    if (certs := _certificates_ok(request, p)) is not None:
        checks.append(("certificate", certs))
    if (loc := _location_ok(request, p)) is not None:
        checks.append(("location", loc))
    checks.append(("currency", col(Asset.currency) == p("currency")))
    checks.append(("budget", _budget_ok(request, p)))
    reason = sa.case(*[(sa.not_(sa.func.coalesce(cond, False)), name) for name, cond in checks], else_=None)
    stmt = (
        sa.select(reason.label("reason"), sa.func.count())
        .select_from(Asset)
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(organisations, organisations.c.id == col(Asset.org_id))
        .where(
            *_published(),
            col(Asset.kind) == p("kind"),
            col(Asset.process_codes).bool_op("&&")(sa.cast(p("codes"), _TEXT_ARRAY)),
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


class _Plans:
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
        """As :func:`listings.service.weekly_windows`."""
        hit = self._windows.get(text)
        if hit is None:
            hit = self._windows[text] = [
                av.WeeklyWindow(
                    weekday=int(w["weekday"]),
                    start=av.parse_hhmm(w["start"], allow_end_of_day=False),
                    end=av.parse_hhmm(w["end"]),
                )
                for w in self.parsed(text)
            ]
        return hit

    def expanded(self, text: str, tz: str, start: datetime, end: datetime) -> list[av.Interval]:
        key = (text, tz, start, end)
        hit = self._expanded.get(key)
        if hit is None:
            hit = self._expanded[key] = av.expand_weekly(self.windows(text), tz, start, end)
        return hit


def free_time(
    plan: Sequence[av.Interval],
    exceptions: Sequence[tuple[datetime, datetime, bool]],
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


def _calendar_span(rows: Sequence[AssetRow], start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """From the longest setup before ``start`` to the longest buffer after ``end``, so a slot at the window edge
    can have its setup and buffer checked."""
    lo = (start - timedelta(minutes=max(r.setup_minutes or 0 for r in rows))).astimezone(UTC)
    hi = (end + timedelta(minutes=max(r.buffer_minutes or 0 for r in rows))).astimezone(UTC)
    return lo, hi


async def machine_calendars(
    session: AsyncSession, rows: Sequence[AssetRow], start: datetime, end: datetime, blocked: BlockedTime
) -> Calendars:
    """Two queries (exceptions, bookings) for all rows, covering :func:`machine_free` over ``[start, end)``."""
    if not rows:
        return Calendars(start, end, {}, {})
    lo, hi = _calendar_span(rows, start, end)
    ids = [r.id for r in rows]
    return Calendars(
        lo, hi, await _exceptions(session, ids, lo, hi), await blocked.machine_blocked(session, ids, lo, hi)
    )


async def machine_free(
    session: AsyncSession,
    rows: Sequence[AssetRow],
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
    plans: _Plans | None = None,
    calendars: Calendars | None = None,
) -> dict[uuid.UUID, list[av.Interval]]:
    """Free time per machine (as :func:`listings.service.machine_free`) over :func:`_calendar_span`, from
    ``calendars`` when they cover it (exceptions and bookings beyond the span do not change free time within
    it: opening exceptions are clipped, closing ones and bookings only subtracted), else fetched."""
    if not rows:
        return {}
    plans = plans or _Plans()
    lo, hi = _calendar_span(rows, start, end)
    if calendars is None or calendars.lo > lo or calendars.hi < hi:
        calendars = await machine_calendars(session, rows, start, end, blocked)
    excs, booked = calendars.exceptions, calendars.booked
    return {
        r.id: free_time(
            plans.expanded(r.weekly_plan, r.timezone, lo, hi), excs.get(r.id, ()), booked.get(r.id, []), lo, hi
        )
        for r in rows
    }


async def utilisation(
    session: AsyncSession,
    rows: Sequence[AssetRow],
    now: datetime,
    plans: _Plans | None = None,
    booked_hours: Mapping[uuid.UUID, float] | None = None,
) -> dict[uuid.UUID, float]:
    """Booked hours / open hours over the last 28 days, per machine (one query unless ``booked_hours`` were
    already fetched); 0 without data.

    Open hours come from the weekly plan (availability exceptions are ignored)."""
    machines = [a for a in rows if a.kind == "machine"]
    if not machines:
        return {}
    plans = plans or _Plans()
    booked: Mapping[uuid.UUID, float]
    if booked_hours is not None:
        booked = booked_hours
    else:
        lo = now - timedelta(days=UTILISATION_DAYS)
        window = sa.func.tstzrange(lo, now, "[)")
        clipped = bookings.c.period * window
        hours = sa.func.sum(sa.extract("epoch", sa.func.upper(clipped) - sa.func.lower(clipped))) / 3600.0
        result = await session.execute(
            sa.select(bookings.c.asset_id, hours)
            .where(
                bookings.c.asset_id == sa.any_(_uuids([a.id for a in machines])),
                bookings.c.period.bool_op("&&")(window),
                bookings.c.status.notin_(_NOT_USED),
            )
            .group_by(bookings.c.asset_id)
        )
        booked = {a: float(h or 0) for a, h in result.all()}
    out: dict[uuid.UUID, float] = {}
    for a in machines:
        open_hours = plans.hours(a.weekly_plan) * UTILISATION_DAYS / 7
        used = booked.get(a.id, 0.0)
        out[a.id] = min(1.0, used / open_hours) if open_hours > 0 and used > 0 else 0.0
    return out


async def _certificates(
    session: AsyncSession, rows: Sequence[AssetRow], lo: date, hi: date
) -> dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]]:
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


async def _exceptions(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> dict[uuid.UUID, list[tuple[datetime, datetime, bool]]]:
    out: dict[uuid.UUID, list[tuple[datetime, datetime, bool]]] = defaultdict(list)
    if not asset_ids:
        return out
    rows = await session.execute(
        sa.select(col(Exc.asset_id), col(Exc.starts_at), col(Exc.ends_at), col(Exc.available)).where(
            col(Exc.asset_id) == sa.any_(_uuids(asset_ids)), col(Exc.ends_at) > start, col(Exc.starts_at) < end
        )
    )
    for asset_id, s, e, available in rows.all():
        out[asset_id].append((s, e, available))
    return out


async def _lab_calendars(
    session: AsyncSession,
    labs: Sequence[AssetRow],
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
    plans: _Plans,
) -> dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]]:
    """Remaining samples per open day and closed days (site-local) for each lab over the window."""
    if not labs:
        return {}
    excs = await _exceptions(session, [a.id for a in labs], start - 2 * _DAY, end + 2 * _DAY)
    out: dict[uuid.UUID, tuple[dict[date, int], frozenset[date]]] = {}
    many = getattr(blocked, "lab_booked_many", None)
    firsts_lasts = {}
    for a in labs:
        zone = ZoneInfo(a.timezone)
        firsts_lasts[a.id] = (start.astimezone(zone).date(), end.astimezone(zone).date())
    booked_all: Mapping[uuid.UUID, Mapping[date, int]]
    if many is not None:
        lo = min(f for f, _ in firsts_lasts.values())
        hi = max(last for _, last in firsts_lasts.values())
        booked_all = await many(session, [a.id for a in labs], lo, hi)
    else:
        booked_all = {a.id: await blocked.lab_booked(session, a.id, *firsts_lasts[a.id]) for a in labs}
    for asset in labs:
        zone = ZoneInfo(asset.timezone)
        first, last = firsts_lasts[asset.id]
        open_weekdays = {int(w["weekday"]) for w in plans.parsed(asset.weekly_plan)} or {0, 1, 2, 3, 4}
        cap = asset.daily_sample_capacity or 0
        booked = booked_all.get(asset.id, {})
        own = excs.get(asset.id, [])
        capacity: dict[date, int] = {}
        closed: set[date] = set()
        d = first
        while d <= last:
            is_open = d.weekday() in open_weekdays
            if own:
                day_start = datetime.combine(d, time(0), zone)
                day_end = datetime.combine(d + _DAY, time(0), zone)
                overlapping = [(s, e, ok) for s, e, ok in own if s < day_end and e > day_start]
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
    rows: Sequence[AssetRow],
    start: datetime,
    end: datetime,
    *,
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
    free = await machine_free(session, machines, start, min(end, free_end or end), blocked, plans, calendars)
    lab_cal = await _lab_calendars(session, labs, start, end, blocked, plans)
    lo, hi = start.astimezone(UTC).date() - _DAY, end.astimezone(UTC).date() + _DAY
    certs = certificates if certificates is not None else await _certificates(session, rows, lo, hi)
    scorecard = await stats.supplier_stats(session, sorted({a.org_id for a in rows}))
    used = await utilisation(session, rows, now, plans, booked_hours)
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
