"""The listing moderation state machine: one explicit transition table.

draft ──submit──▶ pending_review ──approve──▶ published ──suspend──▶ suspended
  ▲                  │      ▲                   │   ▲                   │
  │               reject    └──(material edit)──┘   └─────reinstate─────┘
  │                  ▼
  └──(edit)──── rejected ──submit──▶ pending_review
any state except archived ──archive──▶ archived (terminal)
"""

from __future__ import annotations

from listings.errors import InvalidTransition
from listings.models import AssetStatus as S

OWNER_ACTIONS = frozenset({"submit", "archive"})
ADMIN_ACTIONS = frozenset({"approve", "reject", "suspend", "reinstate"})

TRANSITIONS: dict[tuple[str, str], str] = {
    (S.draft, "submit"): S.pending_review,
    (S.rejected, "submit"): S.pending_review,
    (S.pending_review, "approve"): S.published,
    (S.pending_review, "reject"): S.rejected,
    (S.published, "suspend"): S.suspended,
    (S.suspended, "reinstate"): S.published,
    # Changing capability, price or location of a published listing sends it back to review.
    (S.published, "material_edit"): S.pending_review,
    (S.suspended, "material_edit"): S.suspended,
    **{(s, "archive"): S.archived for s in (S.draft, S.pending_review, S.published, S.rejected, S.suspended)},
}

# Statuses in which the owner may still edit the listing.
EDITABLE = frozenset({S.draft, S.pending_review, S.published, S.rejected, S.suspended})


def next_status(current: str, action: str) -> str:
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidTransition(current, action) from None
