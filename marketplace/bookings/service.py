"""Booking rules. Functions take a session and never commit; jobs are outbox rows written in the caller's
transaction.

No double booking, ever:
* machine time is protected by the exclusion constraint ``EXCLUDE USING gist (asset_id WITH =, period
  WITH &&) WHERE (status in the blocking states)``; the insert is ``ON CONFLICT DO NOTHING``, so a period
  the constraint refuses inserts no row, answered as 409 ``slot_unavailable``. There is deliberately no
  check-then-insert in Python: the database decides.
* the blocking states are every state of a booking that was not called off (``models.BLOCKING``): a
  completed, disputed, settled or resolved booking keeps its period and its lab samples. Only an explicit,
  audited ``release`` gives back the time after an early completion.
* lab capacity (daily intake) is counted under a transaction-scoped advisory lock per (asset, day), with a
  lock timeout.

Nothing slow runs inside the locked section: the listing's open days are computed before the lab-day lock,
and the payment gateway's external call (Stripe's PaymentIntent) happens in ``before_booked``, before the
booking row is written or any lock taken; ``booking_abandoned`` undoes it when the booking then fails.

The rules live in ``placement`` (placing), ``actions`` (moving through the transition table, releasing,
announcing), ``reviews`` (reviews, scorecards) and ``rules`` (errors, collaborators, shared helpers); this
module is the room's one public face, so callers import ``marketplace.bookings.service`` only.
"""

from __future__ import annotations

from marketplace.bookings.actions import act, release, system_act
from marketplace.bookings.placement import LAB_DUE_DATE_LOOKAHEAD_DAYS, create, place
from marketplace.bookings.reviews import review, scorecard, supplier_scorecard
from marketplace.bookings.rules import (
    BookingsBlockedTime,
    CapacityUnavailable,
    Deps,
    NotBookable,
    NothingToRelease,
    NotReleasable,
    OwnAsset,
    SlotUnavailable,
    TryAgain,
    get_for,
    money,
    refund_if_cancelled_now,
    role_of,
    starts_at,
)

__all__ = [
    "LAB_DUE_DATE_LOOKAHEAD_DAYS",
    "BookingsBlockedTime",
    "CapacityUnavailable",
    "Deps",
    "NotBookable",
    "NotReleasable",
    "NothingToRelease",
    "OwnAsset",
    "SlotUnavailable",
    "TryAgain",
    "act",
    "create",
    "get_for",
    "money",
    "place",
    "refund_if_cancelled_now",
    "release",
    "review",
    "role_of",
    "scorecard",
    "starts_at",
    "supplier_scorecard",
    "system_act",
]
