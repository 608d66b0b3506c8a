"""CSV exports of bookings and invoices (buyer and factory side) and the shared CSV helper: the content equals
the database, headers and statuses are in the page's language, and no cell can run as a formula."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.csv_export import csv_response, safe_cell
from tests.factories import invoiced_market, web_sign_in


def _table(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode()), "no UTF-8 byte-order mark (Excel would garble Chinese)"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_safe_cell_neutralises_formulas_and_keeps_plain_values() -> None:
    for formula in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'):
        assert safe_cell(formula) == "'" + formula
    assert safe_cell("铣削 5 轴") == "铣削 5 轴" and safe_cell("a=b") == "a=b"
    assert safe_cell(None) == "" and safe_cell(-5) == "-5" and safe_cell(12) == "12"
    assert safe_cell(datetime(2026, 3, 1, 8, 30, tzinfo=UTC)) == "2026-03-01T08:30:00+00:00"


async def test_csv_response_streams_a_bom_and_crlf_records() -> None:
    async def rows():  # type: ignore[no-untyped-def]
        yield ["名称", "金额"]
        yield [safe_cell("=cmd"), "12.50"]

    resp = csv_response(rows(), filename="t.csv")
    assert resp.headers["content-disposition"] == 'attachment; filename="t.csv"'
    assert resp.media_type == "text/csv; charset=utf-8"
    chunks = [c.encode() if isinstance(c, str) else bytes(c) async for c in resp.body_iterator]
    assert b"".join(chunks) == "\ufeff名称,金额\r\n'=cmd,12.50\r\n".encode()


async def test_invoice_csv_equals_the_database_on_both_sides(client: AsyncClient, db: AsyncSession) -> None:
    m = await invoiced_market(client, db, bookings=3)
    rows = (
        await db.execute(
            sa.text("SELECT number, total, tax, currency, booking_id FROM invoices WHERE buyer_org_id = :org"),
            {"org": uuid.UUID(m["buyer_org"])},
        )
    ).all()
    expected = {r.number: r for r in rows}
    assert len(expected) == 3

    await web_sign_in(client, m["buyer_reg"]["email"])
    resp = await client.get(f"/buyer/{m['buyer_org']}/invoices.csv")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    header, *lines = _table(resp.content)
    assert header[:3] == ["Invoice number", "Status", "Payment state"] and "Currency" in header
    col = {name: i for i, name in enumerate(header)}
    assert len(lines) == 3
    for line in lines:
        inv = expected[line[col["Invoice number"]]]
        assert line[col["Currency"]] == inv.currency == "CNY"
        assert Decimal(line[col["Total"]]) == Decimal(inv.total) / 100  # major units
        assert Decimal(line[col["Tax"]]) == Decimal(inv.tax) / 100
        assert Decimal(line[col["Amount due"]]) == Decimal(inv.total) / 100  # nothing paid yet
        assert line[col["Booking ID"]] == str(inv.booking_id)
        assert line[col["Status"]] == "unpaid" and line[col["Payment state"]] == "awaiting payment"
        assert datetime.fromisoformat(line[col["Issued"]]).tzinfo is not None  # ISO with its zone

    await web_sign_in(client, m["supplier_reg"]["email"], locale="zh-CN")
    factory = await client.get(f"/factory/{m['supplier_org']}/invoices.csv")
    header, *lines = _table(factory.content)
    assert header[0] == "发票号码" and "币种" in header
    assert {line[0] for line in lines} == set(expected)
    assert all(line[2] == "待付款" for line in lines)  # the payment state in Chinese


async def test_booking_csv_equals_the_database_and_neutralises_formula_cells(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await invoiced_market(client, db, bookings=2, title='=HYPERLINK("http://evil.example","Click")')
    await web_sign_in(client, m["buyer_reg"]["email"])
    resp = await client.get(f"/buyer/{m['buyer_org']}/bookings.csv")
    assert resp.status_code == 200
    header, *lines = _table(resp.content)
    col = {name: i for i, name in enumerate(header)}
    assert len(lines) == 2
    by_id = {b["id"]: b for b in m["bookings"]}
    for line in lines:
        booking = by_id[line[col["Booking ID"]]]
        assert Decimal(line[col["Amount"]]) == Decimal(booking["amount"]) / 100
        assert line[col["Currency"]] == booking["currency"]
        assert line[col["Status"]] == "held"
        assert line[col["Listing"]].startswith("'=HYPERLINK(")  # shown as text, never run
        assert datetime.fromisoformat(line[col["Start"]]) == datetime.fromisoformat(booking["start"])
        assert line[col["Factory"]]  # the other party by name

    await web_sign_in(client, m["supplier_reg"]["email"])
    factory = await client.get(f"/factory/{m['supplier_org']}/bookings.csv")
    header, *lines = _table(factory.content)
    assert "Buyer" in header and len(lines) == 2
    assert {line[0] for line in lines} == set(by_id)


async def test_the_pages_link_to_their_exports(client: AsyncClient, db: AsyncSession) -> None:
    m = await invoiced_market(client, db)
    await web_sign_in(client, m["buyer_reg"]["email"])
    home = await client.get(f"/buyer/{m['buyer_org']}")
    assert f'href="/buyer/{m["buyer_org"]}/bookings.csv"' in home.text
    assert f'href="/buyer/{m["buyer_org"]}/invoices"' in home.text
    invoices = await client.get(f"/buyer/{m['buyer_org']}/invoices")
    assert f'href="/buyer/{m["buyer_org"]}/invoices.csv"' in invoices.text
    await web_sign_in(client, m["supplier_reg"]["email"])
    bookings = await client.get(f"/factory/{m['supplier_org']}/bookings")
    assert f'href="/factory/{m["supplier_org"]}/bookings.csv"' in bookings.text
    earnings = await client.get(f"/factory/{m['supplier_org']}/earnings.csv")
    assert earnings.status_code == 200 and earnings.content.startswith("\ufeff".encode())
