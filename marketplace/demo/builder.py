"""Building blocks of the generator: ids, USCCs, coordinates, next free slots and the shared row writers
(organisation + owner, site, certificate). Every random choice goes through ``self.rng`` in a fixed order,
so moving code between here and :mod:`marketplace.demo.generator` must not reorder any call."""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from listings import availability as av
from listings.models import Asset
from listings.service import DEFAULT_CANCELLATION_POLICY, ListingsConfig, bookable_windows
from listings.taxonomy import get_taxonomy
from marketplace.demo.catalogue import (
    CLUSTERS,
    DE_POSTCODES,
    FIRST_DE,
    GIVEN_ZH,
    ROADS_ZH,
    STREETS_DE,
    SURNAMES_DE,
    SURNAMES_ZH,
    WEEKDAYS,
    WEEKLY_PLANS,
    Cluster,
)
from marketplace.demo.rows import GeneratedMarket, Row
from marketplace.orgs.uscc import ALPHABET, org_code_check_char, uscc_check_char

PLAN_JSON = {k: json.dumps(v) for k, v in WEEKLY_PLANS.items()}
CANCELLATION_JSON = json.dumps(DEFAULT_CANCELLATION_POLICY)


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def weighted_choice(rng: random.Random, items: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def generate_uscc(rng: random.Random, region_code: str, *, kind: str = "91") -> str:
    """A random Unified Social Credit Code that passes both GB 32100 checks: ``kind`` (registration authority
    + entity type, "91" = enterprise registered with SAMR), the 6-digit region, a GB 11714 organisation code
    (8 characters + MOD 11 check) and the ISO 7064 MOD 31-3 check character."""
    if rng.random() < 0.6:  # codes issued since 2015 start with "MA"
        body = "MA" + "".join(rng.choice(ALPHABET) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = kind + region_code + body + org_code_check_char(body)
    return first17 + uscc_check_char(first17)


def jitter(rng: random.Random, lat: float, lon: float, *, km: float = 6.0) -> tuple[float, float]:
    r = km * math.sqrt(rng.random())
    theta = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(theta) / 111.0
    dlon = r * math.sin(theta) / (111.0 * math.cos(math.radians(lat)))
    return round(lat + dlat, 5), round(lon + dlon, 5)


# -- next free slot, computed in Python (mirrors listings.service.next_free_slot without bookings) ---------


@cache
def _probe_asset(setup: int, buffer: int, slot: int) -> Asset:
    nil = uuid.UUID(int=0)
    return Asset(
        org_id=nil,
        site_id=nil,
        kind="machine",
        title="probe",
        process_codes=[],
        currency="CNY",
        setup_minutes=setup,
        buffer_minutes=buffer,
        slot_minutes=slot,
    )


def machine_next_free(
    plan: str,
    tz: str,
    *,
    slot: int,
    min_booking: int,
    setup: int,
    buffer: int,
    now: datetime,
    horizon_days: int = ListingsConfig.horizon_days,
) -> datetime | None:
    """Start of the first slot of ``min_booking`` minutes from ``now`` for an unbooked machine; a two-week
    window first (plans are weekly), the full horizon only if that finds nothing."""
    windows = [
        av.WeeklyWindow(w["weekday"], av.parse_hhmm(w["start"], allow_end_of_day=False), av.parse_hhmm(w["end"]))
        for w in WEEKLY_PLANS[plan]
    ]
    probe = _probe_asset(setup, buffer, slot)
    for days in (14, horizon_days):
        end = now + timedelta(days=days)
        free = av.free_intervals(windows, tz, exceptions=[], blocked=[], start=now, end=end)
        found = av.earliest_slot(
            bookable_windows(probe, free),
            timedelta(minutes=min_booking or slot),
            granularity_minutes=slot,
            earliest=now,
            latest_end=end,
        )
        if found is not None:
            return found[0]
    return None


def lab_next_free(plan: str, tz: str, now: datetime) -> datetime:
    """Start of the next drop-off day (now when today is one), as listings.service.next_free_slot does."""
    zone = ZoneInfo(tz)
    open_days = {int(w["weekday"]) for w in WEEKLY_PLANS[plan]} or set(WEEKDAYS)
    d = now.astimezone(zone).date()
    while d.weekday() not in open_days:
        d += timedelta(days=1)
    return max(datetime.combine(d, time(0), zone).astimezone(UTC), now)


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


class MarketBuilder:
    """State shared by the generator's steps: the one RNG, the clock and the rows written so far."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.today = now.date()
        self.m = GeneratedMarket(seed=seed)
        self.password_hash = ""
        self.usccs: set[str] = set()
        self.next_free_cache: dict[tuple[Any, ...], datetime | None] = {}
        tax = get_taxonomy()
        self.names = {code: (p.name_zh, p.name_en) for code, p in tax.processes.items()}
        self.cluster_weights = [c.weight for c in CLUSTERS]

    # helpers
    def uscc(self, region: str, kind: str = "91") -> str:
        while True:
            code = generate_uscc(self.rng, region, kind=kind)
            if code not in self.usccs:
                self.usccs.add(code)
                return code

    def past(self, lo_days: float, hi_days: float) -> datetime:
        return self.now - timedelta(days=self.rng.uniform(lo_days, hi_days))

    def person(self, country: str) -> str:
        rng = self.rng
        if country == "CN":
            return rng.choice(SURNAMES_ZH) + rng.choice(GIVEN_ZH)
        return f"{rng.choice(FIRST_DE)} {rng.choice(SURNAMES_DE)}"

    def org(
        self, name: str, *, legal: str, country: str, uscc: str | None, roles: list[str], email: str, locale: str
    ) -> tuple[uuid.UUID, datetime]:
        org_id, user_id = seeded_uuid(self.rng), seeded_uuid(self.rng)
        created = self.past(60, 900)
        submitted = created + timedelta(days=self.rng.uniform(0, 5))
        decided = submitted + timedelta(days=self.rng.uniform(0.1, 3))
        self.m.organisations.append(
            (
                org_id,
                name,
                legal,
                country,
                uscc,
                roles,
                "verified",
                "seed data: business licence checked",
                submitted,
                decided,
                created,
            )
        )
        self.m.users.append(
            (user_id, email, self.password_hash, self.person(country), locale, False, True, created, created)
        )
        self.m.memberships.append((org_id, user_id, "owner", created))
        return org_id, decided

    def site(self, org_id: uuid.UUID, cluster: Cluster, *, name: str, after: datetime) -> tuple[uuid.UUID, datetime]:
        rng = self.rng
        site_id = seeded_uuid(rng)
        region = rng.choice(cluster.region_codes)
        lat, lon = jitter(rng, cluster.lat, cluster.lon)
        if cluster.country == "CN":
            district = rng.choice(cluster.districts)
            street = f"{district}{rng.choice(ROADS_ZH)}{rng.randint(1, 999)}号"
            # Municipalities (天津市, 重庆市) have no city level below the province.
            city = "" if cluster.province_zh.endswith("市") else f"{cluster.name_zh}市"
            address = f"{cluster.province_zh}{city}{street}"
        else:
            address = (
                f"{rng.choice(STREETS_DE)} {rng.randint(1, 120)}, {DE_POSTCODES[cluster.key]}"
                f" {cluster.name_en}, Germany"
            )
        created = after + timedelta(days=rng.uniform(0, 5))
        self.m.sites.append(
            (site_id, org_id, name, address, cluster.country, region, lat, lon, cluster.timezone, created, created)
        )
        return site_id, created

    def certificate(
        self,
        org_id: uuid.UUID,
        *,
        standard: str,
        number: str,
        issuer: str,
        body: str | None,
        scope: str,
        years: int,
        site_id: uuid.UUID | None = None,
    ) -> None:
        rng = self.rng
        if rng.random() < 0.05:  # expired: a few for realism (not renewed in time)
            valid_from = self.today - timedelta(days=rng.randint(years * 365 + 10, years * 365 + 400))
        else:
            valid_from = self.today - timedelta(days=rng.randint(1, years * 365 - 30))
        valid_until = add_years(valid_from, years) - timedelta(days=1)
        verified_at = datetime.combine(valid_from, time(10), UTC) + timedelta(days=rng.randint(1, 20))
        self.m.certificates.append(
            (
                seeded_uuid(rng),
                org_id,
                site_id,
                standard,
                number,
                issuer,
                body,
                scope,
                valid_from,
                valid_until,
                "verified",
                min(verified_at, self.now),
                min(verified_at, self.now),
            )
        )

    def listed_times(self, after: datetime) -> tuple[datetime, datetime]:
        """(created, published) of a listing at a site created at ``after``."""
        span = max((self.now - after).total_seconds() / 86400, 1.0)
        created = after + timedelta(days=self.rng.uniform(0, span * 0.9))
        published = created + timedelta(days=self.rng.uniform(0, span * 0.1))
        return created, min(published, self.now)

    def listing(
        self,
        head: Row,
        *,
        plan: str,
        lab_columns: Row,
        next_free: datetime | None,
        created: datetime,
        published: datetime,
    ) -> None:
        """Append one published listing and its ``seed`` status event. ``head`` holds the ASSET_COLUMNS from
        ``id`` to ``operator_included``, ``lab_columns`` those from ``test_standard`` to ``sample_requirements``."""
        submitted = created + (published - created) / 2
        tail = (CANCELLATION_JSON, next_free, created, published, submitted, published)
        self.m.assets.append((*head, PLAN_JSON[plan], *lab_columns, *tail))
        self.m.status_events.append(
            (head[0], None, "published", "seed", f"marketplace seed --seed {self.m.seed}", published)
        )
