"""Issue #15 item 5: request and booking threads end to end, who sees them, files in messages, unread counts,
read marks, the notification centre and the body rules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.documents.samples import STEP
from tests.factories import signed_up
from tests.messages.helpers import step_file, world


async def _post(client: AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(url, json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_a_request_thread_end_to_end_with_a_step_file(client: AsyncClient, db: AsyncSession) -> None:
    w = await world(client, db)
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    doc = await step_file(client, w["supplier"])
    sent = await _post(
        client, url, w["supplier"], {"body": "Drawing attached.\nTolerances?", "document_ids": [doc["id"]]}
    )
    assert sent["author_org_id"] == w["supplier_org"] and sent["body"] == "Drawing attached.\nTolerances?"
    assert sent["author_side"] == "supplier"
    assert [d["id"] for d in sent["documents"]] == [doc["id"]]

    # The buyer names the thread (it has one per supplier organisation).
    assert (await client.get(url, headers=w["buyer"])).status_code == 422
    page = (await client.get(url, params={"supplier_org_id": w["supplier_org"]}, headers=w["buyer"])).json()
    assert [m["id"] for m in page["items"]] == [sent["id"]] and page["items"][0]["documents"][0][
        "name"
    ] == "bracket.step"
    file = await client.get(f"/api/v1/documents/{doc['id']}", headers=w["buyer"])
    assert file.status_code == 200 and file.content == STEP
    reply = await _post(client, url, w["buyer"], {"body": "±0.02 mm", "supplier_org_id": w["supplier_org"]})
    mine = (await client.get(url, headers=w["supplier"])).json()
    assert [m["id"] for m in mine["items"]] == [reply["id"], sent["id"]]  # newest first
    # The factory does not learn who the buyer is from a request thread.
    assert reply["author_side"] == "buyer" and reply["author_org_id"] == w["buyer_org"]
    assert mine["items"][0]["author_side"] == "buyer" and mine["items"][0]["author_org_id"] is None
    assert mine["items"][0]["author_user_id"] is None
    assert mine["thread_id"] == page["thread_id"]

    # A third organisation sees neither the thread nor the file.
    for params in ({}, {"supplier_org_id": w["supplier_org"]}):
        assert (await client.get(url, params=params, headers=w["third"])).status_code == 404
    refused = await client.post(url, json={"body": "hello", "supplier_org_id": w["supplier_org"]}, headers=w["third"])
    assert refused.status_code == 404
    assert (await client.post(url, json={"body": "hello"}, headers=w["third"])).status_code == 404
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=w["third"])).status_code == 404
    # ... and the buyer cannot open a thread with an organisation that may not see the request.
    stranger = await client.post(url, json={"body": "hi", "supplier_org_id": w["third_org"]}, headers=w["buyer"])
    assert stranger.status_code == 404


async def _to_disputed(client: AsyncClient, m: dict[str, Any], booking_id: str) -> None:
    url = f"/api/v1/bookings/{booking_id}"
    for action, who, body in (
        ("payment/accept-terms", m["buyer"], None),
        ("accept", m["supplier"], None),
        ("start", m["supplier"], None),
        ("complete", m["supplier"], {"reason": "finished early"}),
        ("dispute", m["buyer"], {"reason": "surface finish not as agreed"}),
    ):
        resp = await client.post(f"{url}/{action}", headers=who, json=body)
        assert resp.status_code == 200, resp.text


async def test_a_booking_thread_end_to_end_and_admins_only_on_a_dispute(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}/messages"
    doc = await step_file(client, m["buyer"])
    sent = await _post(client, url, m["buyer"], {"body": "Here is the model.", "document_ids": [doc["id"]]})
    page = (await client.get(url, headers=m["supplier"])).json()
    assert [x["id"] for x in page["items"]] == [sent["id"]]
    file = await client.get(f"/api/v1/documents/{doc['id']}", headers=m["supplier"])
    assert file.status_code == 200 and file.content == STEP

    listed = (await client.get("/api/v1/messages/threads", headers=m["supplier"])).json()["items"]
    assert [(t["kind"], t["booking_id"], t["unread"]) for t in listed] == [("booking", b["id"], 0)]
    _third_reg, third = await signed_up(client, roles=("buyer",))
    assert (await client.get(url, headers=third)).status_code == 404
    assert (await client.post(url, json={"body": "hi"}, headers=third)).status_code == 404
    assert (await client.get(f"/api/v1/documents/{doc['id']}", headers=third)).status_code == 404
    # No dispute: the platform's admins have no business in the thread.
    assert (await client.get(url, headers=m["admin"])).status_code == 404
    assert (await client.post(url, json={"body": "hi"}, headers=m["admin"])).status_code == 404

    await _to_disputed(client, m, b["id"])
    seen = (await client.get(url, headers=m["admin"])).json()
    assert [x["id"] for x in seen["items"]] == [sent["id"]]
    said = await _post(client, url, m["admin"], {"body": "Please both send photos of the surface."})
    assert said["author_org_id"] is None and said["author_side"] == "platform"
    named = (await client.get(url, headers=m["supplier"])).json()["items"]
    assert named[-1]["author_org_id"] == m["buyer_org"]  # a booking thread names both parties
    for who in (m["buyer"], m["supplier"]):
        notes = (await client.get("/api/v1/notifications", headers=who)).json()["items"]
        assert any(n["kind"] == "message.received_platform" for n in notes)
    assert (await client.get(url, headers=third)).status_code == 404


async def _unread(client: AsyncClient, headers: dict[str, str]) -> list[int]:
    resp = await client.get("/api/v1/messages/threads", headers=headers)
    assert resp.status_code == 200, resp.text
    return [t["unread"] for t in resp.json()["items"]]


async def test_unread_counts_and_read_marks(client: AsyncClient, db: AsyncSession) -> None:
    w = await world(client, db)
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    for text in ("one", "two"):
        await _post(client, url, w["supplier"], {"body": text})
    threads = (await client.get("/api/v1/messages/threads", headers=w["buyer"])).json()["items"]
    assert len(threads) == 1 and threads[0]["unread"] == 2 and threads[0]["kind"] == "request"
    assert threads[0]["supplier_name"] == w["supplier_name"]
    assert await _unread(client, w["supplier"]) == [0]  # one's own messages are never unread
    assert await _unread(client, w["third"]) == []

    # A page of one (with a cursor to the next) still marks the thread read up to its newest message.
    first = (
        await client.get(url, params={"supplier_org_id": w["supplier_org"], "limit": 1}, headers=w["buyer"])
    ).json()
    assert [x["body"] for x in first["items"]] == ["two"] and first["next_cursor"]
    rest = await client.get(
        url, params={"supplier_org_id": w["supplier_org"], "cursor": first["next_cursor"]}, headers=w["buyer"]
    )
    assert [x["body"] for x in rest.json()["items"]] == ["one"] and rest.json()["next_cursor"] is None
    assert await _unread(client, w["buyer"]) == [0]

    await _post(client, url, w["supplier"], {"body": "three"})
    assert await _unread(client, w["buyer"]) == [1]
    read = await client.post(f"{url}/read", params={"supplier_org_id": w["supplier_org"]}, headers=w["buyer"])
    assert read.status_code == 200 and read.json() == {"unread": 0}
    assert await _unread(client, w["buyer"]) == [0]
    # Read marks are per user: the supplier's reply is unread for the buyer only.
    await _post(client, url, w["buyer"], {"body": "four", "supplier_org_id": w["supplier_org"]})
    assert await _unread(client, w["supplier"]) == [1]
    assert await _unread(client, w["buyer"]) == [0]
    # The factory's side of a request thread does not learn the buyer's name, in the list or the notice.
    theirs = (await client.get("/api/v1/messages/threads", headers=w["supplier"])).json()["items"]
    assert theirs[0]["buyer_name"] is None and theirs[0]["buyer_org_id"] is None and threads[0]["buyer_name"]
    notes = (await client.get("/api/v1/notifications", headers=w["supplier"])).json()["items"]
    told = [n for n in notes if n["kind"].startswith("message.")]
    assert [n["kind"] for n in told] == ["message.received_buyer"] and "four" in told[0]["body"]
    assert "who" not in told[0]["data"]


async def test_the_notification_centre_counts_and_marks_everything_read(client: AsyncClient, db: AsyncSession) -> None:
    w = await world(client, db)
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    await _post(client, url, w["supplier"], {"body": "Can we use 6082 instead of 6061?"})
    await _post(client, url, w["supplier"], {"body": "x" * 300})
    notes = (await client.get("/api/v1/notifications", params={"unread": True}, headers=w["buyer"])).json()["items"]
    received = [n for n in notes if n["kind"] == "message.received"]
    assert len(received) == 2
    assert received[1]["subject"] == f"New message from {w['supplier_name']}"
    assert "Can we use 6082 instead of 6061?" in received[1]["body"]
    assert len(received[0]["data"]["excerpt"]) == 140 and received[0]["data"]["excerpt"].endswith("…")
    # In-app only: no e-mail job per message (the digest mails unread messages).
    ids = [n["id"] for n in received]
    jobs = await db.execute(
        sa.text("SELECT count(*) FROM outbox WHERE task = 'notifications.deliver' AND args->>0 = ANY(:ids)"),
        {"ids": ids},
    )
    assert jobs.scalar_one() == 0

    count = (await client.get("/api/v1/notifications/unread-count", headers=w["buyer"])).json()["unread"]
    assert count == len(notes) >= 2
    done = await client.post("/api/v1/notifications/read-all", headers=w["buyer"])
    assert done.status_code == 200 and done.json() == {"marked_read": count}
    assert (await client.get("/api/v1/notifications/unread-count", headers=w["buyer"])).json() == {"unread": 0}
    assert (await client.get("/api/v1/notifications", params={"unread": True}, headers=w["buyer"])).json()[
        "items"
    ] == []
    assert (await client.get("/api/v1/notifications/unread-count")).status_code == 401


BAD_BODIES: list[dict[str, Any]] = [
    {"body": ""},
    {"body": "x" * 5001},
    {"body": "null \x00 byte"},
    {"body": "bell \x07"},
    {"body": "   \n  "},
    {"body": "ok", "extra": 1},
    {"body": "ok", "document_ids": ["not-a-uuid"]},
    {},
]


async def test_message_bodies_are_validated(client: AsyncClient, db: AsyncSession) -> None:
    w = await world(client, db)
    url = f"/api/v1/requests/{w['request']['id']}/messages"
    for body in BAD_BODIES:
        resp = await client.post(url, json=body, headers=w["supplier"])
        assert resp.status_code == 422, (body, resp.text)
        assert set(resp.json()) >= {"error", "detail", "request_id"}
    ok = await client.post(url, json={"body": "y" * 5000, "document_ids": []}, headers=w["supplier"])
    assert ok.status_code == 201
    multiline = await client.post(url, json={"body": "line 1\r\n\tline 2"}, headers=w["supplier"])
    assert multiline.status_code == 201 and multiline.json()["body"] == "line 1\r\n\tline 2"
    foreign = await client.post(url, json={"body": "z", "document_ids": [w["request"]["id"]]}, headers=w["supplier"])
    assert foreign.status_code == 422
    page = (await client.get(url, headers=w["supplier"])).json()["items"]
    assert len(page) == 2  # the refused ones left nothing behind
