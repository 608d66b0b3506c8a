"""Fapiao data (issue #18, item 5): a settled booking's fapiao against its ledger lines. The sales fapiao's
amounts excluding tax plus its tax equal the kept amount the settlement journal took from customer_funds_held;
the commission fapiao equals the settlement's commission_revenue line. JSON and CSV, who may read them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing import fapiao, tax_codes
from marketplace.core.settings import Settings
from payments import invoices, ledger
from tests.bookings.helpers import book, market, slot
from tests.factories import VALID_USCC, signed_up

AMOUNT = 30000 * 2 + 20000  # 2 h at 300.00 + setup 200.00
PLATFORM_USCC = VALID_USCC[4]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"platform_legal_name": "测试共享制造平台有限公司", "platform_uscc": PLATFORM_USCC}
    )


async def _walk(client: AsyncClient, m: dict[str, Any], booking_id: str, steps: list[tuple[str, str]]) -> None:
    for action, who in steps:
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None
        r = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, (action, r.text)


SETTLE = [("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier"), ("complete", "supplier")]


async def _named(db: AsyncSession, org_id: str, legal_name: str, uscc: str) -> None:
    await db.execute(
        sa.text("UPDATE organisations SET legal_name = :n, uscc = :u WHERE id = :id"),
        {"n": legal_name, "u": uscc, "id": org_id},
    )
    await db.commit()


async def _settlement_lines(db: AsyncSession, booking_id: str) -> dict[str, int]:
    """The settlement journal's entries by account, straight from journal_entries."""
    rows = await db.execute(
        sa.text(
            "SELECT e.account, sum(e.amount) FROM journal_entries e JOIN journals j ON j.id = e.journal_id "
            "WHERE j.key = :key AND j.kind = 'settlement' GROUP BY e.account"
        ),
        {"key": f"booking:{booking_id}:settle"},
    )
    return {account: int(total) for account, total in rows.all()}


@pytest.fixture
async def settled(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """A booking settled in full (its two invoice lines) and one cancelled by the buyer with a 50 % fee."""
    m = await market(client, db)
    m["supplier_org"] = m["asset"]["org_id"]
    await _named(db, m["supplier_org"], "苏州精密机械有限公司", VALID_USCC[0])
    await _named(db, m["buyer_org"], "广州买方科技有限公司", VALID_USCC[1])
    start, end = slot(3)
    full = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _walk(client, m, full["id"], [*SETTLE, ("confirm", "buyer")])
    start, end = slot(30)  # between 24 and 72 h ahead: a cancelling buyer gets 50 % back
    partial = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    await _walk(client, m, partial["id"], [("payment/accept-terms", "buyer"), ("accept", "supplier")])
    r = await client.post(f"/api/v1/bookings/{partial['id']}/cancel", headers=m["buyer"])
    assert r.status_code == 200 and r.json()["refund_amount"] == AMOUNT // 2, r.text
    m["full"], m["partial"] = full["id"], partial["id"]
    return m


async def test_sales_fapiao_adds_up_to_the_kept_amount_of_the_settlement_journal(
    client: AsyncClient, db: AsyncSession, settled: dict[str, Any]
) -> None:
    m = settled
    r = await client.get(f"/api/v1/orgs/{m['supplier_org']}/fapiao", params={"kind": "sales"}, headers=m["supplier"])
    assert r.status_code == 200, r.text
    body = r.json()
    today = fapiao.china_today()
    assert body["from"] == fapiao.quarter_of(today).first.isoformat() and body["kind"] == "sales"
    docs = {d["booking_id"]: d for d in body["items"]}
    assert set(docs) == {m["full"], m["partial"]}

    for booking_id, doc in docs.items():
        lines = await _settlement_lines(db, booking_id)
        kept = lines[ledger.FUNDS_HELD]  # the debit: what the buyer finally pays
        assert doc["total"] == kept == sum(x["amount"] for x in doc["lines"])
        assert doc["amount_excl_tax"] + doc["tax"] == kept
        for x in doc["lines"]:
            assert x["amount_excl_tax"] + x["tax"] == x["amount"]
            assert x["tax"] == invoices.tax_included(x["amount"], 600) and x["tax_rate_bp"] == 600
            assert x["tax_code"] == tax_codes.DEFAULTS["machining"].code == "2010500000000000000"
        assert doc["seller"] == {"org_id": m["supplier_org"], "name": "苏州精密机械有限公司", "uscc": VALID_USCC[0]}
        assert doc["buyer"] == {"org_id": m["buyer_org"], "name": "广州买方科技有限公司", "uscc": VALID_USCC[1]}
        assert doc["settlement_date"] == today.isoformat() and doc["currency"] == "CNY"
        assert doc["platform_invoice_number"].startswith("INV-")

    full = docs[m["full"]]
    assert [(x["item"], x["amount"]) for x in full["lines"]] == [("机械加工费", 60000), ("准备费", 20000)]
    assert full["lines"][0]["quantity"] == 2 and full["lines"][0]["unit"] == "小时"
    assert full["tax"] == invoices.tax_included(60000, 600) + invoices.tax_included(20000, 600)
    # After a credit note, one lump-sum line for what was kept (the cancellation fee).
    part = docs[m["partial"]]
    assert [(x["item"], x["amount"], x["quantity"]) for x in part["lines"]] == [("机械加工费", AMOUNT // 2, None)]


async def test_commission_fapiao_equals_the_commission_line_of_the_settlement(
    client: AsyncClient, db: AsyncSession, settled: dict[str, Any]
) -> None:
    m = settled
    url = f"/api/v1/orgs/{m['supplier_org']}/fapiao"
    body = (await client.get(url, params={"kind": "commission"}, headers=m["supplier"])).json()
    docs = {d["booking_id"]: d for d in body["items"]}
    assert set(docs) == {m["full"], m["partial"]}
    for booking_id, doc in docs.items():
        lines = await _settlement_lines(db, booking_id)
        commission = -lines[ledger.COMMISSION_REVENUE]
        assert doc["total"] == commission == ledger.commission(lines[ledger.FUNDS_HELD], 800)
        assert doc["amount_excl_tax"] + doc["tax"] == commission
        assert doc["tax"] == invoices.tax_included(commission, 600)
        assert doc["seller"] == {"org_id": None, "name": "测试共享制造平台有限公司", "uscc": PLATFORM_USCC}
        assert doc["buyer"]["org_id"] == m["supplier_org"] and doc["buyer"]["uscc"] == VALID_USCC[0]
        [line] = doc["lines"]
        assert (line["item"], line["tax_code"], line["tax_short_name"]) == (
            "平台撮合服务费",
            "3040802000000000000",
            "经纪代理服务",
        )
        assert doc["reference"] == f"{booking_id}-C"


async def test_fapiao_csv_has_one_row_per_line_in_major_units(client: AsyncClient, settled: dict[str, Any]) -> None:
    m = settled
    url = f"/api/v1/orgs/{m['supplier_org']}/fapiao"
    r = await client.get(url + ".csv", params={"kind": "sales"}, headers=m["supplier"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == fapiao.CSV_HEADER
    data = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(data) == 3  # two lines of the full booking, one of the cancelled one
    by_booking: dict[str, Decimal] = {}
    for row in data:
        assert Decimal(row["amount_excl_tax"]) + Decimal(row["tax"]) == Decimal(row["amount_incl_tax"])
        assert row["tax_rate"] == "0.06" and row["seller_uscc"] == VALID_USCC[0]
        by_booking[row["booking_id"]] = by_booking.get(row["booking_id"], Decimal(0)) + Decimal(row["amount_incl_tax"])
    assert by_booking == {m["full"]: Decimal("800.00"), m["partial"]: Decimal("400.00")}
    first = next(row for row in data if row["booking_id"] == m["full"] and row["line_no"] == "1")
    assert (first["item"], first["quantity"], first["unit"], first["amount_incl_tax"]) == (
        "机械加工费",
        "2",
        "小时",
        "600.00",
    )
    commission = await client.get(url + ".csv", params={"kind": "commission"}, headers=m["supplier"])
    c_rows = list(csv.reader(io.StringIO(commission.content.decode("utf-8-sig"))))[1:]
    assert sorted(r[-1] for r in c_rows) == ["32.00", "64.00"]  # 8 % of 400.00 and of 800.00


async def test_the_period_is_the_settlement_day_in_china(client: AsyncClient, settled: dict[str, Any]) -> None:
    m = settled
    url = f"/api/v1/orgs/{m['supplier_org']}/fapiao"
    today = fapiao.china_today()
    same_day = await client.get(url, params={"from": str(today), "to": str(today)}, headers=m["supplier"])
    assert len(same_day.json()["items"]) == 2
    before = await client.get(
        url,
        params={"from": str(today - timedelta(days=30)), "to": str(today - timedelta(days=1))},
        headers=m["supplier"],
    )
    assert before.status_code == 200 and before.json()["items"] == []
    backwards = await client.get(
        url, params={"from": str(today), "to": str(today - timedelta(days=1))}, headers=m["supplier"]
    )
    assert backwards.status_code == 422 and backwards.json()["fields"][0]["field"] == "to"
    too_long = await client.get(url, params={"from": "2025-01-01", "to": "2026-12-31"}, headers=m["supplier"])
    assert too_long.status_code == 422
    assert (await client.get(url, params={"kind": "other"}, headers=m["supplier"])).status_code == 422


async def test_only_members_keys_with_payments_read_and_admins_read_fapiao(
    client: AsyncClient, settled: dict[str, Any]
) -> None:
    m = settled
    org = m["supplier_org"]
    url = f"/api/v1/orgs/{org}/fapiao"
    assert (await client.get(url, headers=m["buyer"])).status_code == 404  # the buyer org is a stranger here
    assert (await client.get(url + ".csv", headers=m["buyer"])).status_code == 404
    _, stranger = await signed_up(client, roles=("supplier",))
    assert (await client.get(url, headers=stranger)).status_code == 404
    assert (await client.get(url)).status_code == 401
    admin = await client.get(url, headers=m["admin"])
    assert admin.status_code == 200 and len(admin.json()["items"]) == 2
    keys = {}
    for scope in ("payments:read", "bookings:read"):
        made = await client.post(
            f"/api/v1/orgs/{org}/api-keys", json={"name": scope, "scopes": [scope]}, headers=m["supplier"]
        )
        assert made.status_code == 201, made.text
        keys[scope] = {"X-API-Key": made.json()["secret"]}
    assert (await client.get(url, headers=keys["payments:read"])).status_code == 200
    assert (await client.get(url + ".csv", headers=keys["payments:read"])).status_code == 200
    refused = await client.get(url, headers=keys["bookings:read"])
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"


def test_tax_codes_are_configured_per_process_family_from_a_json_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MARKETPLACE_FAPIAO_TAX_CODES",
        '{"machining": {"code": "2010100000000000000", "item": "委托加工费"}, '
        '"commission": {"code": "3040205000000000000", "item": "信息服务费", "short_name": "信息系统增值服务"}}',
    )
    codes = tax_codes.merged(Settings().fapiao_tax_codes)
    assert tax_codes.code_for(codes, "machining").item == "委托加工费"
    assert tax_codes.code_for(codes, tax_codes.COMMISSION).code == "3040205000000000000"
    assert tax_codes.code_for(codes, "testing").code == "3040105000000000000"  # a default kept
    assert tax_codes.code_for(codes, "unknown_family") == tax_codes.DEFAULTS[tax_codes.FALLBACK]
    assert tax_codes.family_of(["testing.mechanical.tensile", "machining.x"]) == "testing"
    monkeypatch.setenv("MARKETPLACE_FAPIAO_TAX_CODES", '{"machining": {"code": "12345", "item": "x"}}')
    with pytest.raises(ValueError, match="code"):
        Settings()


def test_fapiao_lines_must_add_up_to_the_ledger_amount() -> None:
    code = tax_codes.DEFAULTS["testing"]
    lines = fapiao.split_lines(amount=10001, rate_bp=600, parts=[{"item": "a", "code": code, "amount": 10001}])
    assert lines[0].tax == invoices.tax_included(10001, 600) == 566 and lines[0].amount_excl_tax == 9435
    with pytest.raises(ValueError):
        fapiao.split_lines(amount=10001, rate_bp=600, parts=[{"item": "a", "code": code, "amount": 10000}])
    assert [fapiao.rate_text(bp) for bp in (600, 1300, 150, 0, 300)] == ["0.06", "0.13", "0.015", "0", "0.03"]


def test_a_quarter_is_three_calendar_months_in_china() -> None:
    from datetime import date

    q = fapiao.quarter_of(date(2026, 11, 15))
    assert (q.first, q.last) == (date(2026, 10, 1), date(2026, 12, 31))
    assert q.start.isoformat() == "2026-09-30T16:00:00+00:00" and q.end.isoformat() == "2026-12-31T16:00:00+00:00"
    assert fapiao.quarter_of(date(2027, 1, 1)).first == date(2027, 1, 1)
