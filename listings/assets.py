"""Creating and editing listings (machines and lab services). Functions take a session and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from listings.access import owned_asset, owned_site, require, utcnow
from listings.actor import Actor
from listings.errors import Invalid, NotFound
from listings.lifecycle import transition
from listings.models import Asset, AssetKind, AssetStatus, AssetStatusEvent
from listings.moderation import EDITABLE
from listings.ports import BlockedTime, ListingsConfig
from listings.repository import ListingsRepository
from listings.schemas import AssetUpdate, LabServiceCreate, MachineCreate, _check_codes
from listings.slots import refresh_next_free

# Fields that apply to one kind of listing only (an edit naming the other kind's fields is refused).
MACHINE_ONLY = frozenset(
    {
        "envelope_mm",
        "max_part_mass_kg",
        "tolerance_mm",
        "hourly_rate",
        "setup_fee",
        "min_booking_minutes",
        "slot_minutes",
        "buffer_minutes",
        "setup_minutes",
        "operator_included",
        "quality_documents",  # sold with machine time only (listings/quality_documents.py)
    }
)
LAB_ONLY = frozenset(
    {
        "test_standard",
        "accredited",
        "price_per_sample",
        "turnaround_days",
        "daily_sample_capacity",
        "sample_requirements",
    }
)
# Edits of these send a published listing back to review.
MATERIAL_FIELDS = frozenset(
    {
        "site_id",
        "process_codes",
        "materials",
        "currency",
        "envelope_mm",
        "max_part_mass_kg",
        "tolerance_mm",
        "hourly_rate",
        "setup_fee",
        "test_standard",
        "accredited",
        "price_per_sample",
        "turnaround_days",
        "daily_sample_capacity",
        "deposit_percent",  # a payment term, like the price
    }
)
DEFAULT_CANCELLATION_POLICY = {"full_refund_hours": 72, "partial_refund_hours": 24, "partial_refund_percent": 50}


def _sorted_envelope(x: float, y: float, z: float) -> tuple[float, float, float]:
    a, b, c = sorted((x, y, z), reverse=True)
    return a, b, c


def _apply_envelope(asset: Asset, env: dict[str, float]) -> None:
    asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm = env["x"], env["y"], env["z"]
    asset.envelope_max_mm, asset.envelope_mid_mm, asset.envelope_min_mm = _sorted_envelope(env["x"], env["y"], env["z"])


async def create_asset(
    session: AsyncSession,
    actor: Actor,
    data: MachineCreate | LabServiceCreate,
    *,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    site = await owned_site(repo, actor, data.site_id, scope="listings:write")
    fields = data.model_dump(exclude={"envelope_mm", "cancellation_policy"})
    asset = Asset(org_id=site.org_id, **fields)
    asset.cancellation_policy = (
        data.cancellation_policy.model_dump() if data.cancellation_policy else dict(DEFAULT_CANCELLATION_POLICY)
    )
    if isinstance(data, MachineCreate):
        _apply_envelope(asset, data.envelope_mm.model_dump())
    await repo.add(asset)
    await repo.add(
        AssetStatusEvent(
            asset_id=asset.id, from_status=None, to_status=asset.status, action="create", actor_user_id=actor.user_id
        )
    )
    await refresh_next_free(session, asset, config=config, blocked=blocked)
    return asset


async def list_org_assets(
    session: AsyncSession,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    status: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Asset]:
    require(actor, org_id, "listings:read", not_found="Organisation not found.")
    return await ListingsRepository(session).assets_of_org(org_id, status, after=after, limit=limit)


async def update_asset(
    session: AsyncSession,
    actor: Actor,
    asset_id: uuid.UUID,
    *,
    data: AssetUpdate,
    config: ListingsConfig,
    blocked: BlockedTime,
) -> Asset:
    repo = ListingsRepository(session)
    asset = await owned_asset(repo, actor, asset_id)
    if asset.status not in EDITABLE:
        raise Invalid(f"An {asset.status} listing can no longer be edited.")
    changes = data.model_dump(exclude_unset=True)
    wrong = (LAB_ONLY if asset.kind == AssetKind.machine else MACHINE_ONLY) & changes.keys()
    if wrong:
        raise Invalid(f"{sorted(wrong)} do not apply to a {asset.kind} listing.")
    nulls = [k for k, v in changes.items() if v is None and k not in ("cancellation_policy", "deposit_percent")]
    if nulls:
        raise Invalid(f"{sorted(nulls)} cannot be set to null.")
    if "process_codes" in changes:
        try:
            changes["process_codes"] = _check_codes(changes["process_codes"], asset.kind)
        except ValueError as exc:
            raise Invalid(f"process_codes: {exc}") from None
    if "site_id" in changes:
        await owned_site(repo, actor, changes["site_id"], scope="listings:write")
        site = await repo.get_site(changes["site_id"])
        if site is None or site.org_id != asset.org_id:
            raise NotFound("Site not found.")
    material = any(_differs(asset, k, v) for k, v in changes.items() if k in MATERIAL_FIELDS)
    for key, value in changes.items():
        if key == "envelope_mm":
            _apply_envelope(asset, value)
        elif key == "cancellation_policy":
            asset.cancellation_policy = value or dict(DEFAULT_CANCELLATION_POLICY)
        else:
            setattr(asset, key, value)
    slot, minimum = asset.slot_minutes, asset.min_booking_minutes
    if asset.kind == AssetKind.machine and slot and minimum and (1440 % slot or minimum % slot):
        raise Invalid("slot_minutes must divide a day and min_booking_minutes must be a multiple of it.")
    asset.updated_at = utcnow()
    if material and asset.status in (AssetStatus.published, AssetStatus.suspended):
        await transition(
            repo, asset, "material_edit", actor_user_id=actor.user_id, reason="capability, price or location changed"
        )
    await session.flush()
    await refresh_next_free(session, asset, config=config, blocked=blocked)
    return asset


def _differs(asset: Asset, key: str, value: Any) -> bool:
    if key == "envelope_mm":
        return (asset.envelope_x_mm, asset.envelope_y_mm, asset.envelope_z_mm) != (value["x"], value["y"], value["z"])
    current = getattr(asset, key)
    if isinstance(current, list) and isinstance(value, list):
        return sorted(current) != sorted(value)
    return bool(current != value)
