"""The booking lifecycle through the public API: every transition, who may do it, money snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import book, market, slot
from tests.factories import signed_up


async def _post(client: AsyncClient, url: str, headers: dict[str, str], body: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    return await client.post(url, headers=headers, json=body)


async def test_full_happy_path_with_timeline_reviews_and_scorecard(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(3)  # within the 24-hour check-in window
    r = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "held" and b["your_role"] == "buyer"
    assert b["amount"] == 30000 * 2 + 20000  # 2 h at 300.00 + setup fee 200.00
    assert b["hold_expires_at"] and b["currency"] == "CNY" and b["commission_rate_bp"] == 800
    url = f"/api/v1/bookings/{b['id']}"

    steps = [
        ("payment/accept-terms", m["buyer"], "requested"),
        ("accept", m["supplier"], "confirmed"),
        ("start", m["supplier"], "in_progress"),
        ("complete", m["supplier"], "completed"),
        ("confirm", m["buyer"], "settled"),
    ]
    for action, who, expected in steps:
        # The slot starts in 3 h: completing before the start needs a reason.
        r = await _post(
            client, f"{url}/{action}", who, {"reason": "finished ahead of the slot"} if action == "complete" else None
        )
        assert r.status_code == 200, (action, r.text)
        assert r.json()["status"] == expected
    timeline = (await client.get(url, headers=m["supplier"])).json()["timeline"]
    assert [(e["action"], e["to_status"], e["actor_kind"]) for e in timeline] == [
        ("book", "held", "buyer"),
        ("pay", "requested", "buyer"),
        ("accept", "confirmed", "supplier"),
        ("start", "in_progress", "supplier"),
        ("complete", "completed", "supplier"),
        ("confirm", "settled", "buyer"),
    ]
    assert all(e["actor_user_id"] for e in timeline)

    r1 = await _post(client, f"{url}/reviews", m["buyer"], {"rating": 5, "comment": "precise work"})
    r2 = await _post(client, f"{url}/reviews", m["supplier"], {"rating": 4, "comment": "clear drawings"})
    assert r1.status_code == r2.status_code == 201
    again = await _post(client, f"{url}/reviews", m["buyer"], {"rating": 1})
    assert again.status_code == 409
    card = (await client.get(f"/api/v1/orgs/{m['asset']['org_id']}/scorecard")).json()
    assert card["as_supplier"]["completed_bookings"] == 1
    assert card["as_supplier"]["average_rating"] == 5.0 and card["as_supplier"]["on_time_rate"] == 1.0
    buyer_card = (await client.get(f"/api/v1/orgs/{m['buyer_org']}/scorecard")).json()
    assert buyer_card["as_buyer"]["average_rating"] == 4.0 and buyer_card["as_buyer"]["payment_punctuality"] == 1.0

    notes = (await client.get("/api/v1/notifications", headers=m["buyer"])).json()["items"]
    kinds = {n["kind"] for n in notes}
    assert {"booking.confirmed", "booking.in_progress", "booking.completed", "booking.settled"} <= kinds
    supplier_notes = (await client.get("/api/v1/notifications", headers=m["supplier"])).json()["items"]
    assert "booking.requested" in {n["kind"] for n in supplier_notes}


async def test_illegal_transitions_answer_409_with_the_current_state(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(100)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    for action, who in (
        ("accept", m["supplier"]),
        ("decline", m["supplier"]),
        ("start", m["supplier"]),
        ("complete", m["supplier"]),
        ("confirm", m["buyer"]),
    ):
        r = await _post(client, f"{url}/{action}", who)
        assert r.status_code == 409, (action, r.text)
        assert r.json()["error"] == "invalid_transition" and r.json()["current_status"] == "held"
    r = await _post(client, f"{url}/dispute", m["buyer"], {"reason": "x"})
    assert r.status_code == 409
    await _post(client, f"{url}/payment/accept-terms", m["buyer"])
    r = await _post(client, f"{url}/payment/accept-terms", m["buyer"])
    assert r.status_code == 409 and r.json()["current_status"] == "requested"
    r = await client.post(
        f"/api/v1/admin/bookings/{b['id']}/resolve", headers=m["admin"], json={"refund_amount": 0, "note": "n"}
    )
    assert r.status_code == 409


async def test_who_may_perform_each_action(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    # The supplier cannot pay the buyer's hold; the buyer cannot accept their own request.
    assert (await _post(client, f"{url}/payment/accept-terms", m["supplier"])).status_code == 403
    await _post(client, f"{url}/payment/accept-terms", m["buyer"])
    assert (await _post(client, f"{url}/accept", m["buyer"])).status_code == 403
    await _post(client, f"{url}/accept", m["supplier"])
    assert (await _post(client, f"{url}/start", m["buyer"])).status_code == 403
    await _post(client, f"{url}/start", m["supplier"])
    assert (await _post(client, f"{url}/complete", m["buyer"])).status_code == 403
    await _post(client, f"{url}/complete", m["supplier"], {"reason": "finished early"})
    assert (await _post(client, f"{url}/confirm", m["supplier"])).status_code == 403
    assert (await _post(client, f"{url}/dispute", m["supplier"], {"reason": "x"})).status_code == 403
    # Admin-only resolution.
    await _post(client, f"{url}/dispute", m["buyer"], {"reason": "flatness out of tolerance"})
    assert (
        await client.post(
            f"/api/v1/admin/bookings/{b['id']}/resolve", headers=m["buyer"], json={"refund_amount": 1, "note": "n"}
        )
    ).status_code == 403
    # A foreign organisation sees nothing at all.
    _, stranger = await signed_up(client, roles=("buyer",))
    for action in ("accept", "decline", "cancel", "start", "complete", "confirm", "payment/accept-terms"):
        assert (await _post(client, f"{url}/{action}", stranger)).status_code == 404, action
    assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await _post(client, f"{url}/dispute", stranger, {"reason": "x"})).status_code == 404
    assert (await _post(client, f"{url}/reviews", stranger, {"rating": 3})).status_code == 404
    listed = (await client.get("/api/v1/bookings", headers=stranger)).json()["items"]
    assert b["id"] not in [x["id"] for x in listed]


async def test_dispute_and_admin_resolution_are_audited(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    for action, who in (
        ("payment/accept-terms", m["buyer"]),
        ("accept", m["supplier"]),
        ("start", m["supplier"]),
        ("complete", m["supplier"]),
    ):
        await _post(client, f"{url}/{action}", who, {"reason": "finished early"} if action == "complete" else None)
    no_reason = await client.post(f"{url}/dispute", headers=m["buyer"], json={})
    assert no_reason.status_code == 422
    d = await _post(client, f"{url}/dispute", m["buyer"], {"reason": "surface finish not as agreed"})
    assert d.json()["status"] == "disputed" and d.json()["dispute_reason"] == "surface finish not as agreed"
    too_much = await client.post(
        f"/api/v1/admin/bookings/{b['id']}/resolve",
        headers=m["admin"],
        json={"refund_amount": b["amount"] + 1, "note": "n"},
    )
    assert too_much.status_code == 422
    r = await client.post(
        f"/api/v1/admin/bookings/{b['id']}/resolve",
        headers=m["admin"],
        json={"refund_amount": 30000, "note": "half the machining refunded"},
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["refund_amount"] == 30000
    audit = (await client.get(f"/api/v1/admin/audit?target_id={b['id']}", headers=m["admin"])).json()["items"]
    assert audit[0]["action"] == "booking.resolve" and audit[0]["after"]["refund_amount"] == 30000


async def test_decline_frees_the_slot(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(50)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end, key="a")).json()
    clash = await book(client, m["buyer"], m["asset"]["id"], start + timedelta(minutes=30), end, key="b")
    assert clash.status_code == 409 and clash.json()["error"] == "slot_unavailable"
    await _post(client, f"/api/v1/bookings/{b['id']}/payment/accept-terms", m["buyer"])
    d = await _post(client, f"/api/v1/bookings/{b['id']}/decline", m["supplier"], {"reason": "machine down"})
    assert d.json()["status"] == "declined"
    again = await book(client, m["buyer"], m["asset"]["id"], start + timedelta(minutes=30), end, key="c")
    assert again.status_code == 201


@pytest.mark.parametrize(
    ("hours_before", "by", "percent"),
    [
        (100, "buyer", 100),
        (72.5, "buyer", 100),
        (71.5, "buyer", 50),
        (24.5, "buyer", 50),
        (23.5, "buyer", 0),
        (2, "buyer", 0),
        (2, "supplier", 100),
    ],
)
async def test_cancellation_refunds_follow_the_policy(
    client: AsyncClient, db: AsyncSession, hours_before: float, by: str, percent: int
) -> None:
    m = await market(client, db)
    start, end = slot(hours_before, grid=30)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    await _post(client, f"{url}/payment/accept-terms", m["buyer"])
    who = m["buyer"] if by == "buyer" else m["supplier"]
    preview = (await client.get(url, headers=who)).json()["refund_if_cancelled_now"]
    r = await _post(client, f"{url}/cancel", who, {"reason": "plans changed"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["cancelled_by"] == by
    assert r.json()["refund_amount"] == b["amount"] * percent // 100 == preview


async def test_cancelling_an_unpaid_hold_refunds_nothing(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(100)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    r = await _post(client, f"/api/v1/bookings/{b['id']}/cancel", m["buyer"])
    assert r.json()["status"] == "cancelled" and r.json()["refund_amount"] == 0


async def test_price_is_snapshotted_at_booking_time(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(30)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    r = await client.patch(
        f"/api/v1/assets/{m['asset']['id']}",
        headers=m["supplier"],
        json={"hourly_rate": 99900, "cancellation_policy": {"full_refund_hours": 1, "partial_refund_hours": 0}},
    )
    assert r.status_code == 200
    after = (await client.get(f"/api/v1/bookings/{b['id']}", headers=m["buyer"])).json()
    assert after["unit_price"] == 30000 and after["amount"] == b["amount"]
    assert after["cancellation_policy"]["full_refund_hours"] == 72


async def test_check_in_opens_24_hours_before_the_start(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(48)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    await _post(client, f"{url}/payment/accept-terms", m["buyer"])
    await _post(client, f"{url}/accept", m["supplier"])
    early = await _post(client, f"{url}/start", m["supplier"])
    assert early.status_code == 409 and early.json()["current_status"] == "confirmed"


async def test_booking_rules(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    aid = m["asset"]["id"]
    start, end = slot(30)
    missing_key = await client.post(
        "/api/v1/bookings",
        headers=m["buyer"],
        json={"asset_id": aid, "start": start.isoformat(), "end": end.isoformat()},
    )
    assert missing_key.status_code == 400 and "Idempotency-Key" in missing_key.json()["detail"]
    off_grid = await book(client, m["buyer"], aid, start + timedelta(minutes=10), end)
    assert off_grid.status_code == 422 and "grid" in off_grid.json()["detail"]
    too_short = await book(client, m["buyer"], aid, start, start + timedelta(minutes=30))
    assert too_short.status_code == 422 and "minimum" in too_short.json()["detail"]
    past = await book(client, m["buyer"], aid, *slot(-5))
    assert past.status_code == 422
    beyond = await book(client, m["buyer"], aid, *slot(24 * 400))
    assert beyond.status_code == 422
    mixed = await client.post(
        "/api/v1/bookings",
        headers={**m["buyer"], "Idempotency-Key": "mixed"},
        json={"asset_id": aid, "start": start.isoformat(), "samples": 3},
    )
    assert mixed.status_code == 422
    own = await book(client, m["supplier"], aid, start, end)
    assert own.status_code in (403, 422)
    _, supplier_only = await signed_up(client, roles=("supplier",))
    not_buyer = await book(client, supplier_only, aid, start, end)
    assert not_buyer.status_code == 422


async def test_a_supplier_that_also_buys_cannot_book_its_own_asset(client: AsyncClient, db: AsyncSession) -> None:
    import sqlalchemy as sa

    m = await market(client, db)
    await db.execute(
        sa.text("UPDATE organisations SET roles = ARRAY['supplier','buyer'] WHERE id = :id"),
        {"id": m["asset"]["org_id"]},
    )
    await db.commit()
    r = await book(client, m["supplier"], m["asset"]["id"], *slot(30))
    assert r.status_code == 403 and r.json()["error"] == "own_asset"


async def test_booking_outside_open_hours_is_refused(client: AsyncClient, db: AsyncSession) -> None:
    weekdays = [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(5)]
    m = await market(client, db, weekly=weekdays)
    now = datetime.now(UTC)
    saturday = (now + timedelta(days=7 + (5 - now.weekday()) % 7)).date()
    start = datetime(saturday.year, saturday.month, saturday.day, 2, 0, tzinfo=UTC)  # 10:00 Shanghai, Saturday
    r = await book(client, m["buyer"], m["asset"]["id"], start, start + timedelta(hours=2))
    assert r.status_code == 422 and "not open" in r.json()["detail"]


async def test_idempotent_booking_replay_and_mismatch(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(40)
    first = await book(client, m["buyer"], m["asset"]["id"], start, end, key="book-1")
    replay = await book(client, m["buyer"], m["asset"]["id"], start, end, key="book-1")
    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"] and replay.headers["idempotent-replayed"] == "true"
    other = await book(
        client, m["buyer"], m["asset"]["id"], start + timedelta(hours=4), end + timedelta(hours=4), key="book-1"
    )
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_mismatch"
    mine = (await client.get("/api/v1/bookings?role=buyer", headers=m["buyer"])).json()["items"]
    assert [b["id"] for b in mine] == [first.json()["id"]]


async def test_booking_across_a_dst_change_charges_real_hours(client: AsyncClient, db: AsyncSession) -> None:
    from tests.factories import BERLIN

    m = await market(client, db, site=BERLIN, currency="EUR", hourly_rate=6000, setup_fee=0)
    # Saturday 2027-03-27 22:00 CET to Sunday 06:00 CEST: 8 wall-clock hours, 7 real hours.
    start = datetime.fromisoformat("2027-03-27T22:00:00+01:00")
    end = datetime.fromisoformat("2027-03-28T06:00:00+02:00")
    r = await book(client, m["buyer"], m["asset"]["id"], start, end)
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == 7 * 6000
    assert r.json()["start"] == "2027-03-27T21:00:00Z" and r.json()["end"] == "2027-03-28T04:00:00Z"


async def test_setup_and_buffer_block_the_machine(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db, setup_minutes=30, buffer_minutes=60)
    start, end = slot(60)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end, key="x")).json()
    assert b["blocked_from"] == (start - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    # Right after the end is inside the buffer (and the next booking's own setup): refused.
    after = await book(
        client, m["buyer"], m["asset"]["id"], end + timedelta(minutes=30), end + timedelta(minutes=150), key="y"
    )
    assert after.status_code == 409
    later = await book(
        client, m["buyer"], m["asset"]["id"], end + timedelta(minutes=90), end + timedelta(minutes=210), key="z"
    )
    assert later.status_code == 201
    slots = (
        await client.get(
            f"/api/v1/assets/{m['asset']['id']}/free-slots",
            params={
                "start": (start - timedelta(hours=3)).isoformat(),
                "end": (end + timedelta(hours=6)).isoformat(),
                "duration_minutes": 60,
            },
        )
    ).json()["items"]
    for s in slots:  # no free window overlaps a booking's blocked period
        assert not (s["start"] < b["blocked_until"] and s["end"] > b["blocked_from"])


async def test_ical_feed_lists_the_machines_bookings(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    start, end = slot(30)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    link = (await client.get(f"/api/v1/assets/{m['asset']['id']}/calendar-link", headers=m["supplier"])).json()
    token = link["url"].split("token=")[1]
    feed = await client.get(f"/api/v1/assets/{m['asset']['id']}/calendar.ics", params={"token": token})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    from icalendar import Calendar

    events = [c for c in Calendar.from_ical(feed.content).walk("VEVENT")]
    assert [str(e["uid"]) for e in events] == [f"{b['id']}@marketplace"]
    assert events[0].decoded("dtstart") == start
    bad = await client.get(f"/api/v1/assets/{m['asset']['id']}/calendar.ics", params={"token": "0" * 40})
    assert bad.status_code == 404
    assert (await client.get(f"/api/v1/assets/{m['asset']['id']}/calendar-link", headers=m["buyer"])).status_code == 404


async def test_a_stale_hold_is_expired_by_the_next_booking_and_its_invoice_released(
    client: AsyncClient, db: AsyncSession
) -> None:
    import sqlalchemy as sa

    m = await market(client, db)
    start, end = slot(50)
    first = (await book(client, m["buyer"], m["asset"]["id"], start, end, key="first")).json()
    await db.execute(
        sa.text("UPDATE bookings SET hold_expires_at = now() - interval '1 minute' WHERE id = :id"), {"id": first["id"]}
    )
    await db.commit()
    second = await book(client, m["buyer"], m["asset"]["id"], start, end, key="second")
    assert second.status_code == 201, second.text
    stale = (await client.get(f"/api/v1/bookings/{first['id']}", headers=m["buyer"])).json()
    assert stale["status"] == "expired"
    assert [(e["action"], e["actor_kind"]) for e in stale["timeline"]][-1] == ("expire", "system")
    payment = (await client.get(f"/api/v1/bookings/{first['id']}/payment", headers=m["buyer"])).json()
    assert payment["status"] == "void" and payment["amount_due"] == 0
    trial = (await client.get("/api/v1/admin/ledger/trial-balance", headers=m["admin"])).json()
    assert trial["balanced"] is True
