"""Availability of one listing at a time: its plan and exceptions, free slots, lab capacity and the cached
``next_free_at``. (Many assets at once, for matching: :mod:`listings.calendar`.) Functions never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings.access import owned_asset, site_of, utcnow, visible_asset
from listings.actor import Actor
from listings.calendar import lab_days, open_weekdays
from listings.errors import Invalid
from listings.models import Asset, AssetKind, AvailabilityException, Site
from listings.ports import BlockedTime, Interval, ListingsConfig
from listings.repository import ListingsRepository
from listings.schemas import AvailabilityIn, AvailabilitySyncIn, ExceptionIn


def weekly_windows(asset: Asset) -> list[av.WeeklyWindow]:
    return av.weekly_windows(asset.weekly_plan)


def exception_ranges(rows: Sequence[AvailabilityException]) -> list[av.ExceptionRange]:
    return [av.ExceptionRange(start=r.starts_at, end=r.ends_at, available=r.available) for r in rows]


async def get_availability(session: AsyncSession, viewer: Actor | None, asset_id: uuid.UUID) -> dict[str, Any]:
    asset = await visible_asset(session, viewer, asset_id)
    repo = ListingsRepository(session)
    site = await site_of(repo, asset)
    excs = (await repo.exceptions_for([asset.id]))[asset.id]
    return {
        "timezone": site.timezone,
        "weekly": asset.weekly_plan,
        "exceptions": [ExceptionIn(start=e.starts_at, end=e.ends_at, available=e.available, note=e.note) for e in excs],
    }


async def set_availability(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    *,
    data: AvailabilityIn,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    asset = await owned_asset(repo, actor, asset_id, scope="availability:write")
    asset.weekly_plan = [w.model_dump() for w in data.weekly]
    await repo.delete_exceptions(asset.id)
    return await _save_exceptions(session, asset, items=data.exceptions, config=config, blocked=blocked)


async def sync_exceptions(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    *,
    data: AvailabilitySyncIn,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    """Replace the exceptions inside [from, to) atomically; exceptions that straddle a boundary keep
    their part outside the range."""
    repo = ListingsRepository(session)
    asset = await owned_asset(repo, actor, asset_id, scope="availability:write")
    lo, hi = data.range_from, data.range_to
    for old in await repo.exceptions_overlapping(asset.id, lo, hi):
        if old.starts_at < lo:
            session.add(
                AvailabilityException(
                    asset_id=asset.id, starts_at=old.starts_at, ends_at=lo, available=old.available, note=old.note
                )
            )
        if old.ends_at > hi:
            session.add(
                AvailabilityException(
                    asset_id=asset.id, starts_at=hi, ends_at=old.ends_at, available=old.available, note=old.note
                )
            )
        await repo.delete(old)
    return await _save_exceptions(session, asset, items=data.exceptions, config=config, blocked=blocked)


async def _save_exceptions(
    session: AsyncSession, asset: Asset, *, items: Sequence[ExceptionIn], config: ListingsConfig, blocked: BlockedTime
) -> Asset:
    """Add the new exceptions of an availability edit, then refresh the listing's ``next_free_at``."""
    for e in items:
        session.add(
            AvailabilityException(
                asset_id=asset.id, starts_at=e.start, ends_at=e.end, available=e.available, note=e.note
            )
        )
    asset.updated_at = utcnow()
    await session.flush()
    await refresh_next_free(session, asset, config=config, blocked=blocked)
    return asset


def bookable_windows(asset: Asset, free: Sequence[Interval]) -> list[Interval]:
    """Free time in which a booking's own ``[start, end)`` may lie: setup time must fit before it and
    the buffer after it, and starts sit on the slot grid."""
    setup = timedelta(minutes=asset.setup_minutes or 0)
    buffer = timedelta(minutes=asset.buffer_minutes or 0)
    grid = asset.slot_minutes or 1
    out: list[Interval] = []
    for start, end in free:
        s, e = start + setup, end - buffer
        first = av.find_slots(
            [(s, e)], timedelta(minutes=grid), granularity_minutes=grid, earliest=s, latest_end=e, limit=1
        )
        if first and first[0][0] < e:
            out.append((first[0][0], e))
    return out


async def machine_free(
    session: AsyncSession,
    assets: Sequence[tuple[Asset, Site]],
    *,
    start: datetime,
    end: datetime,
    blocked: BlockedTime,
) -> dict[uuid.UUID, list[Interval]]:
    """Free intervals (plan + open exceptions − closed exceptions − bookings) per machine, in UTC."""
    ids = [a.id for a, _ in assets]
    repo = ListingsRepository(session)
    excs = await repo.exceptions_for(ids, start, end)
    booked = await blocked.machine_blocked(session, ids, start=start, end=end)
    return {
        a.id: av.free_intervals(
            weekly_windows(a),
            s.timezone,
            exceptions=exception_ranges(excs[a.id]),
            blocked=booked.get(a.id, []),
            start=start,
            end=end,
        )
        for a, s in assets
    }


async def free_slots(
    session: AsyncSession,
    viewer: Actor | None,
    asset_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    duration_minutes: int,
    blocked: BlockedTime,
) -> list[Interval]:
    asset = await visible_asset(session, viewer, asset_id)
    if asset.kind != AssetKind.machine:
        raise Invalid("free-slots applies to machines; use lab-capacity for lab services.")
    if end <= start:
        raise Invalid("end must be after start.")
    if end - start > timedelta(days=366):
        raise Invalid("The window may span at most 366 days.")
    site = await site_of(ListingsRepository(session), asset)
    free = (await machine_free(session, [(asset, site)], start=start, end=end, blocked=blocked))[asset.id]
    need = timedelta(minutes=duration_minutes)
    return [(s, e) for s, e in bookable_windows(asset, free) if e - s >= need]


def lab_open_days(
    asset: Asset, site: Site, *, excs: Sequence[AvailabilityException], first: date, last: date
) -> list[date]:
    """Site-local days in ``[first, last]`` on which the lab accepts samples (:func:`listings.calendar.lab_days`)."""
    rows = [(e.starts_at, e.ends_at, e.available) for e in excs]
    return lab_days(open_weekdays(asset.weekly_plan), rows, zone=ZoneInfo(site.timezone), first=first, last=last)[0]


async def lab_capacity(
    session: AsyncSession,
    viewer: Actor | None,
    asset_id: uuid.UUID,
    *,
    first: date,
    last: date,
    blocked: BlockedTime,
) -> list[dict[str, Any]]:
    asset = await visible_asset(session, viewer, asset_id)
    if asset.kind != AssetKind.lab_service:
        raise Invalid("lab-capacity applies to lab services; use free-slots for machines.")
    if last < first:
        raise Invalid("to must not be before from.")
    if (last - first).days > 366:
        raise Invalid("The range may span at most 366 days.")
    repo = ListingsRepository(session)
    site = await site_of(repo, asset)
    excs = (await repo.exceptions_for([asset.id]))[asset.id]
    open_days = set(lab_open_days(asset, site, excs=excs, first=first, last=last))
    booked = (await blocked.lab_booked(session, [asset.id], start=first, end=last))[asset.id]
    cap = asset.daily_sample_capacity or 0
    out = []
    d = first
    while d <= last:
        used = booked.get(d, 0)
        is_open = d in open_days
        out.append(
            {
                "date": d,
                "capacity": cap if is_open else 0,
                "booked": used,
                "remaining": max(cap - used, 0) if is_open else 0,
                "open": is_open,
            }
        )
        d += timedelta(days=1)
    return out


# A first look covers two weeks; only listings with nothing free there are searched to the horizon.
_FIRST_LOOK = timedelta(days=14)


async def next_free_slots(
    session: AsyncSession,
    items: Sequence[tuple[Asset, Site]],
    *,
    config: ListingsConfig,
    blocked: BlockedTime,
    earliest: datetime | None = None,
    duration_minutes: int | None = None,
    latest_end: datetime | None = None,
) -> dict[uuid.UUID, Interval | None]:
    """The first bookable slot of each listing from ``earliest`` (default now) until ``latest_end``
    (default the horizon): for a machine ``duration_minutes`` (default its minimum booking), for a lab
    the next open day with capacity (from the start of that local day, or now when it is today).
    Batched: a constant number of queries for any number of machines."""
    now = utcnow()
    start = max(earliest or now, now)
    end = min(latest_end or now + timedelta(days=config.horizon_days), now + timedelta(days=config.horizon_days))
    result: dict[uuid.UUID, Interval | None] = {}
    machines = [(a, s) for a, s in items if a.kind == AssetKind.machine]
    pending = machines
    window_end = min(end, start + _FIRST_LOOK)
    lo = start
    while pending and lo < end:
        # Setup may begin before ``start`` and the buffer run past ``window_end``: load a margin.
        margin = timedelta(minutes=max((a.setup_minutes or 0) + (a.buffer_minutes or 0) for a, _ in pending))
        free = await machine_free(session, pending, start=lo - margin, end=window_end + margin, blocked=blocked)
        still = []
        for asset, _site in pending:
            minutes = max(duration_minutes or 0, asset.min_booking_minutes or 0) or (asset.slot_minutes or 60)
            found = av.earliest_slot(
                bookable_windows(asset, free[asset.id]),
                timedelta(minutes=minutes),
                granularity_minutes=asset.slot_minutes or 1,
                earliest=start,
                latest_end=window_end,
            )
            if found is None and window_end < end:
                still.append((asset, _site))
            else:
                result[asset.id] = found
        pending, window_end = still, end
    labs = [(a, s) for a, s in items if a.kind == AssetKind.lab_service]
    if labs:
        # Two queries for all the labs (a page of search results is often all labs): their exceptions, and
        # their booked samples over the union of their site-local windows.
        windows = {a.id: _local_days(s, start, end) for a, s in labs}
        excs = await ListingsRepository(session).exceptions_for(list(windows))
        booked = await blocked.lab_booked(
            session,
            list(windows),
            start=min(first for first, _ in windows.values()),
            end=max(last for _, last in windows.values()),
        )
        for asset, site in labs:
            first, last = windows[asset.id]
            days = lab_open_days(asset, site, excs=excs[asset.id], first=first, last=last)
            result[asset.id] = _first_day_with_room(asset, site, days=days, booked=booked[asset.id], start=start)
    return result


def _local_days(site: Site, start: datetime, end: datetime) -> tuple[date, date]:
    zone = ZoneInfo(site.timezone)
    return start.astimezone(zone).date(), end.astimezone(zone).date()


def _first_day_with_room(
    asset: Asset, site: Site, *, days: Sequence[date], booked: dict[date, int], start: datetime
) -> Interval | None:
    """The first open day with samples to spare: from its local midnight (or ``start`` when that is later)."""
    zone = ZoneInfo(site.timezone)
    cap = asset.daily_sample_capacity or 0
    for d in days:
        if booked.get(d, 0) < cap:
            day_start = datetime.combine(d, time(0), zone).astimezone(UTC)
            day_end = datetime.combine(d + timedelta(days=1), time(0), zone).astimezone(UTC)
            return max(day_start, start), day_end
    return None


async def next_free_slot(
    session: AsyncSession,
    asset: Asset,
    site: Site,
    *,
    config: ListingsConfig,
    blocked: BlockedTime,
    earliest: datetime | None = None,
    duration_minutes: int | None = None,
) -> Interval | None:
    """:func:`next_free_slots` for one listing."""
    slots = await next_free_slots(
        session, [(asset, site)], config=config, blocked=blocked, earliest=earliest, duration_minutes=duration_minutes
    )
    return slots[asset.id]


async def refresh_next_free(
    session: AsyncSession, asset: Asset, *, config: ListingsConfig, blocked: BlockedTime
) -> None:
    site = await ListingsRepository(session).get_site(asset.site_id)
    if site is None:
        return
    slot = await next_free_slot(session, asset, site, config=config, blocked=blocked)
    asset.next_free_at = slot[0] if slot else None
    await session.flush()


async def refresh_due(session: AsyncSession, *, config: ListingsConfig, blocked: BlockedTime, limit: int = 500) -> int:
    """Recompute ``next_free_at`` of published listings whose stored value has passed (beat job)."""
    assets = await ListingsRepository(session).published_assets_due_for_refresh(utcnow(), limit)
    for asset in assets:
        await refresh_next_free(session, asset, config=config, blocked=blocked)
    return len(assets)
