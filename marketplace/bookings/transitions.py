"""The booking state machine: one explicit transition table, and who may perform each action.

held ──pay──▶ requested ──accept──▶ confirmed ──start──▶ in_progress ──complete──▶ completed
 │               │   └─decline─▶ declined       │                                  │   │
 │               └─expire─▶ expired              │                      confirm/72 h│   └dispute─▶ disputed
 └─expire─▶ expired                              │                                 ▼               │resolve
held / requested / confirmed ──cancel──▶ cancelled                               settled        resolved
disputed ──rework (admin)──▶ in_progress (the lot is made again; the money stays held)

"release" changes no status: on a completed, settled or resolved machine booking, the supplier (or an admin)
gives back the time after the completion time (see ``service.release``). Not while disputed: the remedy may
be rework on the same machine.
"""

from __future__ import annotations

from marketplace.bookings.models import BookingStatus as S
from marketplace.core.errors import Conflict

# (from status, action) -> (to status, roles allowed: buyer, supplier, admin, system)
TRANSITIONS: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    (S.held, "pay"): (S.requested, frozenset({"buyer", "system"})),
    (S.held, "expire"): (S.expired, frozenset({"system"})),
    (S.held, "cancel"): (S.cancelled, frozenset({"buyer", "supplier", "admin"})),
    # "system": a booking placed from an accepted quote is accepted as soon as it is paid (the supplier agreed
    # to these terms in its quote; marketplace/quotes).
    (S.requested, "accept"): (S.confirmed, frozenset({"supplier", "system"})),
    (S.requested, "decline"): (S.declined, frozenset({"supplier"})),
    (S.requested, "expire"): (S.expired, frozenset({"system"})),
    (S.requested, "cancel"): (S.cancelled, frozenset({"buyer", "supplier", "admin"})),
    (S.confirmed, "start"): (S.in_progress, frozenset({"supplier", "system"})),
    (S.confirmed, "cancel"): (S.cancelled, frozenset({"buyer", "supplier", "admin"})),
    (S.in_progress, "complete"): (S.completed, frozenset({"supplier"})),
    (S.completed, "confirm"): (S.settled, frozenset({"buyer", "system"})),
    (S.completed, "dispute"): (S.disputed, frozenset({"buyer", "system"})),
    (S.disputed, "resolve"): (S.resolved, frozenset({"admin"})),
    # An admin's third remedy besides a refund: the factory reworks the lot (money stays held) and completes
    # again; the buyer may order a new inspection (issue #17).
    (S.disputed, "rework"): (S.in_progress, frozenset({"admin"})),
    # Not a transition: the status stays; only the blocked period after the completion time is given back.
    (S.completed, "release"): (S.completed, frozenset({"supplier", "admin"})),
    (S.settled, "release"): (S.settled, frozenset({"supplier", "admin"})),
    (S.resolved, "release"): (S.resolved, frozenset({"supplier", "admin"})),
}

ACTIONS = frozenset(action for _, action in TRANSITIONS)
RELEASABLE = frozenset(status for status, action in TRANSITIONS if action == "release")


class InvalidBookingTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, current: str, action: str) -> None:
        super().__init__(f"Cannot {action} a booking that is {current}.", extra={"current_status": current})


def target(current: str, action: str) -> tuple[str, frozenset[str]]:
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidBookingTransition(current, action) from None
