"""Times on the pages: to the minute, a site's times in the site's zone with the zone named, the viewer's
zone taken from the browser's (percent-encoded) cookie, and the same zone in the footer of every page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.web import i18n
from tests.bookings.helpers import ALWAYS_OPEN, book, slot
from tests.bookings.live_server import LiveServer
from tests.factories import BERLIN, PASSWORD, admin_headers, published_asset, signed_up
from tests.web.conftest import in_browser, live_server

FOOTER = re.compile(r'<footer[^>]*data-tz="([^"]*)"[^>]*>(.*?)</footer>', re.S)
SECONDS = re.compile(r"\d{1,2}:\d{2}:\d{2}")


def _footer(page: str) -> tuple[str, str]:
    match = FOOTER.search(page)
    assert match, "no footer with the viewer's zone"
    return match.group(1), html.unescape(re.sub(r"<[^>]+>", " ", match.group(2)))


def test_times_are_shown_to_the_minute_in_both_languages() -> None:
    moment = datetime(2026, 12, 7, 1, 0, 42, tzinfo=UTC)
    assert i18n.when(moment, "en", "Asia/Shanghai") == "7 Dec 2026, 09:00"
    assert i18n.when(moment, "zh-CN", "Asia/Shanghai") == "2026年12月7日 09:00"
    assert i18n.when(None, "en", "UTC") == "–"


def test_a_naive_time_is_read_as_utc_and_an_unknown_zone_as_utc() -> None:
    assert i18n.when(datetime(2026, 12, 7, 1, 0), "en", "Asia/Shanghai") == "7 Dec 2026, 09:00"
    assert i18n.when(datetime(2026, 12, 7, 1, 0, tzinfo=UTC), "en", "Mars/Olympus") == "7 Dec 2026, 01:00"


def test_a_sites_time_is_in_the_sites_zone_with_the_zone_named() -> None:
    moment = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert i18n.site_when(moment, "en", "Asia/Shanghai") == "7 Dec 2026, 09:00 (Asia/Shanghai / China Standard Time)"
    assert i18n.site_when(moment, "zh-CN", "Asia/Shanghai") == "2026年12月7日 09:00 (Asia/Shanghai / 中国标准时间)"
    summer = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)
    assert (
        i18n.site_when(summer, "en", "Europe/Berlin")
        == "1 Jul 2026, 08:30 (Europe/Berlin / Central European Summer Time)"
    )


async def test_a_percent_encoded_zone_cookie_is_decoded(client: AsyncClient) -> None:
    client.cookies.set("tz", "America%2FNew_York")
    tz, text = _footer((await client.get("/", headers={"Accept-Language": "en"})).text)
    assert tz == "America/New_York"
    assert "America/New_York" in text and "Eastern" in text


async def test_an_invalid_zone_cookie_falls_back_to_the_languages_default(client: AsyncClient) -> None:
    client.cookies.set("tz", "..%2F..%2Fetc%2Fpasswd")
    assert _footer((await client.get("/", headers={"Accept-Language": "en"})).text)[0] == "UTC"
    assert _footer((await client.get("/", headers={"Accept-Language": "zh-CN"})).text)[0] == "Asia/Shanghai"


async def test_the_footer_names_the_same_zone_on_every_page(client: AsyncClient) -> None:
    client.cookies.set("tz", "Europe%2FBerlin")
    pages = [(await client.get(path, headers={"Accept-Language": "zh-CN"})).text for path in ("/", "/login")]
    reg, _ = await signed_up(client, roles=("buyer",))
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
    assert token
    await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token.group(1)})
    pages.append((await client.get("/dashboard", headers={"Accept-Language": "zh-CN"})).text)
    for page in pages:
        locale = "zh-CN" if 'lang="zh-Hans"' in page else "en"
        tz, text = _footer(page)
        assert tz == "Europe/Berlin"
        assert i18n.zone_name("Europe/Berlin", locale) in text, text
    assert "中欧" in _footer(pages[0])[1]


async def test_the_booking_page_shows_the_slot_in_the_sites_zone(client: AsyncClient, db: AsyncSession) -> None:
    admin = await admin_headers(client, db)
    asset, _, _ = await published_asset(client, db, admin, site=BERLIN, weekly=ALWAYS_OPEN)
    reg, buyer = await signed_up(client, roles=("buyer",))
    start, end = slot(30)
    booked = await book(client, buyer, asset["id"], start, end)
    assert booked.status_code == 201, booked.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
    assert token
    await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token.group(1)})
    client.cookies.set("tz", "Asia%2FShanghai")
    page = await client.get(
        f"/buyer/{reg['org']['id']}/bookings/{booked.json()['id']}", headers={"Accept-Language": "en"}
    )
    assert page.status_code == 200
    shown = re.search(r'id="booking-slot">(.*?)</span>', page.text, re.S)
    assert shown, "no booked slot on the page"
    slot_text = html.unescape(re.sub(r"<[^>]+>", "", shown.group(1)))
    berlin_start = i18n.when(start, "en", "Europe/Berlin")
    assert slot_text.startswith(berlin_start) and "(Europe/Berlin / Central European" in slot_text
    assert i18n.when(start, "en", "Asia/Shanghai") in page.text  # and the viewer's own time
    assert not SECONDS.search(slot_text)


# -- in a real browser: app.js reports the zone, and the first page is drawn again in it ----------------------


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="tz") as (server, _url):
        yield server


def test_a_browser_in_new_york_sees_new_york_time_from_its_first_page(live: LiveServer) -> None:
    in_browser(_first_visit, live)


def _first_visit(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(locale="en-US", timezone_id="America/New_York")
    page = context.new_page()
    page.goto(f"{live.url}/")
    page.wait_for_function("document.querySelector('footer[data-tz]').dataset.tz === 'America/New_York'")
    cookie = next(c for c in context.cookies() if c["name"] == "tz")
    assert cookie["value"] == "America%2FNew_York"  # percent-encoded by app.js, decoded by the server
    for path in ("/login", "/search"):
        page.goto(f"{live.url}{path}")
        footer = page.locator("footer[data-tz]")
        assert footer.get_attribute("data-tz") == "America/New_York"
        assert "America/New_York / Eastern" in footer.inner_text()
    context.close()
