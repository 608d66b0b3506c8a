"""The deterministic market generator (pure) and its COPY loader (one real database)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from listings import service
from listings.schemas import CertificateCreate
from listings.taxonomy import get_taxonomy
from marketplace.core.security import verify_password
from marketplace.demo.seeding import (
    ACCREDITATION_SURCHARGE_CNY,
    CLUSTERS,
    INJECTION_PRESSES,
    LAB_SPECS,
    MACHINE_SPECS,
    SEED_PASSWORD,
    GeneratedMarket,
    generate_market,
    generate_uscc,
    injection_rate_range,
    lab_next_free,
    machine_next_free,
    seed_market,
)
from marketplace.orgs.uscc import validate_uscc
from tests.conftest import ROOT

NOW = datetime(2027, 1, 6, 3, 15, tzinfo=UTC)  # a Wednesday, 11:15 in Shanghai


@pytest.fixture(scope="module")
def market() -> GeneratedMarket:
    return generate_market(suppliers=300, labs=40, buyers=60, seed=42, now=NOW)


def _rows(m: GeneratedMarket) -> tuple[list[tuple[object, ...]], ...]:
    return (m.organisations, m.users, m.memberships, m.sites, m.certificates, m.assets, m.status_events)


# -- pure -------------------------------------------------------------------------------------------------


def test_same_seed_same_market_and_different_seed_different_market() -> None:
    a = generate_market(suppliers=25, labs=4, buyers=8, seed=7, now=NOW)
    b = generate_market(suppliers=25, labs=4, buyers=8, seed=7, now=NOW)
    c = generate_market(suppliers=25, labs=4, buyers=8, seed=8, now=NOW)
    assert _rows(a) == _rows(b)
    assert a.machines > 0 and a.lab_services > 0
    assert {r[0] for r in a.organisations}.isdisjoint({r[0] for r in c.organisations})
    assert _rows(a) != _rows(c)


# Fingerprint of the fixture market (seed 42 at NOW), recorded from the generator before it was split into
# catalogue / builder / generator. A change here means seeded markets differ for the same seed: update it
# only for a deliberate catalogue or generator change (last: Chinese sites describe their listings in Chinese;
# every other column was checked unchanged against the previous generator).
MARKET_42_SHA256 = "544a80d58ad38af98d07fcbb62ba953decc97835ed1402781cf1fea8a6aded8e"


def _fingerprint(m: GeneratedMarket) -> str:
    return hashlib.sha256("\n".join(repr(rows) for rows in _rows(m)).encode()).hexdigest()


def test_the_same_seed_gives_byte_identical_rows_across_refactors(market: GeneratedMarket) -> None:
    assert _fingerprint(market) == MARKET_42_SHA256
    # Control: one more buyer (drawn last) already changes the fingerprint.
    other = generate_market(suppliers=300, labs=40, buyers=61, seed=42, now=NOW)
    assert _fingerprint(other) != MARKET_42_SHA256


def test_counts_and_accounts(market: GeneratedMarket) -> None:
    assert (market.suppliers, market.labs, market.buyers) == (300, 40, 60)
    assert len(market.organisations) == len(market.users) == len(market.memberships) == 400
    emails = [u["email"] for u in market.as_dicts("users")]
    assert emails[0] == "supplier0@seed.example"
    assert set(emails) == {f"supplier{i}@seed.example" for i in range(300)} | {
        f"lab{i}@seed.example" for i in range(40)
    } | {f"buyer{i}@seed.example" for i in range(60)}
    assert {m["role"] for m in market.as_dicts("memberships")} == {"owner"}
    assert market.machines + market.lab_services == len(market.assets) == len(market.status_events)
    ids = [
        r[0]
        for rows in (market.organisations, market.users, market.sites, market.certificates, market.assets)
        for r in rows
    ]
    assert len(ids) == len(set(ids))


def test_every_uscc_validates_and_is_unique(market: GeneratedMarket) -> None:
    orgs = market.as_dicts("organisations")
    codes = [o["uscc"] for o in orgs if o["country"] == "CN"]
    assert codes and all(o["uscc"] is None for o in orgs if o["country"] != "CN")
    assert len(codes) == len(set(codes))
    cn_regions = {code for c in CLUSTERS if c.country == "CN" for code in c.region_codes}
    for code in codes:
        assert validate_uscc(code) is None, code
        assert code[2:8] in cn_regions
    assert all(o["verification_status"] == "verified" for o in orgs)


def test_generate_uscc_many() -> None:
    import random

    rng = random.Random(3)
    for _ in range(2000):
        assert validate_uscc(generate_uscc(rng, "320500")) is None


def test_codes_exist_in_the_taxonomy_and_match_the_kind(market: GeneratedMarket) -> None:
    tax = get_taxonomy()
    for a in market.as_dicts("assets"):
        assert a["process_codes"]
        for code in a["process_codes"]:
            assert tax.is_leaf(code)
            assert tax.processes[code].kind == a["kind"], (code, a["kind"])
        assert all(tax.is_material(m) for m in a["materials"])
    for code in MACHINE_SPECS:
        assert tax.processes[code].kind == "machine"
        assert all(tax.is_material(m) for m in MACHINE_SPECS[code].materials)
    for code in LAB_SPECS:
        assert tax.processes[code].kind == "lab_service"


def test_sites_are_in_real_clusters(market: GeneratedMarket) -> None:
    sites = market.as_dicts("sites")
    cn = [s for s in sites if s["country"] == "CN"]
    de = [s for s in sites if s["country"] == "DE"]
    assert cn and de
    for s in cn:
        assert re.fullmatch(r"\d{6}", s["region_code"]) and s["timezone"] == "Asia/Shanghai"
    for s in de:
        assert s["region_code"] in ("DE-BW", "DE-BY") and s["timezone"] == "Europe/Berlin"
    for s in sites:
        cluster = min(CLUSTERS, key=lambda c: (c.lat - s["latitude"]) ** 2 + (c.lon - s["longitude"]) ** 2)
        assert abs(cluster.lat - s["latitude"]) < 0.07 and abs(cluster.lon - s["longitude"]) < 0.1
        assert s["region_code"] in cluster.region_codes
    assert {s["region_code"] for s in cn} >= {"320500", "441900", "440300"}


def test_machine_fields_are_plausible(market: GeneratedMarket) -> None:
    machines = [a for a in market.as_dicts("assets") if a["kind"] == "machine"]
    assert machines
    for a in machines:
        x, y, z = a["envelope_x_mm"], a["envelope_y_mm"], a["envelope_z_mm"]
        assert [a["envelope_max_mm"], a["envelope_mid_mm"], a["envelope_min_mm"]] == sorted([x, y, z], reverse=True)
        assert a["envelope_max_mm"] >= a["envelope_mid_mm"] >= a["envelope_min_mm"] > 0
        spec = MACHINE_SPECS[a["process_codes"][0]]
        assert a["tolerance_mm"] in spec.tolerances
        if a["currency"] == "CNY":
            lo, hi = spec.rate_cny
            assert lo * 100 <= a["hourly_rate"] <= hi * 100, a
            assert 0 <= a["setup_fee"] <= spec.setup_cny[1] * 100
        else:
            assert a["currency"] == "EUR" and a["hourly_rate"] >= 4500
        assert a["slot_minutes"] in (30, 60) and 1440 % a["slot_minutes"] == 0
        assert 60 <= a["min_booking_minutes"] <= 240 and a["min_booking_minutes"] % a["slot_minutes"] == 0
        assert a["weekly_plan"] and a["next_free_at"] is not None and a["next_free_at"] >= NOW
        assert a["status"] == "published" and a["published_at"] <= NOW
    assert {a["currency"] for a in machines} == {"CNY", "EUR"}


def test_injection_rates_follow_the_clamp_force_table() -> None:
    # DOMAIN.md s3: 80 t 35-45, 180 t 95-140, 200 t 110-160, 400 t 250-350 CNY/h
    assert injection_rate_range(80) == (35, 45)
    assert injection_rate_range(180) == (95, 140)
    assert injection_rate_range(400) == (250, 350)
    lo, hi = injection_rate_range(800)
    assert 400 < lo < hi
    for code, presses in INJECTION_PRESSES.items():
        for _, tonnes, *_ in presses:
            r = injection_rate_range(tonnes)
            assert MACHINE_SPECS[code].rate_cny[0] <= r[0] <= r[1] <= MACHINE_SPECS[code].rate_cny[1]


def test_lab_services_are_plausible(market: GeneratedMarket) -> None:
    labs = [a for a in market.as_dicts("assets") if a["kind"] == "lab_service"]
    accredited_orgs = {c["org_id"] for c in market.as_dicts("certificates") if c["standard"] == "ISO/IEC 17025"}
    assert labs
    for a in labs:
        spec = LAB_SPECS[a["process_codes"][0]]
        assert a["test_standard"] in spec.standards
        lo, hi = spec.price_cny
        assert lo * 100 <= a["price_per_sample"] <= (hi + ACCREDITATION_SURCHARGE_CNY[1]) * 100
        assert 2 <= a["turnaround_days"] <= 7
        assert 10 <= a["daily_sample_capacity"] <= 200
        assert a["currency"] == "CNY" and a["hourly_rate"] is None and a["next_free_at"] is not None
        if a["accredited"]:
            assert a["org_id"] in accredited_orgs
    share = sum(a["accredited"] for a in labs) / len(labs)
    assert 0.4 < share < 0.8
    standards = {a["test_standard"] for a in labs}
    assert {"GB/T 228.1-2021", "ISO 6892-1:2019", "GB/T 10125-2021", "GB/T 231.1-2018"} <= standards


def test_certificates(market: GeneratedMarket) -> None:
    certs = market.as_dicts("certificates")
    allowed = set(CertificateCreate.model_fields["standard"].annotation.__args__)  # type: ignore[union-attr]
    assert {c["standard"] for c in certs} <= allowed
    assert {"ISO 9001", "ISO/IEC 17025", "CMA", "IATF 16949"} <= {c["standard"] for c in certs}
    assert all(c["status"] == "verified" and c["valid_until"] >= c["valid_from"] for c in certs)
    expired = [c for c in certs if c["valid_until"] < NOW.date()]
    assert 0 < len(expired) < len(certs) * 0.15
    for c in certs:
        if c["standard"] == "ISO/IEC 17025":
            assert c["accreditation_body"] == "CNAS"
    suppliers = {o["id"] for o in market.as_dicts("organisations") if o["roles"][0] == "supplier"}
    iso9001 = {c["org_id"] for c in certs if c["standard"] == "ISO 9001"}
    assert len(iso9001 & suppliers) > 0.6 * len(suppliers)


def test_next_free_matches_the_weekly_plan() -> None:
    saturday_noon = datetime(2027, 1, 9, 4, 0, tzinfo=UTC)  # 12:00 Shanghai
    monday_8 = datetime(2027, 1, 11, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert (
        machine_next_free("one_shift", "Asia/Shanghai", slot=30, min_booking=120, setup=0, buffer=0, now=saturday_noon)
        == monday_8
    )
    assert machine_next_free(
        "one_shift", "Asia/Shanghai", slot=30, min_booking=120, setup=30, buffer=0, now=saturday_noon
    ) == monday_8 + timedelta(minutes=30)
    assert (
        machine_next_free(
            "one_shift_sat", "Asia/Shanghai", slot=60, min_booking=60, setup=0, buffer=0, now=saturday_noon
        )
        == saturday_noon
    )
    # Saturday 15:30: a 2 h booking no longer fits before 17:00.
    assert (
        machine_next_free(
            "one_shift_sat",
            "Asia/Shanghai",
            slot=60,
            min_booking=120,
            setup=0,
            buffer=0,
            now=saturday_noon + timedelta(hours=3, minutes=30),
        )
        == monday_8
    )
    assert lab_next_free("lab_weekdays", "Asia/Shanghai", saturday_noon) == datetime(2027, 1, 10, 16, tzinfo=UTC)
    assert lab_next_free("lab_sat", "Asia/Shanghai", saturday_noon) == saturday_noon


# -- database ---------------------------------------------------------------------------------------------


async def test_seed_market_loads_a_searchable_market(committed_engine: AsyncEngine) -> None:
    async with committed_engine.begin() as conn:
        summary = await seed_market(conn, suppliers=20, labs=5, buyers=10, requests=3, seed=11)
    assert not summary.skipped
    assert (summary.suppliers, summary.labs, summary.buyers, summary.requests) == (20, 5, 10, 3)
    assert summary.requests_seeded == 0
    assert summary.organisations == 35 and summary.machines > 0 and summary.lab_services > 0
    assert "20 suppliers" in summary.line()

    async with committed_engine.connect() as conn:

        async def one(sql: str) -> object:
            return (await conn.execute(sa.text(sql))).scalar_one()

        assert await one("SELECT count(*) FROM organisations") == 35
        assert await one("SELECT count(*) FROM organisations WHERE verification_status <> 'verified'") == 0
        assert await one("SELECT count(*) FROM users") == 35
        assert await one("SELECT count(*) FROM memberships WHERE role = 'owner'") == 35
        assert await one("SELECT count(*) FROM assets") == summary.assets
        assert await one("SELECT count(*) FROM assets WHERE status <> 'published'") == 0
        assert await one("SELECT count(*) FROM assets WHERE kind = 'machine' AND next_free_at IS NULL") == 0
        assert await one("SELECT count(*) FROM asset_status_events") == summary.assets
        assert await one("SELECT count(*) FROM certificates WHERE status = 'verified'") == summary.certificates
        assert await one("SELECT count(*) FROM sites WHERE country = 'CN' AND region_code !~ '^[0-9]{6}$'") == 0
        assert await one("SELECT weekly_plan->0->>'weekday' FROM assets WHERE kind = 'machine' LIMIT 1") == "0"
        pw_hash = await one("SELECT password_hash FROM users WHERE email = 'buyer3@seed.example'")
        assert isinstance(pw_hash, str) and verify_password(SEED_PASSWORD, pw_hash)

    async with AsyncSession(committed_engine) as session:
        hits, _ = await service.search(
            session,
            service.SearchQuery(process="machining.milling.cnc_3axis", limit=5),
            config=service.ListingsConfig(),
            blocked=service.NoBookings(),
        )
        assert hits
        serving = get_taxonomy().serving_codes("machining.milling.cnc_3axis")
        for hit in hits:
            assert hit.asset.status == "published" and set(hit.asset.process_codes) & serving
            # The stored next_free_at agrees with the service's own calendar computation.
            assert hit.next_free_slot is not None and hit.asset.next_free_at is not None
            grid = timedelta(minutes=hit.asset.slot_minutes or 60)
            assert abs(hit.next_free_slot[0] - hit.asset.next_free_at) <= grid
        labs, _ = await service.search(
            session,
            service.SearchQuery(kind="lab_service", limit=5),
            config=service.ListingsConfig(),
            blocked=service.NoBookings(),
        )
        assert labs and all(h.asset.test_standard for h in labs)

    # Seeding again is a clear no-op.
    async with committed_engine.begin() as conn:
        again = await seed_market(conn, suppliers=20, labs=5, buyers=10, seed=11)
    assert again.skipped and "supplier" in again.message


async def test_cli_seed_command(committed_engine: AsyncEngine, committed_db_url: str) -> None:
    env = {**os.environ, "MARKETPLACE_DATABASE_URL": committed_db_url}
    args = [
        sys.executable,
        "-m",
        "marketplace",
        "seed",
        "--suppliers",
        "3",
        "--labs",
        "1",
        "--buyers",
        "2",
        "--requests",
        "4",
        "--seed",
        "5",
    ]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)

    first = await asyncio.to_thread(run)
    assert first.returncode == 0, first.stderr
    assert "3 suppliers, 1 labs, 2 buyers" in first.stdout
    assert "requests: not yet supported, skipped" in first.stdout
    second = await asyncio.to_thread(run)
    assert second.returncode == 0, second.stderr
    assert "nothing seeded" in second.stdout
    async with committed_engine.connect() as conn:
        n = (await conn.execute(sa.text("SELECT count(*) FROM organisations"))).scalar_one()
    assert n == 6
