"""The request's values for the prefilter statement (:mod:`matching.repository`) and the row it returns; pure.

Every value a request contributes to the candidate statement has a name here (:func:`request_values`); the
statement itself is built once per request *shape* (:func:`shape`: which constraints are present) and executed
with these values as bind parameters.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from listings.calendar import UTILISATION_DAYS
from matching.types import MatchRequest

ServingCodes = Sequence[str] | set[str] | frozenset[str]
_DAY = timedelta(days=1)


def norm_standard(name: str) -> str:
    return " ".join(name.split()).casefold()


def like_prefix(prefix: str) -> str:
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def standards(request: MatchRequest) -> list[str]:
    return sorted({norm_standard(r) for r in request.required_certificates})


def cert_window(request: MatchRequest) -> tuple[date, date]:
    # Site-local dates can differ from UTC dates by a day either way.
    return request.earliest_start.astimezone(UTC).date() - _DAY, request.deadline.astimezone(UTC).date() + _DAY


def distance_limited(request: MatchRequest) -> bool:
    return request.max_distance_km is not None and request.lat is not None and request.lon is not None


# A located request ranks the listings that pass its time-independent requirements among this many nearest listings
# of each serving process: at a million listings a request without a distance limit reached 41,423 passing ones,
# and scoring every one made matching's time grow with the market (issue #19; docs/performance.md, "National scale").
NEAREST = 1_000


def request_values(
    request: MatchRequest,
    serving_codes: ServingCodes,
    *,
    now: datetime | None = None,
    cap: int | None = None,
    nearest: int = NEAREST,
) -> dict[str, Any]:
    """The request's values by bind parameter name (those of constraints it lacks are simply unused)."""
    cert_lo, cert_hi = cert_window(request)
    w = request.effective_weights
    values: dict[str, Any] = {
        "kind": request.kind,
        "codes": sorted(serving_codes),
        "material": [request.material],
        "cert_lo": cert_lo,
        "cert_hi": cert_hi,
        "lat": request.lat,
        "lon": request.lon,
        "tolerance": request.tolerance_mm,
        "currency": request.currency,
        "budget": request.budget_max,
        "duration": request.duration_minutes,
        "samples": request.samples,
        "w_price": w.price,
        "w_start": w.start,
        "w_distance": w.distance,
        "earliest": request.earliest_start,
        "deadline": request.deadline,
        "cap": cap,
        "nearest": nearest,
    }
    if request.part_size_mm is not None:
        values["env_big"], values["env_mid"], values["env_small"] = sorted(request.part_size_mm, reverse=True)
    for i, std in enumerate(standards(request)):
        values[f"cert_{i}"] = std
    if request.max_distance_km is not None and request.lat is not None and request.lon is not None:
        p1 = math.radians(request.lat)
        # earth_box uses its own earth radius: widen it by 1 % so the index never cuts a feasible site; the
        # engine's formula (plus a hair for floating point) then decides.
        values.update(
            box_m=request.max_distance_km * 1010.0,
            max_km=request.max_distance_km + 1e-9,
            hv_p1=p1,
            hv_l1=math.radians(request.lon),
            hv_cos_p1=math.cos(p1),
        )
    for i, prefix in enumerate(request.region_prefixes):
        values[f"region_{i}"] = like_prefix(prefix)
    if now is not None:
        values["used_from"], values["used_until"] = now - timedelta(days=UTILISATION_DAYS), now
    return values


def shape(request: MatchRequest, *, cap: int | None, now: datetime | None) -> tuple[Any, ...]:
    """Everything that changes the structure of the candidate statement (not its values)."""
    return (
        request.kind,
        request.material is not None,
        request.part_size_mm is not None,
        len(standards(request)),
        distance_limited(request),
        len(request.region_prefixes),
        request.lat is not None and request.lon is not None,
        request.tolerance_mm is not None,
        request.budget_max is not None,
        cap is None,
        now is not None,
    )


@dataclass(frozen=True, slots=True)
class AssetRow:
    """The asset, site and organisation columns a candidate needs (plain column select, no ORM entities)."""

    id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID
    kind: str
    status: str
    currency: str
    process_codes: list[str]
    materials: list[str]
    envelope_x_mm: float | None
    envelope_y_mm: float | None
    envelope_z_mm: float | None
    tolerance_mm: float | None
    hourly_rate: int | None
    setup_fee: int | None
    min_booking_minutes: int | None
    slot_minutes: int | None
    buffer_minutes: int | None
    setup_minutes: int | None
    price_per_sample: int | None
    turnaround_days: int | None
    daily_sample_capacity: int | None
    weekly_plan: str  # JSON text
    timezone: str
    latitude: float | None
    longitude: float | None
    region_code: str | None
    verified: bool
