"""What the listings domain needs from outside: its settings and where booked time comes from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from listings import availability as av
from listings.errors import Invalid

Interval = av.Interval


@dataclass(frozen=True)
class ListingsConfig:
    horizon_days: int = 180
    # How many SQL candidates a search with a "free between" filter examines at most per page.
    search_scan_limit: int = 2000


class BlockedTime(Protocol):
    """Where booked time comes from. The bookings module of the app shell provides the real one."""

    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]: ...

    async def lab_booked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: date, end: date
    ) -> dict[uuid.UUID, dict[date, int]]:
        """Samples booked per drop-off day in ``[start, end]``, for every asset asked (one query for all)."""
        ...


class NoBookings:
    async def machine_blocked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]:
        return {a: [] for a in asset_ids}

    async def lab_booked(
        self, session: AsyncSession, asset_ids: Sequence[uuid.UUID], *, start: date, end: date
    ) -> dict[uuid.UUID, dict[date, int]]:
        return {a: {} for a in asset_ids}


class CertificateScans(Protocol):
    """Where certificate scans live (the app shell's document store)."""

    async def attach(
        self, session: AsyncSession, *, org_id: uuid.UUID, document_id: uuid.UUID, certificate_id: uuid.UUID
    ) -> None:
        """Attach a document ``org_id`` uploaded as the scan of a certificate (an error when it may not)."""
        ...

    async def scans(self, session: AsyncSession, certificate_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The scan's document id of each certificate that has one."""
        ...


class NoScans:
    async def attach(
        self, session: AsyncSession, *, org_id: uuid.UUID, document_id: uuid.UUID, certificate_id: uuid.UUID
    ) -> None:
        raise Invalid("document_id: this server keeps no certificate scans")

    async def scans(self, session: AsyncSession, certificate_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        return {}
