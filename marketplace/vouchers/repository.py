"""The SQL of voucher programmes, vouchers and redemptions (``service.py``, ``redemption.py``).

The sums of ``used_*`` count only redemptions that hold budget and caps (``models.COUNTING_SQL``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from listings.models import Asset, Site
from marketplace.orgs.models import Organisation
from marketplace.vouchers.models import (
    COUNTING,
    Voucher,
    VoucherProgramme,
    VoucherRedemption,
)

M = TypeVar("M", bound=SQLModel)


class VoucherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: M) -> M:
        self.session.add(row)
        await self.session.flush()
        return row

    # -- organisations ---------------------------------------------------------------------------------

    async def org(self, org_id: uuid.UUID) -> Organisation | None:
        stmt = sa.select(Organisation).where(col(Organisation.id) == org_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def org_names(self, org_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(set(org_ids))
        if not ids:
            return {}
        stmt = sa.select(col(Organisation.id), col(Organisation.name)).where(col(Organisation.id).in_(ids))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    async def asset_and_site(self, asset_id: uuid.UUID) -> tuple[Asset, Site] | None:
        stmt = sa.select(Asset, Site).join(Site, col(Site.id) == col(Asset.site_id)).where(col(Asset.id) == asset_id)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    # -- programmes ------------------------------------------------------------------------------------

    async def programme(self, programme_id: uuid.UUID, *, for_update: bool = False) -> VoucherProgramme | None:
        """The programme; ``for_update`` takes its row lock, which serialises every redemption of it."""
        stmt = sa.select(VoucherProgramme).where(col(VoucherProgramme.id) == programme_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def programmes(self, *, active_only: bool) -> list[VoucherProgramme]:
        stmt = sa.select(VoucherProgramme).order_by(col(VoucherProgramme.name), col(VoucherProgramme.id))
        if active_only:
            stmt = stmt.where(col(VoucherProgramme.status) == "active")
        return list((await self.session.execute(stmt)).scalars())

    async def programmes_of_orgs(self, org_ids: Iterable[uuid.UUID]) -> list[VoucherProgramme]:
        ids = list(org_ids)
        if not ids:
            return []
        stmt = (
            sa.select(VoucherProgramme)
            .where(col(VoucherProgramme.org_id).in_(ids))
            .order_by(col(VoucherProgramme.created_at), col(VoucherProgramme.id))
        )
        return list((await self.session.execute(stmt)).scalars())

    async def existing_programme_ids(self, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        wanted = list(ids)
        if not wanted:
            return set()
        stmt = sa.select(col(VoucherProgramme.id)).where(col(VoucherProgramme.id).in_(wanted))
        return set((await self.session.execute(stmt)).scalars())

    async def partner_prefixes(self, programme_id: uuid.UUID) -> list[str]:
        """Region prefixes of the active programmes that accept ``programme_id``'s vouchers in their region."""
        stmt = sa.select(col(VoucherProgramme.region_prefix)).where(
            col(VoucherProgramme.status) == "active",
            sa.literal(programme_id, sa.Uuid).op("=")(sa.func.any(col(VoucherProgramme.partner_programme_ids))),
        )
        return list((await self.session.execute(stmt)).scalars())

    # -- vouchers --------------------------------------------------------------------------------------

    async def voucher(self, voucher_id: uuid.UUID, *, for_update: bool = False) -> Voucher | None:
        stmt = sa.select(Voucher).where(col(Voucher.id) == voucher_id)
        if for_update:  # the row as committed now, even if this session loaded it before
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def voucher_of(
        self, programme_id: uuid.UUID, buyer_org_id: uuid.UUID, *, for_update: bool = False
    ) -> Voucher | None:
        stmt = sa.select(Voucher).where(
            col(Voucher.programme_id) == programme_id, col(Voucher.buyer_org_id) == buyer_org_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def vouchers_of_programme(self, programme_id: uuid.UUID, *, status: str | None) -> list[Voucher]:
        stmt = (
            sa.select(Voucher)
            .where(col(Voucher.programme_id) == programme_id)
            .order_by(col(Voucher.created_at).desc(), col(Voucher.id))
        )
        if status is not None:
            stmt = stmt.where(col(Voucher.status) == status)
        return list((await self.session.execute(stmt)).scalars())

    async def vouchers_of_buyer(
        self, buyer_org_id: uuid.UUID, *, status: str | None = None
    ) -> list[tuple[Voucher, VoucherProgramme]]:
        stmt = (
            sa.select(Voucher, VoucherProgramme)
            .join(VoucherProgramme, col(VoucherProgramme.id) == col(Voucher.programme_id))
            .where(col(Voucher.buyer_org_id) == buyer_org_id)
            .order_by(col(Voucher.created_at).desc(), col(Voucher.id))
        )
        if status is not None:
            stmt = stmt.where(col(Voucher.status) == status)
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    # -- redemptions -----------------------------------------------------------------------------------

    async def used_by_programmes(self, programme_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
        """sum(amount) of each programme's counting redemptions."""
        ids = list(set(programme_ids))
        if not ids:
            return {}
        stmt = (
            sa.select(col(VoucherRedemption.programme_id), sa.func.coalesce(sa.func.sum(VoucherRedemption.amount), 0))
            .where(col(VoucherRedemption.programme_id).in_(ids), col(VoucherRedemption.status).in_(COUNTING))
            .group_by(col(VoucherRedemption.programme_id))
        )
        found = {row[0]: int(row[1]) for row in (await self.session.execute(stmt)).all()}
        return {pid: found.get(pid, 0) for pid in ids}

    async def used_by_programme(self, programme_id: uuid.UUID) -> int:
        return (await self.used_by_programmes([programme_id]))[programme_id]

    async def used_by_buyer(
        self, buyer_org_id: uuid.UUID, *, year: int, programme_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """sum(amount) of the buyer's counting redemptions of each programme in the cap year ``year``."""
        ids = list(set(programme_ids))
        if not ids:
            return {}
        stmt = (
            sa.select(col(VoucherRedemption.programme_id), sa.func.coalesce(sa.func.sum(VoucherRedemption.amount), 0))
            .where(
                col(VoucherRedemption.programme_id).in_(ids),
                col(VoucherRedemption.buyer_org_id) == buyer_org_id,
                col(VoucherRedemption.year) == year,
                col(VoucherRedemption.status).in_(COUNTING),
            )
            .group_by(col(VoucherRedemption.programme_id))
        )
        found = {row[0]: int(row[1]) for row in (await self.session.execute(stmt)).all()}
        return {pid: found.get(pid, 0) for pid in ids}

    async def redemption_of_booking(self, booking_id: uuid.UUID) -> VoucherRedemption | None:
        """The booking's redemption, locked (its booking's row lock is held by the caller too)."""
        stmt = sa.select(VoucherRedemption).where(col(VoucherRedemption.booking_id) == booking_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
