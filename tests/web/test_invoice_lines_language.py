"""An invoice's line items in the reader's language (the page, its print view and the invoice CSV), the stored
text for lines issued before they carried a kind, and codes without a name reading "Other"."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.web import i18n
from marketplace.web.invoice_lines import line_text
from marketplace.web.invoices_state import INVOICE_STATUS, PAYMENT_STATE, labeller
from payments.invoices import line_items
from tests.factories import invoiced_market, web_sign_in


def _lines_table(page: str) -> str:
    match = re.search(r'<table class="invoice-lines">.*?<tfoot>', page, re.S)
    assert match, "no line items table"
    return match.group(0)


async def _invoice(db: AsyncSession, booking_id: str) -> Any:
    row = await db.execute(
        sa.text("SELECT id, line_items FROM invoices WHERE booking_id = :b"), {"b": uuid.UUID(booking_id)}
    )
    return row.one()


async def test_the_invoice_lines_read_in_the_page_language_on_the_page_print_and_csv(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db, title="Line test mill")
    inv = await _invoice(db, m["bookings"][0]["id"])
    assert [i["kind"] for i in inv.line_items] == ["machine_time", "setup_fee"]
    assert inv.line_items[0]["description"].startswith("Line test mill: machine time")  # the API's English text
    base = f"/buyer/{m['buyer_org']}/invoices"

    await web_sign_in(client, m["buyer_reg"]["email"], locale="zh-CN")
    for url in (f"{base}/{inv.id}", f"{base}/{inv.id}/print"):
        page = await client.get(url)
        assert page.status_code == 200, url
        lines = _lines_table(page.text)
        assert "Line test mill：设备机时" in lines and "准备费" in lines, url
        assert "machine time" not in lines and "Setup fee" not in lines, url
    table = list(csv.reader(io.StringIO((await client.get(f"{base}.csv")).content.decode("utf-8-sig"))))
    column = table[0].index("费用明细")
    assert "Line test mill：设备机时" in table[1][column] and "准备费" in table[1][column]

    await web_sign_in(client, m["supplier_reg"]["email"], locale="en")
    factory_base = f"/factory/{m['supplier_org']}/invoices"
    for url in (f"{factory_base}/{inv.id}", f"{factory_base}/{inv.id}/print"):
        lines = _lines_table((await client.get(url)).text)
        assert "Line test mill: machine time" in lines and "Setup fee" in lines, url
        assert "设备机时" not in lines
    table = list(csv.reader(io.StringIO((await client.get(f"{factory_base}.csv")).content.decode("utf-8-sig"))))
    column = table[0].index("Line items")
    assert "Line test mill: machine time" in table[1][column] and "Setup fee" in table[1][column]


async def test_lines_without_a_kind_show_their_stored_text(client: AsyncClient, db: AsyncSession) -> None:
    m = await invoiced_market(client, db)
    inv = await _invoice(db, m["bookings"][0]["id"])
    old = [{k: v for k, v in i.items() if k not in ("kind", "title", "start_at", "end_at")} for i in inv.line_items]
    old[0]["description"] = "Legacy machine line"
    await db.execute(
        sa.text("UPDATE invoices SET line_items = CAST(:items AS jsonb) WHERE id = :id"),
        {"items": json.dumps(old), "id": inv.id},
    )
    await db.commit()
    await web_sign_in(client, m["buyer_reg"]["email"], locale="zh-CN")
    lines = _lines_table((await client.get(f"/buyer/{m['buyer_org']}/invoices/{inv.id}")).text)
    assert "Legacy machine line" in lines  # an old invoice keeps its own words
    assert "准备费" in lines  # the plain "Setup fee" of old invoices is still recognised


def test_each_kind_of_line_is_worded_from_its_facts() -> None:
    lab = line_items(
        {"kind": "lab_service", "title": "Tensile", "samples": 3, "drop_off_date": date(2026, 3, 2), "unit_price": 1},
        300,
    )
    zh = _gettext("zh-CN")
    assert line_text(lab[0], zh) == "Tensile：3 个样品，送样日期 2026-03-02"
    assert line_text(lab[0], _gettext("en")) == "Tensile: 3 samples, drop-off 2026-03-02"
    overnight = line_items(
        {
            "kind": "machine",
            "title": "",
            "start_at": datetime(2026, 3, 1, 22, 0, tzinfo=UTC),
            "end_at": datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
            "setup_fee": 0,
        },
        100,
    )
    assert len(overnight) == 1  # no setup fee line without a fee
    assert line_text(overnight[0], _gettext("en")) == "Booking: machine time 2026-03-01 22:00–2026-03-02 02:00 UTC"
    assert line_text(overnight[0], zh) == "预订：设备机时 2026-03-01 22:00–2026-03-02 02:00（UTC）"
    assert line_text({"kind": "someday", "description": "Kept as stored"}, zh) == "Kept as stored"


def _gettext(locale: str) -> Any:
    return i18n.translations(locale).gettext


@pytest.mark.parametrize(("locale", "other"), [("en", "Other"), ("zh-CN", "其他")])
def test_a_code_without_a_name_reads_other_and_is_logged(
    locale: str, other: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert labeller(locale, PAYMENT_STATE)("brand_new_state") == other
    assert "brand_new_state" in caplog.text
    assert labeller(locale, INVOICE_STATUS)("open") == ("unpaid" if locale == "en" else _gettext(locale)("unpaid"))
    assert labeller(locale, INVOICE_STATUS)("") == "–"
