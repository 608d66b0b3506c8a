"""The time-independent hard constraints of ``matching`` as SQL conditions, and the rejection counts they give.

Each builder turns one constraint of :func:`matching.feasibility.check` into a WHERE clause over the ``assets``
table (joined with ``sites``) or the read model ``matchable``; :func:`static_conditions` is all of them, which
the candidate statement (:mod:`matching.repository`) uses as its exact prefilter. Request values come from a
:class:`Binder`: embedded in the statement, or named placeholders so that a statement is built once per request
shape and executed with each request's values (named in :func:`matching.prefilter.request_values`).

:func:`static_rejections` counts, over the same listings, the first constraint each one fails: why a request
found nothing ("no listing has this material") without loading a single candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import Asset, Certificate, Site
from listings.read_model_repository import TEXT_ARRAY
from matching.feasibility import EARTH_RADIUS_KM
from matching.prefilter import ServingCodes, distance_limited, request_values, standards
from matching.types import MatchRequest

# The shell's tables, referenced read-only (matching never imports the shell).
organisations = sa.table("organisations", sa.column("id"), sa.column("verification_status"))

# The condition builders below read their columns from ``src``: the ``assets`` table (default) or ``matchable``.
ASSETS: Any = Asset.__table__.c  # type: ignore[attr-defined]


def norm_sql(expr: Any) -> Any:
    return sa.func.lower(sa.func.regexp_replace(sa.func.btrim(expr), r"\s+", " ", "g"))


# -- request values as bind parameters ------------------------------------------------------------------
#
# Builders ask a ``Binder`` for each request value (named in :func:`matching.prefilter.request_values`): an
# ad-hoc binder embeds the value (an anonymous bind parameter, as a literal would), a shape binder returns a
# named placeholder. The hot path (:func:`matching.repository.select_rows`) builds its statement once per shape and
# executes it with the values, which saves building the expression tree and its cache key (~8 ms CPU).

_BIND_TYPES: dict[str, Any] = {
    "kind": sa.Text(),
    "codes": TEXT_ARRAY,
    "material": TEXT_ARRAY,
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
    "nearest": sa.Integer(),
}


def _bind_type(name: str) -> Any:
    return _BIND_TYPES.get(name) or sa.Text()  # cert_<i>, region_<i>


class Binder:
    """``binder(name)``: the request value ``name`` as a bind parameter, embedded (``values`` given) or a named
    placeholder filled at execution (``values=None``)."""

    def __init__(self, values: Mapping[str, Any] | None) -> None:
        self.values = values

    def __call__(self, name: str) -> Any:
        if self.values is None:
            return sa.bindparam(name, type_=_bind_type(name))
        return sa.bindparam(None, self.values[name], type_=_bind_type(name))


def binder(request: MatchRequest, serving_codes: ServingCodes) -> Binder:
    return Binder(request_values(request, serving_codes))


# -- the static prefilter -------------------------------------------------------------------------------


def haversine_sql(p: Binder, lat: Any, lon: Any) -> Any:
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


def material_ok(p: Binder, src: Any = ASSETS) -> Any:
    return src.materials.bool_op("@>")(sa.cast(p("material"), TEXT_ARRAY))


def envelope_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any | None:
    if request.part_size_mm is None or request.kind != "machine":
        return None  # lab services have no work envelope and pass
    return sa.and_(
        src.envelope_max_mm >= p("env_big"), src.envelope_mid_mm >= p("env_mid"), src.envelope_min_mm >= p("env_small")
    )


def certificates_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any | None:
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
                norm_sql(col(Certificate.standard)) == p(f"cert_{i}"),
            )
            for i in range(len(standards(request)))
        ]
    )


def distance_ok(p: Binder, lat: Any, lon: Any) -> list[Any]:
    """The distance limit at (``lat``, ``lon``): ``earth_box`` for a GiST index on ``ll_to_earth(lat, lon)``, then
    the engine's own haversine so the boundary agrees."""
    box = sa.func.earth_box(sa.func.ll_to_earth(p("lat"), p("lon")), p("box_m"))
    return [box.bool_op("@>")(sa.func.ll_to_earth(lat, lon)), haversine_sql(p, lat, lon) <= p("max_km")]


def region_ok(request: MatchRequest, p: Binder) -> Any:
    n = len(request.region_prefixes)
    return sa.or_(*[col(Site.region_code).like(p(f"region_{i}"), escape="/") for i in range(n)])


def sites_where(condition: Any) -> Any:
    """``= ANY`` of the ids of the sites meeting ``condition``, collected first (GiST earth index / region prefix
    index): the planner otherwise walks every nearby site and its listings one by one."""
    near = sa.select(col(Site.id)).where(condition).cte("near").prefix_with("MATERIALIZED")
    return sa.any_(sa.func.array(sa.select(near.c.id).scalar_subquery()))


def location_ok(request: MatchRequest, p: Binder) -> Any | None:
    """Distance limit and region prefixes, over ``sites``."""
    parts: list[Any] = []
    if distance_limited(request):
        parts += distance_ok(p, col(Site.latitude), col(Site.longitude))
    if request.region_prefixes:
        parts.append(region_ok(request, p))
    return sa.and_(*parts) if parts else None


def budget_ok(request: MatchRequest, p: Binder, src: Any = ASSETS) -> Any:
    price = price_sql(request, src, p)
    if request.budget_max is None:
        return price.isnot(None)
    return price <= p("budget")


def static_conditions(
    request: MatchRequest,
    serving_codes: ServingCodes,
    *,
    location: bool = True,
    src: Any = ASSETS,
    p: Binder | None = None,
) -> list[Any]:
    """WHERE clauses (over assets joined with sites, or over ``matchable`` with ``location=False``) for every
    time-independent hard constraint (without the location constraint when ``location`` is false: the caller
    applies :func:`location_ok` itself). Values come from ``p`` (default: embedded)."""
    p = p or binder(request, serving_codes)
    conds: list[Any] = [
        src.kind == p("kind"),
        src.process_codes.bool_op("&&")(sa.cast(p("codes"), TEXT_ARRAY)),
    ]
    if request.material is not None:
        conds.append(material_ok(p, src))
    for extra in (
        envelope_ok(request, p, src),
        certificates_ok(request, p, src),
        location_ok(request, p) if location else None,
    ):
        if extra is not None:
            conds.append(extra)
    if request.tolerance_mm is not None:
        conds.append(src.tolerance_mm <= p("tolerance"))
    conds.append(src.currency == p("currency"))
    conds.append(budget_ok(request, p, src))
    return conds


def published() -> list[Any]:
    return [col(Asset.status) == "published", organisations.c.verification_status == "verified"]


async def static_rejections(
    session: AsyncSession, request: MatchRequest, serving_codes: ServingCodes
) -> dict[str, int]:
    """First failing time-independent constraint, counted over the published listings (of verified
    organisations) of the request's kind that offer the process, in the engine's order."""
    p = binder(request, serving_codes)
    checks: list[tuple[str, Any]] = []
    if request.material is not None:
        checks.append(("material", material_ok(p)))
    if (env := envelope_ok(request, p)) is not None:
        checks.append(("envelope", env))
    if request.tolerance_mm is not None:
        checks.append(("tolerance", col(Asset.tolerance_mm) <= p("tolerance")))
    if (certs := certificates_ok(request, p)) is not None:
        checks.append(("certificate", certs))
    if (loc := location_ok(request, p)) is not None:
        checks.append(("location", loc))
    checks.append(("currency", col(Asset.currency) == p("currency")))
    checks.append(("budget", budget_ok(request, p)))
    reason = sa.case(*[(sa.not_(sa.func.coalesce(cond, False)), name) for name, cond in checks], else_=None)
    stmt = (
        sa.select(reason.label("reason"), sa.func.count())
        .select_from(Asset)
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(organisations, organisations.c.id == col(Asset.org_id))
        .where(
            *published(),
            col(Asset.kind) == p("kind"),
            col(Asset.process_codes).bool_op("&&")(sa.cast(p("codes"), TEXT_ARRAY)),
        )
        .group_by(sa.literal_column("reason"))
    )
    return {str(r): int(n) for r, n in (await session.execute(stmt)).all() if r is not None}
