"""What other rooms add to a booking's moves, in the same transaction (issue #17's make + verify).

Bookings do not depend on the inspection room; the inspection room depends on bookings and registers here (as
rooms register document party checks and request close hooks). The composition root (``marketplace.app``) and
the worker (``marketplace.celery_app``) import the registering module, ``marketplace.inspection.gate``.

* ``settlement_waits``: the automatic settlement (``system_act("confirm")``) is skipped while any gate says so
  (an open inspection of the produced lot): the money stays in ``customer_funds_held``.
* ``before_complete``: raise to refuse ``complete`` (ordered quality documents not yet supplied).
* ``late_dispute_allowed``: the buyer may dispute after the dispute window while a gate held the settlement.
* ``after_move``: react to a move that happened (a lab booking cancelled, a settlement by the buyer).
* ``redeem_voucher`` (issue #18, registered by ``marketplace.vouchers.gate``): a booking placed with a
  ``voucher_id``, inserted and not yet invoiced; returns the voucher's share and, when the programme pays in
  advance, the organisation that owes it. Raise to refuse the booking.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import Unprocessable

if TYPE_CHECKING:
    from listings.models import Asset, Site
    from marketplace.bookings.models import Booking

Check = Callable[[AsyncSession, "Booking"], Awaitable[bool]]
Guard = Callable[[AsyncSession, "Booking"], Awaitable[None]]


class Reaction(Protocol):
    async def __call__(self, session: AsyncSession, booking: Booking, *, action: str, role: str) -> None: ...


class Redeemer(Protocol):
    async def __call__(
        self, session: AsyncSession, booking: Booking, *, voucher_id: uuid.UUID, asset: Asset, site: Site
    ) -> tuple[int, uuid.UUID | None]: ...


class VouchersUnavailable(Unprocessable):
    """Vouchers cannot be used here."""

    code = "vouchers_unavailable"


_REDEEMERS: list[Redeemer] = []
_SETTLEMENT_GATES: list[Check] = []
_BEFORE_COMPLETE: list[Guard] = []
_LATE_DISPUTE: list[Check] = []
_AFTER_MOVE: list[Reaction] = []


T = TypeVar("T")


def _add(hooks: list[T], hook: T) -> None:
    if hook not in hooks:
        hooks.append(hook)


def register_settlement_gate(hook: Check) -> None:
    _add(_SETTLEMENT_GATES, hook)


def register_before_complete(hook: Guard) -> None:
    _add(_BEFORE_COMPLETE, hook)


def register_late_dispute(hook: Check) -> None:
    _add(_LATE_DISPUTE, hook)


def register_after_move(hook: Reaction) -> None:
    _add(_AFTER_MOVE, hook)


def register_voucher_redeemer(hook: Redeemer) -> None:
    _add(_REDEEMERS, hook)


async def settlement_waits(session: AsyncSession, booking: Booking) -> bool:
    return any([await gate(session, booking) for gate in _SETTLEMENT_GATES])


async def before_complete(session: AsyncSession, booking: Booking) -> None:
    for guard in _BEFORE_COMPLETE:
        await guard(session, booking)


async def late_dispute_allowed(session: AsyncSession, booking: Booking) -> bool:
    return any([await check(session, booking) for check in _LATE_DISPUTE])


async def after_move(session: AsyncSession, booking: Booking, *, action: str, role: str) -> None:
    for reaction in _AFTER_MOVE:
        await reaction(session, booking, action=action, role=role)


async def redeem_voucher(
    session: AsyncSession, booking: Booking, *, voucher_id: uuid.UUID, asset: Asset, site: Site
) -> tuple[int, uuid.UUID | None]:
    """The voucher's share of a booking just inserted, and who owes it in advance (None: the buyer pays in full
    and is reimbursed after use)."""
    if not _REDEEMERS:
        raise VouchersUnavailable("voucher_id: vouchers are not available on this server.")
    return await _REDEEMERS[0](session, booking, voucher_id=voucher_id, asset=asset, site=site)
