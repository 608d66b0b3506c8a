"""The home page tells a first-time visitor, in one screen and in their language, what the platform does for
a factory and for a buyer, with a way in for each, a search box and the market's figures; the favicon."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.bookings.live_server import LiveServer
from tests.factories import admin_headers, published_asset
from tests.web.conftest import in_browser, live_server

PROPOSITIONS = {
    "en": [
        "For factories and labs",
        "Earn from idle machines and spare lab capacity.",
        "Work only with verified buyers.",
        "Get paid when the job is completed.",
        "For SMEs and buyers",
        "Find verified capacity and accredited testing labs.",
        "See the earliest free slot and the full price up front.",
        "Pay safely: your money is released on completion.",
        "Register as a factory",
        "Register as a buyer",
    ],
    "zh-CN": [
        "面向工厂和实验室",
        "让闲置设备和富余检测能力创造收入。",
        "只与经过认证的采购方合作。",
        "订单完成即可结算收款。",
        "面向中小企业和采购方",
        "找到经过认证的产能和具备资质的检测实验室。",
        "最早可约时段和完整价格，预订前一目了然。",
        "安全付款：订单完成后才向工厂放款。",
        "注册为工厂",
        "注册为采购方",
    ],
}


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_the_home_page_says_what_it_does_for_factories_and_buyers(client: AsyncClient, locale: str) -> None:
    page = await client.get("/", headers={"Accept-Language": locale})
    assert page.status_code == 200
    for text in PROPOSITIONS[locale]:
        assert text in page.text, text
    other = PROPOSITIONS["en" if locale == "zh-CN" else "zh-CN"]
    assert not any(text in page.text for text in other)
    assert 'href="/register?role=supplier"' in page.text and 'href="/register?role=buyer"' in page.text
    assert 'action="/search"' in page.text and 'name="process"' in page.text


@pytest.mark.parametrize("role", ["supplier", "buyer"])
async def test_each_call_to_action_opens_the_registration_with_its_role_ticked(client: AsyncClient, role: str) -> None:
    page = await client.get(f"/register?role={role}")
    assert page.status_code == 200
    ticked = re.findall(r'<input type="checkbox" name="role_(\w+)" value="1"\s+checked>', page.text)
    assert ticked == [role]
    assert re.findall(r'name="role_(\w+)" value="1"\s+checked', (await client.get("/register?role=admin")).text) == []


async def test_the_market_figures_count_public_listings_once_enough_factories_stand_behind_them(
    client: AsyncClient, db: AsyncSession
) -> None:
    admin = await admin_headers(client, db)
    await published_asset(client, db, admin)
    await published_asset(client, db, admin)
    assert "data-figures" not in (await client.get("/")).text  # two factories: no figures (k = 3)
    await published_asset(client, db, admin, kind="lab_service")
    hidden, _, _ = await published_asset(client, db, admin)
    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'unverified' WHERE id = :id"), {"id": hidden["org_id"]}
    )
    await db.commit()
    page = (await client.get("/", headers={"Accept-Language": "en"})).text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", page))
    assert figures == {"Machines listed": "2", "Lab services": "1", "Verified factories": "3", "Regions": "1"}
    latest = re.findall(r'<a href="/listings/([0-9a-f-]+)">', page)
    assert hidden["id"] not in latest and len(latest) == 3  # a listing nobody may open is not advertised


async def test_the_favicon_is_linked_and_served(client: AsyncClient) -> None:
    page = await client.get("/")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text
    svg = await client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    ico = await client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"].startswith("image/svg+xml")
    assert ico.content == svg.content


# --- in a real browser --------------------------------------------------------------------------------


def _run_sync(coro: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[LiveServer]:
    with live_server(server_url, redis_url, prefix="home") as (server, _url):
        yield server


def _first_screen(browser: Any, base: str, locale: str, shots: Path) -> list[dict[str, Any]]:
    """For a phone (390 × 844) and a laptop (1280 × 800): the page's overflow and where the key parts are."""
    measured = []
    for width, height in ((390, 844), (1280, 800)):
        context = browser.new_context(
            locale=locale, extra_http_headers={"Accept-Language": locale}, viewport={"width": width, "height": height}
        )
        page = context.new_page()
        page.goto(f"{base}/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / f"{locale}-home-{width}.png"))
        measured.append(
            page.evaluate(
                """() => {
                  const box = (sel) => { const r = document.querySelector(sel).getBoundingClientRect();
                                         return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
                  return {
                    width: window.innerWidth, height: window.innerHeight,
                    scrollWidth: document.documentElement.scrollWidth,
                    factoryCta: box('[data-cta-factory]'), buyerCta: box('[data-cta-buyer]'),
                    factoryValue: box('[data-value-factory]'), buyerValue: box('[data-value-buyer]'),
                    search: box('form.quick-search'),
                    favicon: document.querySelector('link[rel=icon]').href,
                  };
                }"""
            )
        )
        context.close()
    return measured


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_home_page_fits_a_phone_and_a_laptop_screen_with_both_ways_in_visible(
    live: LiveServer, artifacts: Path, locale: str
) -> None:
    phone, laptop = in_browser(_first_screen, live.url, locale, artifacts)
    for screen in (phone, laptop):
        assert screen["scrollWidth"] <= screen["width"], f"horizontal scroll at {screen['width']} px"
        for cta in ("factoryCta", "buyerCta"):
            assert 0 <= screen[cta]["top"] and screen[cta]["bottom"] <= screen["height"], (screen["width"], cta)
            assert screen[cta]["right"] <= screen["width"]
    # On a laptop the whole story is in the first screen: both propositions and the search box.
    for part in ("factoryValue", "buyerValue", "search"):
        assert laptop[part]["bottom"] <= laptop["height"], part
    assert laptop["favicon"].endswith("/static/favicon.svg")
