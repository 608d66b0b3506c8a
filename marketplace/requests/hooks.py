"""What other rooms do when a request closes (booked, cancelled), in the same transaction.

The quotes room depends on requests, not the other way round, so it registers its reaction here (as rooms
register document party checks): closing a request withdraws its waiting quote invitations at once, instead
of leaving suppliers a "please quote" until the next sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

CloseHook = Callable[[AsyncSession, uuid.UUID, datetime], Awaitable[None]]
_CLOSE_HOOKS: list[CloseHook] = []


def register_close_hook(hook: CloseHook) -> None:
    if hook not in _CLOSE_HOOKS:
        _CLOSE_HOOKS.append(hook)


async def request_closed(session: AsyncSession, *, request_id: uuid.UUID, now: datetime) -> None:
    for hook in _CLOSE_HOOKS:
        await hook(session, request_id, now)
