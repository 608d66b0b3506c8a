"""Plain input/output types of the matching algorithms (no database, no web).

Conventions shared by every matching module:

* Datetimes are timezone-aware; intervals are half-open ``[start, end)`` in UTC
  (``listings.availability.Interval``). Naive datetimes are rejected.
* Money is integer minor units plus an ISO 4217 currency code.
* Asset ids are strings (the DB adapter passes ``str(uuid)``); they are only used as
  the final, deterministic tie-break and as keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, TypeAlias

from listings.availability import Interval

Kind: TypeAlias = Literal["machine", "lab_service"]
KINDS: frozenset[str] = frozenset({"machine", "lab_service"})


class Rejection(StrEnum):
    """Hard constraints in the order they are checked; a rejection names the first that fails.

    The time-dependent checks run last: ``availability`` (is there any free slot at all)
    and then certificate *validity* over the chosen slot, reported as ``certificate``.
    A certificate that is missing altogether is reported as ``certificate`` at its
    position in this order.
    """

    STATUS = "status"
    PROCESS = "process"
    MATERIAL = "material"
    ENVELOPE = "envelope"
    TOLERANCE = "tolerance"
    CERTIFICATE = "certificate"
    LOCATION = "location"
    CURRENCY = "currency"
    BUDGET = "budget"
    AVAILABILITY = "availability"


def _aware(name: str, dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Weights:
    """Ranking weights; :meth:`normalised` rescales them to sum to 1."""

    price: float = 0.35
    distance: float = 0.2
    start: float = 0.25
    quality: float = 0.15
    idle: float = 0.05

    def __post_init__(self) -> None:
        values = self.as_tuple()
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ValueError("weights must be finite and >= 0")
        if math.fsum(values) <= 0:
            raise ValueError("at least one weight must be positive")

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.price, self.distance, self.start, self.quality, self.idle)

    def normalised(self) -> Weights:
        total = math.fsum(self.as_tuple())
        return Weights(*(v / total for v in self.as_tuple()))


@dataclass(frozen=True, slots=True)
class MatchRequest:
    """What a buyer asks for.

    ``duration_minutes`` is the total machine time of the job (``quantity`` is
    informational for machines); labs are sized by ``samples``. ``part_size_mm`` is the
    part's bounding box in any orientation. ``tolerance_mm`` is the tolerance the part
    needs: an asset qualifies when its achievable tolerance is <= this value.
    ``request_id`` is only required by the batch optimiser.
    """

    kind: Kind
    process_code: str
    earliest_start: datetime
    deadline: datetime
    currency: str
    material: str | None = None
    quantity: int = 1
    duration_minutes: int | None = None
    samples: int | None = None
    part_size_mm: tuple[float, float, float] | None = None
    tolerance_mm: float | None = None
    required_certificates: tuple[str, ...] = ()
    lat: float | None = None
    lon: float | None = None
    max_distance_km: float | None = None
    region_prefixes: tuple[str, ...] = ()
    budget_max: int | None = None
    weights: Weights | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        _aware("earliest_start", self.earliest_start)
        _aware("deadline", self.deadline)
        if self.earliest_start >= self.deadline:
            raise ValueError("earliest_start must be before deadline")
        if self.kind == "machine" and (self.duration_minutes is None or self.duration_minutes < 1):
            raise ValueError("a machine request needs duration_minutes >= 1")
        if self.kind == "lab_service" and (self.samples is None or self.samples < 1):
            raise ValueError("a lab request needs samples >= 1")
        if self.quantity < 1:
            raise ValueError("quantity must be >= 1")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.max_distance_km is not None and (self.lat is None or self.max_distance_km < 0):
            raise ValueError("max_distance_km needs a request location and must be >= 0")
        if self.part_size_mm is not None and (len(self.part_size_mm) != 3 or min(self.part_size_mm) <= 0):
            raise ValueError("part_size_mm must be three positive dimensions")
        if self.tolerance_mm is not None and self.tolerance_mm <= 0:
            raise ValueError("tolerance_mm must be positive")
        if self.budget_max is not None and self.budget_max < 0:
            raise ValueError("budget_max must be >= 0")

    @property
    def minutes(self) -> int:
        """The machine job's duration (``__post_init__`` guarantees it for machine requests)."""
        if self.duration_minutes is None:
            raise ValueError("a lab request has no duration")
        return self.duration_minutes

    @property
    def sample_count(self) -> int:
        """The lab job's samples (``__post_init__`` guarantees them for lab requests)."""
        if self.samples is None:
            raise ValueError("a machine request has no samples")
        return self.samples

    @property
    def key(self) -> str:
        """The request id a batch needs (``batch`` checks every request has one first)."""
        if self.request_id is None:
            raise ValueError("batch requests need a request_id")
        return self.request_id

    @property
    def effective_weights(self) -> Weights:
        return (self.weights or Weights()).normalised()


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A verified certificate of the asset's site/organisation; dates are inclusive."""

    standard: str
    valid_from: date
    valid_until: date


@dataclass(frozen=True, slots=True)
class Candidate:
    """One asset as loaded by the DB adapter (roughly pre-filtered by SQL).

    ``free`` is already plan + open exceptions - closed exceptions - blocking bookings
    over the request window (UTC). For labs, ``lab_capacity`` maps a drop-off day to the
    remaining samples; a day missing from it falls back to ``daily_sample_capacity``
    (no bookings that day). ``closed_days`` are site-local dates the lab is shut.
    ``utilisation`` is the booked share of offered hours in the recent past (0..1).
    """

    asset_id: str
    org_id: str
    site_id: str
    kind: Kind
    currency: str
    timezone: str = "UTC"
    process_codes: frozenset[str] = frozenset()
    materials: frozenset[str] = frozenset()
    envelope_mm: tuple[float, float, float] | None = None
    tolerance_mm: float | None = None
    # machines
    hourly_rate: int | None = None
    setup_fee: int = 0
    min_booking_minutes: int = 0
    slot_minutes: int = 15
    buffer_minutes: int = 0
    setup_minutes: int = 0
    free: Sequence[Interval] = ()
    # labs
    price_per_sample: int | None = None
    turnaround_days: int | None = None
    daily_sample_capacity: int | None = None
    lab_capacity: Mapping[date, int] = field(default_factory=dict)
    closed_days: frozenset[date] = frozenset()
    # site
    lat: float | None = None
    lon: float | None = None
    region_code: str | None = None
    certificates: Sequence[CertificateInfo] = ()
    org_verified: bool = False
    status: str = "draft"
    # supplier quality
    rating_sum: float = 0.0
    rating_count: int = 0
    completed_count: int = 0
    on_time_count: int = 0
    utilisation: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.slot_minutes < 1:
            raise ValueError("slot_minutes must be >= 1")
        if min(self.setup_minutes, self.buffer_minutes, self.min_booking_minutes, self.setup_fee) < 0:
            raise ValueError("setup/buffer/min booking minutes and setup_fee must be >= 0")


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """Total = work + setup_fee. Machines: work = hourly_rate * duration / 60 rounded half-up."""

    currency: str
    work: int
    setup_fee: int
    total: int
    billed_minutes: int | None = None
    samples: int | None = None


@dataclass(frozen=True, slots=True)
class FeasibleMatch:
    """A candidate that satisfies every hard constraint, at its earliest valid slot.

    Machines: the asset is blocked over ``[block_start, block_end)`` = setup + slot + buffer.
    Labs: the slot is ``[drop_off 00:00, completion 24:00)`` site-local, in UTC, and the
    block equals the slot.
    """

    candidate: Candidate
    slot_start: datetime
    slot_end: datetime
    block_start: datetime
    block_end: datetime
    price: PriceBreakdown
    distance_km: float | None
    drop_off_day: date | None = None
    completion_day: date | None = None

    @property
    def asset_id(self) -> str:
        return self.candidate.asset_id


@dataclass(frozen=True, slots=True)
class ScoreComponent:
    component: str
    raw: float | None
    normalised: float
    weight: float
    contribution: float


@dataclass(frozen=True, slots=True)
class RankedMatch:
    match: FeasibleMatch
    score: float
    explanation: tuple[ScoreComponent, ...]

    @property
    def asset_id(self) -> str:
        return self.match.candidate.asset_id


@dataclass(frozen=True, slots=True)
class MatchResult:
    items: list[RankedMatch]
    rejections: dict[str, int]
    feasible_count: int = 0
