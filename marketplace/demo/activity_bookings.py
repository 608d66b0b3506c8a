"""The demo's bookings, one or more in every state the state machine reaches today, and their invoices (see
:mod:`marketplace.demo.activity`).

Each booking is placed with ``bookings.service.create`` and moved with ``bookings.service.act`` by the party the
transition table allows (buyer, supplier, admin), exactly as the API's action routes do; the invoices come from
the payment gateway's side effects, and the admin records the bank transfers with
``billing.service.record_bank_transfer``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing.service import record_bank_transfer
from marketplace.bookings import service as bookings
from marketplace.bookings.deps import booking_deps
from marketplace.bookings.models import Booking
from marketplace.bookings.schemas import BookingCreate
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from payments.invoices import InvoiceGateway
from payments.repository import PaymentsRepository

if TYPE_CHECKING:
    from marketplace.demo.activity import DemoCast
    from marketplace.demo.activity_market import DemoListings

EARLY = "Finished ahead of the booked start: the material arrived early."

# A step: (action, who acts: buyer | supplier | admin, reason). "paid" is not an action: the admin records the
# buyer's bank transfer for the booking's invoice.
Step = tuple[str, str, str | None]
ACCEPTED: list[Step] = [("pay", "buyer", None), ("accept", "supplier", None), ("paid", "admin", None)]
STARTED: list[Step] = [*ACCEPTED, ("start", "supplier", None)]
COMPLETED: list[Step] = [*STARTED, ("complete", "supplier", EARLY)]
DISPUTE = ("dispute", "buyer", "Two of the 40 parts are out of tolerance on the bore.")

# Machine bookings on the around-the-clock cell: (hours after the first slot, the steps). The ones that get
# started lie inside the next 24 hours (check-in opens 24 hours before the start).
MACHINE_PLAN: list[tuple[int, list[Step]]] = [
    (0, STARTED),  # in_progress
    (2, COMPLETED),  # completed (the buyer may still confirm or dispute)
    (4, [*COMPLETED, ("confirm", "buyer", None)]),  # settled
    (6, [*COMPLETED, DISPUTE]),  # disputed: the admin's open dispute
    (8, [*COMPLETED, DISPUTE, ("resolve", "admin", "Partial refund for the two rejected parts.")]),  # resolved
    (26, ACCEPTED),  # confirmed, invoice paid
    (30, [("pay", "buyer", None), ("accept", "supplier", None)]),  # confirmed, invoice open
    (34, [("pay", "buyer", None)]),  # requested: waits for the factory
    (38, []),  # held: waits for the buyer's payment or invoice terms
    (42, [("pay", "buyer", None), ("cancel", "buyer", "The drawing changed; we will book again.")]),  # cancelled
    (46, [("pay", "buyer", None), ("decline", "supplier", "The cell is reserved for maintenance that day.")]),
]
# Lab bookings on the tensile test: (days after today at the lab, samples, who books: buyer | factory, steps).
LAB_PLAN: list[tuple[int, int, str, list[Step]]] = [
    (2, 6, "factory", ACCEPTED),  # the factory (also a buyer) has its own parts tested: confirmed, paid
    (3, 4, "buyer", [("pay", "buyer", None)]),  # requested
    (4, 10, "buyer", []),  # held
]


@dataclass
class _Run:
    session: AsyncSession
    cast: DemoCast
    deps: bookings.Deps
    paid: int = 0

    def who(self, role: str, buyer: Principal) -> Principal:
        principal = {"buyer": buyer, "supplier": self.supplier, "admin": self.cast.admin}[role]
        if principal is None:  # the supplier is set per booking before any of its actions
            raise RuntimeError(f"no {role} to act for this demo booking")
        return principal

    supplier: Principal | None = None  # set per booking

    async def steps(self, booking: Booking, buyer: Principal, steps: list[Step]) -> Booking:
        for action, role, reason in steps:
            if action == "paid":
                await self.record_payment(booking)
                continue
            refund = booking.amount // 4 if action == "resolve" else None
            booking = await bookings.act(
                session=self.session,
                principal=self.who(role, buyer),
                booking_id=booking.id,
                action=action,
                deps=self.deps,
                reason=reason,
                refund_amount=refund,
            )
        return booking

    async def record_payment(self, booking: Booking) -> None:
        gateway = self.deps.payments
        invoice = await PaymentsRepository(self.session).invoice_for_booking(booking.id)
        if not isinstance(gateway, InvoiceGateway) or invoice is None:  # card payments (Stripe): no invoice
            return
        self.paid += 1
        await record_bank_transfer(
            session=self.session,
            admin=self.cast.admin,
            gateway=gateway,
            invoice_id=invoice.id,
            direction="in",
            amount=invoice.total,
            reference=f"DEMO-TRANSFER-{self.paid:03d}",
        )


def first_slot(now: datetime, grid_minutes: int = 30) -> datetime:
    """An hour from ``now``, moved up to the listing's grid (whole minutes, UTC)."""
    t = (now.astimezone(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    return t + timedelta(minutes=(grid_minutes - t.minute % grid_minutes) % grid_minutes)


def lab_day(now: datetime, days: int, zone: str = "Asia/Shanghai") -> date:
    return now.astimezone(ZoneInfo(zone)).date() + timedelta(days=days)


async def run_bookings(
    session: AsyncSession, *, cast: DemoCast, listings: DemoListings, settings: Settings, now: datetime
) -> tuple[dict[str, int], int]:
    """Place and move the demo's bookings; returns (bookings per status, invoices paid)."""
    run = _Run(session=session, cast=cast, deps=booking_deps(settings))
    done: list[Booking] = []
    base = first_slot(now, listings.cell.slot_minutes or 30)
    run.supplier = cast.factory
    for hours, steps in MACHINE_PLAN:
        start = base + timedelta(hours=hours)
        data = BookingCreate(asset_id=listings.cell.id, start=start, end=start + timedelta(hours=2))
        booking = await bookings.create(session=session, principal=cast.buyer, data=data, deps=run.deps)
        done.append(await run.steps(booking, cast.buyer, steps))
    run.supplier = cast.lab
    for days, samples, who, steps in LAB_PLAN:
        buyer = cast.factory if who == "factory" else cast.buyer
        data = BookingCreate(asset_id=listings.tensile.id, drop_off_date=lab_day(now, days), samples=samples)
        booking = await bookings.create(session=session, principal=buyer, data=data, deps=run.deps)
        done.append(await run.steps(booking, buyer, steps))
    return dict(Counter(str(b.status) for b in done)), run.paid
