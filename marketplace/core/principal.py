"""Who is calling: a signed-in user (all scopes, acting for the organisations they belong to) or an
organisation API key (only its scopes, only its organisation)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from marketplace.core.errors import Forbidden

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
        "documents:read",
        "documents:write",
    }
)


class EmailUnverified(Forbidden):
    """Confirm your e-mail address first: open the link in the e-mail we sent you (or ask for a new one)."""

    code = "email_unverified"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID | None
    memberships: Mapping[uuid.UUID, str] = field(default_factory=dict)  # org id -> owner|member
    is_platform_admin: bool = False
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None  # None: every scope (a user session)
    locale: str = "en"
    # A user who has not yet proved their e-mail address may sign in and prepare, but not act in money
    # matters, publish or join an organisation. An API key is an organisation's credential, created by a
    # verified owner, so it counts as verified.
    email_verified: bool = True
    # In production a platform admin without two-factor sign-in holds no admin power at all (the principal is
    # built with ``is_platform_admin`` False, so every admin check, direct or through ``get_admin``, refuses);
    # this flag only lets the refusal say why.
    admin_needs_two_factor: bool = False

    @property
    def org_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(self.memberships)

    def is_member(self, org_id: uuid.UUID) -> bool:
        return org_id in self.memberships

    def is_owner(self, org_id: uuid.UUID) -> bool:
        return self.memberships.get(org_id) == "owner"

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def require_verified_email(self) -> None:
        """The single check in front of booking, paying, publishing and accepting invitations."""
        if not self.email_verified:
            raise EmailUnverified()

    def can_act_for(self, org_id: uuid.UUID, scope: str | None = None) -> bool:
        return self.is_member(org_id) and (scope is None or self.has_scope(scope))
