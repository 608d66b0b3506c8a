"""Issue #12, item 1: a booked hour stays booked. A completed (settled, disputed, resolved) booking keeps its
period and its lab samples; only an explicit, audited release gives back the time after an early completion;
completing before the start needs a reason. Also item 2b (a body of the other kind is a 422, never an
``assert``) and 2c (a non-ASCII token is a wrong token, never a 500)."""

from __future__ import annotations

import math
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from listings.calendar_repository import NOT_USED
from marketplace.analytics.repository import COUNTED_STATUSES
from marketplace.bookings.models import BLOCKING, BookingStatus
from marketplace.bookings.transitions import RELEASABLE
from marketplace.notifications import webhooks
from payments import webhooks as stripe_webhooks
from tests.bookings.helpers import ALWAYS_OPEN, book, market, slot
from tests.factories import admin_headers, published_asset, signed_up

EARLY = {"reason": "finished ahead of the slot"}


async def _post(client: AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    return await client.post(url, headers=headers, json=body)


async def _run_to(client: AsyncClient, m: dict[str, Any], booking_id: str, *actions: str) -> dict[str, Any]:
    """Walk a booking through actions (each must succeed); ``complete`` carries a reason."""
    url = f"/api/v1/bookings/{booking_id}"
    who = {"payment/accept-terms": "buyer", "confirm": "buyer"}
    out: dict[str, Any] = {}
    for action in actions:
        r = await _post(
            client, f"{url}/{action}", m[who.get(action, "supplier")], EARLY if action == "complete" else None
        )
        assert r.status_code == 200, (action, r.text)
        out = r.json()
    return out


async def _completed_early(client: AsyncClient, m: dict[str, Any], hours: float = 3) -> tuple[dict[str, Any], Any]:
    start, end = slot(hours)
    r = await book(client, m["buyer"], m["asset"]["id"], start, end, key=uuid.uuid4().hex)
    assert r.status_code == 201, r.text
    done = await _run_to(client, m, r.json()["id"], "payment/accept-terms", "accept", "start", "complete")
    assert done["status"] == "completed"
    return done, (start, end)


# -- the slot stays booked -------------------------------------------------------------------------


async def test_early_completion_keeps_the_slot_from_a_second_buyer(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    done, (start, end) = await _completed_early(client, m)
    _, other_buyer = await signed_up(client, roles=("buyer",))
    again = await book(client, other_buyer, m["asset"]["id"], start, end, key="second-buyer")
    assert again.status_code == 409 and again.json()["error"] == "slot_unavailable", again.text
    # Settled (the buyer confirms), and a dispute, keep it too.
    await _run_to(client, m, done["id"], "confirm")
    assert (await book(client, other_buyer, m["asset"]["id"], start, end, key="after-settle")).status_code == 409
    disputed, (d_start, d_end) = await _completed_early(client, m, hours=8)
    d = await _post(client, f"/api/v1/bookings/{disputed['id']}/dispute", m["buyer"], {"reason": "out of tolerance"})
    assert d.status_code == 200 and d.json()["status"] == "disputed"
    assert (await book(client, other_buyer, m["asset"]["id"], d_start, d_end, key="after-dispute")).status_code == 409
    # A disputed booking's time cannot be released: the remedy may be rework on the same machine.
    refused = await _post(client, f"/api/v1/bookings/{disputed['id']}/release", m["supplier"])
    assert refused.status_code == 409 and refused.json()["error"] == "invalid_transition"


async def test_completion_before_the_start_without_a_reason_is_refused_and_changes_nothing(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _run_to(client, m, b["id"], "payment/accept-terms", "accept", "start")
    url = f"/api/v1/bookings/{b['id']}"
    for body in (None, {}, {"reason": "   "}, {"result_reference": "R-1"}):
        r = await _post(client, f"{url}/complete", m["supplier"], body)
        assert r.status_code == 422, (body, r.text)
        err = r.json()
        assert err["error"] == "validation_error" and err["request_id"]
        assert [f["field"] for f in err["fields"]] == ["reason"] and err["detail"].startswith("reason:")
    after = (await client.get(url, headers=m["supplier"])).json()
    assert after["status"] == "in_progress" and after["completed_at"] is None and after["result_reference"] is None
    assert [e["action"] for e in after["timeline"]] == ["book", "pay", "accept", "start"]
    ok = await _post(client, f"{url}/complete", m["supplier"], {"reason": "ran the job on the night shift"})
    assert ok.status_code == 200 and ok.json()["status"] == "completed"
    last = ok.json()["timeline"][-1]
    assert (last["action"], last["reason"]) == ("complete", "ran the job on the night shift")


# -- releasing the rest ----------------------------------------------------------------------------


async def test_release_gives_back_the_remaining_time_on_the_timeline_in_the_audit_log_and_to_the_buyer(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    hook = await client.post(
        f"/api/v1/orgs/{m['buyer_org']}/webhooks",
        headers=m["buyer"],
        json={"url": "http://127.0.0.1:9/hook", "events": ["booking.released"]},
    )
    assert hook.status_code == 201, hook.text
    done, (start, end) = await _completed_early(client, m)
    url = f"/api/v1/bookings/{done['id']}"
    assert done["blocked_from"] is not None and done["blocked_until"] is not None

    # Only the supplier (or an admin) releases; the buyer may not.
    assert (await _post(client, f"{url}/release", m["buyer"])).status_code == 403
    r = await _post(client, f"{url}/release", m["supplier"], {"reason": "job done early, machine free"})
    assert r.status_code == 200, r.text
    released = r.json()
    # Completed before the period began: nothing is blocked any more; the status and the booked time stay.
    assert released["status"] == "completed"
    assert released["blocked_from"] is None and released["blocked_until"] is None
    assert (released["start"], released["end"]) == (done["start"], done["end"])
    last = released["timeline"][-1]
    assert (last["action"], last["from_status"], last["to_status"], last["actor_kind"], last["reason"]) == (
        "release",
        "completed",
        "completed",
        "supplier",
        "job done early, machine free",
    )
    audit = (await client.get(f"/api/v1/admin/audit?target_id={done['id']}", headers=m["admin"])).json()["items"]
    entry = next(a for a in audit if a["action"] == "booking.release")
    assert entry["before"]["blocked_from"] is not None and entry["after"] == {
        "blocked_from": None,
        "blocked_until": None,
    }
    assert entry["reason"] == "job done early, machine free"
    notes = (await client.get("/api/v1/notifications", headers=m["buyer"])).json()["items"]
    assert any(n["kind"] == "booking.released" for n in notes)
    deliveries = await db.execute(sa.text("SELECT payload FROM webhook_deliveries WHERE event = 'booking.released'"))
    assert [p["data"]["booking_id"] for (p,) in deliveries.all()] == [done["id"]]

    # The remaining time is bookable again ...
    _, other_buyer = await signed_up(client, roles=("buyer",))
    again = await book(client, other_buyer, m["asset"]["id"], start, end, key="after-release")
    assert again.status_code == 201, again.text
    # ... and a second release finds nothing left (no second event, no second audit record).
    second = await _post(client, f"{url}/release", m["supplier"])
    assert second.status_code == 409 and second.json()["error"] == "nothing_to_release"
    timeline = (await client.get(url, headers=m["supplier"])).json()["timeline"]
    assert [e["action"] for e in timeline].count("release") == 1


async def test_release_after_a_completion_mid_slot_keeps_the_time_up_to_the_completion(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    start, end = slot(2, minutes=240)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _run_to(client, m, b["id"], "payment/accept-terms", "accept", "start")
    # Move the running job (on the 30-minute grid) so that it started over an hour ago: bookings cannot be
    # placed in the past.
    shift = timedelta(minutes=30 * math.ceil((start - datetime.now(UTC)).total_seconds() / 1800) + 60)
    await db.execute(
        sa.text(
            "UPDATE bookings SET start_at = start_at - CAST(:d AS interval), end_at = end_at - CAST(:d AS interval),"
            " period = tstzrange(lower(period) - CAST(:d AS interval), upper(period) - CAST(:d AS interval), '[)')"
            " WHERE id = :id"
        ),
        {"d": shift, "id": b["id"]},
    )
    url = f"/api/v1/bookings/{b['id']}"
    done = await _post(client, f"{url}/complete", m["supplier"])  # after the start: no reason needed
    assert done.status_code == 200, done.text
    completed_at = datetime.fromisoformat(done.json()["completed_at"])
    new_end = datetime.fromisoformat(done.json()["end"])
    # The rest of the slot: from the next grid step after now until the booked end.
    free_from, _ = slot(0.05, minutes=30)
    _, other = await signed_up(client, roles=("buyer",))
    assert (await book(client, other, m["asset"]["id"], free_from, new_end, key="before")).status_code == 409
    released = await _post(client, f"{url}/release", m["supplier"])
    assert released.status_code == 200, released.text
    assert datetime.fromisoformat(released.json()["blocked_until"]) == completed_at
    assert datetime.fromisoformat(released.json()["blocked_from"]) < completed_at
    after = await book(client, other, m["asset"]["id"], free_from, new_end, key="after")
    assert after.status_code == 201, after.text


# -- lab capacity is daily intake ------------------------------------------------------------------


async def _lab(client: AsyncClient, db: AsyncSession, capacity: int) -> dict[str, Any]:
    admin = await admin_headers(client, db)
    lab, supplier, _site = await published_asset(client, db, admin, kind="lab_service", daily_sample_capacity=capacity)
    plan = await client.put(
        f"/api/v1/assets/{lab['id']}/availability", headers=supplier, json={"weekly": ALWAYS_OPEN, "exceptions": []}
    )
    assert plan.status_code == 200, plan.text
    _, buyer = await signed_up(client, roles=("buyer",))
    return {"asset": lab, "supplier": supplier, "buyer": buyer, "admin": admin}


async def _samples(client: AsyncClient, m: dict[str, Any], day: Any, n: int) -> Any:
    return await client.post(
        "/api/v1/bookings",
        headers={**m["buyer"], "Idempotency-Key": uuid.uuid4().hex},
        json={"asset_id": m["asset"]["id"], "drop_off_date": day.isoformat(), "samples": n},
    )


async def test_completing_a_lab_booking_keeps_its_samples_counted(client: AsyncClient, db: AsyncSession) -> None:
    m = await _lab(client, db, capacity=5)
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    first = await _samples(client, m, today, 5)
    assert first.status_code == 201, first.text
    url = f"/api/v1/bookings/{first.json()['id']}"
    for action, who in (("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier")):
        assert (await _post(client, f"{url}/{action}", m[who])).status_code == 200, action
    done = await _post(client, f"{url}/complete", m["supplier"])  # on the drop-off day: no reason needed
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    more = await _samples(client, m, today, 5)
    assert more.status_code == 409 and more.json()["error"] == "capacity_unavailable", more.text
    assert more.json()["remaining"] == 0
    capacity = (
        await client.get(
            f"/api/v1/assets/{m['asset']['id']}/lab-capacity",
            params={"from": today.isoformat(), "to": today.isoformat()},
        )
    ).json()["items"][0]
    assert capacity["booked"] == 5 and capacity["remaining"] == 0
    # Capacity is intake: there is nothing to release on a lab booking.
    refused = await _post(client, f"{url}/release", m["supplier"])
    assert refused.status_code == 409 and refused.json()["error"] == "not_releasable"


async def test_completing_a_lab_booking_before_its_drop_off_day_needs_a_reason(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _lab(client, db, capacity=5)
    tomorrow = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    b = (await _samples(client, m, tomorrow, 2)).json()
    url = f"/api/v1/bookings/{b['id']}"
    for action, who in (("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier")):
        assert (await _post(client, f"{url}/{action}", m[who])).status_code == 200, action
    r = await _post(client, f"{url}/complete", m["supplier"])
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "reason"
    ok = await _post(client, f"{url}/complete", m["supplier"], {"reason": "samples came in a day early"})
    assert ok.status_code == 200 and ok.json()["timeline"][-1]["reason"] == "samples came in a day early"


# -- item 2b: a body of the other kind ---------------------------------------------------------------


async def test_a_booking_body_that_does_not_fit_the_listing_kind_is_a_422_naming_the_fields(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await market(client, db)
    lab = await _lab(client, db, capacity=5)
    day = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    start, end = slot(30)
    cases: list[tuple[dict[str, str], str, dict[str, Any], set[str]]] = [
        (
            m["buyer"],
            m["asset"]["id"],
            {"drop_off_date": day, "samples": 2},
            {"start", "end", "drop_off_date", "samples"},
        ),
        (
            lab["buyer"],
            lab["asset"]["id"],
            {"start": start.isoformat(), "end": end.isoformat()},
            {"start", "end", "drop_off_date", "samples"},
        ),
    ]
    for headers, asset_id, body, fields in cases:
        r = await client.post(
            "/api/v1/bookings",
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"asset_id": asset_id, **body},
        )
        assert r.status_code == 422, r.text
        err = r.json()
        assert err["error"] == "validation_error" and err["request_id"] and err["detail"]
        assert {f["field"] for f in err["fields"]} == fields
    count = await db.execute(
        sa.text("SELECT count(*) FROM bookings WHERE asset_id IN (:a, :b)"),
        {"a": m["asset"]["id"], "b": lab["asset"]["id"]},
    )
    assert count.scalar_one() == 0


# -- item 2c: non-ASCII secrets --------------------------------------------------------------------


async def test_a_non_ascii_calendar_token_answers_like_a_wrong_token(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    url = f"/api/v1/assets/{m['asset']['id']}/calendar.ics"
    for token in ("%C3%A9", "%E6%97%A5" * 20, "wrong"):
        r = await client.get(f"{url}?token={token}")
        assert r.status_code == 404, (token, r.text)
        assert r.json()["error"] == "not_found" and r.json()["request_id"]
    link = (await client.get(f"/api/v1/assets/{m['asset']['id']}/calendar-link", headers=m["supplier"])).json()
    feed = await client.get("/api/v1" + link["url"].split("/api/v1", 1)[1])  # the right token still works
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")


def test_webhook_signatures_with_non_ascii_characters_are_invalid_not_errors() -> None:
    now = int(time.time())
    body = b'{"id": "evt_1"}'
    good = webhooks.sign("whsec_x", now, body)
    assert webhooks.verify("whsec_x", good, body, now=now)
    assert not webhooks.verify("whsec_x", good[:-1] + "\u00e9", body, now=now)
    assert not webhooks.verify("whsec_x", f"t={now},v1=\u00e9\u00e9", body, now=now)
    with pytest.raises(stripe_webhooks.InvalidSignature):
        stripe_webhooks.verify(body, f"t={now},v1=\u00e9", secret="whsec_x")


async def test_a_non_ascii_csrf_token_is_refused_like_a_wrong_one(client: AsyncClient) -> None:
    page = await client.get("/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    for sent in ("\u00e9", token.group(1)[:-1] + "\u00e9"):
        r = await client.post("/login", data={"csrf_token": sent, "email": "a@example.com", "password": "x" * 12})
        assert r.status_code == 403, (sent, r.status_code)


# -- one source for the blocking statuses ----------------------------------------------------------


async def test_every_encoding_of_the_blocking_statuses_agrees_with_the_one_constant(db: AsyncSession) -> None:
    called_off = {BookingStatus.cancelled, BookingStatus.declined, BookingStatus.expired}
    assert set(BLOCKING) == set(BookingStatus) - called_off
    definition = (
        await db.execute(
            sa.text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ex_bookings_no_overlap'")
        )
    ).scalar_one()
    assert set(re.findall(r"'(\w+)'", definition)) == set(BLOCKING), definition
    assert set(NOT_USED) == set(BookingStatus) - set(BLOCKING)  # matching cannot import the shell
    assert set(COUNTED_STATUSES) == set(BLOCKING)
    assert RELEASABLE == {BookingStatus.completed, BookingStatus.settled, BookingStatus.resolved}
    assert RELEASABLE <= set(BLOCKING)
