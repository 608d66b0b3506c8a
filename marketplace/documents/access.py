"""Who may read a document: its uploader's organisation, admins, and the parties of what it is attached to.

Each room that attaches documents registers a party check for its target kind (``"booking"``, ``"message"``,
``"request"`` ...) so this room never needs to know the other rooms' tables."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

# (session, target id, the reader's organisations) -> may one of them read what is attached to the target?
PartyCheck = Callable[[AsyncSession, uuid.UUID, frozenset[uuid.UUID]], Awaitable[bool]]

PARTY_CHECKS: dict[str, PartyCheck] = {}


def register_party_check(target_kind: str, check: PartyCheck) -> None:
    """Called at import by the room that owns ``target_kind``; registering a kind twice is a bug."""
    if PARTY_CHECKS.get(target_kind, check) is not check:
        raise RuntimeError(f"a party check for {target_kind!r} is already registered")
    PARTY_CHECKS[target_kind] = check
