"""Money in currencies with other exponents (issue #12, item 8): amounts are parsed with Decimal in each
currency's own decimals (JPY 0, CNY 2, BHD 3), shown that way, and only currencies in use are accepted."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from payments import money
from payments.invoice_html import _money as invoice_money
from tests.factories import (
    PASSWORD,
    SUZHOU,
    WEEKDAYS_8_18,
    admin_headers,
    csrf_token,
    machine_payload,
    publish,
    signed_up,
    supplier,
    verify_org,
)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1500", "JPY", 1500),
        ("12.5", "CNY", 1250),
        ("12.50", "CNY", 1250),
        ("0.29", "CNY", 29),
        ("1.250", "BHD", 1250),
        ("1,500.00", "USD", 150000),
        ("１２．５", "CNY", 1250),  # typed with a Chinese input method
        (" 7 ", "EUR", 700),
    ],
)
def test_amounts_are_parsed_exactly_in_the_currencys_own_decimals(text: str, currency: str, minor: int) -> None:
    assert money.parse(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "reason"),
    [
        ("1.234", "CNY", "too_many_decimals"),
        ("1.5", "JPY", "too_many_decimals"),
        ("1.2345", "BHD", "too_many_decimals"),
        ("abc", "CNY", "not_a_number"),
        ("1e3", "CNY", "not_a_number"),
        ("NaN", "CNY", "not_a_number"),
        ("12,5", "EUR", "not_a_number"),  # a decimal comma is refused, never read as 125
        ("-5", "CNY", "negative"),
        ("1" * 20, "CNY", "too_large"),
        ("10", "XXX", "unknown_currency"),
        ("10", "DEM", "unknown_currency"),
        ("10", "ABC", "unknown_currency"),
    ],
)
def test_bad_amounts_and_currencies_are_refused(text: str, currency: str, reason: str) -> None:
    with pytest.raises(money.InvalidAmount) as caught:
        money.parse(text, currency)
    assert caught.value.reason == reason


def test_amounts_are_shown_with_the_currencys_decimals() -> None:
    from marketplace.web import i18n

    assert (money.exponent("JPY"), money.exponent("CNY"), money.exponent("BHD")) == (0, 2, 3)
    assert i18n.money(1500, "JPY", "en") == "¥1,500"
    assert i18n.money(1250, "CNY", "zh-CN") == "¥12.50"
    assert i18n.money(1250, "BHD", "en") == "BHD1.250"
    # Invoices, notifications and CSV text.
    assert invoice_money(150_000, "JPY") == "150,000 JPY"
    assert invoice_money(-1250, "BHD") == "-1.250 BHD"
    assert invoice_money(123_456, "CNY") == "1,234.56 CNY"
    assert money.input_value(1500, "JPY") == "1500" and money.input_value(1250, "CNY") == "12.50"


async def test_api_accepts_only_currencies_in_use(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, site = await supplier(client, db)
    for code in ("XXX", "XTS", "DEM", "ABC"):
        resp = await client.post("/api/v1/assets", json=machine_payload(site["id"], currency=code), headers=headers)
        assert resp.status_code == 422, (code, resp.text)
        assert "currency" in resp.text
    ok = await client.post("/api/v1/assets", json=machine_payload(site["id"], currency="jpy"), headers=headers)
    assert ok.status_code == 201 and ok.json()["currency"] == "JPY", ok.text


async def _web_supplier(
    client: AsyncClient, db: AsyncSession, locale: str = "en"
) -> tuple[str, str, str, dict[str, str]]:
    """A verified supplier with a site, signed in on the web; returns (org id, CSRF token, site id, API headers)."""
    reg, headers = await signed_up(client, roles=("supplier",), country="CN", locale=locale)
    await verify_org(db, reg["org"]["id"])
    site = await client.post("/api/v1/sites", json=SUZHOU, headers=headers)
    assert site.status_code == 201, site.text
    token = csrf_token((await client.get("/login")).text)
    signed_in = await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 303
    return reg["org"]["id"], csrf_token((await client.get("/dashboard")).text), site.json()["id"], headers


def _machine_form(token: str, site_id: str, **overrides: str) -> dict[str, Any]:
    fields = {
        "csrf_token": token,
        "kind": "machine",
        "site_id": site_id,
        "title": "Okuma mill",
        "process_codes": "machining.milling.cnc_3axis",
        "materials": "al_6061",
        "env_x": "760",
        "env_y": "410",
        "env_z": "510",
        "tolerance_mm": "0.02",
        "setup_fee": "0",
        "min_booking_minutes": "60",
        "slot_minutes": "30",
    }
    fields.update(overrides)
    return fields


async def _stored(db: AsyncSession, asset_id: str, column: str) -> int:
    value = await db.scalar(sa.text(f"SELECT {column} FROM assets WHERE id = :id"), {"id": uuid.UUID(asset_id)})
    return int(value)


async def test_jpy_price_typed_in_the_web_form_is_stored_and_shown_in_yen(
    client: AsyncClient, db: AsyncSession
) -> None:
    org, token, site_id, headers = await _web_supplier(client, db)
    created = await client.post(
        f"/factory/{org}/assets/new", data=_machine_form(token, site_id, currency="JPY", hourly_rate="1500")
    )
    assert created.status_code == 303, created.text
    asset_id = created.headers["location"].split("/assets/")[1].split("/")[0]
    assert await _stored(db, asset_id, "hourly_rate") == 1500  # not 150000: JPY has no minor unit
    edit = await client.get(f"/factory/{org}/assets/{asset_id}/edit")
    assert 'value="1500"' in edit.text
    # Saving the edit form unchanged keeps the price (no rescaling on the way back).
    saved = await client.post(
        f"/factory/{org}/assets/{asset_id}/edit",
        data=_machine_form(token, site_id, currency="JPY", hourly_rate="1500", title="Okuma mill 2"),
    )
    assert saved.status_code == 303, saved.text
    assert await _stored(db, asset_id, "hourly_rate") == 1500

    # Published, the listing page shows ¥1,500.
    avail = await client.put(
        f"/api/v1/assets/{asset_id}/availability", json={"weekly": WEEKDAYS_8_18, "exceptions": []}, headers=headers
    )
    assert avail.status_code == 200, avail.text
    await publish(client, headers, await admin_headers(client, db), asset_id)
    page = await client.get(f"/listings/{asset_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "¥1,500" in page.text, page.text
    assert "¥15.00" not in page.text


async def test_cny_and_bhd_prices_keep_their_decimals(client: AsyncClient, db: AsyncSession) -> None:
    org, token, site_id, _ = await _web_supplier(client, db)
    cny = await client.post(
        f"/factory/{org}/assets/new",
        data=_machine_form(token, site_id, currency="CNY", hourly_rate="12.5", setup_fee="0.29"),
    )
    assert cny.status_code == 303, cny.text
    cny_id = cny.headers["location"].split("/assets/")[1].split("/")[0]
    assert (await _stored(db, cny_id, "hourly_rate"), await _stored(db, cny_id, "setup_fee")) == (1250, 29)
    assert 'value="12.50"' in (await client.get(f"/factory/{org}/assets/{cny_id}/edit")).text
    bhd = await client.post(
        f"/factory/{org}/assets/new", data=_machine_form(token, site_id, currency="BHD", hourly_rate="1.250")
    )
    assert bhd.status_code == 303, bhd.text
    bhd_id = bhd.headers["location"].split("/assets/")[1].split("/")[0]
    assert await _stored(db, bhd_id, "hourly_rate") == 1250
    assert 'value="1.250"' in (await client.get(f"/factory/{org}/assets/{bhd_id}/edit")).text


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"hourly_rate": "1.234"}, "hourly_rate", "CNY amounts have at most 2 decimal places."),
        ({"hourly_rate": "abc"}, "hourly_rate", "Enter an amount in CNY, such as 12.50."),
        ({"hourly_rate": "-5"}, "hourly_rate", "The amount cannot be negative."),
        ({"hourly_rate": "1500.5", "currency": "JPY"}, "hourly_rate", "JPY amounts have no decimal places."),
        ({"setup_fee": "1e3"}, "setup_fee", "Enter an amount in CNY, such as 12.50."),
        ({"hourly_rate": "100", "currency": "XXX"}, "currency", "ISO 4217"),
    ],
)
async def test_bad_prices_in_the_web_form_are_shown_next_to_the_field(
    client: AsyncClient, db: AsyncSession, overrides: dict[str, str], field: str, message: str
) -> None:
    org, token, site_id, _ = await _web_supplier(client, db)
    form = _machine_form(token, site_id, currency="CNY", hourly_rate="100")
    form.update(overrides)
    resp = await client.post(f"/factory/{org}/assets/new", data=form)
    assert resp.status_code == 422, resp.text
    error = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', resp.text)
    assert error is not None, resp.text
    assert message in error.group(1).replace("&#39;", "'")
    count = await db.scalar(sa.text("SELECT count(*) FROM assets WHERE org_id = :org"), {"org": uuid.UUID(org)})
    assert count == 0


async def test_money_errors_on_a_chinese_page_are_in_chinese(client: AsyncClient, db: AsyncSession) -> None:
    org, token, site_id, _ = await _web_supplier(client, db, locale="zh-CN")
    resp = await client.post(
        f"/factory/{org}/assets/new", data=_machine_form(token, site_id, currency="CNY", hourly_rate="1.234")
    )
    assert resp.status_code == 422, resp.text
    error = re.search(r'<p class="field-error" id="f-hourly_rate-error">([^<]*)</p>', resp.text)
    assert error is not None and error.group(1) == "CNY 金额最多保留 2 位小数。", resp.text
