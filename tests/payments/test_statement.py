"""Organisation statements: balances over every ledger line (not only the newest page), keyset paging that
returns each line once, the streamed CSV export in each currency's major units, and who may read them."""

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

from payments import ledger
from tests.factories import PASSWORD, admin_headers, signed_up

# More lines than the old endpoint's fixed window of 500, each amount different, so a balance computed from
# the newest 500 lines (388,500 instead of 396,270 in the issue) cannot equal the true one.
ISSUED = 510
PAID = 40


async def _build_ledger(db: AsyncSession, buyer: uuid.UUID, supplier: uuid.UUID) -> None:
    """Real journals through ledger.post (balanced): 510 invoices to the buyer and 40 of them paid, one
    settled booking for the supplier, and one JPY and one BHD invoice (other exponents)."""
    for i in range(ISSUED):
        await ledger.post(db, key=f"t:{buyer}:issue:{i}", kind="invoice", lines=ledger.issue(buyer, "CNY", 700 + i))
    for i in range(PAID):
        await ledger.post(db, key=f"t:{buyer}:paid:{i}", kind="payment", lines=ledger.received(buyer, "CNY", 700 + i))
    await ledger.post(db, key=f"t:{buyer}:jpy", kind="invoice", lines=ledger.issue(buyer, "JPY", 1500), memo="=cmd")
    await ledger.post(db, key=f"t:{buyer}:bhd", kind="invoice", lines=ledger.issue(buyer, "BHD", 1250))
    await ledger.post(
        db, key=f"t:{supplier}:settle", kind="settle", lines=ledger.settle(supplier, "CNY", 10_000, rate_bp=800)
    )
    await db.commit()


async def _sql_balances(db: AsyncSession, org: uuid.UUID) -> dict[str, dict[str, int]]:
    rows = await db.execute(
        sa.text(
            "SELECT currency, account, sum(amount) FROM journal_entries WHERE org_id = :org GROUP BY currency, account"
        ),
        {"org": org},
    )
    out: dict[str, dict[str, int]] = {}
    for currency, account, total in rows.all():
        out.setdefault(currency, {})[account] = int(total)
    return out


@pytest.fixture
async def statement_market(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    buyer_reg, buyer = await signed_up(client, roles=("buyer",))
    supplier_reg, supplier = await signed_up(client, roles=("supplier",))
    buyer_org, supplier_org = uuid.UUID(buyer_reg["org"]["id"]), uuid.UUID(supplier_reg["org"]["id"])
    await _build_ledger(db, buyer_org, supplier_org)
    return {"buyer": buyer, "buyer_org": buyer_org, "supplier": supplier, "supplier_org": supplier_org}


async def test_statement_balances_are_summed_over_every_line_not_the_newest_page(
    client: AsyncClient, db: AsyncSession, statement_market: dict[str, Any]
) -> None:
    org = statement_market["buyer_org"]
    resp = await client.get(f"/api/v1/orgs/{org}/statement", headers=statement_market["buyer"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected_cny = sum(700 + i for i in range(ISSUED)) - sum(700 + i for i in range(PAID))
    assert body["balances"]["CNY"][ledger.BUYER_RECEIVABLE] == expected_cny
    assert body["balances"] == await _sql_balances(db, org)
    assert body["balances"]["JPY"] == {ledger.BUYER_RECEIVABLE: 1500}
    assert body["balances"]["BHD"] == {ledger.BUYER_RECEIVABLE: 1250}
    # Control: the newest 500 lines alone give another balance, so the assertion above can fail.
    newest = (
        await db.execute(
            sa.text(
                "SELECT amount FROM journal_entries WHERE org_id = :org AND currency = 'CNY' ORDER BY id DESC LIMIT 500"
            ),
            {"org": org},
        )
    ).scalars()
    assert sum(newest) != expected_cny


async def test_statement_pages_return_every_line_once_newest_first(
    client: AsyncClient, db: AsyncSession, statement_market: dict[str, Any]
) -> None:
    org = statement_market["buyer_org"]
    url = f"/api/v1/orgs/{org}/statement"
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(url, params=params, headers=statement_market["buyer"])
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 100
        seen += [line["line_id"] for line in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    all_ids = (
        (await db.execute(sa.text("SELECT id FROM journal_entries WHERE org_id = :org"), {"org": org})).scalars().all()
    )
    assert len(all_ids) == ISSUED + PAID + 2
    assert sorted(seen) == sorted(all_ids) and len(set(seen)) == len(seen)
    assert seen == sorted(seen, reverse=True)
    assert pages == -(-len(all_ids) // 100)
    # Over the API maximum: 422; a cursor that is not ours: 400.
    assert (await client.get(url, params={"limit": 101}, headers=statement_market["buyer"])).status_code == 422
    bad = await client.get(url, params={"cursor": "bm90LWEtbGlzdA"}, headers=statement_market["buyer"])
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request", bad.text
    # One account's lines only.
    supplier = statement_market["supplier_org"]
    only = await client.get(
        f"/api/v1/orgs/{supplier}/statement",
        params={"account": ledger.SUPPLIER_PAYABLE},
        headers=statement_market["supplier"],
    )
    assert only.status_code == 200 and {line["account"] for line in only.json()["items"]} == {ledger.SUPPLIER_PAYABLE}


def _minor(text: str, digits: int) -> int:
    return int(Decimal(text).scaleb(digits)) if text else 0


async def test_statement_csv_has_every_line_in_major_units_and_totals_match(
    client: AsyncClient, db: AsyncSession, statement_market: dict[str, Any]
) -> None:
    org = statement_market["buyer_org"]
    resp = await client.get(f"/api/v1/orgs/{org}/statement.csv", headers=statement_market["buyer"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel opens it as UTF-8
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert len(rows) == ISSUED + PAID + 2
    assert list(rows[0]) == ["Date (UTC)", "Entry", "Account", "Currency", "Debit", "Credit", "Balance", "Booking",
                             "Invoice", "Journal", "Memo"]  # fmt: skip
    digits = {"CNY": 2, "JPY": 0, "BHD": 3}
    totals: dict[str, dict[str, int]] = {}
    last_balance: dict[tuple[str, str], int] = {}
    for row in rows:
        cur, acc = row["Currency"], row["Account"]
        amount = _minor(row["Debit"], digits[cur]) - _minor(row["Credit"], digits[cur])
        totals.setdefault(cur, {}).setdefault(acc, 0)
        totals[cur][acc] += amount
        last_balance[(acc, cur)] = _minor(row["Balance"], digits[cur])
    assert totals == await _sql_balances(db, org)
    assert {k: v for k, v in last_balance.items()} == {(a, c): b for c, d in totals.items() for a, b in d.items()}
    jpy = next(r for r in rows if r["Currency"] == "JPY")
    bhd = next(r for r in rows if r["Currency"] == "BHD")
    assert (jpy["Debit"], bhd["Debit"]) == ("1500", "1.250")  # each currency's own decimals
    assert jpy["Memo"] == "'=cmd"  # never a spreadsheet formula
    assert next(r for r in rows if r["Currency"] == "CNY")["Debit"] == "7.00"  # oldest line first


async def test_statement_is_for_members_and_admins_only(
    client: AsyncClient, db: AsyncSession, statement_market: dict[str, Any]
) -> None:
    org = statement_market["buyer_org"]
    _, stranger = await signed_up(client, roles=("buyer",))
    for path in ("statement", "statement.csv"):
        url = f"/api/v1/orgs/{org}/{path}"
        assert (await client.get(url)).status_code == 401
        denied = await client.get(url, headers=stranger)
        assert denied.status_code == 404 and denied.json()["error"] == "not_found", denied.text
        # The supplier of the market is a stranger to the buyer's organisation too.
        assert (await client.get(url, headers=statement_market["supplier"])).status_code == 404
        assert (await client.get(url, headers=await admin_headers(client, db))).status_code == 200
    keys = {}
    for scope in ("payments:read", "orgs:read"):
        made = await client.post(
            f"/api/v1/orgs/{org}/api-keys", json={"name": scope, "scopes": [scope]}, headers=statement_market["buyer"]
        )
        assert made.status_code == 201, made.text
        keys[scope] = {"X-API-Key": made.json()["secret"]}
    assert (await client.get(f"/api/v1/orgs/{org}/statement", headers=keys["payments:read"])).status_code == 200
    assert (await client.get(f"/api/v1/orgs/{org}/statement", headers=keys["orgs:read"])).status_code == 403


async def test_factory_earnings_page_totals_all_lines_and_offers_the_csv(
    client: AsyncClient, db: AsyncSession, statement_market: dict[str, Any]
) -> None:
    supplier = statement_market["supplier_org"]
    email = await db.scalar(
        sa.text("SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.org_id = :org"),
        {"org": supplier},
    )
    login = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    signed_in = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 303
    page = await client.get(f"/factory/{supplier}/earnings", headers={"Accept-Language": "en"})
    assert page.status_code == 200, page.text
    # settle(10,000, 800 bp): 9,200.00 fen earned, none paid out yet.
    assert page.text.count("CN¥92.00") + page.text.count("¥92.00") >= 2
    csv_page = await client.get(f"/factory/{supplier}/earnings.csv")
    assert csv_page.status_code == 200 and csv_page.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(csv_page.content.decode("utf-8-sig"))))
    # The web export names the account in words (the API's statement CSV keeps the code).
    assert [(r["Account"], r["Credit"], r["Balance"]) for r in rows] == [("Payable to factories", "92.00", "-92.00")]
