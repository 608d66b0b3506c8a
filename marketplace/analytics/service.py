"""Business rules of analytics, the room's entry point: observer grants and the audited rollup (here), factory
analytics (:mod:`.factory`) and the observatory (:mod:`.observatory`), re-exported for the endpoints, the web
pages, the tasks and the benchmarks.

Services never commit. They return plain Pydantic models / dicts that the JSON endpoints serialise unchanged."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.analytics.factory import ANALYTICS_SCOPE, factory_analytics, factory_analytics_csv
from marketplace.analytics.models import ObserverGrant
from marketplace.analytics.observatory import (
    MAX_MONTHS,
    ObservatorySettings,
    OutsideYourRegions,
    aggregate_month,
    compute_month,
    month_params,
    observatory_csv,
    observatory_indicators,
    rollup_month,
    visible_prefixes,
)
from marketplace.analytics.periods import buckets, month_start, months_between, next_month, offered_hours, utc_midnight
from marketplace.analytics.repository import AnalyticsRepository
from marketplace.analytics.schemas import FactoryAnalytics, ObservatoryOut, ObserverGrantIn, ObserverGrantOut
from marketplace.core import audit
from marketplace.core.errors import NotFound
from marketplace.core.principal import Principal as Caller

__all__ = [
    "ANALYTICS_SCOPE",
    "MAX_MONTHS",
    "AnalyticsRepository",
    "FactoryAnalytics",
    "ObservatoryOut",
    "ObservatorySettings",
    "OutsideYourRegions",
    "aggregate_month",
    "buckets",
    "compute_month",
    "create_grant",
    "delete_grant",
    "factory_analytics",
    "factory_analytics_csv",
    "list_grants",
    "month_params",
    "month_start",
    "months_between",
    "next_month",
    "observatory_csv",
    "observatory_indicators",
    "offered_hours",
    "rollup_month",
    "run_rollup",
    "utc_midnight",
    "visible_prefixes",
]


async def run_rollup(*, session: AsyncSession, admin: Caller, year: int, month: int) -> dict[str, Any]:
    """An administrator's on-demand rollup of one month (idempotent), audited like every admin action."""
    result = await rollup_month(session, year, month)
    await audit.record(
        session, actor_user_id=admin.user_id, action="observatory.rollup", target_type="observatory_month",
        target_id=result["month"], after=result,
    )  # fmt: skip
    return result


# -- observer grants (admin) -------------------------------------------------------------------------------


def _grant_out(g: ObserverGrant) -> ObserverGrantOut:
    return ObserverGrantOut.model_validate(g, from_attributes=True)


async def create_grant(*, session: AsyncSession, admin: Caller, data: ObserverGrantIn) -> ObserverGrantOut:
    repo = AnalyticsRepository(session)
    user_id = data.user_id
    if user_id is None and data.user_email is not None:
        user_id = await repo.user_id_by_email(data.user_email)
    if user_id is None or not await repo.user_exists(user_id):
        raise NotFound("User not found.")
    grant = ObserverGrant(user_id=user_id, region_prefixes=sorted(set(data.region_prefixes)),
                          created_by=admin.user_id)  # fmt: skip
    session.add(grant)
    await session.flush()
    out = _grant_out(grant)
    await audit.record(
        session, actor_user_id=admin.user_id, action="observer.grant", target_type="observer_grant",
        target_id=grant.id, after=out.model_dump(mode="json"),
    )  # fmt: skip
    return out


async def list_grants(*, session: AsyncSession) -> list[ObserverGrantOut]:
    return [_grant_out(g) for g in await AnalyticsRepository(session).grants()]


async def delete_grant(*, session: AsyncSession, admin: Caller, grant_id: uuid.UUID) -> None:
    grant = await AnalyticsRepository(session).grant(grant_id)
    if grant is None:
        raise NotFound("Observer grant not found.")
    before = _grant_out(grant).model_dump(mode="json")
    await session.delete(grant)
    await session.flush()
    await audit.record(
        session, actor_user_id=admin.user_id, action="observer.revoke", target_type="observer_grant",
        target_id=grant_id, before=before,
    )  # fmt: skip
