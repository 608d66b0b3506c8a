"""Inspection plans through the API: the ISO 2859-1 plan, the linked lab booking, who may plan and read, and
the refusals (issue #17)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import signed_up
from tests.inspection.test_plans_helpers import factory_lab, inspection_market, plan, plan_body, planned


def _end_day(production: dict) -> date:  # type: ignore[type-arg]
    return datetime.fromisoformat(production["end"]).astimezone(ZoneInfo(production["site_timezone"])).date()


async def test_plan_for_a_lot_of_1000_at_level_ii_aql_1_books_80_samples_at_the_lab(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await inspection_market(client, db)
    r = await plan(client, m, transit_days=2)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["plan"] == {
        "standard": "ISO 2859-1",
        "inspection_level": "II",
        "aql": "1.0",
        "lot_size": 1000,
        "code_letter": "J",
        "sample_size": 80,
        "accept_number": 2,
        "reject_number": 3,
    }
    assert out["status"] == "planned" and out["production_booking_id"] == m["production"]["id"]
    assert out["lab_asset_id"] == m["lab"]["id"] and out["require_accreditation"] is True
    assert out["transit_days"] == 2 and out["report_id"] is None and out["verdict"] is None
    assert [c["name"] for c in out["characteristics"]] == ["Bore diameter", "Hardness"]
    assert out["characteristics"][0]["lower_tol"] == "-0.020"

    # The lab booking: an ordinary booking of the buyer, 80 samples, after the production end + transit; ordering
    # the inspection accepted the lab's invoice terms, so it waits for the lab's acceptance.
    lab_booking = (await client.get(f"/api/v1/bookings/{out['lab_booking_id']}", headers=m["buyer"])).json()
    assert lab_booking["kind"] == "lab_service" and lab_booking["status"] == "requested"
    assert lab_booking["samples"] == 80 and lab_booking["asset_id"] == m["lab"]["id"]
    assert lab_booking["buyer_org_id"] == m["buyer_org"]
    drop_off = date.fromisoformat(lab_booking["drop_off_date"])
    assert drop_off >= _end_day(m["production"]) + timedelta(days=2)
    assert drop_off.weekday() < 5  # the lab accepts samples Monday to Friday
    assert out["drop_off_date"] == lab_booking["drop_off_date"]
    assert out["due_date"] == lab_booking["due_date"]

    # Everyone involved reads it, three ways; a stranger gets 404 everywhere.
    _, stranger = await signed_up(client, roles=("buyer",))
    urls = (
        f"/api/v1/bookings/{m['production']['id']}/inspection",
        f"/api/v1/bookings/{out['lab_booking_id']}/inspection",
        f"/api/v1/inspections/{out['id']}",
    )
    for url in urls:
        for who in (m["buyer"], m["supplier"], m["lab_headers"], m["admin"]):
            got = await client.get(url, headers=who)
            assert got.status_code == 200, (url, got.text)
            assert got.json()["id"] == out["id"]
        assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await client.get(f"/api/v1/inspections/{uuid.uuid4()}", headers=m["buyer"])).status_code == 404

    notes = (await client.get("/api/v1/notifications", headers=m["supplier"])).json()["items"]
    planned_note = next(n for n in notes if n["kind"] == "inspection.planned")
    assert "80" in planned_note["body"]


async def test_the_drop_off_moves_to_the_first_day_the_lab_accepts_samples(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await inspection_market(client, db)
    first = _end_day(m["production"]) + timedelta(days=1)
    only = (first.weekday() + 3) % 7  # the lab's single open weekday: three days after the first possible day
    avail = await client.put(
        f"/api/v1/assets/{m['lab']['id']}/availability",
        headers=m["lab_headers"],
        json={"weekly": [{"weekday": only, "start": "09:00", "end": "17:00"}], "exceptions": []},
    )
    assert avail.status_code == 200, avail.text
    r = await plan(client, m, transit_days=1)
    assert r.status_code == 201, r.text
    assert date.fromisoformat(r.json()["drop_off_date"]) == first + timedelta(days=3)


async def test_an_idempotency_key_replays_the_plan(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    url = f"/api/v1/bookings/{m['production']['id']}/inspection"
    headers = {**m["buyer"], "Idempotency-Key": "plan-once"}
    first = await client.post(url, headers=headers, json=plan_body(m))
    again = await client.post(url, headers=headers, json=plan_body(m))
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    # Without the key, a second plan of the same lot is refused while the first is open.
    second = await plan(client, m)
    assert second.status_code == 409 and second.json()["error"] == "inspection_open"


async def test_only_the_buyer_plans(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    _, stranger = await signed_up(client, roles=("buyer",))
    assert (await plan(client, m, headers=stranger)).status_code == 404
    assert (await plan(client, m, headers=m["supplier"])).status_code == 403
    assert (await plan(client, m, headers=m["lab_headers"])).status_code == 404
    assert (await plan(client, m, headers=m["admin"])).status_code == 403
    # The buyer's API keys: planning books a lab, so it needs bookings:write.
    keys = {}
    for name, scopes in (("read", ["bookings:read"]), ("write", ["bookings:read", "bookings:write"])):
        made = await client.post(
            f"/api/v1/orgs/{m['buyer_org']}/api-keys", json={"name": name, "scopes": scopes}, headers=m["buyer"]
        )
        assert made.status_code == 201, made.text
        keys[name] = {"X-API-Key": made.json()["secret"]}
    refused = await plan(client, m, headers=keys["read"])
    assert refused.status_code == 403 and "bookings:write" in refused.text
    made = await plan(client, m, headers=keys["write"])
    assert made.status_code == 201, made.text
    got = await client.get(f"/api/v1/inspections/{made.json()['id']}", headers=keys["read"])
    assert got.status_code == 200
    ship = await client.post(
        f"/api/v1/inspections/{made.json()['id']}/extend", headers=keys["read"], json={"due_date": "2099-01-01"}
    )
    assert ship.status_code == 403


async def test_the_lab_must_be_an_independent_published_lab_service(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db)
    own = await factory_lab(client, m)
    r = await plan(client, m, lab_asset_id=own["id"])
    assert r.status_code == 422 and r.json()["error"] == "lab_not_independent", r.text
    r = await plan(client, m, lab_asset_id=m["asset"]["id"])  # a machine, not a lab service
    assert r.status_code == 422 and "lab_asset_id" in r.json()["detail"], r.text
    r = await plan(client, m, lab_asset_id=str(uuid.uuid4()))
    assert r.status_code == 422 and "lab_asset_id" in r.json()["detail"]


async def test_bad_plans_are_refused_with_a_clear_message(client: AsyncClient, db: AsyncSession) -> None:
    m = await inspection_market(client, db, capacity=50)
    bad_aql = await plan(client, m, sampling={"standard": "ISO 2859-1", "inspection_level": "II", "aql": "0.3"})
    assert bad_aql.status_code == 422
    assert "preferred values" in bad_aql.text and "0.65" in bad_aql.text
    for sampling in (
        {"standard": "ANSI Z1.4", "inspection_level": "II", "aql": "1.0"},
        {"standard": "ISO 2859-1", "inspection_level": "IV", "aql": "1.0"},
        {"standard": "ISO 2859-1", "inspection_level": "II", "aql": "NaN"},
    ):
        assert (await plan(client, m, sampling=sampling)).status_code == 422, sampling
    wrong_tolerance = [{"name": "Bore", "nominal": 12, "lower_tol": 0.01, "upper_tol": 0.02, "unit": "mm"}]
    assert (await plan(client, m, characteristics=wrong_tolerance)).status_code == 422
    twice = [{"name": "Bore", "nominal": 12, "lower_tol": 0, "upper_tol": 0.02, "unit": "mm"}] * 2
    assert (await plan(client, m, characteristics=twice)).status_code == 422
    unknown_unit = [{"name": "Bore", "nominal": 12, "lower_tol": 0, "upper_tol": 0.02, "unit": "furlong"}]
    assert (await plan(client, m, characteristics=unknown_unit)).status_code == 422
    for nominal in ("NaN", "Infinity", "1e400", "12.0000001", "twelve"):
        odd = [{"name": "Bore", "nominal": nominal, "lower_tol": 0, "upper_tol": 0.02, "unit": "mm"}]
        assert (await plan(client, m, characteristics=odd)).status_code == 422, nominal
    assert (await plan(client, m, characteristics=[])).status_code == 422
    assert (await plan(client, m, lot_size=1)).status_code == 422
    assert (await plan(client, m, transit_days=31)).status_code == 422
    control = [{"name": "Bo\x00re", "nominal": 12, "lower_tol": 0, "upper_tol": 0.02, "unit": "mm"}]
    assert (await plan(client, m, characteristics=control)).status_code == 422
    # 80 samples do not fit the lab's 50 a day.
    full = await plan(client, m)
    assert full.status_code == 422 and "at most 50 samples" in full.text
    small = await plan(client, m, lot_size=500)  # H: 50 samples
    assert small.status_code == 201, small.text
    assert small.json()["plan"]["sample_size"] == 50


async def test_only_a_confirmed_in_progress_or_completed_machine_booking_is_inspected(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await inspection_market(client, db, status="requested")
    r = await plan(client, m)
    assert r.status_code == 409 and r.json()["current_status"] == "requested"
    confirmed = await inspection_market(client, db, status="confirmed")
    out = await planned(client, confirmed)
    # A lab booking is not a production booking.
    r = await client.post(
        f"/api/v1/bookings/{out['lab_booking_id']}/inspection", headers=confirmed["buyer"], json=plan_body(confirmed)
    )
    assert r.status_code == 422 and "machine" in r.json()["detail"], r.text
