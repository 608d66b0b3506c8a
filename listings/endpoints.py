"""HTTP endpoints of the listings domain, built by a factory that receives the app shell's
dependencies (session, caller), so this package never imports the shell.

(No ``from __future__ import annotations`` here: FastAPI must see the closures' real annotations.)
"""

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Body, Query, status
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from listings import certificate_endpoints, service
from listings.actor import Actor as ActorT
from listings.errors import BadRequest
from listings.flagging import FlagIn, FlagOut
from listings.models import Asset
from listings.ports import CertificateScans
from listings.schemas import (
    AssetCreate,
    AssetOut,
    AssetUpdate,
    AvailabilityIn,
    AvailabilityOut,
    AvailabilitySyncIn,
    Envelope,
    Interval,
    IntervalsOut,
    LabCapacityOut,
    LabDay,
    Line,
    NextSlot,
    SearchResult,
    SiteCreate,
    SiteOut,
    SiteUpdate,
    StatusEventOut,
)
from listings.taxonomy import get_taxonomy

Item = TypeVar("Item", bound=BaseModel)


class TaxonomyItem(BaseModel):
    code: str
    name: str
    name_en: str
    name_zh: str
    parent: str | None = None
    kind: str | None = None
    family: str | None = None
    grades: list[str] | None = None
    can_also_do: list[str] | None = None


class TaxonomyOut(BaseModel):
    items: list[TaxonomyItem]


class _Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_cursor: str | None = None


class SearchPage(_Page[SearchResult]):
    pass


class AssetPage(_Page[AssetOut]):
    pass


class SitePage(_Page[SiteOut]):
    pass


class HistoryOut(BaseModel):
    items: list[StatusEventOut]


class SyncOut(BaseModel):
    replaced_with: int
    next_free_at: datetime | None


def asset_out(asset: Asset) -> AssetOut:
    data = {k: getattr(asset, k) for k in AssetOut.model_fields if k != "envelope_mm" and hasattr(asset, k)}
    if asset.envelope_x_mm is not None and asset.envelope_y_mm is not None and asset.envelope_z_mm is not None:
        data["envelope_mm"] = Envelope(x=asset.envelope_x_mm, y=asset.envelope_y_mm, z=asset.envelope_z_mm)
    return AssetOut(**data)


def build_router(
    *,
    session_dep: Any,
    actor_dep: Any,
    optional_actor_dep: Any,
    config: service.ListingsConfig,
    blocked: service.BlockedTime,
    error_responses: Callable[..., dict[int | str, dict[str, Any]]],
    encode_cursor: Callable[[list[Any]], str],
    decode_cursor: Callable[[str | None], list[Any] | None],
    decode_keyset: Callable[[str | None], tuple[datetime, uuid.UUID] | None],
    certificate_scans: CertificateScans | None = None,
) -> APIRouter:
    """``session_dep``, ``actor_dep`` and ``optional_actor_dep`` are ``Depends(...)`` markers from the app
    shell: the request's unit of work, the authenticated caller, and the caller if any. ``decode_keyset``
    reads a ``(created_at, id)`` cursor and rejects a malformed one with the shell's 400."""
    router = APIRouter()
    # The shell's dependencies as parameter types (they never appear in the OpenAPI document).
    Session = Annotated[AsyncSession, session_dep]
    Caller = Annotated[ActorT, actor_dep]
    Viewer = Annotated[ActorT | None, optional_actor_dep]

    # -- taxonomy ----------------------------------------------------------------------------------

    @router.get(
        "/taxonomy/processes",
        response_model=TaxonomyOut,
        tags=["taxonomy"],
        summary="The process tree with zh-CN and en names",
    )
    async def processes(locale: Literal["zh-CN", "en"] = "en") -> TaxonomyOut:
        tax = get_taxonomy()
        also: dict[str, list[str]] = {}
        for src, dst in tax.can_also_do:
            also.setdefault(src, []).append(dst)
        return TaxonomyOut(
            items=[
                TaxonomyItem(
                    code=p.code,
                    name=tax.name(p.code, locale),
                    name_en=p.name_en,
                    name_zh=p.name_zh,
                    parent=p.parent,
                    kind=p.kind,
                    can_also_do=sorted(also.get(p.code, [])) or None,
                )
                for p in sorted(tax.processes.values(), key=lambda p: p.code)
            ]
        )

    @router.get(
        "/taxonomy/materials",
        response_model=TaxonomyOut,
        tags=["taxonomy"],
        summary="Materials with common Chinese and international grades",
    )
    async def materials(locale: Literal["zh-CN", "en"] = "en") -> TaxonomyOut:
        tax = get_taxonomy()
        return TaxonomyOut(
            items=[
                TaxonomyItem(
                    code=m.code,
                    name=m.name_zh if locale == "zh-CN" else m.name_en,
                    name_en=m.name_en,
                    name_zh=m.name_zh,
                    family=m.family,
                    grades=list(m.grades),
                )
                for m in sorted(tax.materials.values(), key=lambda m: m.code)
            ]
        )

    # -- sites -------------------------------------------------------------------------------------

    @router.post(
        "/sites",
        status_code=status.HTTP_201_CREATED,
        response_model=SiteOut,
        tags=["sites"],
        responses=error_responses(401, 403, 404, 422),
    )
    async def create_site(data: SiteCreate, session: Session, actor: Caller) -> SiteOut:
        return SiteOut.model_validate(await service.create_site(session, actor, data))

    @router.get("/sites/{site_id}", response_model=SiteOut, tags=["sites"], responses=error_responses(401, 404, 422))
    async def get_site(site_id: uuid.UUID, session: Session, actor: Caller) -> SiteOut:
        return SiteOut.model_validate(await service.get_site(session, actor, site_id))

    @router.patch(
        "/sites/{site_id}",
        response_model=SiteOut,
        tags=["sites"],
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Edit a site; moving it sends its published listings back to review",
    )
    async def update_site(site_id: uuid.UUID, data: SiteUpdate, session: Session, actor: Caller) -> SiteOut:
        return SiteOut.model_validate(await service.update_site(session, actor, site_id, data=data))

    @router.get(
        "/orgs/{org_id}/sites", response_model=SitePage, tags=["sites"], responses=error_responses(401, 404, 422)
    )
    async def list_sites(org_id: uuid.UUID, session: Session, actor: Caller) -> SitePage:
        return SitePage(items=[SiteOut.model_validate(s) for s in await service.list_sites(session, actor, org_id)])

    # -- certificates ------------------------------------------------------------------------------

    certificate_endpoints.add_routes(
        router, session_dep=session_dep, actor_dep=actor_dep, error_responses=error_responses, scans=certificate_scans
    )

    # -- assets ------------------------------------------------------------------------------------

    @router.post(
        "/assets",
        status_code=status.HTTP_201_CREATED,
        response_model=AssetOut,
        tags=["assets"],
        responses=error_responses(401, 403, 404, 422),
        summary="Create a listing (status draft)",
    )
    async def create_asset(data: Annotated[AssetCreate, Body()], session: Session, actor: Caller) -> AssetOut:
        return asset_out(await service.create_asset(session, actor, data, config=config, blocked=blocked))

    @router.get(
        "/assets",
        response_model=SearchPage,
        tags=["assets"],
        responses=error_responses(400, 422),
        summary="Search published capacity (public)",
    )
    async def search_assets(
        session: Session,
        process: Annotated[
            Line | None, Query(max_length=100, description="Process code; descendants and 'can also do' match")
        ] = None,
        material: Annotated[Line | None, Query(max_length=100)] = None,
        min_x: Annotated[float | None, Query(gt=0, description="Part size in mm (rotation allowed)")] = None,
        min_y: Annotated[float | None, Query(gt=0)] = None,
        min_z: Annotated[float | None, Query(gt=0)] = None,
        tolerance_mm: Annotated[float | None, Query(gt=0, description="Required tolerance")] = None,
        certificate: Annotated[
            Line | None, Query(max_length=100, description="A standard, e.g. ISO 9001 (verified, valid)")
        ] = None,
        region: Annotated[list[Line] | None, Query(description="Region-code prefixes, e.g. 3205")] = None,
        lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
        lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
        radius_km: Annotated[float | None, Query(gt=0, le=20000)] = None,
        max_hourly_rate: Annotated[int | None, Query(ge=0)] = None,
        max_price_per_sample: Annotated[int | None, Query(ge=0)] = None,
        kind: Literal["machine", "lab_service"] | None = None,
        currency: Annotated[Line | None, Query(min_length=3, max_length=3)] = None,
        free_minutes: Annotated[int | None, Query(ge=1, le=60 * 24 * 60)] = None,
        free_from: AwareDatetime | None = None,
        free_to: AwareDatetime | None = None,
        sort: Literal["price", "distance", "next_free"] = "next_free",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[Line | None, Query(max_length=2000)] = None,
    ) -> SearchPage:
        after = None
        if (values := decode_cursor(cursor)) is not None:
            after = _decode_search_cursor(values, sort)
        q = service.SearchQuery(
            process=process,
            material=material,
            min_x=min_x,
            min_y=min_y,
            min_z=min_z,
            tolerance_mm=tolerance_mm,
            certificate=certificate,
            region=region,
            lat=lat,
            lon=lon,
            radius_km=radius_km,
            max_hourly_rate=max_hourly_rate,
            max_price_per_sample=max_price_per_sample,
            kind=kind,
            currency=currency.upper() if currency else None,
            free_minutes=free_minutes,
            free_from=free_from,
            free_to=free_to,
            sort=sort,
            limit=limit,
            after=after,
        )
        hits, last = await service.search(session, q, config=config, blocked=blocked)
        items = []
        for h in hits:
            base = asset_out(h.asset).model_dump()
            items.append(
                SearchResult(
                    **base,
                    site=SiteOut.model_validate(h.site),
                    distance_km=round(h.distance_km, 3) if h.distance_km is not None else None,
                    next_free_slot=NextSlot(start=h.next_free_slot[0], end=h.next_free_slot[1])
                    if h.next_free_slot
                    else None,
                    certificates=h.certificates,
                )
            )
        next_cursor = None
        if last is not None:
            key = last[0].isoformat() if isinstance(last[0], datetime) else last[0]
            next_cursor = encode_cursor([sort, key, str(last[1])])
        return SearchPage(items=items, next_cursor=next_cursor)

    def _decode_search_cursor(values: list[Any], sort: str) -> tuple[Any, uuid.UUID]:
        try:
            cursor_sort, key, ident = values
            if cursor_sort != sort:
                raise BadRequest("The cursor belongs to a search with another sort order.")
            if sort == "next_free":
                key = datetime.fromisoformat(key)
            elif key is not None:
                key = float(key)
            return key, uuid.UUID(ident)
        except (ValueError, TypeError) as exc:
            raise BadRequest("Malformed cursor.") from exc

    @router.get("/assets/{asset_id}", response_model=AssetOut, tags=["assets"], responses=error_responses(404, 422))
    async def get_asset(asset_id: uuid.UUID, session: Session, actor: Viewer) -> AssetOut:
        return asset_out(await service.visible_asset(session, actor, asset_id))

    @router.patch(
        "/assets/{asset_id}",
        response_model=AssetOut,
        tags=["assets"],
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Edit a listing; capability, price or location edits send a published one back to review",
    )
    async def update_asset(asset_id: uuid.UUID, data: AssetUpdate, session: Session, actor: Caller) -> AssetOut:
        return asset_out(
            await service.update_asset(session, actor, asset_id, data=data, config=config, blocked=blocked)
        )

    @router.post(
        "/assets/{asset_id}/submit",
        response_model=AssetOut,
        tags=["assets"],
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Submit for review",
    )
    async def submit(asset_id: uuid.UUID, session: Session, actor: Caller) -> AssetOut:
        return asset_out(await service.owner_transition(session, actor, asset_id, action="submit"))

    @router.post(
        "/assets/{asset_id}/archive",
        response_model=AssetOut,
        tags=["assets"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def archive(asset_id: uuid.UUID, session: Session, actor: Caller) -> AssetOut:
        return asset_out(await service.owner_transition(session, actor, asset_id, action="archive"))

    @router.get(
        "/assets/{asset_id}/history",
        response_model=HistoryOut,
        tags=["assets"],
        responses=error_responses(401, 404),
        summary="Moderation history with reasons (owner)",
    )
    async def asset_history(asset_id: uuid.UUID, session: Session, actor: Caller) -> HistoryOut:
        events = await service.history(session, actor, asset_id)
        return HistoryOut(items=[StatusEventOut.model_validate(e) for e in events])

    @router.post(
        "/assets/{asset_id}/flags",
        status_code=status.HTTP_201_CREATED,
        response_model=FlagOut,
        tags=["assets"],
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Report a listing (a reason code and/or words; one open report per person and listing)",
    )
    async def flag_asset(asset_id: uuid.UUID, data: FlagIn, session: Session, actor: Caller) -> FlagOut:
        item = await service.flag(session, actor, asset_id, reason_code=data.code, reason=data.details)
        return FlagOut.model_validate(item)

    @router.get(
        "/orgs/{org_id}/assets",
        response_model=AssetPage,
        tags=["assets"],
        responses=error_responses(401, 404, 422),
        summary="An organisation's own listings, any status",
    )
    async def org_assets(
        session: Session,
        actor: Caller,
        org_id: uuid.UUID,
        status_filter: Annotated[Line | None, Query(alias="status", max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[Line | None, Query(max_length=2000)] = None,
    ) -> AssetPage:
        assets = await service.list_org_assets(
            session, actor, org_id, status=status_filter, after=decode_keyset(cursor), limit=limit + 1
        )
        next_cursor = None
        if len(assets) > limit:
            assets = assets[:limit]
            next_cursor = encode_cursor([assets[-1].created_at.isoformat(), str(assets[-1].id)])
        return AssetPage(items=[asset_out(a) for a in assets], next_cursor=next_cursor)

    # -- availability ------------------------------------------------------------------------------

    @router.put(
        "/assets/{asset_id}/availability",
        response_model=AvailabilityOut,
        tags=["availability"],
        responses=error_responses(401, 403, 404, 422),
        summary="Replace the weekly plan (site-local time) and the dated exceptions",
    )
    async def put_availability(
        asset_id: uuid.UUID, data: AvailabilityIn, session: Session, actor: Caller
    ) -> AvailabilityOut:
        await service.set_availability(session, actor, asset_id, data=data, config=config, blocked=blocked)
        return AvailabilityOut(**await service.get_availability(session, actor, asset_id))

    @router.get(
        "/assets/{asset_id}/availability",
        response_model=AvailabilityOut,
        tags=["availability"],
        responses=error_responses(404, 422),
    )
    async def get_availability(asset_id: uuid.UUID, session: Session, actor: Viewer) -> AvailabilityOut:
        return AvailabilityOut(**await service.get_availability(session, actor, asset_id))

    @router.post(
        "/assets/{asset_id}/availability/sync",
        response_model=SyncOut,
        tags=["availability"],
        responses=error_responses(401, 403, 404, 422),
        summary="MES/ERP bulk sync: replace the exceptions inside [from, to) atomically",
    )
    async def sync_availability(
        asset_id: uuid.UUID, data: AvailabilitySyncIn, session: Session, actor: Caller
    ) -> SyncOut:
        asset = await service.sync_exceptions(session, actor, asset_id, data=data, config=config, blocked=blocked)
        return SyncOut(replaced_with=len(data.exceptions), next_free_at=asset.next_free_at)

    @router.get(
        "/assets/{asset_id}/free-slots",
        response_model=IntervalsOut,
        tags=["availability"],
        responses=error_responses(404, 422),
        summary="Windows (UTC) in which a booking of duration_minutes can be placed",
    )
    async def free_slots(
        session: Session,
        actor: Viewer,
        asset_id: uuid.UUID,
        start: AwareDatetime,
        end: AwareDatetime,
        duration_minutes: Annotated[int, Query(ge=1, le=60 * 24 * 60)] = 60,
    ) -> IntervalsOut:
        windows = await service.free_slots(
            session, actor, asset_id, start=start, end=end, duration_minutes=duration_minutes, blocked=blocked
        )
        return IntervalsOut(items=[Interval(start=s, end=e) for s, e in windows])

    @router.get(
        "/assets/{asset_id}/lab-capacity",
        response_model=LabCapacityOut,
        tags=["availability"],
        responses=error_responses(404, 422),
        summary="A lab service's daily sample capacity",
    )
    async def lab_capacity(
        session: Session,
        actor: Viewer,
        asset_id: uuid.UUID,
        from_date: Annotated[date, Query(alias="from")],
        to_date: Annotated[date, Query(alias="to")],
    ) -> LabCapacityOut:
        days = await service.lab_capacity(session, actor, asset_id, first=from_date, last=to_date, blocked=blocked)
        return LabCapacityOut(items=[LabDay(**d) for d in days])

    return router
