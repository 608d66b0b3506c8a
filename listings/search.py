"""Search over published listings of verified organisations. Functions take a session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.errors import Invalid
from listings.models import Asset, AssetKind, Site
from listings.ports import BlockedTime, Interval, ListingsConfig
from listings.repository import ListingsRepository, SearchFilters
from listings.slots import next_free_slots
from listings.taxonomy import get_taxonomy


@dataclass
class SearchQuery:
    process: str | None = None
    material: str | None = None
    min_x: float | None = None
    min_y: float | None = None
    min_z: float | None = None
    tolerance_mm: float | None = None
    certificate: str | None = None
    region: list[str] | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    max_hourly_rate: int | None = None
    max_price_per_sample: int | None = None
    kind: str | None = None
    currency: str | None = None
    free_minutes: int | None = None
    free_from: datetime | None = None
    free_to: datetime | None = None
    sort: str = "next_free"
    limit: int = 20
    after: tuple[Any, uuid.UUID] | None = None


@dataclass
class SearchHit:
    asset: Asset
    site: Site
    distance_km: float | None
    next_free_slot: Interval | None
    certificates: list[str]
    sort_value: Any


def _filters(q: SearchQuery) -> SearchFilters:
    tax = get_taxonomy()
    serving = None
    kind = q.kind
    if q.process:
        if not tax.is_process(q.process):
            raise Invalid(f"process: unknown process code {q.process!r}")
        serving = sorted(tax.serving_codes(q.process))
        # Implied by the process (the same rows), stated so the next-free sort walks that kind's listings
        # only (index ix_assets_search_next_free_kind): lab services, free from today, would otherwise be
        # passed one by one before the first machine of a machine process.
        kind = kind or tax.serving_kind(q.process)
    if q.material and not tax.is_material(q.material):
        raise Invalid(f"material: unknown material code {q.material!r}")
    dims = [d for d in (q.min_x, q.min_y, q.min_z) if d is not None]
    env = None
    if dims:
        padded = sorted(dims + [0.0] * (3 - len(dims)), reverse=True)
        env = (padded[0], padded[1], padded[2])
    if (q.lat is None) != (q.lon is None):
        raise Invalid("lat and lon go together.")
    if q.radius_km is not None and q.lat is None:
        raise Invalid("radius_km needs lat and lon.")
    if q.sort == "distance" and q.lat is None:
        raise Invalid("sort=distance needs lat and lon.")
    free_given = [q.free_minutes is not None, q.free_from is not None, q.free_to is not None]
    if any(free_given) and not all(free_given):
        raise Invalid("free_minutes, free_from and free_to go together.")
    if q.free_from and q.free_to and q.free_to <= q.free_from:
        raise Invalid("free_to must be after free_from.")
    return SearchFilters(
        serving_codes=serving,
        material=q.material,
        envelope_sorted=env,
        tolerance_mm=q.tolerance_mm,
        certificate=q.certificate,
        certificate_valid_from=q.free_from.date() if q.free_from else None,
        certificate_valid_until=q.free_to.date() if q.free_to else None,
        region_prefixes=[r for r in (q.region or []) if r],
        near=(q.lat, q.lon) if q.lat is not None and q.lon is not None else None,
        radius_km=q.radius_km,
        max_hourly_rate=q.max_hourly_rate,
        max_price_per_sample=q.max_price_per_sample,
        kind=kind,
        currency=q.currency,
    )


async def search(
    session: AsyncSession, q: SearchQuery, *, config: ListingsConfig, blocked: BlockedTime
) -> tuple[list[SearchHit], tuple[Any, uuid.UUID] | None]:
    """Published listings of verified organisations, filtered in SQL (indexes: GIN on process codes and
    materials, GiST on the site's earth position), sorted by price, distance or next free slot, with a
    keyset cursor. The "free for N minutes between A and B" filter is checked per candidate against the
    real calendar; it scans at most ``search_scan_limit`` candidates per page."""
    filters = _filters(q)
    repo = ListingsRepository(session)
    hits: list[SearchHit] = []
    scanned = 0
    last_key: tuple[Any, uuid.UUID] | None = None
    batch = q.limit if q.free_minutes is None else max(q.limit * 4, 50)
    given = [q.after] if q.after is not None else []
    cursors = given  # the next batch starts past these (the caller's cursor, then the previous batch's last row)
    from_read_model = await repo.drives_from_read_model(filters, q.sort)  # once, not once per batch
    while len(hits) < q.limit and scanned < config.search_scan_limit:
        rows = await repo.search_page(filters, q.sort, after=cursors, limit=batch, from_read_model=from_read_model)
        if not rows:
            last_key = None
            break
        candidates = [(r[0], r[1], r[2], r[3]) for r in rows]
        accepted = await _with_calendar(session, candidates, q=q, config=config, blocked=blocked)
        for asset, site, dist, sort_value, slot in accepted:
            last_key = (sort_value, asset.id)
            if slot is None and q.free_minutes is not None:
                continue
            hits.append(SearchHit(asset, site, dist, slot, [], sort_value))
            if len(hits) == q.limit:
                break
        scanned += len(rows)
        if len(rows) < batch and len(hits) < q.limit:
            last_key = None
            break
        if len(hits) < q.limit:
            if last_key is None:  # a full batch always has a last row
                break
            cursors = [*given, last_key]
    if len(hits) == q.limit and hits:
        last_key = (hits[-1].sort_value, hits[-1].asset.id)
    certs = await repo.valid_standards([(h.asset.org_id, h.asset.site_id) for h in hits], date.today())
    for h in hits:
        h.certificates = certs.get((h.asset.org_id, h.asset.site_id), [])
    return hits, last_key


async def _with_calendar(
    session: AsyncSession,
    rows: Sequence[tuple[Asset, Site, float | None, Any]],
    *,
    q: SearchQuery,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> list[tuple[Asset, Site, float | None, Any, Interval | None]]:
    """Attach each candidate's next free slot (within the free filter's window when given)."""
    pairs = [(a, s) for a, s, _, _ in rows]
    if q.free_minutes is not None and q.free_from is not None and q.free_to is not None:
        slots = await next_free_slots(
            session,
            pairs,
            config=config,
            blocked=blocked,
            earliest=q.free_from,
            duration_minutes=q.free_minutes,
            latest_end=q.free_to,
        )
        for asset, _ in pairs:  # a lab qualifies with a drop-off day that starts inside the window
            slot = slots[asset.id]
            if slot is not None and asset.kind == AssetKind.lab_service and slot[0] >= q.free_to:
                slots[asset.id] = None
    else:
        slots = await next_free_slots(session, pairs, config=config, blocked=blocked)
    return [(a, s, d, v, slots[a.id]) for a, s, d, v in rows]
