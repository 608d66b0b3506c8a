"""All SQL of the listings domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from listings.models import (
    Asset,
    AssetStatusEvent,
    AvailabilityException,
    Certificate,
    ListingFlag,
    Site,
)
from listings.planner_repository import restore_settings, settings_off
from listings.read_model_repository import TEXT_ARRAY, cheapest_first, few_listings_serve

# The app shell's organisations table, referenced read-only (listings never imports the shell).
organisations = sa.table("organisations", sa.column("id"), sa.column("verification_status"))


def _earth(lat: Any, lon: Any) -> Any:
    return sa.func.ll_to_earth(lat, lon)


# Off for a distance sort's nearest-sites walk (:meth:`ListingsRepository.prefer_knn_scans`).
_KNN_OFF = ("enable_bitmapscan",)


@dataclass
class SearchFilters:
    serving_codes: list[str] | None = None
    material: str | None = None
    envelope_sorted: tuple[float, float, float] | None = None
    tolerance_mm: float | None = None
    certificate: str | None = None
    certificate_valid_from: date | None = None
    certificate_valid_until: date | None = None
    region_prefixes: list[str] = field(default_factory=list)
    near: tuple[float, float] | None = None
    radius_km: float | None = None
    max_hourly_rate: int | None = None
    max_price_per_sample: int | None = None
    kind: str | None = None
    currency: str | None = None
    org_id: uuid.UUID | None = None


_EXCEPTIONS_OVERLAPPING = (
    sa.select(AvailabilityException)
    .where(
        col(AvailabilityException.asset_id) == sa.bindparam("asset_id"),
        col(AvailabilityException.ends_at) > sa.bindparam("start"),
        col(AvailabilityException.starts_at) < sa.bindparam("end"),
    )
    .order_by(col(AvailabilityException.starts_at))
)


class ListingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- generic ---------------------------------------------------------------------------------

    async def add(self, obj: Any) -> Any:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def org_exists(self, org_id: uuid.UUID) -> bool:
        found = await self.session.execute(sa.select(organisations.c.id).where(organisations.c.id == org_id))
        return found.scalar_one_or_none() is not None

    async def org_is_verified(self, org_id: uuid.UUID) -> bool:
        status = (
            await self.session.execute(
                sa.select(organisations.c.verification_status).where(organisations.c.id == org_id)
            )
        ).scalar_one_or_none()
        return status == "verified"

    # -- sites -----------------------------------------------------------------------------------

    async def get_site(self, site_id: uuid.UUID) -> Site | None:
        return await self.session.get(Site, site_id)

    async def sites_of_org(self, org_id: uuid.UUID) -> list[Site]:
        rows = await self.session.execute(
            sa.select(Site).where(col(Site.org_id) == org_id).order_by(col(Site.created_at))
        )
        return list(rows.scalars())

    async def sites_by_ids(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Site]:
        if not ids:
            return {}
        rows = await self.session.execute(sa.select(Site).where(col(Site.id).in_(list(ids))))
        return {s.id: s for s in rows.scalars()}

    # -- certificates ----------------------------------------------------------------------------

    async def get_certificate(self, cert_id: uuid.UUID, *, for_update: bool = False) -> Certificate | None:
        stmt = sa.select(Certificate).where(col(Certificate.id) == cert_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def certificates_of_org(self, org_id: uuid.UUID) -> list[Certificate]:
        rows = await self.session.execute(
            sa.select(Certificate)
            .where(col(Certificate.org_id) == org_id)
            .order_by(col(Certificate.standard), col(Certificate.valid_until))
        )
        return list(rows.scalars())

    async def certificates_for_site(
        self, org_id: uuid.UUID, site_id: uuid.UUID, *, verified_only: bool = False
    ) -> list[Certificate]:
        """The organisation's certificates that cover ``site_id``: organisation-wide or of that site."""
        stmt = sa.select(Certificate).where(
            col(Certificate.org_id) == org_id,
            sa.or_(col(Certificate.site_id).is_(None), col(Certificate.site_id) == site_id),
        )
        if verified_only:
            stmt = stmt.where(col(Certificate.status) == "verified")
        rows = await self.session.execute(stmt.order_by(col(Certificate.standard), col(Certificate.valid_until)))
        return list(rows.scalars())

    async def delete_certificate(self, cert: Certificate) -> None:
        await self.session.delete(cert)
        await self.session.flush()

    async def valid_standards(
        self, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]], on: date
    ) -> dict[tuple[uuid.UUID, uuid.UUID], list[str]]:
        """Verified certificates valid on ``on`` for each (org, site): organisation-wide or site-specific."""
        if not pairs:
            return {}
        org_ids = list({o for o, _ in pairs})
        rows = await self.session.execute(
            sa.select(col(Certificate.org_id), col(Certificate.site_id), col(Certificate.standard)).where(
                col(Certificate.org_id).in_(org_ids),
                col(Certificate.status) == "verified",
                col(Certificate.valid_from) <= on,
                col(Certificate.valid_until) >= on,
            )
        )
        found = rows.all()
        result: dict[tuple[uuid.UUID, uuid.UUID], list[str]] = {}
        for org_id, site_id in pairs:
            result[(org_id, site_id)] = sorted(
                {std for o, s, std in found if o == org_id and (s is None or s == site_id)}
            )
        return result

    # -- assets ----------------------------------------------------------------------------------

    async def get_asset(self, asset_id: uuid.UUID, *, for_update: bool = False) -> Asset | None:
        stmt = sa.select(Asset).where(col(Asset.id) == asset_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def assets_of_org(
        self, org_id: uuid.UUID, status: str | None, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Asset]:
        stmt = sa.select(Asset).where(col(Asset.org_id) == org_id)
        if status:
            stmt = stmt.where(col(Asset.status) == status)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Asset.created_at), col(Asset.id)) > sa.tuple_(*after))
        rows = await self.session.execute(stmt.order_by(col(Asset.created_at), col(Asset.id)).limit(limit))
        return list(rows.scalars())

    async def published_assets_at_site(self, site_id: uuid.UUID) -> list[Asset]:
        rows = await self.session.execute(
            sa.select(Asset).where(col(Asset.site_id) == site_id, col(Asset.status) == "published").with_for_update()
        )
        return list(rows.scalars())

    async def pending_review(self, limit: int) -> list[Asset]:
        rows = await self.session.execute(
            sa.select(Asset)
            .where(col(Asset.status) == "pending_review")
            .order_by(col(Asset.submitted_at), col(Asset.id))
            .limit(limit)
        )
        return list(rows.scalars())

    async def published_assets_due_for_refresh(self, before: datetime, limit: int) -> list[Asset]:
        rows = await self.session.execute(
            sa.select(Asset)
            .where(
                col(Asset.status) == "published",
                sa.or_(col(Asset.next_free_at).is_(None), col(Asset.next_free_at) < before),
            )
            .limit(limit)
        )
        return list(rows.scalars())

    # -- availability ----------------------------------------------------------------------------

    async def exceptions_for(
        self, asset_ids: Sequence[uuid.UUID], start: datetime | None = None, end: datetime | None = None
    ) -> dict[uuid.UUID, list[AvailabilityException]]:
        result: dict[uuid.UUID, list[AvailabilityException]] = {a: [] for a in asset_ids}
        if not asset_ids:
            return result
        stmt = sa.select(AvailabilityException).where(col(AvailabilityException.asset_id).in_(list(asset_ids)))
        if start is not None:
            stmt = stmt.where(col(AvailabilityException.ends_at) > start)
        if end is not None:
            stmt = stmt.where(col(AvailabilityException.starts_at) < end)
        rows = await self.session.execute(stmt.order_by(col(AvailabilityException.starts_at)))
        for exc in rows.scalars():
            result[exc.asset_id].append(exc)
        return result

    async def delete_exceptions(self, asset_id: uuid.UUID) -> None:
        await self.session.execute(
            sa.delete(AvailabilityException).where(col(AvailabilityException.asset_id) == asset_id)
        )

    async def exceptions_overlapping(
        self, asset_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[AvailabilityException]:
        """One asset's exceptions overlapping ``[start, end)``, in start order (every booking checks them)."""
        rows = await self.session.execute(_EXCEPTIONS_OVERLAPPING, {"asset_id": asset_id, "start": start, "end": end})
        return list(rows.scalars())

    async def delete(self, obj: Any) -> None:
        await self.session.delete(obj)

    # -- flags and history -----------------------------------------------------------------------

    async def open_flags(self, limit: int) -> list[ListingFlag]:
        rows = await self.session.execute(
            sa.select(ListingFlag)
            .where(col(ListingFlag.status) == "open")
            .order_by(col(ListingFlag.created_at))
            .limit(limit)
        )
        return list(rows.scalars())

    async def get_flag(self, flag_id: uuid.UUID) -> ListingFlag | None:
        return await self.session.get(ListingFlag, flag_id)

    async def open_flag_of(self, asset_id: uuid.UUID, reporter_user_id: uuid.UUID) -> ListingFlag | None:
        """The reporter's open flag on the listing, if any."""
        rows = await self.session.execute(
            sa.select(ListingFlag)
            .where(
                col(ListingFlag.asset_id) == asset_id,
                col(ListingFlag.reporter_user_id) == reporter_user_id,
                col(ListingFlag.status) == "open",
            )
            .limit(1)
        )
        return rows.scalars().first()

    async def status_events(self, asset_id: uuid.UUID) -> list[AssetStatusEvent]:
        rows = await self.session.execute(
            sa.select(AssetStatusEvent)
            .where(col(AssetStatusEvent.asset_id) == asset_id)
            .order_by(col(AssetStatusEvent.id))
        )
        return list(rows.scalars())

    # -- search ----------------------------------------------------------------------------------

    async def search_page(
        self,
        f: SearchFilters,
        sort: str,
        *,
        after: Sequence[tuple[Any, uuid.UUID]],
        limit: int,
        from_read_model: bool | None = None,
    ) -> list[Any]:
        """Up to ``limit`` rows (asset, site, distance_km, sort_value) of :meth:`search_statement` in sort order,
        past every keyset cursor in ``after``. ``from_read_model`` (default: :meth:`drives_from_read_model`) drives
        a price sort with process codes from the read model."""
        if from_read_model is None:
            from_read_model = await self.drives_from_read_model(f, sort)
        stmt, sort_expr = self.search_statement(f, sort, from_read_model=from_read_model)
        stmt = stmt.add_columns(sort_expr.label("sort_value"))
        for key in after:
            stmt = stmt.where(sa.tuple_(sort_expr, col(Asset.id)) > sa.tuple_(sa.literal(key[0]), sa.literal(key[1])))
        stmt = stmt.order_by(sort_expr, col(Asset.id)).limit(limit)
        if not (sort == "distance" and f.near):
            return list((await self.session.execute(stmt)).all())
        previous = await self.prefer_knn_scans()
        rows = list((await self.session.execute(stmt)).all())
        await restore_settings(self.session, _KNN_OFF, [previous])  # after success only
        return rows

    async def drives_from_read_model(self, f: SearchFilters, sort: str) -> bool:
        """Whether a search is driven from the read model: a price sort of a rare process (``few_listings_serve``).
        Decided once per search: every page batch of it then plans alike."""
        codes = f.serving_codes
        return sort == "price" and codes is not None and await few_listings_serve(self.session, codes)

    async def prefer_knn_scans(self) -> str:
        """Plan the distance sort's nearest-sites walk as a KNN scan of ``ix_sites_earth`` (bitmap scans off for
        the rest of the transaction); returns the setting to restore.

        PostgreSQL prices ``earth_box(...) @> point`` with a fixed selectivity (0.1 % of the sites), so a radius
        always looks like a few dozen sites and a bitmap scan of the whole box plus a sort looks cheapest. In a
        dense market a 150 km radius holds ~28,000 sites: that plan took 204 ms where the KNN scan, which stops
        after the first page, takes under 1 ms (1M listings, docs/performance.md)."""
        row = await self.session.execute(sa.select(*settings_off(_KNN_OFF)))
        return str(row.one()[0])

    def search_statement(self, f: SearchFilters, sort: str, *, from_read_model: bool = False) -> tuple[Any, Any]:
        """The published-listings query with every SQL-expressible filter, and its sort expression.
        ``from_read_model`` drives a price sort with process codes from the read model (``few_listings_serve``)."""
        distance = (
            sa.func.earth_distance(_earth(f.near[0], f.near[1]), _earth(col(Site.latitude), col(Site.longitude)))
            if f.near
            else sa.literal(None, sa.Float)
        )
        stmt = (
            sa.select(Asset, Site, (distance / 1000.0).label("distance_km"))
            .join(Site, col(Site.id) == col(Asset.site_id))
            .join(organisations, organisations.c.id == col(Asset.org_id))
            .where(col(Asset.status) == "published", organisations.c.verification_status == "verified")
        )
        if f.kind:
            stmt = stmt.where(col(Asset.kind) == f.kind)
        if f.org_id:
            stmt = stmt.where(col(Asset.org_id) == f.org_id)
        if f.serving_codes is not None:
            stmt = stmt.where(col(Asset.process_codes).op("&&")(sa.cast(f.serving_codes, TEXT_ARRAY)))
        if f.material:
            stmt = stmt.where(col(Asset.materials).op("@>")(sa.cast([f.material], TEXT_ARRAY)))
        if f.envelope_sorted:
            a, b, c = f.envelope_sorted
            stmt = stmt.where(
                col(Asset.envelope_max_mm) >= a, col(Asset.envelope_mid_mm) >= b, col(Asset.envelope_min_mm) >= c
            )
        if f.tolerance_mm is not None:
            stmt = stmt.where(col(Asset.tolerance_mm) <= f.tolerance_mm)
        if f.max_hourly_rate is not None:
            stmt = stmt.where(col(Asset.hourly_rate) <= f.max_hourly_rate)
        if f.max_price_per_sample is not None:
            stmt = stmt.where(col(Asset.price_per_sample) <= f.max_price_per_sample)
        if f.currency:
            stmt = stmt.where(col(Asset.currency) == f.currency)
        site_conditions: list[Any] = []
        if f.region_prefixes:
            site_conditions.append(
                sa.or_(*[col(Site.region_code).startswith(p, autoescape=True) for p in f.region_prefixes])
            )
        if f.near and f.radius_km is not None:
            radius_m = f.radius_km * 1000.0
            site_conditions += [
                sa.func.earth_box(_earth(f.near[0], f.near[1]), radius_m).op("@>")(
                    _earth(col(Site.latitude), col(Site.longitude))
                ),
                distance <= radius_m,
            ]
        if f.certificate:
            valid_from = f.certificate_valid_from or date.today()
            valid_until = f.certificate_valid_until or valid_from
            stmt = stmt.where(
                sa.exists().where(
                    col(Certificate.org_id) == col(Asset.org_id),
                    sa.or_(col(Certificate.site_id).is_(None), col(Certificate.site_id) == col(Asset.site_id)),
                    col(Certificate.standard) == f.certificate,
                    col(Certificate.status) == "verified",
                    col(Certificate.valid_from) <= valid_from,
                    col(Certificate.valid_until) >= valid_until,
                )
            )
        sort_expr: Any
        if sort == "price" and from_read_model and f.serving_codes is not None:
            # A rare process: its listings cheapest first from the read model, each then joined and checked
            # against the other filters until a page is full (the read model holds only published listings of
            # verified organisations, the rows the joins above keep anyway).
            cheapest = cheapest_first(f.serving_codes, f.kind)
            stmt = stmt.join(cheapest, cheapest.c.asset_id == col(Asset.id))
            sort_expr = cheapest.c.price
        elif sort == "price":
            sort_expr = sa.func.coalesce(col(Asset.hourly_rate), col(Asset.price_per_sample))
        elif sort == "distance" and f.near:
            # Driven from the sites nearest first: the straight-line (chord) distance between the earth points,
            # which the GiST index ix_sites_earth returns in order (``<->``, a KNN scan that can stop after a
            # page); the great-circle distance is a monotonic function of it, so the order is the same
            # (tests/listings/test_search_knn.py). OFFSET 0 keeps the subquery (and its ordering) as written.
            knn = _earth(col(Site.latitude), col(Site.longitude)).op("<->", return_type=sa.Float)(
                _earth(f.near[0], f.near[1])
            )
            nearest = (
                sa.select(col(Site.id).label("site_id"), knn.label("knn"))
                .where(*site_conditions)
                .order_by(knn)
                .offset(0)
                .subquery("nearest_sites")
            )
            site_conditions = []
            stmt = stmt.join(nearest, nearest.c.site_id == col(Site.id))
            sort_expr = nearest.c.knn
        elif sort == "distance":
            sort_expr = distance
        else:  # next_free
            # Listings with no free slot in the horizon sort last (a far-future stand-in keeps the cursor a date).
            sort_expr = sa.func.coalesce(
                col(Asset.next_free_at), sa.literal_column("'9999-12-31T00:00:00Z'::timestamptz")
            )
        return stmt.where(*site_conditions), sort_expr


# --- queries for the web pages ---
class ListingsPageQueries:
    """Reads the web pages need beyond the service's (used by marketplace/web)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def latest_published(self, limit: int) -> list[Asset]:
        """The newest listings anyone may open (published, of a verified organisation)."""
        rows = await self.session.execute(
            sa.select(Asset)
            .join(organisations, organisations.c.id == col(Asset.org_id))
            .where(col(Asset.status) == "published", organisations.c.verification_status == "verified")
            .order_by(col(Asset.published_at).desc().nulls_last())
            .limit(limit)
        )
        return list(rows.scalars())

    async def market_figures(self) -> dict[str, int]:
        """What the public search shows, counted in one query: published machines and lab services of verified
        organisations, the organisations behind them and their regions (prefecture level: 4 code digits)."""
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.count().filter(col(Asset.kind) == "machine").label("machines"),
                    sa.func.count().filter(col(Asset.kind) == "lab_service").label("lab_services"),
                    sa.func.count(sa.distinct(col(Asset.org_id))).label("factories"),
                    sa.func.count(sa.distinct(sa.func.left(col(Site.region_code), 4))).label("regions"),
                )
                .join(Site, col(Site.id) == col(Asset.site_id))
                .join(organisations, organisations.c.id == col(Asset.org_id))
                .where(col(Asset.status) == "published", organisations.c.verification_status == "verified")
            )
        ).one()
        return {key: int(row._mapping[key]) for key in ("machines", "lab_services", "factories", "regions")}

    async def titles(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Asset titles by id, in one query."""
        if not ids:
            return {}
        rows = await self.session.execute(sa.select(col(Asset.id), col(Asset.title)).where(col(Asset.id).in_(ids)))
        return {i: t for i, t in rows.all()}

    async def site_zones(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Sites' IANA time zones by site id, in one query (times of a site's slots are shown in its zone)."""
        if not ids:
            return {}
        rows = await self.session.execute(sa.select(col(Site.id), col(Site.timezone)).where(col(Site.id).in_(ids)))
        return {i: tz for i, tz in rows.all()}
