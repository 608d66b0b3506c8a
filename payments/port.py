"""The interface through which bookings move money. The bookings service (in the app shell) calls a
``PaymentGateway``; implementations live in this package. Plain data in, no shell imports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class BookingTerms:
    """What an invoice's line items say about a booking: the listing's title and the booked terms."""

    title: str
    kind: str  # machine | lab_service
    unit_price: int  # hourly rate, or price per sample
    setup_fee: int
    start_at: datetime | None = None  # machine time
    end_at: datetime | None = None
    samples: int | None = None  # lab samples
    drop_off_date: date | None = None
    # Quality documents ordered with machine time, (kind, price) each: one invoice line per document.
    quality_documents: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class BookingMoney:
    booking_id: uuid.UUID
    buyer_org_id: uuid.UUID
    supplier_org_id: uuid.UUID
    amount: int  # minor units, what the buyer owes
    currency: str
    commission_rate_bp: int
    # Given by a caller that has the booking at hand (one just placed); a gateway that needs the terms and
    # is not given them reads them from the booking.
    terms: BookingTerms | None = None
    # An innovation voucher paid in advance (issue #18): its share when booked and the programme's organisation
    # that owes it. The buyer owes ``amount - subsidy``.
    subsidy: int = 0
    subsidy_payer_org_id: uuid.UUID | None = None
    # The booking's payment schedule (issue #18), (n, label, amount) each; empty: one invoice for ``amount``.
    instalments: tuple[tuple[int, str, int], ...] = ()


@dataclass(frozen=True)
class PaymentView:
    """What ``GET /bookings/{id}/payment`` shows."""

    method: str  # invoice | stripe
    status: str
    amount_due: int
    currency: str
    invoice_id: uuid.UUID | None = None
    payment_intent_id: str | None = None
    client_secret: str | None = None


class PaymentGateway(Protocol):
    method: str

    async def before_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """Before the booking row is written or any lock taken: the gateway's external calls (a card hold's
        PaymentIntent), kept in ``session.info`` for ``on_booked``. Raise to refuse the booking."""

    async def booking_abandoned(self, session: AsyncSession, money: BookingMoney) -> None:
        """``before_booked`` ran but the booking is not placed (refused, or a later step failed): undo its
        external effects. Best effort: never raises."""

    async def on_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        """A booking was placed (held): issue an invoice, or store the card hold ``before_booked`` created."""

    async def on_paid(self, session: AsyncSession, money: BookingMoney) -> None:
        """The held booking is about to become a request: check payment is secured (invoice terms
        accepted, or a card hold in place) and raise if it is not."""

    async def on_accepted(self, session: AsyncSession, money: BookingMoney) -> None:
        """The supplier accepted: capture the payment."""

    async def on_instalment_due(self, session: AsyncSession, money: BookingMoney, *, n: int) -> None:
        """Instalment ``n`` of the booking's schedule fell due (deposit on confirmation, a milestone reached,
        the balance on completion): invoice it. Idempotent. A card gateway ignores it (its authorisation
        already holds the whole amount)."""

    async def on_released(self, session: AsyncSession, money: BookingMoney) -> None:
        """Declined or expired before capture: release the hold / void the invoice."""

    async def on_cancelled(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        """Cancelled: refund ``refund`` minor units of what was paid."""

    async def on_settled(self, session: AsyncSession, money: BookingMoney) -> None:
        """Work accepted: pay the supplier out, minus commission."""

    async def on_resolved(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        """A dispute was resolved with ``refund`` to the buyer; the rest goes to the supplier."""


class NoPayments:
    """Records nothing. Kept for tests of the booking rules that want no money movement."""

    method = "invoice"

    async def before_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def booking_abandoned(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_booked(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_paid(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_accepted(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_instalment_due(self, session: AsyncSession, money: BookingMoney, *, n: int) -> None:
        return None

    async def on_released(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_cancelled(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        return None

    async def on_settled(self, session: AsyncSession, money: BookingMoney) -> None:
        return None

    async def on_resolved(self, session: AsyncSession, money: BookingMoney, refund: int) -> None:
        return None
