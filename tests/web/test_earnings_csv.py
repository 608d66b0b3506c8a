"""The factory's earnings CSV on the web: headers and ledger entries in the reader's language (never journal
codes, memos or basis points), amounts in major units beside a currency column, equal to the ledger; members
only. The API's statement CSV keeps its own format for programs."""

from __future__ import annotations

import csv
import io
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests import parity_support as ps
from tests.bookings.helpers import slot

CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")

HEADERS = {
    "en": ["Date", "Entry", "Account", "Currency", "Debit", "Credit", "Balance", "Booking ID"],
    "zh-CN": ["日期", "记账事项", "科目", "币种", "借方", "贷方", "余额", "预订编号"],
}
SETTLEMENT = {"en": "Settlement · work accepted · commission 8%", "zh-CN": "结算 · 工作已验收 · 佣金 8%"}
PAYABLE = {"en": "Payable to factories", "zh-CN": "应付工厂款项"}


def _table(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode()), "no UTF-8 byte-order mark (Excel would garble Chinese)"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
async def test_the_earnings_csv_is_in_words_and_major_units_equal_to_the_ledger(
    app: Any, client: AsyncClient, db: AsyncSession, locale: str
) -> None:
    s = await ps.booking_in(client, db, "settled", slot(3))
    await db.execute(sa.text("UPDATE users SET locale = :l WHERE email = :e"), {"l": locale, "e": s.emails["supplier"]})
    await db.commit()
    org = s.ids["supplier_org"]
    entries = (
        await db.execute(
            sa.text("SELECT account, currency, amount FROM journal_entries WHERE org_id = :o ORDER BY id"),
            {"o": uuid.UUID(org)},
        )
    ).all()
    assert entries, "the settled booking left no ledger lines for the factory"

    browser, _ = await ps.web_sign_in(app, s.emails["supplier"])
    try:
        resp = await browser.get(f"/factory/{org}/earnings.csv", headers={"Accept-Language": locale})
    finally:
        await browser.aclose()
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    header, *rows = _table(resp.content)
    assert header == HEADERS[locale]
    assert len(rows) == len(entries)
    for row, entry in zip(rows, entries, strict=True):
        assert row[3] == entry.currency == "CNY"
        signed = Decimal(row[4] or "0") - Decimal(row[5] or "0")
        assert signed == Decimal(entry.amount) / 100  # major units, debit positive
        assert not CODE.findall(row[1] + row[2]), row  # no journal kind or account code
        assert "bp" not in row[1] and "Settlement (" not in row[1]  # the memo's English never shows
    payable = [r for r in rows if r[2] == PAYABLE[locale]]
    assert payable and any(r[1] == SETTLEMENT[locale] for r in payable)
    owed = -sum(e.amount for e in entries if e.account == "supplier_payable")
    assert Decimal(payable[-1][6]) == -Decimal(owed) / 100  # the running balance of the payable


async def test_only_members_download_the_earnings_csv_and_the_api_statement_is_unchanged(
    app: Any, client: AsyncClient, db: AsyncSession
) -> None:
    s = await ps.booking_in(client, db, "settled", slot(3))
    other = await ps.booking_in(client, db, "settled", slot(4))
    browser, _ = await ps.web_sign_in(app, other.emails["supplier"])
    try:
        foreign = await browser.get(f"/factory/{s.ids['supplier_org']}/earnings.csv")
    finally:
        await browser.aclose()
    assert foreign.status_code == 404

    api = await client.get(f"/api/v1/orgs/{s.ids['supplier_org']}/statement.csv", headers=s.headers["supplier"])
    assert api.status_code == 200
    header, *rows = _table(api.content)
    assert header[:2] == ["Date (UTC)", "Entry"] and header[-1] == "Memo"
    assert "settlement" in {r[1] for r in rows}  # programs keep reading the journal kinds
