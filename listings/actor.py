"""What the listings domain needs to know about its caller. The app shell's principal satisfies it."""

from __future__ import annotations

import uuid
from typing import Protocol


class Actor(Protocol):
    @property
    def user_id(self) -> uuid.UUID | None: ...

    @property
    def is_platform_admin(self) -> bool: ...

    @property
    def org_ids(self) -> frozenset[uuid.UUID]: ...

    @property
    def email_verified(self) -> bool: ...

    def can_act_for(self, org_id: uuid.UUID, scope: str | None = None) -> bool: ...
