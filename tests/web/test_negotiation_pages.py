"""The negotiation pages over HTTP (the browser journey is test_negotiation_journey.py): the factory's job
board and opportunity, quotes with counter-offers and acceptance, drawings under the NDA, message threads,
the notification centre; 404 for a third organisation, CSRF on every post."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.helpers import ALWAYS_OPEN
from tests.factories import (
    PASSWORD,
    SUZHOU,
    admin_headers,
    create_asset,
    machine_payload,
    publish,
    published_asset,
    signed_up,
    supplier,
    weekday_after,
)
from tests.requests.test_requests_api import MILL, request_body

# A minimal STEP file (the document store reads the type from the bytes).
STEP = b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('bracket'),'2;1');\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Browser:
    """A signed-in person's cookie jar on the in-process app."""

    def __init__(self, app: Any, locale: str = "en") -> None:
        self.http = AsyncClient(
            transport=ASGITransport(app=app), base_url="http://testserver", headers={"Accept-Language": locale}
        )
        self.token = ""

    async def sign_in(self, email: str) -> Browser:
        token = csrf_of((await self.http.get("/login")).text)
        resp = await self.http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 303, resp.text
        self.token = csrf_of((await self.http.get("/dashboard")).text)
        return self

    async def get(self, url: str) -> Any:
        return await self.http.get(url)

    async def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.http.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)


async def market(client: AsyncClient, db: AsyncSession, *, buyer_locale: str = "en", **request: Any) -> dict[str, Any]:
    """A buyer with an open request, a verified factory whose published mill serves it, a third organisation."""
    admin = await admin_headers(client, db)
    sup_reg, sup, site = await supplier(client, db, site=SUZHOU)
    asset = await create_asset(
        client, sup, machine_payload(site["id"], **{k: v for k, v in MILL.items() if k != "weekly"}), ALWAYS_OPEN
    )
    await publish(client, sup, admin, asset["id"])
    buyer_reg, buyer = await signed_up(client, roles=("buyer",), country="CN", locale=buyer_locale)
    third_reg, _third = await signed_up(client, roles=("supplier", "buyer"), country="CN")
    resp = await client.post("/api/v1/requests", json=request_body(**request), headers=buyer)
    assert resp.status_code == 201, resp.text
    return {
        "asset": asset,
        "supplier": sup,
        "supplier_org": sup_reg["org"]["id"],
        "supplier_email": sup_reg["email"],
        "buyer": buyer,
        "buyer_org": buyer_reg["org"]["id"],
        "buyer_org_name": buyer_reg["org"]["name"],
        "buyer_email": buyer_reg["email"],
        "third_org": third_reg["org"]["id"],
        "third_email": third_reg["email"],
        "request": resp.json(),
    }


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[list[Browser]]:
    made = [Browser(app), Browser(app), Browser(app)]
    yield made
    for b in made:
        await b.http.aclose()


def _local(dt: datetime) -> str:
    """A ``datetime-local`` value in UTC (an English page without a zone cookie shows UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def quote_form(asset_id: str, *, amount: str = "1234", days: int = 2) -> dict[str, str]:
    start = (datetime.now(UTC) + timedelta(days=days)).replace(hour=8, minute=0, second=0, microsecond=0)
    return {
        "asset_id": asset_id,
        "amount": amount,
        "start": _local(start),
        "end": _local(start + timedelta(hours=4)),
        "valid_until": _local(datetime.now(UTC) + timedelta(days=1)),
        "note": "Including deburring",
    }


async def test_factory_quotes_buyer_counters_factory_accepts(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db)
    factory, buyer, third = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    req_id, sup_org, buy_org = m["request"]["id"], m["supplier_org"], m["buyer_org"]

    board = await factory.get(f"/factory/{sup_org}/opportunities")
    assert board.status_code == 200 and f"/opportunities/{req_id}" in board.text
    assert m["buyer_email"] not in board.text
    page = await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")
    assert page.status_code == 200 and "Haas VF-2" in page.text

    # A wrong amount comes back next to the field, in the page's language.
    bad = await factory.post(
        f"/factory/{sup_org}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"], amount="12.345")
    )
    assert bad.status_code == 422 and 'id="f-amount-error"' in bad.text
    sent = await factory.post(f"/factory/{sup_org}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"]))
    assert sent.status_code == 303, sent.text
    mine = await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")
    assert "quote received" in mine.text and "1,234.00" in mine.text

    quotes = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    assert quotes.status_code == 200 and "quote received" in quotes.text and "Including deburring" in quotes.text
    quote_id = re.search(r'id="quote-([0-9a-f-]{36})"', quotes.text)
    assert quote_id
    qid = quote_id.group(1)
    # The buyer cannot accept its own counter-offer: it is the factory's turn; the refusal is shown on the page.
    countered = await buyer.post(f"/buyer/{buy_org}/quotes/{qid}/counter", quote_form(m["asset"]["id"], amount="1100"))
    assert countered.status_code == 303
    again = await buyer.post(f"/buyer/{buy_org}/quotes/{qid}/accept")
    assert again.status_code == 303 and "error=" in again.headers["location"]
    shown = await buyer.get(again.headers["location"])
    assert "counter-offer made" in shown.text and 'role="alert"' in shown.text and "1,100.00" in shown.text

    accepted = await factory.post(f"/factory/{sup_org}/quotes/{qid}/accept")
    assert accepted.status_code == 303 and accepted.headers["location"] == f"/factory/{sup_org}/bookings"
    done = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    assert "quote accepted" in done.text

    # The booking's thread: its two organisations only.
    bookings = await factory.get(f"/factory/{sup_org}/bookings")
    found = re.search(rf'href="/factory/{sup_org}/threads/booking/([0-9a-f-]{{36}})"', bookings.text)
    assert found
    bid = found.group(1)
    assert (await factory.get(f"/factory/{sup_org}/threads/booking/{bid}")).status_code == 200
    assert (await buyer.get(f"/buyer/{buy_org}/threads/booking/{bid}")).status_code == 200
    assert (await buyer.get(f"/admin/{buy_org}/threads/booking/{bid}")).status_code == 404
    # Its own organisation on the factory side: not a factory (403, as for every factory page).
    assert (await buyer.get(f"/factory/{buy_org}/threads/booking/{bid}")).status_code == 403
    await third.sign_in(m["third_email"])
    for side in ("buyer", "factory"):
        assert (await third.get(f"/{side}/{m['third_org']}/threads/booking/{bid}")).status_code == 404
    assert (await third.post(f"/buyer/{m['third_org']}/threads/booking/{bid}", {"body": "hi"})).status_code == 404


async def test_buyer_accepts_and_lands_on_the_booking_in_chinese(
    client: AsyncClient, db: AsyncSession, app: Any
) -> None:
    m = await market(client, db, buyer_locale="zh-CN")
    factory, buyer = Browser(app), Browser(app, "zh-CN")
    try:
        await factory.sign_in(m["supplier_email"])
        await buyer.sign_in(m["buyer_email"])
        req_id = m["request"]["id"]
        sent = await factory.post(
            f"/factory/{m['supplier_org']}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"])
        )
        assert sent.status_code == 303
        page = await buyer.get(f"/buyer/{m['buyer_org']}/requests/{req_id}/quotes")
        assert "已收到报价" in page.text and "¥1,234.00" in page.text
        qid = re.search(r'id="quote-([0-9a-f-]{36})"', page.text)
        assert qid
        resp = await buyer.post(f"/buyer/{m['buyer_org']}/quotes/{qid.group(1)}/accept")
        assert resp.status_code == 303 and f"/buyer/{m['buyer_org']}/bookings/" in resp.headers["location"]
        booking = await buyer.get(resp.headers["location"])
        assert booking.status_code == 200 and "¥1,234.00" in booking.text
    finally:
        await factory.http.aclose()
        await buyer.http.aclose()


async def test_drawings_under_nda_and_a_message_with_a_file(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db, nda_required=True)
    factory, buyer, third = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    await third.sign_in(m["third_email"])
    req_id, sup_org, buy_org = m["request"]["id"], m["supplier_org"], m["buyer_org"]

    up = await buyer.post(
        f"/buyer/{buy_org}/requests/{req_id}/drawings", files={"file": ("bracket.step", STEP, "application/step")}
    )
    assert up.status_code == 303 and "error" not in up.headers["location"]
    bad = await buyer.post(
        f"/buyer/{buy_org}/requests/{req_id}/drawings", files={"file": ("notes.pdf", b"just text", "application/pdf")}
    )
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    own = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    link = re.search(r'href="(/files/[0-9a-f-]{36})">bracket.step', own.text)
    assert link

    before = await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")
    assert "Non-disclosure agreement" in before.text and "bracket.step" not in before.text
    assert (await factory.get(link.group(1))).status_code == 404
    ok = await factory.post(f"/factory/{sup_org}/opportunities/{req_id}/nda", {"version": "2026-12"})
    assert ok.status_code == 303
    after = await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")
    assert "bracket.step" in after.text and "NDA accepted" in after.text
    file = await factory.get(link.group(1))
    assert file.status_code == 200 and file.content == STEP
    assert (await third.get(link.group(1))).status_code == 404

    thread = f"/factory/{sup_org}/threads/request/{req_id}"
    assert (await factory.get(thread)).status_code == 200
    empty = await factory.post(thread, {"body": ""})
    assert empty.status_code == 422 and "field-error" in empty.text
    posted = await factory.post(
        thread, {"body": "Which surface finish?"}, files={"file": ("part.step", STEP, "application/step")}
    )
    assert posted.status_code == 303
    listed = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    assert f"/threads/request/{req_id}/{sup_org}" in listed.text and "1 unread" in listed.text
    seen = await buyer.get(f"/buyer/{buy_org}/threads/request/{req_id}/{sup_org}")
    assert seen.status_code == 200 and "Which surface finish?" in seen.text and "part.step" in seen.text
    reply = await buyer.post(f"/buyer/{buy_org}/threads/request/{req_id}/{sup_org}", {"body": "Ra 1.6, thanks"})
    assert reply.status_code == 303
    assert "unread" not in (await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")).text.split('id="threads"')[1]
    assert "1 unread" in (await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")).text
    # The factory's side of a request thread shows the buyer's message as "The buyer", never the buyer's name.
    answer = (await factory.get(thread)).text
    assert "Ra 1.6, thanks" in answer and "The buyer" in answer
    assert m["buyer_org_name"] not in answer
    assert m["buyer_org_name"] in (await buyer.get(f"/buyer/{buy_org}/threads/request/{req_id}/{sup_org}")).text


async def test_a_third_organisation_gets_404_and_posts_need_csrf(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db, audience="invited")
    factory, buyer, third = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    await third.sign_in(m["third_email"])
    req_id, sup_org, buy_org, third_org = m["request"]["id"], m["supplier_org"], m["buyer_org"], m["third_org"]

    # Invited audience: the factory does not see the request until the buyer asks it for a quote.
    assert (await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")).status_code == 404
    no_csrf = await buyer.http.post(f"/buyer/{buy_org}/requests/{req_id}/invite", data={"asset_id": m["asset"]["id"]})
    assert no_csrf.status_code == 403
    invited = await buyer.post(f"/buyer/{buy_org}/requests/{req_id}/invite", {"asset_id": m["asset"]["id"]})
    assert invited.status_code == 303 and "error" not in invited.headers["location"]
    page = await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")
    assert page.status_code == 200 and "Invited" in page.text
    listed = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
    assert "waiting for a quote" in listed.text

    # The third organisation: not the opportunity, not the threads, not the buyer's pages.
    assert (await third.get(f"/factory/{third_org}/opportunities/{req_id}")).status_code == 404
    assert (await third.get(f"/factory/{sup_org}/opportunities/{req_id}")).status_code == 404
    assert (await third.get(f"/factory/{third_org}/threads/request/{req_id}")).status_code == 404
    assert (await third.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")).status_code == 404
    assert (await third.get(f"/buyer/{third_org}/requests/{req_id}/quotes")).status_code == 404
    assert (await third.post(f"/factory/{third_org}/threads/request/{req_id}", {"body": "hi"})).status_code == 404
    # CSRF on every post.
    for url, data in (
        (f"/factory/{sup_org}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"])),
        (f"/factory/{sup_org}/threads/request/{req_id}", {"body": "hello"}),
        (f"/factory/{sup_org}/opportunities/{req_id}/decline", {"reason": "busy"}),
        ("/notifications/read-all", {}),
    ):
        assert (await factory.http.post(url, data=data)).status_code == 403, url
    declined = await factory.post(f"/factory/{sup_org}/opportunities/{req_id}/decline", {"reason": "Fully booked"})
    assert declined.status_code == 303
    assert "declined" in (await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")).text


async def test_notification_centre_and_bell(client: AsyncClient, db: AsyncSession, browsers: list[Browser]) -> None:
    m = await market(client, db)
    factory, buyer, _ = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    sent = await factory.post(
        f"/factory/{m['supplier_org']}/opportunities/{m['request']['id']}/quotes", quote_form(m["asset"]["id"])
    )
    assert sent.status_code == 303
    badge = await buyer.get("/notifications/badge")
    assert badge.status_code == 200 and 'data-unread="' in badge.text
    centre = await buyer.get("/notifications")
    assert centre.status_code == 200 and "Mark all as read" in centre.text
    note = re.search(r'action="/notifications/([0-9a-f-]{36})/read"', centre.text)
    assert note
    assert (await buyer.post(f"/notifications/{note.group(1)}/read")).status_code == 303
    assert (await factory.post(f"/notifications/{note.group(1)}/read")).status_code == 404  # not its own
    assert (await buyer.post("/notifications/read-all")).status_code == 303
    assert "data-unread" not in (await buyer.get("/notifications/badge")).text
    nav = await factory.get("/nav/opportunities")
    assert 'href="/opportunities"' in nav.text
    assert (await factory.get("/opportunities")).headers["location"] == f"/factory/{m['supplier_org']}/opportunities"
    assert (await buyer.get("/nav/opportunities")).text == ""


async def test_factory_withdraws_and_buyer_declines_with_a_reason(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db)
    factory, buyer, _ = browsers
    await factory.sign_in(m["supplier_email"])
    await buyer.sign_in(m["buyer_email"])
    req_id, sup_org, buy_org = m["request"]["id"], m["supplier_org"], m["buyer_org"]
    quotes_page = f"/buyer/{buy_org}/requests/{req_id}/quotes"

    async def quote_once() -> str:
        sent = await factory.post(f"/factory/{sup_org}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"]))
        assert sent.status_code == 303, sent.text
        found = re.findall(r'id="quote-([0-9a-f-]{36})" data-status="submitted"', (await buyer.get(quotes_page)).text)
        assert len(found) == 1
        return str(found[0])

    first = await quote_once()
    # The same listing twice while the first quote is open: refused, with the reason above the form.
    twice = await factory.post(f"/factory/{sup_org}/opportunities/{req_id}/quotes", quote_form(m["asset"]["id"]))
    assert twice.status_code == 422 and "counter or withdraw it" in twice.text
    assert (await factory.post(f"/factory/{sup_org}/quotes/{first}/withdraw")).status_code == 303
    assert "quote withdrawn" in (await buyer.get(quotes_page)).text
    # The buyer cannot act on another organisation's quote page, nor on a quote that is not its own.
    assert (await buyer.post(f"/factory/{sup_org}/quotes/{first}/accept")).status_code == 404

    second = await quote_once()
    no_reason = await buyer.post(f"/buyer/{buy_org}/quotes/{second}/decline", {"reason": ""})
    assert no_reason.status_code == 303 and "error=" in no_reason.headers["location"]
    declined = await buyer.post(f"/buyer/{buy_org}/quotes/{second}/decline", {"reason": "Over budget"})
    assert declined.status_code == 303 and "error" not in declined.headers["location"]
    assert "quote declined" in (await factory.get(f"/factory/{sup_org}/opportunities/{req_id}")).text


async def test_a_lab_quote_with_drop_off_and_samples(client: AsyncClient, db: AsyncSession, app: Any) -> None:
    admin = await admin_headers(client, db)
    lab, _, _ = await published_asset(client, db, admin, kind="lab_service")
    owner_email = await _owner_email(db, lab["org_id"])
    buyer_reg, buyer_api = await signed_up(client, roles=("buyer",), country="CN")
    body = request_body(kind="lab_service", process_code="testing.mechanical.tensile", material="q235", samples=5)
    for machine_only in ("duration_minutes", "part_envelope_mm", "tolerance_mm"):
        body.pop(machine_only)
    resp = await client.post("/api/v1/requests", json=body, headers=buyer_api)
    assert resp.status_code == 201, resp.text
    req_id, buy_org = resp.json()["id"], buyer_reg["org"]["id"]
    factory, buyer = Browser(app), Browser(app)
    try:
        await factory.sign_in(owner_email)
        await buyer.sign_in(buyer_reg["email"])
        page = await factory.get(f"/factory/{lab['org_id']}/opportunities/{req_id}")
        assert page.status_code == 200 and 'name="drop_off_date"' in page.text and 'name="start"' not in page.text
        day = weekday_after(4).isoformat()  # the lab is open Monday to Friday (WEEKDAYS_8_18)
        form = {"asset_id": lab["id"], "amount": "700", "drop_off_date": day, "samples": "5"}
        form["valid_until"] = _local(datetime.now(UTC) + timedelta(days=1))
        sent = await factory.post(f"/factory/{lab['org_id']}/opportunities/{req_id}/quotes", form)
        assert sent.status_code == 303, sent.text
        quotes = await buyer.get(f"/buyer/{buy_org}/requests/{req_id}/quotes")
        assert "5 samples" in quotes.text and "700.00" in quotes.text
        qid = re.search(r'id="quote-([0-9a-f-]{36})"', quotes.text)
        assert qid
        accepted = await buyer.post(f"/buyer/{buy_org}/quotes/{qid.group(1)}/accept")
        assert accepted.status_code == 303 and "/bookings/" in accepted.headers["location"], accepted.headers
    finally:
        await factory.http.aclose()
        await buyer.http.aclose()


async def _owner_email(db: AsyncSession, org_id: str) -> str:
    import sqlalchemy as sa

    row = await db.execute(
        sa.text("SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.org_id = :o"), {"o": org_id}
    )
    return str(row.scalar_one())


async def test_the_request_form_sets_the_negotiation_settings(
    client: AsyncClient, db: AsyncSession, browsers: list[Browser]
) -> None:
    m = await market(client, db)
    buyer = await browsers[1].sign_in(m["buyer_email"])
    form = await buyer.get(f"/buyer/{m['buyer_org']}/requests/new")
    assert 'name="nda_required"' in form.text and 'name="auto_cascade"' in form.text and 'value="invited"' in form.text
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    data = {
        "process_code": "machining.milling.cnc_3axis",
        "material": "al_6061",
        "quantity": "1",
        "hours": "2",
        "earliest": day.isoformat(),
        "deadline": (day + timedelta(days=7)).isoformat(),
        "currency": "CNY",
        "audience": "invited",
        "auto_cascade": "1",
        "nda_required": "1",
    }
    resp = await buyer.post(f"/buyer/{m['buyer_org']}/requests/new", data)
    assert resp.status_code == 303, resp.text
    request_id = resp.headers["location"].rsplit("/", 1)[1]
    got = (await client.get(f"/api/v1/requests/{request_id}", headers=m["buyer"])).json()
    assert (got["audience"], got["auto_cascade"], got["nda_required"]) == ("invited", True, True)
    # Changed later on the request's quotes page.
    changed = await buyer.post(f"/buyer/{m['buyer_org']}/requests/{request_id}/settings", {"audience": "open"})
    assert changed.status_code == 303 and "error" not in changed.headers["location"]
    got = (await client.get(f"/api/v1/requests/{request_id}", headers=m["buyer"])).json()
    assert (got["audience"], got["auto_cascade"], got["nda_required"]) == ("open", False, False)
