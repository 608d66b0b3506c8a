"""All SQL of bookings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col

from listings.models import Asset, Site
from marketplace.bookings.models import BLOCKING, Booking, BookingEvent, BookingStatus, Review
from marketplace.orgs.models import Organisation
from payments.repository import commission_override_rate

LAB_LOCK_NAMESPACE = 7_342_001  # first key of pg_advisory_xact_lock(int, int) for lab-day capacity

_bookings: sa.Table = Booking.__table__  # type: ignore[attr-defined]
_events: sa.Table = BookingEvent.__table__  # type: ignore[attr-defined]
_BOOKING_COLUMNS = list(_bookings.columns)
_EVENT_COLUMNS = [c for c in _events.columns if c.key != "id"]  # the identity column numbers the timeline
# No conflict target: a row refused by the exclusion constraint (ex_bookings_no_overlap) is skipped.
_INSERT_BOOKING = pg_insert(_bookings).on_conflict_do_nothing().returning(_bookings.c.id)
_INSERT_EVENT = sa.insert(_events)


def _uuid_array(ids: Sequence[uuid.UUID]) -> Any:
    """``= ANY(:ids)`` rather than an expanding ``IN``: one statement text (one prepared statement) for any
    number of ids."""
    return sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.Uuid()), unique=True)


@dataclass(frozen=True)
class Bookable:
    asset: Asset
    site: Site
    supplier_verified: bool
    commission_override_bp: int | None
    buyer_org_ids: list[uuid.UUID]


def _bookable_statement() -> Any:
    """Built once (it runs for every booking); bound per call: ``asset_id`` and ``candidates``."""
    buyers = (
        sa.select(col(Organisation.id))
        .where(
            col(Organisation.id).in_(sa.bindparam("candidates", expanding=True)),
            col(Organisation.roles).any_() == "buyer",
        )
        .order_by(col(Organisation.id))
        .scalar_subquery()
    )
    return (
        sa.select(
            Asset,
            Site,
            col(Organisation.verification_status) == "verified",
            commission_override_rate(col(Asset.org_id)),
            sa.func.array(buyers),
        )
        .join(Site, col(Site.id) == col(Asset.site_id))
        .join(Organisation, col(Organisation.id) == col(Asset.org_id))
        .where(col(Asset.id) == sa.bindparam("asset_id"))
    )


_BOOKABLE = _bookable_statement()


class BookingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, booking_id: uuid.UUID, *, for_update: bool = False) -> Booking | None:
        stmt = sa.select(Booking).where(col(Booking.id) == booking_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def bookable(self, asset_id: uuid.UUID, buyer_candidates: Sequence[uuid.UUID]) -> Bookable | None:
        """Everything placing a booking reads before it writes, in one query: the asset, its site, whether its
        organisation is verified and its commission override, and which of ``buyer_candidates`` are buyers."""
        row = (
            await self.session.execute(_BOOKABLE, {"asset_id": asset_id, "candidates": list(buyer_candidates)})
        ).first()
        if row is None:
            return None
        return Bookable(row[0], row[1], bool(row[2]), row[3], list(row[4] or []))

    async def insert(self, booking: Booking) -> bool:
        """INSERT the booking unless the exclusion constraint refuses its period; True if it was inserted.

        ``ON CONFLICT DO NOTHING`` (exclusion constraints are valid arbiters of DO NOTHING): the database
        still decides, but a refused period leaves the transaction usable, so no savepoint is needed around
        the insert. One Core statement instead of an ORM flush; the inserted booking then joins the session
        as a persistent object (its Python-side defaults, ``created_at`` included, are the stored values).
        """
        values = {column.key: getattr(booking, column.key) for column in _BOOKING_COLUMNS}
        inserted = (await self.session.execute(_INSERT_BOOKING, values)).scalar_one_or_none()
        if inserted is None:
            return False
        make_transient_to_detached(booking)
        self.session.add(booking)
        return True

    async def add_event(self, event: BookingEvent) -> None:
        """Append to a booking's timeline (one Core INSERT, no ORM flush; the timeline reads order by id)."""
        await self.session.execute(_INSERT_EVENT, {column.key: getattr(event, column.key) for column in _EVENT_COLUMNS})

    async def events(self, booking_id: uuid.UUID) -> list[BookingEvent]:
        rows = await self.session.execute(
            sa.select(BookingEvent).where(col(BookingEvent.booking_id) == booking_id).order_by(col(BookingEvent.id))
        )
        return list(rows.scalars())

    async def expire_stale_overlapping(
        self, asset_id: uuid.UUID, period: Range[datetime], now: datetime
    ) -> list[uuid.UUID]:
        """Lazily expire holds and unanswered requests whose deadline passed and that stand in the way."""
        result = await self.session.execute(
            sa.update(Booking)
            .where(
                col(Booking.asset_id) == asset_id,
                sa.or_(
                    sa.and_(col(Booking.status) == BookingStatus.held, col(Booking.hold_expires_at) < now),
                    sa.and_(col(Booking.status) == BookingStatus.requested, col(Booking.accept_by) < now),
                ),
                col(Booking.period).op("&&")(period),
            )
            .values(status=BookingStatus.expired, updated_at=now)
            .returning(col(Booking.id))
        )
        return list(result.scalars())

    async def expire_stale_lab_day(self, asset_id: uuid.UUID, day: date, now: datetime) -> list[uuid.UUID]:
        result = await self.session.execute(
            sa.update(Booking)
            .where(
                col(Booking.asset_id) == asset_id,
                col(Booking.drop_off_date) == day,
                sa.or_(
                    sa.and_(col(Booking.status) == BookingStatus.held, col(Booking.hold_expires_at) < now),
                    sa.and_(col(Booking.status) == BookingStatus.requested, col(Booking.accept_by) < now),
                ),
            )
            .values(status=BookingStatus.expired, updated_at=now)
            .returning(col(Booking.id))
        )
        return list(result.scalars())

    async def lock_lab_day(self, asset_id: uuid.UUID, day: date) -> None:
        """Serialise capacity checks for one lab day (transaction-scoped advisory lock)."""
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:key))"),
            {"ns": LAB_LOCK_NAMESPACE, "key": f"{asset_id}:{day.isoformat()}"},
        )

    async def lab_samples_booked(self, asset_id: uuid.UUID, day: date) -> int:
        total = (
            await self.session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(col(Booking.samples)), 0)).where(
                    col(Booking.asset_id) == asset_id,
                    col(Booking.drop_off_date) == day,
                    col(Booking.status).in_(BLOCKING),
                )
            )
        ).scalar_one()
        return int(total or 0)

    async def lab_samples_by_day(
        self, asset_ids: Sequence[uuid.UUID], *, first: date, last: date, now: datetime
    ) -> dict[uuid.UUID, dict[date, int]]:
        """Samples booked per asset and drop-off day in ``[first, last]``, in one query."""
        out: dict[uuid.UUID, dict[date, int]] = {a: {} for a in asset_ids}
        if not out:
            return out
        rows = await self.session.execute(
            sa.select(col(Booking.asset_id), col(Booking.drop_off_date), sa.func.sum(col(Booking.samples)))
            .where(
                col(Booking.asset_id).in_(list(out)),
                col(Booking.drop_off_date).between(first, last),
                col(Booking.status).in_(BLOCKING),
                _not_stale(now),
            )
            .group_by(col(Booking.asset_id), col(Booking.drop_off_date))
        )
        for asset_id, day, n in rows.all():
            if day is not None:
                out[asset_id][day] = int(n or 0)
        return out

    async def blocked_periods(
        self, asset_ids: Sequence[uuid.UUID], *, start: datetime, end: datetime, now: datetime
    ) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
        result: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {a: [] for a in asset_ids}
        if not asset_ids:
            return result
        rows = await self.session.execute(
            sa.select(col(Booking.asset_id), col(Booking.period)).where(
                col(Booking.asset_id).in_(list(asset_ids)),
                col(Booking.status).in_(BLOCKING),
                col(Booking.period).op("&&")(Range(start, end, bounds="[)")),
                _not_stale(now),
            )
        )
        for asset_id, period in rows.all():
            result[asset_id].append((period.lower, period.upper))
        return result

    async def list_for_org(
        self,
        org_ids: Sequence[uuid.UUID],
        *,
        role: str | None,
        status: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Booking]:
        if role == "buyer":
            where: Any = col(Booking.buyer_org_id).in_(list(org_ids))
        elif role == "supplier":
            where = col(Booking.supplier_org_id).in_(list(org_ids))
        else:
            where = sa.or_(
                col(Booking.buyer_org_id).in_(list(org_ids)), col(Booking.supplier_org_id).in_(list(org_ids))
            )
        stmt = sa.select(Booking).where(where)
        if status:
            stmt = stmt.where(col(Booking.status) == status)
        if after is not None:
            stmt = stmt.where(sa.tuple_(col(Booking.created_at), col(Booking.id)) < sa.tuple_(*after))
        stmt = stmt.order_by(col(Booking.created_at).desc(), col(Booking.id).desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def due(self, condition: Any, limit: int = 500) -> list[Booking]:
        rows = await self.session.execute(
            sa.select(Booking)
            .where(condition)
            .order_by(col(Booking.created_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars())

    async def add_review(self, review: Review) -> Review:
        self.session.add(review)
        await self.session.flush()
        return review

    async def supplier_stats(self, org_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Counts behind the supplier scorecard, for many suppliers at once (matching uses it)."""
        if not org_ids:
            return {}
        b = Booking.__table__.c  # type: ignore[attr-defined]
        on_time = sa.or_(
            sa.and_(b.kind == "machine", b.completed_at <= b.end_at),
            sa.and_(b.kind == "lab_service", sa.func.date(b.completed_at) <= b.due_date),
        )
        decided = b.status.notin_(["held", "requested", "expired"])
        counts = (
            sa.select(
                b.supplier_org_id,
                sa.func.count().filter(b.completed_at.isnot(None)).label("completed"),
                sa.func.count().filter(sa.and_(b.completed_at.isnot(None), on_time)).label("on_time"),
                sa.func.count().filter(b.status == "declined").label("declined"),
                sa.func.count().filter(decided).label("decided"),
                sa.func.count()
                .filter(sa.and_(b.status == "cancelled", b.cancelled_by == "supplier"))
                .label("cancelled_by_supplier"),
                sa.func.count().label("total"),
            )
            .where(b.supplier_org_id == sa.any_(_uuid_array(org_ids)))
            .group_by(b.supplier_org_id)
            .subquery("counts")
        )
        # Reviews of a supplier are of its own bookings, so every rated supplier has a counts row.
        ratings = (
            sa.select(
                col(Review.subject_org_id).label("org_id"),
                sa.func.count().label("rating_count"),
                sa.func.sum(col(Review.rating)).label("rating_sum"),
            )
            .join(Booking, col(Booking.id) == col(Review.booking_id))
            .where(
                col(Review.subject_org_id) == sa.any_(_uuid_array(org_ids)),
                col(Review.subject_org_id) == col(Booking.supplier_org_id),
            )
            .group_by(col(Review.subject_org_id))
            .subquery("ratings")
        )
        rows = await self.session.execute(
            sa.select(
                counts,
                sa.func.coalesce(ratings.c.rating_count, 0).label("rating_count"),
                sa.func.coalesce(ratings.c.rating_sum, 0).label("rating_sum"),
            ).select_from(counts.outerjoin(ratings, ratings.c.org_id == counts.c.supplier_org_id))
        )
        out: dict[uuid.UUID, dict[str, Any]] = {
            o: {
                "completed": 0,
                "on_time": 0,
                "declined": 0,
                "decided": 0,
                "cancelled_by_supplier": 0,
                "total": 0,
                "rating_count": 0,
                "rating_sum": 0,
            }
            for o in org_ids
        }
        for row in rows.all():
            out[row.supplier_org_id].update(
                completed=row.completed,
                on_time=row.on_time,
                declined=row.declined,
                decided=row.decided,
                cancelled_by_supplier=row.cancelled_by_supplier,
                total=row.total,
                rating_count=int(row.rating_count),
                rating_sum=int(row.rating_sum),
            )
        return out

    async def buyer_stats(self, org_id: uuid.UUID) -> dict[str, Any]:
        b = Booking.__table__.c  # type: ignore[attr-defined]
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.count().label("total"),
                    sa.func.count()
                    .filter(sa.and_(b.status == "cancelled", b.cancelled_by == "buyer"))
                    .label("cancelled_by_buyer"),
                    sa.func.count()
                    .filter(
                        b.status.in_(
                            ["requested", "confirmed", "in_progress", "completed", "settled", "disputed", "resolved"]
                        )
                    )
                    .label("paid"),
                    sa.func.count().filter(b.status == "expired").label("expired_unpaid"),
                ).where(b.buyer_org_id == org_id)
            )
        ).one()
        return dict(row._mapping)

    async def buyer_rating(self, org_id: uuid.UUID) -> tuple[int, float | None]:
        """How many reviews rate the organisation as a buyer, and their average."""
        count, avg = (
            await self.session.execute(
                sa.select(sa.func.count(), sa.func.avg(col(Review.rating)))
                .join(Booking, col(Booking.id) == col(Review.booking_id))
                .where(col(Review.subject_org_id) == org_id, col(Booking.buyer_org_id) == org_id)
            )
        ).one()
        return int(count), avg

    async def set_lock_timeout(self, value: Literal["3s", "0"]) -> None:
        """Bound the wait for the lab-day lock (``SET LOCAL`` takes no bind parameter: fixed statements)."""
        await self.session.execute(_LOCK_TIMEOUTS[value])

    async def calendar(self, asset_id: uuid.UUID) -> list[Booking]:
        """The machine's blocking bookings with a start, for its iCal feed."""
        rows = await self.session.execute(
            sa.select(Booking)
            .where(
                col(Booking.asset_id) == asset_id,
                col(Booking.status).in_(BLOCKING),
                col(Booking.start_at).is_not(None),
            )
            .order_by(col(Booking.start_at))
        )
        return list(rows.scalars())


_LOCK_TIMEOUTS = {
    "3s": sa.text("SET LOCAL lock_timeout = '3s'"),
    "0": sa.text("SET LOCAL lock_timeout = 0"),
}


def _not_stale(now: datetime) -> Any:
    """Holds and requests past their deadline no longer block (a sweep or the next insert expires them)."""
    return sa.not_(
        sa.or_(
            sa.and_(col(Booking.status) == BookingStatus.held, col(Booking.hold_expires_at) < now),
            sa.and_(col(Booking.status) == BookingStatus.requested, col(Booking.accept_by) < now),
        )
    )


# --- queries for the web pages ---
class BookingPageQueries:
    """The lists the web pages show, each one statement (used by marketplace/web)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Any) -> list[Booking]:
        return list((await self.session.execute(stmt)).scalars())

    async def disputed(self, limit: int) -> list[Booking]:
        """Open disputes, the longest waiting first (the admin overview)."""
        stmt = sa.select(Booking).where(col(Booking.status) == "disputed").order_by(col(Booking.updated_at))
        return await self._all(stmt.limit(limit))

    async def awaiting_acceptance(self, supplier_org_id: uuid.UUID) -> list[Booking]:
        """Requests the supplier has to accept or decline, the nearest deadline first."""
        return await self._all(
            sa.select(Booking)
            .where(col(Booking.supplier_org_id) == supplier_org_id, col(Booking.status) == "requested")
            .order_by(col(Booking.accept_by))
        )

    async def running_soon(self, supplier_org_id: uuid.UUID, *, now: datetime, until: datetime) -> list[Booking]:
        """Confirmed or running work overlapping [now, until), and lab drop-offs due on ``now``'s date."""
        return await self._all(
            sa.select(Booking)
            .where(
                col(Booking.supplier_org_id) == supplier_org_id,
                col(Booking.status).in_(["confirmed", "in_progress"]),
                sa.or_(
                    sa.and_(col(Booking.start_at) < until, col(Booking.end_at) > now),
                    col(Booking.drop_off_date) == now.date(),
                ),
            )
            .order_by(col(Booking.start_at))
        )

    async def of_supplier(self, supplier_org_id: uuid.UUID, limit: int) -> list[Booking]:
        """The supplier's bookings, newest first."""
        return await self._all(
            sa.select(Booking)
            .where(col(Booking.supplier_org_id) == supplier_org_id)
            .order_by(col(Booking.created_at).desc())
            .limit(limit)
        )

    async def booked_intervals(
        self, asset_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, datetime | None, datetime | None]]:
        """(asset, start, end) of the bookings blocking the machines in [start, end), as they block: after a
        release, only up to the completion time (an emptied period counts nothing)."""
        rows = await self.session.execute(
            sa.select(
                col(Booking.asset_id),
                col(Booking.start_at),
                sa.func.least(
                    col(Booking.end_at), sa.func.coalesce(sa.func.upper(col(Booking.period)), col(Booking.start_at))
                ),
            ).where(
                col(Booking.asset_id).in_(asset_ids),
                col(Booking.status).in_(BLOCKING),
                col(Booking.start_at) < end,
                col(Booking.end_at) > start,
            )
        )
        return [(a, s, e) for a, s, e in rows.all()]

    async def reviews_of_asset(self, asset_id: uuid.UUID, *, subject_org_id: uuid.UUID, limit: int) -> list[Review]:
        """The latest reviews of the supplier left on bookings of this asset."""
        rows = await self.session.execute(
            sa.select(Review)
            .join(Booking, col(Booking.id) == col(Review.booking_id))
            .where(col(Booking.asset_id) == asset_id, col(Review.subject_org_id) == subject_org_id)
            .order_by(col(Review.created_at).desc())
            .limit(limit)
        )
        return list(rows.scalars())
