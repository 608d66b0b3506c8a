"""Registers the voucher room's booking hooks (redeem a voucher when a booking is placed; follow the booking's
moves). Imported by the API (``vouchers.endpoints``) and the worker (``vouchers.tasks``)."""

from __future__ import annotations

from marketplace.bookings import hooks
from marketplace.vouchers.redemption import follow, redeem

hooks.register_voucher_redeemer(redeem)
hooks.register_after_move(follow)
