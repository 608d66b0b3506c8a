"""The candidate statement of ``matching``: the rows that pass every time-independent hard constraint.

SQL prefilter (:func:`matching.conditions_repository.static_conditions`) = every hard constraint that does not
depend on time: published listing of a verified organisation, kind, ``process_codes && serving codes``, material,
sorted envelope, tolerance, certificates held (verified, valid at some point of the request window), distance
(``earth_box`` for the index, then the engine's own haversine formula so the boundary agrees), region prefixes,
currency and budget (the engine's exact integer price). It is exact, so it never drops a candidate the engine would
accept; the engine then checks the time-dependent constraints and ranks.

Speed (docs/performance.md, "Matching"): one statement selects the candidates, built once per request *shape*
(:func:`matching.prefilter.shape`) and executed with the request's values as bind parameters. A located request
walks ``matchable_processes`` (the read model once per process code, migration 0026) nearest first, at most
``nearest`` listings per serving process, with bitmap and sequential scans off for that statement
(``listings.read_model_repository.WALK_OFF``); a request without a location scans the narrow read model
``matchable_assets`` (published listings of verified organisations, kept by triggers, migration 0007) on its GIN
process index (for region prefixes, the region's sites first, then their listings via ``site_id = ANY(...)``). A
materialised CTE of id, price, start and distance feeds a one-row aggregate, the best ``cap`` are picked by the
cheap score and only those are joined back to their asset/site columns, certificates and recently booked hours.
It runs under ``plan_cache_mode = force_custom_plan`` (the driver's prepared statements otherwise get generic
plans).

The shell's ``organisations`` and ``bookings`` tables are referenced read-only through lightweight ``sa.table``
clauses (the documented contract, see docs/architecture.md): ``organisations`` in
:mod:`matching.conditions_repository`, ``bookings`` in :mod:`listings.calendar_repository`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.calendar_repository import NOT_USED, booked_hours_in, bookings
from listings.models import Asset, Certificate, Site
from listings.planner_repository import restore_settings, settings_off
from listings.read_model_repository import WALK_OFF, matchable, matchable_processes, nearest_first
from matching.conditions_repository import (
    Binder,
    distance_ok,
    location_ok,
    organisations,
    price_sql,
    published,
    region_ok,
    sites_where,
    static_conditions,
)
from matching.prefilter import NEAREST, AssetRow, ServingCodes, distance_limited, request_values, shape
from matching.types import CertificateInfo, MatchRequest

DEFAULT_CAP = 200


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
    sa.cast(col(Asset.weekly_plan), sa.Text),  # decoded once per distinct plan (listings.calendar.Plans)
    col(Site.timezone),
    col(Site.latitude),
    col(Site.longitude),
    col(Site.region_code),
    organisations.c.verification_status == "verified",
)


def row_select(*extra: Any, after: tuple[Any, Any] | None = None) -> Any:
    """The rows' columns and ``extra``; ``after`` (``(table, on)``): every row of ``table`` left-joined to them."""
    rows = Asset.__table__.join(Site, col(Site.id) == col(Asset.site_id))  # type: ignore[attr-defined]
    rows = rows.join(organisations, organisations.c.id == col(Asset.org_id))
    return sa.select(*_ROW_COLUMNS, *extra).select_from(rows if after is None else after[0].outerjoin(rows, after[1]))


def asset_rows_of(rows: Sequence[Any]) -> list[AssetRow]:
    n = len(_ROW_COLUMNS)
    return [AssetRow(*r[:n]) for r in rows]


@dataclass(frozen=True)
class Selected:
    rows: list[AssetRow]
    total: int  # rows passing the prefilter (more than ``len(rows)`` when capped)
    certificates: dict[tuple[uuid.UUID, uuid.UUID], list[CertificateInfo]]
    booked_hours: dict[uuid.UUID, float] | None  # machines' booked hours over the utilisation window
    nearest: int | None = None  # set when only the listings among this many nearest of a process were ranked


def _extra_columns(p: Binder, with_hours: bool) -> list[Any]:
    """Correlated subqueries (per selected asset): its certificates as JSON (as :func:`certificates`) and,
    ``with_hours``, its booked hours over the utilisation window (as :func:`listings.calendar.utilisation`)."""
    certs = (
        sa.select(
            sa.func.json_agg(
                pg.aggregate_order_by(
                    sa.func.json_build_array(
                        col(Certificate.standard), col(Certificate.valid_from), col(Certificate.valid_until)
                    ),
                    col(Certificate.id),  # the same list whatever plan reads them
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
        hours = (
            sa.select(booked_hours_in(window))
            .where(
                bookings.c.asset_id == col(Asset.id),
                col(Asset.kind) == "machine",
                bookings.c.period.bool_op("&&")(window),
                bookings.c.status.notin_(NOT_USED),
            )
            .scalar_subquery()
        )
        out.append(hours)
    return out


def selected_rows(rows: Sequence[Any], total: int, with_hours: bool) -> Selected:
    n = len(_ROW_COLUMNS)
    rows = [r for r in rows if r[0] is not None]  # the capped statement's counts come without a listing if none passed
    assets = asset_rows_of(rows)
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


async def custom_plan(
    session: AsyncSession, stmt: Any, params: Mapping[str, Any] | None = None, *, walk: bool = False
) -> list[Any]:
    """Run ``stmt`` with a plan made for its actual parameters (``walk``: and as the nearest-first walk).

    The driver prepares statements and PostgreSQL switches a prepared statement to a generic plan after five
    executions; for the candidate query (earth box, process codes, budget ...) a generic plan can be an order
    of magnitude slower than the custom one. The setting is transaction-local (it also applies to the rest of
    the caller's transaction, where it only costs planning time). The walk's settings are set in the same
    round trip and given back after the statement (after success only: a failure aborts the transaction)."""
    setup = [
        sa.func.set_config("plan_cache_mode", "force_custom_plan", True),
        *(settings_off(WALK_OFF) if walk else []),
    ]
    previous = (await session.execute(sa.select(*setup))).one()[1 : 1 + len(WALK_OFF)]
    rows = list((await session.execute(stmt, dict(params) if params else None)).all())
    if walk:
        await restore_settings(session, WALK_OFF, previous)
    return rows


async def select_rows(
    session: AsyncSession,
    request: MatchRequest,
    *,
    serving_codes: ServingCodes,
    cap: int | None = DEFAULT_CAP,
    now: datetime | None = None,
    nearest: int = NEAREST,
) -> Selected:
    """Rows passing the static prefilter (all of them, or the best ``cap`` by the cheap score) and their count.

    Capped, a located request ranks only those among the ``nearest`` listings of each serving process
    (:func:`listings.read_model_repository.nearest_first`); ``Selected.nearest`` says when that bound was reached.

    One statement: a narrow CTE (id, price, start, distance — each computed once per matching row) feeds a
    one-row min/max/count aggregate, the best ``cap`` ids are picked by the cheap score, and only those are
    joined back to their asset, site and organisation columns, with their certificates and (given ``now``)
    recently booked hours as correlated subqueries."""
    key = shape(request, cap=cap, now=now)
    stmt = STATEMENTS.get(key)
    if stmt is None:
        stmt = candidate_statement(request, Binder(None), capped=cap is not None, with_hours=now is not None)
        if len(STATEMENTS) >= 256:
            STATEMENTS.clear()
        STATEMENTS[key] = stmt
    values = request_values(request, serving_codes, now=now, cap=cap, nearest=nearest)
    located = request.lat is not None and request.lon is not None
    rows = await custom_plan(session, stmt, values, walk=located and cap is not None)  # only a capped one walks
    if cap is None:
        return selected_rows(rows, len(rows), now is not None)
    total, walked = int(rows[0][-2]), int(rows[0][-1])  # always one row at least (see selected_rows)
    selected = selected_rows(rows, total, now is not None)
    # A walk that met ``nearest`` listings of its process stopped before the farther ones.
    return replace(selected, nearest=nearest) if walked >= nearest else selected


STATEMENTS: dict[tuple[Any, ...], Any] = {}  # candidate statements by request shape (see matching.prefilter.shape)


def candidate_statement(request: MatchRequest, p: Binder, *, capped: bool, with_hours: bool) -> Any:
    """The statement of :func:`select_rows` for requests of ``request``'s shape (values from ``p``)."""
    extras = _extra_columns(p, with_hours)
    if not capped:
        where = [*published(), *static_conditions(request, (), location=False, p=p)]
        if (near_ok := location_ok(request, p)) is not None:
            where.append(col(Asset.site_id) == sites_where(near_ok))
        return row_select(*extras).where(*where)
    # Every matching row is read once here, so it is read from the narrow read model, not the wide assets rows.
    located = request.lat is not None and request.lon is not None

    def conditions(src: Any) -> tuple[list[Any], list[Any]]:
        where = static_conditions(request, (), location=False, src=src, p=p)
        if request.region_prefixes:
            where.append(src.site_id == sites_where(region_ok(request, p)))
        start = sa.func.greatest(sa.func.coalesce(src.next_free_at, p("deadline")), p("earliest"))
        values = [  # float, not numeric, arithmetic in the ORDER BY
            sa.cast(price_sql(request, src, p), sa.Float).label("p"),
            sa.cast(sa.extract("epoch", start), sa.Float).label("t"),
        ]
        if located:
            # Only ranks (min-max normalised): earthdistance's great-circle ``<@>`` (miles, one C call per row)
            # orders like the engine's haversine; the distance limit itself is decided with the engine's formula.
            here = sa.func.point(p("lon"), p("lat"))
            values.append(sa.func.point(src.longitude, src.latitude).op("<@>")(here).label("d"))
        return where, values

    walked: Any = sa.literal(0)
    if located:
        # Those that pass among the ``nearest`` listings of each process (NEAREST); the walk tests the radius.
        mp = matchable_processes.c
        distance = distance_ok(p, mp.latitude, mp.longitude) if distance_limited(request) else []
        matched, walked = nearest_first(conditions, p, distance=distance)
    else:
        where, values = conditions(matchable.c)
        matched = sa.select(matchable.c.asset_id.label("id"), *values).where(*where).cte("matched")
        matched = matched.prefix_with("MATERIALIZED")
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
    counts = [sa.func.count().label("n"), walked.label("walked")]
    span = sa.select(*counts, *factors).select_from(matched).cte("span").prefix_with("MATERIALIZED")
    r = span.c
    order = sum((r[f"k{name}"] * m[name] for name in names[1:]), r["kp"] * m.p)
    best = (
        sa.select(m.id, r.n, r.walked)
        .select_from(span.outerjoin(matched, sa.true()))  # the counts even when none passed
        .order_by(order, m.id)
        .limit(p("cap"))
        .subquery("best")
    )
    return row_select(*extras, best.c.n, best.c.walked, after=(best, best.c.id == col(Asset.id)))
