"""The factory dashboard's utilisation charts (machine hours and lab samples) and the observatory's trend:
well-formed SVG with axes, week labels, a legend per listing, a text alternative and a table of the same
numbers, in English and Chinese."""

from __future__ import annotations

import calendar
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.security import hash_password
from marketplace.web import charts
from tests.bookings.live_server import LiveServer, sql
from tests.factories import (
    PASSWORD,
    SUZHOU,
    admin_headers,
    create_asset,
    csrf_token,
    lab_payload,
    login,
    machine_payload,
    publish,
    register,
    signed_up,
    supplier,
)
from tests.web.conftest import in_browser, live_server
from tests.web.test_browser_journey import run_sync

SVG = "{http://www.w3.org/2000/svg}"
ALWAYS_OPEN = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]
LONG_TITLE = "Mazak Integrex i-400S multi-tasking turning and milling centre with bar feeder, line 3"


async def _sign_in(client: AsyncClient, email: str) -> None:
    page = await client.get("/login")
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    assert resp.status_code == 303, resp.text


def _svgs(html: str) -> dict[str, ET.Element]:
    """Every chart of the page, parsed as XML (a malformed one fails here), by id."""
    return {(el := ET.fromstring(m)).get("id", ""): el for m in re.findall(r"<svg.*?</svg>", html, re.S)}


def _legend_titles(svg: ET.Element) -> list[str]:
    """The title of each legend item of a chart, in document order (an item without one fails here)."""
    titles = []
    for g in svg.iter(f"{SVG}g"):
        if g.get("class") == "legend-item":
            title = g.find(f"{SVG}title")
            assert title is not None and title.text is not None, ET.tostring(g, encoding="unicode")
            titles.append(title.text)
    return titles


def _texts(svg: ET.Element, css: str) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == css]


def _week_label(day: date, lang: str) -> str:
    return f"{day.month}月{day.day}日" if lang == "zh-CN" else f"{calendar.month_abbr[day.month]} {day.day}"


async def _factory_with_bookings(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """A factory with two machines (one with a very long name) and a lab, open around the clock; next week a
    buyer books 10 hours on the first machine and 5 samples at the lab (capacity 10 a day)."""
    admin = await admin_headers(client, db)
    reg, headers, site = await supplier(client, db)
    milling = await create_asset(client, headers, machine_payload(site["id"], title=LONG_TITLE), ALWAYS_OPEN)
    lathe = await create_asset(client, headers, machine_payload(site["id"], title="CK6150 lathe"), ALWAYS_OPEN)
    lab = await create_asset(
        client, headers, lab_payload(site["id"], title="Salt spray test", daily_sample_capacity=10)
    )
    plan = await client.put(
        f"/api/v1/assets/{lab['id']}/availability", headers=headers, json={"weekly": ALWAYS_OPEN, "exceptions": []}
    )
    assert plan.status_code == 200, plan.text
    for asset in (milling, lathe, lab):
        await publish(client, headers, admin, asset["id"])
    _buyer_reg, buyer = await signed_up(client, roles=("buyer",))
    today = datetime.now(UTC).date()
    next_monday = today - timedelta(days=today.weekday()) + timedelta(weeks=1)
    start = datetime.combine(next_monday + timedelta(days=1), time(10), UTC)
    for body in (
        {"asset_id": milling["id"], "start": start.isoformat(), "end": (start + timedelta(hours=10)).isoformat()},
        {"asset_id": lab["id"], "drop_off_date": (next_monday + timedelta(days=1)).isoformat(), "samples": 5},
    ):
        made = await client.post("/api/v1/bookings", headers={**buyer, "Idempotency-Key": uuid.uuid4().hex}, json=body)
        assert made.status_code == 201, made.text
    return {"reg": reg, "org_id": reg["org"]["id"], "this_monday": next_monday - timedelta(weeks=1)}


@pytest.mark.parametrize(
    ("lang", "y_machine", "y_lab", "machine_cell", "lab_cell", "closed"),
    [
        ("en", "Share of available time (%)", "Share of sample capacity (%)", "10 of 168 h (6 %)",
         "5 of 70 samples (7 %)", "closed"),
        ("zh-CN", "占可用时间的比例（%）", "占样品产能的比例（%）", "168 小时中已订 10 小时（6 %）",
         "70 个样品中已订 5 个（7 %）", "不开放"),
    ],
)  # fmt: skip
async def test_dashboard_charts_machine_hours_and_lab_samples_per_week(
    client: AsyncClient,
    db: AsyncSession,
    lang: str,
    y_machine: str,
    y_lab: str,
    machine_cell: str,
    lab_cell: str,
    closed: str,
) -> None:
    f = await _factory_with_bookings(client, db)
    await _sign_in(client, f["reg"]["email"])
    client.cookies.set("lang", lang)
    page = await client.get(f"/factory/{f['org_id']}")
    assert page.status_code == 200
    svgs = _svgs(page.text)
    assert set(svgs) >= {"util-machine", "util-lab"}
    machine, lab = svgs["util-machine"], svgs["util-lab"]
    weeks = [_week_label(f["this_monday"] + timedelta(weeks=i), lang) for i in range(-4, 4)]
    for svg, y_label in ((machine, y_machine), (lab, y_lab)):
        assert svg.get("role") == "img" and svg.get("viewBox") and svg.get("width") == "100%"
        assert _texts(svg, "x-label") == weeks
        assert _texts(svg, "y-label") == [y_label]
        assert svg.find(f"{SVG}title") is not None and svg.find(f"{SVG}desc") is not None

    legend = _legend_titles(machine)
    assert sorted(legend) == sorted([LONG_TITLE, "CK6150 lathe"])
    drawn = [
        t.text or "" for g in machine.iter(f"{SVG}g") if g.get("class") == "legend-item" for t in g.iter(f"{SVG}text")
    ]
    assert "CK6150 lathe" in drawn and any(t.endswith("…") and LONG_TITLE.startswith(t[:-1]) for t in drawn)
    lab_legend = _legend_titles(lab)
    assert lab_legend == ["Salt spray test"]

    # The same numbers as text: the description and the table below each chart.
    desc = machine.find(f"{SVG}desc").text or ""  # type: ignore[union-attr]
    assert LONG_TITLE in desc and "CK6150 lathe" in desc and weeks[0] in desc and weeks[-1] in desc
    tables = re.findall(r'<details class="chart-data">.*?</details>', page.text, re.S)
    assert len(tables) == 2
    machine_rows = dict(re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', tables[0], re.S))
    milling_cells = re.findall(r"<td>([^<]*)</td>", machine_rows[LONG_TITLE])
    assert len(milling_cells) == 8 and milling_cells[5] == machine_cell and milling_cells[0] == closed
    lab_cells = re.findall(
        r"<td>([^<]*)</td>",
        dict(re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', tables[1], re.S))["Salt spray test"],
    )
    assert lab_cells[5] == lab_cell
    assert "available ▯" not in page.text and "booked ▮" not in page.text


async def test_dashboard_without_published_listings_says_so(client: AsyncClient, db: AsyncSession) -> None:
    reg, headers, site = await supplier(client, db)
    await create_asset(client, headers, machine_payload(site["id"]))  # a draft: nothing offered yet
    await _sign_in(client, reg["email"])
    page = await client.get(f"/factory/{reg['org']['id']}")
    assert page.status_code == 200 and "data-empty-chart" in page.text and 'class="chart"' not in page.text
    client.cookies.set("lang", "zh-CN")
    zh = await client.get(f"/factory/{reg['org']['id']}")
    assert "暂无利用率数据" in zh.text


def test_trend_chart_labels_months_marks_gaps_and_lists_the_numbers() -> None:
    html = charts.trend_svg([("2026-09", 0.42), ("2026-10", None), ("2026-11", 0.5), ("2026-12", 0.61)], "zh-CN")
    svg = _svgs(html)["trend"]
    assert _texts(svg, "x-label") == ["2026年9月", "2026年10月", "2026年11月", "2026年12月"]
    assert _texts(svg, "y-label") == ["挂牌工时中已预订的比例（%）"]
    assert len(list(svg.iter(f"{SVG}circle"))) == 3  # the suppressed month is a gap, not a zero
    assert "42 %" in (svg.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]
    assert "<td>已隐藏</td>" in html and "<td>61 %</td>" in html
    en = charts.trend_svg([("2026-11", 0.5)], "en")
    assert _texts(_svgs(en)["trend"], "x-label") == ["Nov 2026"]
    assert "No data for this period." in charts.trend_svg([("2026-11", None)], "en")


def test_bar_chart_has_value_axis_period_labels_and_a_table() -> None:
    html = charts.bars_svg([("Oct 2026", 1250.5), ("Nov 2026", 300.0)], "Earnings per month", "CNY", locale="en")
    svg = _svgs(html)["bars"]
    assert _texts(svg, "x-label") == ["Oct 2026", "Nov 2026"]
    assert _texts(svg, "y-label") == ["CNY"]
    assert len([r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]) == 2
    assert "<td>1,250.5 CNY</td>" in html


# -- a phone-sized screen, in a real browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def live(server_url: str, redis_url: str) -> Iterator[tuple[LiveServer, str]]:
    with live_server(server_url, redis_url, prefix="chart") as (server, url):
        yield server, url


async def _live_factory(base: str, db_url: str) -> tuple[str, str]:
    """A verified factory with a published, booked machine on the live server; returns (e-mail, org id)."""
    async with AsyncClient(base_url=base, timeout=30) as c:
        owner = await register(c, roles=("supplier",), country="CN", verified=False)
        buyer = await register(c, roles=("buyer",), verified=False)
        for reg in (owner, buyer):
            await sql(db_url, "UPDATE users SET email_verified_at = now() WHERE id = :id", {"id": reg["user"]["id"]})
        await sql(db_url, "UPDATE organisations SET verification_status = 'verified' WHERE id = :id",
                  {"id": owner["org"]["id"]})  # fmt: skip
        admin_email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        await sql(
            db_url,
            "INSERT INTO users (id, email, password_hash, full_name, locale, is_platform_admin, is_active, "
            "email_verified_at) VALUES (:id, :e, :h, 'Admin', 'en', true, true, now())",
            {"id": uuid.uuid4(), "e": admin_email, "h": hash_password(PASSWORD)},
        )
        headers = await login(c, owner["email"])
        site = (await c.post("/api/v1/sites", json=SUZHOU, headers=headers)).json()
        machine = await create_asset(c, headers, machine_payload(site["id"], title=LONG_TITLE), ALWAYS_OPEN)
        await publish(c, headers, await login(c, admin_email), machine["id"])
        start = datetime.combine(datetime.now(UTC).date() + timedelta(days=8), time(9), UTC)
        body = {"asset_id": machine["id"], "start": start.isoformat(), "end": (start + timedelta(hours=30)).isoformat()}
        key = {"Idempotency-Key": uuid.uuid4().hex}
        made = await c.post("/api/v1/bookings", json=body, headers={**await login(c, buyer["email"]), **key})
        assert made.status_code == 201, made.text
    return owner["email"], owner["org"]["id"]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_dashboard_chart_fits_a_390_pixel_screen(
    live: tuple[LiveServer, str], artifacts: Path, locale: str
) -> None:
    server, db_url = live
    email, org_id = run_sync(_live_factory(server.url, db_url))
    in_browser(_phone, server.url, (email, org_id), artifacts, locale)


def _phone(browser: Any, base: str, who: tuple[str, str], artifacts: Path, locale: str) -> None:
    email, org_id = who
    context = browser.new_context(locale=locale, viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": "lang", "value": locale, "url": base}])
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/factory/{org_id}")
    chart = page.locator("svg#util-machine")
    box = chart.bounding_box()
    assert box is not None and 250 <= box["width"] <= 390, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Every week label and the legend are inside the drawing (nothing clipped by the viewBox).
    outside = page.evaluate("""() => { const svg = document.querySelector('svg#util-machine');
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()])
            .filter(([, r]) => r.left < box.left - 0.5 || r.top < box.top - 0.5
                || r.right > box.right + 0.5 || r.bottom > box.bottom + 0.5).map(([text]) => text); }""")
    assert outside == []
    assert page.locator("svg#util-machine text.x-label").count() == 8
    page.click("#utilisation details.chart-data summary")
    assert page.locator("#utilisation details.chart-data table").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#utilisation").screenshot(path=str(artifacts / f"{locale}-mobile-utilisation-chart.png"))
    context.close()
