"""Search and calendars through the public API, against seeded listings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import (
    BERLIN,
    DONGGUAN,
    SUZHOU,
    admin_headers,
    create_asset,
    machine_payload,
    publish,
    published_asset,
    supplier,
)


async def _ids(client: AsyncClient, query: str) -> list[str]:
    resp = await client.get(f"/api/v1/assets?{query}")
    assert resp.status_code == 200, resp.text
    return [a["id"] for a in resp.json()["items"]]


@pytest.fixture
async def market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """Five published listings of different suppliers plus a draft and an unverified supplier's listing."""
    admin = await admin_headers(client, db)
    five, _, _ = await published_asset(client, db, admin)  # Suzhou 5-axis, al_6061, 800x500x500, 0.01 mm, 300 CNY/h
    three, _, _ = await published_asset(
        client,
        db,
        admin,
        site=DONGGUAN,
        process_codes=["machining.milling.cnc_3axis"],
        materials=["al_6061", "ss_304"],
        envelope_mm={"x": 1000, "y": 600, "z": 300},
        tolerance_mm=0.05,
        hourly_rate=12000,
        title="Haas VF-2",
    )
    lathe, _, _ = await published_asset(
        client,
        db,
        admin,
        site=SUZHOU,
        process_codes=["machining.turning.cnc_lathe"],
        materials=["steel_45"],
        envelope_mm={"x": 300, "y": 300, "z": 600},
        tolerance_mm=0.02,
        hourly_rate=9000,
        title="Lathe",
    )
    berlin, _, _ = await published_asset(
        client,
        db,
        admin,
        site=BERLIN,
        currency="EUR",
        hourly_rate=9500,
        process_codes=["machining.milling.cnc_3axis"],
        title="DMU Berlin",
    )
    lab, _, _ = await published_asset(client, db, admin, kind="lab_service", site=DONGGUAN)
    # Not visible: a draft, and a listing whose organisation is no longer verified.
    _, h, s = await supplier(client, db)
    draft = await create_asset(client, h, machine_payload(s["id"], title="Draft"))
    reg, h2, s2 = await supplier(client, db)
    hidden = await publish(client, h2, admin, (await create_asset(client, h2, machine_payload(s2["id"])))["id"])
    revoked = await client.post(
        f"/api/v1/admin/orgs/{reg['org']['id']}/verify", headers=admin, json={"decision": "rejected", "reason": "fraud"}
    )
    assert revoked.status_code == 200
    return {
        "five": five,
        "three": three,
        "lathe": lathe,
        "berlin": berlin,
        "lab": lab,
        "draft": draft,
        "hidden": hidden,
        "admin": admin,
    }


async def test_search_shows_only_published_listings_of_verified_organisations(
    client: AsyncClient, market: dict[str, Any]
) -> None:
    ids = set(await _ids(client, "limit=100"))
    assert {market[k]["id"] for k in ("five", "three", "lathe", "berlin", "lab")} <= ids
    assert market["draft"]["id"] not in ids and market["hidden"]["id"] not in ids


async def test_process_filter_includes_can_also_do_and_descendants(client: AsyncClient, market: dict[str, Any]) -> None:
    three_axis = set(await _ids(client, "process=machining.milling.cnc_3axis"))
    assert {market["five"]["id"], market["three"]["id"], market["berlin"]["id"]} <= three_axis
    assert market["lathe"]["id"] not in three_axis
    five_axis = set(await _ids(client, "process=machining.milling.cnc_5axis"))
    assert market["five"]["id"] in five_axis and market["three"]["id"] not in five_axis
    milling = set(await _ids(client, "process=machining.milling"))
    assert {market["five"]["id"], market["three"]["id"]} <= milling and market["lathe"]["id"] not in milling
    bad = await client.get("/api/v1/assets?process=machining.milling.cnc_9axis")
    assert bad.status_code == 422 and "unknown process code" in bad.json()["detail"]


async def test_material_envelope_tolerance_rate_kind_filters(client: AsyncClient, market: dict[str, Any]) -> None:
    assert market["three"]["id"] in await _ids(client, "material=ss_304")
    assert market["five"]["id"] not in await _ids(client, "material=ss_304")
    # A 550 x 900 x 250 part fits the 1000x600x300 machine only when rotated; it never fits 800x500x500.
    rotated = await _ids(client, "min_x=550&min_y=900&min_z=250")
    assert market["three"]["id"] in rotated and market["five"]["id"] not in rotated
    tight = set(await _ids(client, "tolerance_mm=0.02&kind=machine&limit=100"))
    assert {market["five"]["id"], market["lathe"]["id"]} <= tight and market["three"]["id"] not in tight
    cheap = set(await _ids(client, "max_hourly_rate=10000&currency=CNY"))
    assert market["lathe"]["id"] in cheap and market["five"]["id"] not in cheap
    assert market["berlin"]["id"] not in cheap
    labs = await _ids(client, "kind=lab_service&limit=100")
    assert market["lab"]["id"] in labs and market["five"]["id"] not in labs


async def test_region_and_distance_filters_and_sorts(client: AsyncClient, market: dict[str, Any]) -> None:
    suzhou = set(await _ids(client, "region=3205&limit=100"))
    assert {market["five"]["id"], market["lathe"]["id"]} <= suzhou and market["three"]["id"] not in suzhou
    both = set(await _ids(client, "region=3205&region=4419&limit=100"))
    assert market["three"]["id"] in both
    near = await client.get("/api/v1/assets?lat=31.3&lon=120.6&radius_km=150&sort=distance&limit=100")
    items = near.json()["items"]
    assert {market["five"]["id"], market["lathe"]["id"]} <= {i["id"] for i in items}
    assert market["three"]["id"] not in {i["id"] for i in items}  # Dongguan is ~1,200 km away
    assert all(i["distance_km"] <= 150 for i in items)
    assert [i["distance_km"] for i in items] == sorted(i["distance_km"] for i in items)
    by_price = (await client.get("/api/v1/assets?currency=CNY&kind=machine&sort=price&limit=100")).json()["items"]
    rates = [i["hourly_rate"] for i in by_price]
    assert rates == sorted(rates)
    assert (await client.get("/api/v1/assets?sort=distance")).status_code == 422


async def test_every_result_shows_its_next_free_slot(client: AsyncClient, market: dict[str, Any]) -> None:
    items = (await client.get("/api/v1/assets?limit=100")).json()["items"]
    for item in items:
        slot = item["next_free_slot"]
        assert slot is not None, item["title"]
        start = datetime.fromisoformat(slot["start"])
        assert start >= datetime.now(UTC) - timedelta(minutes=1)
    starts = [i["next_free_at"] for i in items]
    assert starts == sorted(starts)  # default sort: next free slot


async def test_pagination_walks_every_result_once(client: AsyncClient, market: dict[str, Any]) -> None:
    everything = await _ids(client, "limit=100&sort=price")
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        url = "/api/v1/assets?limit=2&sort=price" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == everything
    wrong = await client.get(f"/api/v1/assets?limit=2&sort=next_free&cursor={cursor or 'x'}")
    assert wrong.status_code == 400


async def test_certificate_filter_and_expiry(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, headers, _ = await published_asset(client, db, admin)
    org = asset["org_id"]
    today = date.today()
    cert = (
        await client.post(
            f"/api/v1/orgs/{org}/certificates",
            headers=headers,
            json={
                "standard": "IATF 16949",
                "number": "IATF-0001",
                "issuer": "TÜV SÜD",
                "valid_from": str(today),
                "valid_until": str(today + timedelta(days=30)),
            },
        )
    ).json()
    assert cert["status"] == "pending"
    assert asset["id"] not in await _ids(client, "certificate=IATF%2016949")  # unverified never counts
    ok = await client.post(
        f"/api/v1/admin/certificates/{cert['id']}/verify",
        headers=admin,
        json={"decision": "verified", "reason": "checked in the IATF database"},
    )
    assert ok.status_code == 200
    assert asset["id"] in await _ids(client, "certificate=IATF%2016949")
    item = (await client.get("/api/v1/assets?certificate=IATF%2016949")).json()["items"]
    assert "IATF 16949" in next(i for i in item if i["id"] == asset["id"])["certificates"]
    # Valid through the requested window or not at all: a slot after expiry does not count.
    late = (today + timedelta(days=60)).isoformat()
    later = (today + timedelta(days=61)).isoformat()
    assert asset["id"] not in await _ids(
        client, f"certificate=IATF%2016949&free_minutes=60&free_from={late}T00:00:00Z&free_to={later}T00:00:00Z"
    )
    # Expiry: once the certificate is past its date, the listing drops out of certificate search.
    import sqlalchemy as sa

    await db.execute(
        sa.text("UPDATE certificates SET valid_from = :f, valid_until = :u WHERE id = :id"),
        {"f": today - timedelta(days=400), "u": today - timedelta(days=1), "id": cert["id"]},
    )
    await db.commit()
    assert asset["id"] not in await _ids(client, "certificate=IATF%2016949")


async def test_free_between_filter_uses_the_real_calendar(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    # Weekdays only, 08:00-18:00 Shanghai time.
    asset, headers, _ = await published_asset(client, db, admin, title="Weekday mill")
    nxt = datetime.now(UTC) + timedelta(days=14)
    saturday = (nxt + timedelta(days=(5 - nxt.weekday()) % 7)).date()
    sunday = saturday + timedelta(days=1)
    monday = sunday + timedelta(days=1)
    weekend = f"free_minutes=120&free_from={saturday}T00:00:00%2B08:00&free_to={monday}T00:00:00%2B08:00"
    monday_q = f"free_minutes=120&free_from={monday}T00:00:00%2B08:00&free_to={monday}T23:00:00%2B08:00"
    assert asset["id"] not in await _ids(client, weekend + "&limit=100")
    hits = (await client.get(f"/api/v1/assets?{monday_q}&limit=100")).json()["items"]
    hit = next(i for i in hits if i["id"] == asset["id"])
    assert hit["next_free_slot"]["start"] == f"{monday}T00:00:00Z"  # 08:00 in Shanghai
    # Close that Monday through the MES sync: the listing no longer qualifies for it.
    sync = await client.post(
        f"/api/v1/assets/{asset['id']}/availability/sync",
        headers=headers,
        json={
            "from": f"{monday}T00:00:00+08:00",
            "to": f"{monday + timedelta(days=1)}T00:00:00+08:00",
            "exceptions": [
                {
                    "start": f"{monday}T00:00:00+08:00",
                    "end": f"{monday + timedelta(days=1)}T00:00:00+08:00",
                    "available": False,
                }
            ],
        },
    )
    assert sync.status_code == 200
    assert asset["id"] not in await _ids(client, monday_q + "&limit=100")
    incomplete = await client.get("/api/v1/assets?free_minutes=60")
    assert incomplete.status_code == 422


async def test_free_slots_endpoint_returns_bookable_windows_in_utc(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, _headers, _ = await published_asset(client, db, admin, setup_minutes=30, buffer_minutes=30)
    url = f"/api/v1/assets/{asset['id']}/free-slots"
    # Monday 2027-03-01 and Tuesday, Shanghai 08:00-18:00 = 00:00-10:00 UTC; setup and buffer shrink it.
    r = await client.get(
        url, params={"start": "2027-03-01T00:00:00+08:00", "end": "2027-03-03T00:00:00+08:00", "duration_minutes": 120}
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [
        {"start": "2027-03-01T00:30:00Z", "end": "2027-03-01T09:30:00Z"},
        {"start": "2027-03-02T00:30:00Z", "end": "2027-03-02T09:30:00Z"},
    ]
    long = await client.get(
        url, params={"start": "2027-03-01T00:00:00+08:00", "end": "2027-03-03T00:00:00+08:00", "duration_minutes": 600}
    )
    assert long.json()["items"] == []
    bad = await client.get(url, params={"start": "2027-03-03T00:00:00Z", "end": "2027-03-01T00:00:00Z"})
    assert bad.status_code == 422
    naive = await client.get(url, params={"start": "2027-03-01T00:00:00", "end": "2027-03-02T00:00:00Z"})
    assert naive.status_code == 422


async def test_free_slots_across_berlin_spring_forward(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    night = [{"weekday": 6, "start": "00:00", "end": "06:00"}]  # Sunday night shift
    asset, _, _ = await published_asset(client, db, admin, site=BERLIN, currency="EUR", weekly=night)
    r = await client.get(
        f"/api/v1/assets/{asset['id']}/free-slots",
        params={"start": "2027-03-27T00:00:00+01:00", "end": "2027-03-29T00:00:00+02:00", "duration_minutes": 60},
    )
    # 00:00 CET = 23:00 UTC; 06:00 CEST = 04:00 UTC: five real hours on the night clocks go forward.
    assert r.json()["items"] == [{"start": "2027-03-27T23:00:00Z", "end": "2027-03-28T04:00:00Z"}]


async def test_lab_capacity_honours_closed_days(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    lab, headers, _ = await published_asset(client, db, admin, kind="lab_service")
    put = await client.put(
        f"/api/v1/assets/{lab['id']}/availability",
        headers=headers,
        json={
            "weekly": [],
            "exceptions": [
                {
                    "start": "2027-03-03T00:00:00+08:00",
                    "end": "2027-03-04T00:00:00+08:00",
                    "available": False,
                    "note": "calibration",
                }
            ],
        },
    )
    assert put.status_code == 200
    days = (
        await client.get(f"/api/v1/assets/{lab['id']}/lab-capacity", params={"from": "2027-03-01", "to": "2027-03-07"})
    ).json()["items"]
    assert [(d["date"], d["open"], d["remaining"]) for d in days] == [
        ("2027-03-01", True, 40),
        ("2027-03-02", True, 40),
        ("2027-03-03", False, 0),
        ("2027-03-04", True, 40),
        ("2027-03-05", True, 40),
        ("2027-03-06", False, 0),
        ("2027-03-07", False, 0),
    ]
