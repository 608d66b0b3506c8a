"""Routes: factory/buyer analytics, the regional observatory and the admin's observer grants."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from marketplace.analytics import service
from marketplace.analytics.schemas import FactoryAnalytics, ObservatoryOut, ObserverGrantIn, ObserverGrantOut, RollupOut
from marketplace.auth.deps import AdminPrincipal, CurrentPrincipal
from marketplace.core.db import SessionDep
from marketplace.core.errors import error_responses
from marketplace.core.settings import Settings
from marketplace.core.text import Line

router = APIRouter(tags=["analytics"])

From = Annotated[date | None, Query(alias="from", description="First day (default: 12 weeks / 12 months ago)")]
To = Annotated[date | None, Query(alias="to", description="Last day, inclusive (default: today, UTC)")]
Granularity = Annotated[Literal["week", "month"], Query()]
Region = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9-]{1,20}$", description="Region-code prefix, e.g. 3205 (Suzhou)")
]
Depth = Annotated[int | None, Query(ge=0, le=20, description="Region code characters per row (default: setting)")]
Process = Annotated[Line | None, Query(max_length=100, description="Process family, e.g. machining")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _range(start: date | None, end: date | None, granularity: str) -> tuple[date, date]:
    end = end or datetime.now(UTC).date()
    if start is None:
        start = end - timedelta(weeks=12) if granularity == "week" else (end - timedelta(days=365)).replace(day=1)
    return start, end


def _csv(body: str, name: str) -> Response:
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- factories and buyers ------------------------------------------------------------------------------------


async def _org_analytics(
    *,
    org_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    start: From = None,
    end: To = None,
    granularity: Granularity = "week",
) -> FactoryAnalytics:
    """The shared query of the JSON and CSV routes (a dependency, so both declare the same parameters)."""
    s, e = _range(start, end, granularity)
    return await service.factory_analytics(
        session=session, principal=principal, settings=_settings(request), org_id=org_id, start=s, end=e,
        granularity=granularity,
    )  # fmt: skip


OrgAnalytics = Annotated[FactoryAnalytics, Depends(_org_analytics)]


@router.get(
    "/orgs/{org_id}/analytics",
    response_model=FactoryAnalytics,
    responses=error_responses(401, 403, 404, 422),
    summary="Utilization, earnings, cancellations and on-time figures per machine, site and organisation",
)
async def org_analytics(out: OrgAnalytics) -> FactoryAnalytics:
    return out


@router.get(
    "/orgs/{org_id}/analytics.csv",
    responses={**error_responses(401, 403, 404, 422), 200: {"content": {"text/csv": {}}}},
    summary="The same analytics as CSV (one line per bucket and organisation/site/machine/lab/buyer)",
)
async def org_analytics_csv(out: OrgAnalytics) -> Response:
    return _csv(service.factory_analytics_csv(out), f"analytics-{out.org_id}-{out.from_}-{out.to}.csv")


# -- observatory ---------------------------------------------------------------------------------------------


async def _indicators(
    *,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    region: Region = None,
    start: From = None,
    end: To = None,
    process: Process = None,
    depth: Depth = None,
) -> ObservatoryOut:
    """The shared query of the JSON and CSV routes (a dependency, so both declare the same parameters)."""
    s, e = _range(start, end, "month")
    return await service.observatory_indicators(
        session, principal, _settings(request), region=region, start=s, end=e, process=process, depth=depth
    )


Indicators = Annotated[ObservatoryOut, Depends(_indicators)]


@router.get(
    "/observatory/indicators",
    response_model=ObservatoryOut,
    responses=error_responses(401, 403, 422),
    summary="Regional indicators by region x process family x month (k-anonymised; observers and admins)",
)
async def observatory_indicators(out: Indicators) -> ObservatoryOut:
    return out


@router.get(
    "/observatory/indicators.csv",
    responses={**error_responses(401, 403, 422), 200: {"content": {"text/csv": {}}}},
    summary="The indicator cells as CSV (suppressed cells have empty values)",
)
async def observatory_indicators_csv(out: Indicators) -> Response:
    return _csv(service.observatory_csv(out), "observatory-indicators.csv")


# -- admin ---------------------------------------------------------------------------------------------------


@router.post(
    "/admin/observers",
    status_code=status.HTTP_201_CREATED,
    response_model=ObserverGrantOut,
    responses=error_responses(401, 403, 404, 422),
    tags=["admin"],
    summary="Grant the observer role for region-code prefixes to a user (audited)",
)
async def create_observer(data: ObserverGrantIn, session: SessionDep, admin: AdminPrincipal) -> ObserverGrantOut:
    return await service.create_grant(session=session, admin=admin, data=data)


@router.get(
    "/admin/observers",
    response_model=list[ObserverGrantOut],
    responses=error_responses(401, 403),
    tags=["admin"],
)
async def list_observers(session: SessionDep, admin: AdminPrincipal) -> list[ObserverGrantOut]:
    return await service.list_grants(session=session)


@router.delete(
    "/admin/observers/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    tags=["admin"],
    summary="Revoke an observer grant (audited)",
)
async def delete_observer(grant_id: uuid.UUID, session: SessionDep, admin: AdminPrincipal) -> Response:
    await service.delete_grant(session=session, admin=admin, grant_id=grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class RollupIn(BaseModel):
    year: int = Field(ge=2000, le=2100)
    month: int = Field(ge=1, le=12)


@router.post(
    "/admin/observatory/rollups",
    response_model=RollupOut,
    responses=error_responses(401, 403, 422),
    tags=["admin"],
    summary="Recompute one month's observatory rollup now (idempotent; audited)",
)
async def run_rollup(data: RollupIn, session: SessionDep, admin: AdminPrincipal) -> RollupOut:
    result = await service.run_rollup(session=session, admin=admin, year=data.year, month=data.month)
    return RollupOut.model_validate(result)
