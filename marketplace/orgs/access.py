"""What every organisation service checks first: the caller belongs to the organisation (or is a platform
admin), and how an organisation's events reach the audit log. Objects of an organisation the caller does not
belong to are reported as not found, so their existence is not revealed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core import audit
from marketplace.core.errors import Forbidden, NotFound
from marketplace.core.principal import Principal
from marketplace.orgs.models import Organisation
from marketplace.orgs.repository import OrgRepository


class OrgNotFound(NotFound):
    """Organisation not found."""


async def get_for_member(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID, *, owner: bool = False
) -> Organisation:
    """The organisation, if the caller belongs to it (platform admins see all); 404 otherwise.
    With ``owner=True`` the caller must be an owner (403 for a plain member)."""
    if not (principal.is_member(org_id) or principal.is_platform_admin):
        raise OrgNotFound()
    org = await OrgRepository(session).get(org_id)
    if org is None:
        raise OrgNotFound()
    if owner and not (principal.is_owner(org_id) or principal.is_platform_admin):
        raise Forbidden("Only an owner of this organisation can do this.")
    return org


async def record_org_event(
    session: AsyncSession,
    *,
    actor_user_id: uuid.UUID | None,
    action: str,
    org_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    actor_api_key_id: uuid.UUID | None = None,
) -> None:
    """An audit record targeting the organisation (members and invitations are part of it)."""
    await audit.record(
        session, actor_user_id=actor_user_id, action=action, target_type="organisation", target_id=org_id,
        before=before, after=after, reason=reason, actor_api_key_id=actor_api_key_id,
    )  # fmt: skip
