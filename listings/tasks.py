"""Background jobs of the listings domain, as plain async functions taking a session; the app shell
registers them as Celery tasks (this package never imports the shell or its Celery app)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from listings import service


async def refresh_next_free(session: AsyncSession, config: service.ListingsConfig, blocked: service.BlockedTime) -> int:
    """Recompute the stored next free slot of published listings whose value has passed."""
    return await service.refresh_due(session, config=config, blocked=blocked)
