"""Who is calling: a signed-in user (all scopes, acting for the organisations they belong to) or an
organisation API key (only its scopes, only its organisation)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

# The vocabulary of API-key scopes. A user session implicitly has all of them.
API_SCOPES: frozenset[str] = frozenset(
    {
        "orgs:read",
        "listings:read",
        "listings:write",
        "availability:write",
        "requests:read",
        "requests:write",
        "bookings:read",
        "bookings:write",
        "payments:read",
        "analytics:read",
        "webhooks:write",
    }
)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID | None
    memberships: Mapping[uuid.UUID, str] = field(default_factory=dict)  # org id -> owner|member
    is_platform_admin: bool = False
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None  # None: every scope (a user session)
    locale: str = "en"

    @property
    def org_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(self.memberships)

    def is_member(self, org_id: uuid.UUID) -> bool:
        return org_id in self.memberships

    def is_owner(self, org_id: uuid.UUID) -> bool:
        return self.memberships.get(org_id) == "owner"

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def can_act_for(self, org_id: uuid.UUID, scope: str | None = None) -> bool:
        return self.is_member(org_id) and (scope is None or self.has_scope(scope))
