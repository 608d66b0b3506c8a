"""Listings through the public API: sites, certificates, machines and lab services, moderation."""

from __future__ import annotations

import base64
import json
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import (
    BERLIN,
    SUZHOU,
    admin_headers,
    create_asset,
    lab_payload,
    machine_payload,
    published_asset,
    signed_up,
    supplier,
)


async def test_taxonomy_endpoints_are_public_and_localised(client: AsyncClient) -> None:
    procs = (await client.get("/api/v1/taxonomy/processes?locale=zh-CN")).json()["items"]
    by_code = {p["code"]: p for p in procs}
    five = by_code["machining.milling.cnc_5axis"]
    assert five["name"] == five["name_zh"] and five["kind"] == "machine"
    assert "machining.milling.cnc_4axis" in five["can_also_do"]
    assert sum(p["kind"] is not None for p in procs) >= 60
    mats = (await client.get("/api/v1/taxonomy/materials")).json()["items"]
    codes = {m["code"] for m in mats}
    assert {"al_6061", "q235", "steel_45", "ss_304", "ti_tc4", "pa12", "peek"} <= codes


async def test_supplier_creates_site_machine_and_lab_as_drafts(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, site = await supplier(client, db)
    assert site["org_id"] == reg["org"]["id"] and site["timezone"] == "Asia/Shanghai"
    machine = await client.post("/api/v1/assets", json=machine_payload(site["id"]), headers=headers)
    assert machine.status_code == 201
    m = machine.json()
    assert m["status"] == "draft" and m["kind"] == "machine"
    assert m["envelope_mm"] == {"x": 800, "y": 500, "z": 500}
    assert m["hourly_rate"] == 30000 and m["currency"] == "CNY"
    assert m["cancellation_policy"] == {
        "full_refund_hours": 72,
        "partial_refund_hours": 24,
        "partial_refund_percent": 50,
    }
    lab = await client.post("/api/v1/assets", json=lab_payload(site["id"]), headers=headers)
    assert lab.status_code == 201
    assert lab.json()["test_standard"] == "GB/T 228.1-2021" and lab.json()["status"] == "draft"
    own = (await client.get(f"/api/v1/orgs/{reg['org']['id']}/assets", headers=headers)).json()["items"]
    assert {a["id"] for a in own} == {m["id"], lab.json()["id"]}


async def test_org_assets_reject_a_malformed_keyset_cursor_with_a_400(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, site = await supplier(client, db)
    for _ in range(2):
        assert (await client.post("/api/v1/assets", json=machine_payload(site["id"]), headers=headers)).is_success
    url = f"/api/v1/orgs/{reg['org']['id']}/assets"
    page = (await client.get(url, params={"limit": 1}, headers=headers)).json()
    assert (await client.get(url, params={"cursor": page["next_cursor"]}, headers=headers)).status_code == 200
    # Not base64, not a list, a list of the wrong shape, a list with a bad date or id.
    for values in (None, {"a": 1}, [], [1, 2], ["not-a-date", page["items"][0]["id"]], ["2027-01-01T00:00:00", "x"]):
        raw = json.dumps(values).encode()
        cursor = "%%%garbage" if values is None else base64.urlsafe_b64encode(raw).decode().rstrip("=")
        bad = await client.get(url, params={"cursor": cursor}, headers=headers)
        assert bad.status_code == 400, values
        assert bad.json()["error"] == "bad_request" and bad.json()["detail"] == "Malformed cursor.", values


async def test_malformed_payloads_answer_422_with_a_clear_message(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db)
    bad_sites = [
        ({**SUZHOU, "timezone": "Mars/Olympus"}, "unknown IANA time zone"),
        ({**SUZHOU, "region_code": "Suzhou"}, "6-digit"),
        ({**SUZHOU, "latitude": 123}, "latitude"),
    ]
    for body, message in bad_sites:
        r = await client.post("/api/v1/sites", json=body, headers=headers)
        assert r.status_code == 422 and message in r.json()["detail"], r.text
    bad_assets = [
        (machine_payload(site["id"], hourly_rate=-1), "hourly_rate"),
        (machine_payload(site["id"], process_codes=["machining.milling.cnc_9axis"]), "unknown process code"),
        (machine_payload(site["id"], process_codes=["testing.mechanical.tensile"]), "lab_service process"),
        (machine_payload(site["id"], process_codes=["machining"]), "process group"),
        (machine_payload(site["id"], materials=["unobtainium"]), "unknown material"),
        (machine_payload(site["id"], slot_minutes=7), "slot_minutes"),
        (machine_payload(site["id"], currency="yuan"), "ISO 4217"),
        (lab_payload(site["id"], price_per_sample=-5), "price_per_sample"),
        ({**machine_payload(site["id"]), "kind": "spaceship"}, "kind"),
    ]
    for body, message in bad_assets:
        r = await client.post("/api/v1/assets", json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert message in r.json()["detail"], r.json()
    asset = await create_asset(client, headers, machine_payload(site["id"]))
    bad_availability: list[tuple[dict[str, Any], str]] = [
        ({"weekly": [{"weekday": 0, "start": "08:00", "end": "25:00"}]}, "invalid time"),
        ({"weekly": [{"weekday": 7, "start": "08:00", "end": "18:00"}]}, "weekday"),
        (
            {
                "exceptions": [
                    {"start": "2027-02-17T00:00:00+08:00", "end": "2027-02-10T00:00:00+08:00", "available": False}
                ]
            },
            "end must be after start",
        ),
        (
            {"exceptions": [{"start": "2027-02-10T00:00:00", "end": "2027-02-17T00:00:00+08:00", "available": False}]},
            "timezone",
        ),
    ]
    for body, message in bad_availability:
        r = await client.put(f"/api/v1/assets/{asset['id']}/availability", json=body, headers=headers)
        assert r.status_code == 422 and message in r.json()["detail"], r.text


async def test_every_moderation_transition_legal_and_illegal(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    _, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]))
    aid = asset["id"]

    async def act(path: str, who: dict[str, str], body: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
        r = await client.post(path, headers=who, json=body)
        return r.status_code, r.json()

    own, adm = f"/api/v1/assets/{aid}", f"/api/v1/admin/assets/{aid}"
    # draft: approve/suspend/reinstate are illegal
    for action in ("approve", "suspend", "reinstate"):
        code, body = await act(f"{adm}/{action}", admin, {"reason": "x"})
        assert code == 409 and body["current_status"] == "draft" and body["error"] == "invalid_transition"
    assert (await act(f"{own}/submit", headers))[1]["status"] == "pending_review"
    assert (await act(f"{own}/submit", headers))[0] == 409
    code, body = await act(f"{adm}/reject", admin, {})
    assert code == 422 and "reason" in body["detail"]
    code, body = await act(f"{adm}/reject", admin, {"reason": "photos missing"})
    assert code == 200 and body["status"] == "rejected" and body["status_reason"] == "photos missing"
    # The owner sees why.
    seen = (await client.get(own, headers=headers)).json()
    assert seen["status"] == "rejected" and seen["status_reason"] == "photos missing"
    assert (await act(f"{own}/submit", headers))[1]["status"] == "pending_review"
    assert (await act(f"{adm}/approve", admin))[1]["status"] == "published"
    assert (await act(f"{adm}/approve", admin))[0] == 409
    assert (await act(f"{own}/submit", headers))[0] == 409
    assert (await act(f"{adm}/suspend", admin, {"reason": "complaint under review"}))[1]["status"] == "suspended"
    assert (await act(f"{adm}/suspend", admin, {"reason": "again"}))[0] == 409
    assert (await act(f"{adm}/reinstate", admin))[1]["status"] == "published"
    assert (await act(f"{own}/archive", headers))[1]["status"] == "archived"
    for path, who in (
        (f"{own}/archive", headers),
        (f"{own}/submit", headers),
        (f"{adm}/approve", admin),
        (f"{adm}/reinstate", admin),
    ):
        code, body = await act(path, who, {"reason": "r"})
        assert code == 409 and body["current_status"] == "archived", path
    patch = await client.patch(own, json={"title": "x"}, headers=headers)
    assert patch.status_code == 422

    history = (await client.get(f"{own}/history", headers=headers)).json()["items"]
    assert [(h["action"], h["to_status"]) for h in history] == [
        ("create", "draft"),
        ("submit", "pending_review"),
        ("reject", "rejected"),
        ("submit", "pending_review"),
        ("approve", "published"),
        ("suspend", "suspended"),
        ("reinstate", "published"),
        ("archive", "archived"),
    ]
    audit = (await client.get(f"/api/v1/admin/audit?target_id={aid}", headers=admin)).json()["items"]
    assert [a["action"] for a in audit] == ["asset.reinstate", "asset.suspend", "asset.approve", "asset.reject"]
    assert audit[1]["reason"] == "complaint under review"


async def test_only_verified_organisations_can_submit(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db, verified=False)
    asset = await create_asset(client, headers, machine_payload(site["id"]))
    r = await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "organisation_not_verified"


async def test_a_machine_without_availability_cannot_be_submitted(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]), weekly=[])
    r = await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)
    assert r.status_code == 422 and "availability" in r.json()["detail"]


async def test_material_edits_send_a_published_listing_back_to_review(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, headers, site = await published_asset(client, db, admin)
    url = f"/api/v1/assets/{asset['id']}"
    cosmetic = await client.patch(url, json={"title": "Renamed", "description": "better words"}, headers=headers)
    assert cosmetic.json()["status"] == "published"
    same_price = await client.patch(url, json={"hourly_rate": 30000}, headers=headers)
    assert same_price.json()["status"] == "published"
    for change in (
        {"hourly_rate": 35000},
        {"materials": ["al_6061", "ti_tc4"]},
        {"envelope_mm": {"x": 900, "y": 500, "z": 500}},
    ):
        r = await client.patch(url, json=change, headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "pending_review", change
        await client.post(f"/api/v1/admin/assets/{asset['id']}/approve", headers=admin)
    # Moving the site sends its published listings back to review too.
    moved = await client.patch(f"/api/v1/sites/{site['id']}", json={"latitude": 31.5}, headers=headers)
    assert moved.status_code == 200
    assert (await client.get(url, headers=headers)).json()["status"] == "pending_review"


async def test_edits_respect_the_listing_kind(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db)
    lab = await create_asset(client, headers, lab_payload(site["id"]))
    r = await client.patch(f"/api/v1/assets/{lab['id']}", json={"hourly_rate": 100}, headers=headers)
    assert r.status_code == 422 and "hourly_rate" in r.json()["detail"]
    r = await client.patch(
        f"/api/v1/assets/{lab['id']}", json={"process_codes": ["machining.milling.cnc_3axis"]}, headers=headers
    )
    assert r.status_code == 422


async def test_flags_reach_the_admin_queue(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, _, _ = await published_asset(client, db, admin)
    _, someone = await signed_up(client, roles=("buyer",))
    r = await client.post(f"/api/v1/assets/{asset['id']}/flags", json={"reason": "price looks fake"}, headers=someone)
    assert r.status_code == 201
    flag_id = r.json()["id"]
    anon = await client.post(f"/api/v1/assets/{asset['id']}/flags", json={"reason": "x"})
    assert anon.status_code == 401
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=admin)).json()
    assert flag_id in [f["id"] for f in queue["open_flags"]]
    resolved = await client.post(
        f"/api/v1/admin/flags/{flag_id}/resolve", json={"resolution": "checked, fine"}, headers=admin
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=admin)).json()
    assert flag_id not in [f["id"] for f in queue["open_flags"]]


async def test_pending_listings_appear_in_the_moderation_queue(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    _, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]))
    await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)
    queue = (await client.get("/api/v1/admin/moderation/queue", headers=admin)).json()
    assert asset["id"] in [a["id"] for a in queue["pending_review"]]
    _, user = await signed_up(client)
    assert (await client.get("/api/v1/admin/moderation/queue", headers=user)).status_code == 403


async def test_foreign_organisation_gets_404_on_listing_site_and_certificate_endpoints(
    client: AsyncClient, db: AsyncSession
) -> None:
    admin = await admin_headers(client, db)
    reg, headers, site = await supplier(client, db)
    org = reg["org"]["id"]
    draft = await create_asset(client, headers, machine_payload(site["id"]))
    published, _, _ = await published_asset(client, db, admin)
    # published_asset made a different organisation; make one for `org` too.
    mine = await create_asset(client, headers, machine_payload(site["id"], title="Mine"))
    from tests.factories import publish

    mine = await publish(client, headers, admin, mine["id"])
    _, intruder, _ = await supplier(client, db, site=BERLIN)
    cert = await client.post(
        f"/api/v1/orgs/{org}/certificates",
        headers=headers,
        json={
            "standard": "ISO 9001",
            "number": "Q-1",
            "issuer": "CQC",
            "valid_from": "2025-01-01",
            "valid_until": "2028-01-01",
        },
    )
    assert cert.status_code == 201

    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/v1/sites/{site['id']}", None),
        ("PATCH", f"/api/v1/sites/{site['id']}", {"name": "stolen"}),
        ("GET", f"/api/v1/orgs/{org}/sites", None),
        (
            "POST",
            f"/api/v1/orgs/{org}/certificates",
            {
                "standard": "ISO 9001",
                "number": "X",
                "issuer": "Y",
                "valid_from": "2025-01-01",
                "valid_until": "2027-01-01",
            },
        ),
        ("GET", f"/api/v1/orgs/{org}/certificates", None),
        ("GET", f"/api/v1/orgs/{org}/assets", None),
        ("POST", "/api/v1/assets", machine_payload(site["id"])),
        ("GET", f"/api/v1/assets/{draft['id']}", None),
        ("GET", f"/api/v1/assets/{draft['id']}/availability", None),
        ("GET", f"/api/v1/assets/{draft['id']}/free-slots?start=2027-03-01T00:00:00Z&end=2027-03-02T00:00:00Z", None),
        ("PATCH", f"/api/v1/assets/{draft['id']}", {"title": "x"}),
        ("PATCH", f"/api/v1/assets/{mine['id']}", {"title": "x"}),
        ("POST", f"/api/v1/assets/{draft['id']}/submit", None),
        ("POST", f"/api/v1/assets/{mine['id']}/archive", None),
        ("GET", f"/api/v1/assets/{mine['id']}/history", None),
        ("PUT", f"/api/v1/assets/{mine['id']}/availability", {"weekly": [], "exceptions": []}),
        (
            "POST",
            f"/api/v1/assets/{mine['id']}/availability/sync",
            {"from": "2027-01-01T00:00:00Z", "to": "2027-02-01T00:00:00Z", "exceptions": []},
        ),
        ("POST", f"/api/v1/assets/{draft['id']}/flags", {"reason": "x"}),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, json=body, headers=intruder)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        assert r.json()["error"] == "not_found"
    # Published listings are public, to anyone.
    assert (await client.get(f"/api/v1/assets/{published['id']}")).status_code == 200
    assert (await client.get(f"/api/v1/assets/{mine['id']}", headers=intruder)).status_code == 200
    assert (await client.get(f"/api/v1/assets/{draft['id']}")).status_code == 404


async def test_api_key_with_availability_scope_can_sync_but_not_edit(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, site = await supplier(client, db)
    asset = await create_asset(client, headers, machine_payload(site["id"]))
    key = (
        await client.post(
            f"/api/v1/orgs/{reg['org']['id']}/api-keys",
            headers=headers,
            json={"name": "MES", "scopes": ["availability:write"]},
        )
    ).json()["secret"]
    mes = {"X-API-Key": key}
    sync = await client.post(
        f"/api/v1/assets/{asset['id']}/availability/sync",
        headers=mes,
        json={
            "from": "2027-02-01T00:00:00+08:00",
            "to": "2027-03-01T00:00:00+08:00",
            "exceptions": [
                {
                    "start": "2027-02-10T00:00:00+08:00",
                    "end": "2027-02-17T00:00:00+08:00",
                    "available": False,
                    "note": "Spring Festival",
                }
            ],
        },
    )
    assert sync.status_code == 200, sync.text
    edit = await client.patch(f"/api/v1/assets/{asset['id']}", json={"title": "x"}, headers=mes)
    assert edit.status_code == 403 and "listings:write" in edit.json()["detail"]
    # The synced closure is in place and nothing outside the range changed.
    avail = (await client.get(f"/api/v1/assets/{asset['id']}/availability", headers=headers)).json()
    assert [(e["start"], e["available"]) for e in avail["exceptions"]] == [("2027-02-09T16:00:00Z", False)]
