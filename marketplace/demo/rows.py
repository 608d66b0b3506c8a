"""The generated market as plain rows: COPY column orders, :class:`GeneratedMarket` and :class:`SeedSummary`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# -- column orders (the COPY targets) -----------------------------------------------------------------

ORG_COLUMNS = (
    "id", "name", "legal_name", "country", "uscc", "roles", "verification_status", "verification_reason",
    "verification_submitted_at", "verification_decided_at", "created_at",
)  # fmt: skip
# Seeded users are verified (email_verified_at = created_at): they stand for established customers.
USER_COLUMNS = (
    "id", "email", "password_hash", "full_name", "locale", "is_platform_admin", "is_active", "created_at",
    "email_verified_at",
)  # fmt: skip
MEMBERSHIP_COLUMNS = ("org_id", "user_id", "role", "created_at")
SITE_COLUMNS = (
    "id", "org_id", "name", "address", "country", "region_code", "latitude", "longitude", "timezone", "created_at",
    "updated_at",
)  # fmt: skip
CERTIFICATE_COLUMNS = (
    "id", "org_id", "site_id", "standard", "number", "issuer", "accreditation_body", "scope", "valid_from",
    "valid_until", "status", "verified_at", "created_at",
)  # fmt: skip
ASSET_COLUMNS = (
    "id", "org_id", "site_id", "kind", "title", "description", "status", "process_codes", "materials", "currency",
    "envelope_x_mm", "envelope_y_mm", "envelope_z_mm", "envelope_max_mm", "envelope_mid_mm", "envelope_min_mm",
    "max_part_mass_kg", "tolerance_mm", "hourly_rate", "setup_fee", "min_booking_minutes", "slot_minutes",
    "buffer_minutes", "setup_minutes", "operator_included", "weekly_plan", "test_standard", "accredited",
    "price_per_sample", "turnaround_days", "daily_sample_capacity", "sample_requirements", "cancellation_policy",
    "next_free_at", "created_at", "updated_at", "submitted_at", "published_at",
)  # fmt: skip
STATUS_EVENT_COLUMNS = ("asset_id", "from_status", "to_status", "action", "reason", "created_at")

Row = tuple[Any, ...]


@dataclass
class GeneratedMarket:
    seed: int
    organisations: list[Row] = field(default_factory=list)
    users: list[Row] = field(default_factory=list)
    memberships: list[Row] = field(default_factory=list)
    sites: list[Row] = field(default_factory=list)
    certificates: list[Row] = field(default_factory=list)
    assets: list[Row] = field(default_factory=list)
    status_events: list[Row] = field(default_factory=list)
    suppliers: int = 0
    labs: int = 0
    buyers: int = 0
    machines: int = 0
    lab_services: int = 0

    def as_dicts(self, table: str) -> list[dict[str, Any]]:
        """Rows of one table as dicts (tests and debugging; the loader uses the tuples)."""
        columns = {
            "organisations": ORG_COLUMNS,
            "users": USER_COLUMNS,
            "memberships": MEMBERSHIP_COLUMNS,
            "sites": SITE_COLUMNS,
            "certificates": CERTIFICATE_COLUMNS,
            "assets": ASSET_COLUMNS,
            "status_events": STATUS_EVENT_COLUMNS,
        }[table]
        rows: list[Row] = getattr(self, table)
        return [dict(zip(columns, r, strict=True)) for r in rows]


@dataclass
class SeedSummary:
    seed: int
    suppliers: int = 0
    labs: int = 0
    buyers: int = 0
    requests: int = 0
    organisations: int = 0
    users: int = 0
    sites: int = 0
    certificates: int = 0
    machines: int = 0
    lab_services: int = 0
    status_events: int = 0
    requests_seeded: int = 0
    generate_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    skipped: bool = False
    message: str = ""

    @property
    def assets(self) -> int:
        return self.machines + self.lab_services

    def line(self) -> str:
        if self.skipped:
            return self.message
        return (
            f"seeded market (seed {self.seed}): {self.suppliers} suppliers, {self.labs} labs, {self.buyers} buyers,"
            f" {self.machines} machines, {self.lab_services} lab services, {self.sites} sites,"
            f" {self.certificates} certificates, {self.users} users in {self.elapsed_seconds:.1f} s"
        )
