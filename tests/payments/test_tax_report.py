"""The platform's quarterly tax report (issue #18, item 6): each supplier's income of the quarter, derived from
ledger journals only, with totals that equal sums over journal_entries; several suppliers and currencies, a
refund, a void booking, and settlements one second either side of the quarter's start (China time)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing import fapiao, tax_report
from payments import ledger
from tests.bookings.helpers import book, market, slot

AMOUNT = 30000 * 2 + 20000  # 2 h at 300.00 + setup 200.00
SETTLE = [("payment/accept-terms", "buyer"), ("accept", "supplier"), ("start", "supplier"), ("complete", "supplier")]
CURRENT = fapiao.quarter_of(fapiao.china_today())
PREVIOUS = tax_report.previous(CURRENT)


async def _walk(client: AsyncClient, m: dict[str, Any], booking_id: str, steps: list[tuple[str, str]]) -> None:
    for action, who in steps:
        body = {"reason": "finished ahead of the slot (test)"} if action == "complete" else None
        r = await client.post(f"/api/v1/bookings/{booking_id}/{action}", headers=m[who], json=body)
        assert r.status_code == 200, (action, r.text)


async def _post_at(db: AsyncSession, when: datetime, booking_id: str, lines: list[ledger.Line]) -> None:
    """A settlement journal of the booking posted at ``when`` (the ledger's own posting uses the transaction's
    time; journals are append-only, so a past one is inserted with its time, like a posting made then)."""
    journal = uuid.uuid4()
    await db.execute(
        sa.text(
            "INSERT INTO journals (id, key, kind, booking_id, memo, created_at) "
            "VALUES (:id, :key, 'settlement', :booking, 'Settlement (test)', :at)"
        ),
        {"id": journal, "key": f"booking:{booking_id}:settle", "booking": booking_id, "at": when},
    )
    for line in lines:
        await db.execute(
            sa.text(
                "INSERT INTO journal_entries (journal_id, account, org_id, currency, amount) "
                "VALUES (:j, :a, :o, :c, :m)"
            ),
            {"j": journal, "a": line.account, "o": line.org_id, "c": line.currency, "m": line.amount},
        )
    await db.commit()


async def _ledger_sums(db: AsyncSession, days: fapiao.Period) -> dict[str, dict[str, int]]:
    """Per currency, straight from journal_entries: kept, commission and net of the settlement journals posted in
    the period, and the refunds of credit notes in the period for bookings that settled."""
    rows = await db.execute(
        sa.text(
            """
            SELECT e.currency,
                   sum(e.amount) FILTER (WHERE j.kind = 'settlement' AND e.account = 'customer_funds_held'),
                   -sum(e.amount) FILTER (WHERE j.kind = 'settlement' AND e.account = 'commission_revenue'),
                   -sum(e.amount) FILTER (WHERE j.kind = 'settlement' AND e.account = 'supplier_payable'),
                   sum(e.amount) FILTER (
                       WHERE j.kind = 'credit_note' AND e.account = 'customer_funds_held'
                         AND j.booking_id IN (SELECT booking_id FROM journals WHERE kind = 'settlement'))
              FROM journal_entries e JOIN journals j ON j.id = e.journal_id
             WHERE j.created_at >= :start AND j.created_at < :end
             GROUP BY e.currency
            """
        ),
        {"start": days.start, "end": days.end},
    )
    out = {}
    for currency, kept, commission, net, refunds in rows.all():
        if kept is None and refunds is None:
            continue
        kept, refunds = int(kept or 0), int(refunds or 0)
        out[currency] = {
            "gross": kept + refunds,
            "refunds": refunds,
            "commission": int(commission or 0),
            "net": int(net or 0),
        }
    return out


async def _email(client: AsyncClient, headers: dict[str, str]) -> str:
    email: str = (await client.get("/api/v1/me", headers=headers)).json()["user"]["email"]
    return email


async def _build(client: AsyncClient, db: AsyncSession) -> dict[str, Any]:
    """A: one booking settled in full, one cancelled with a 50 % refund, one expired hold (void). B: one booking
    settled in EUR. C: two settlements posted one second either side of the current quarter's start."""
    a = await market(client, db)
    start, end = slot(3)
    full = (await book(client, a["buyer"], a["asset"]["id"], start, end)).json()
    await _walk(client, a, full["id"], [*SETTLE, ("confirm", "buyer")])
    start, end = slot(30)
    part = (await book(client, a["buyer"], a["asset"]["id"], start, end)).json()
    await _walk(client, a, part["id"], [("payment/accept-terms", "buyer"), ("accept", "supplier")])
    assert (await client.post(f"/api/v1/bookings/{part['id']}/cancel", headers=a["buyer"])).status_code == 200
    start, end = slot(100)
    void = (await book(client, a["buyer"], a["asset"]["id"], start, end)).json()
    assert (await client.post(f"/api/v1/bookings/{void['id']}/cancel", headers=a["buyer"])).status_code == 200

    b = await market(client, db, currency="EUR")
    start, end = slot(3)
    eur = (await book(client, b["buyer"], b["asset"]["id"], start, end)).json()
    await _walk(client, b, eur["id"], [*SETTLE, ("confirm", "buyer")])

    c = await market(client, db)
    c_org = uuid.UUID(c["asset"]["org_id"])
    early = (await book(client, c["buyer"], c["asset"]["id"], *slot(5))).json()
    late = (await book(client, c["buyer"], c["asset"]["id"], *slot(9))).json()
    await _post_at(
        db, CURRENT.start - timedelta(seconds=1), early["id"], ledger.settle(c_org, "CNY", 10_001, rate_bp=800)
    )
    await _post_at(db, CURRENT.start, late["id"], ledger.settle(c_org, "CNY", 20_003, rate_bp=800))
    return {"a": a, "b": b, "c": c, "void": void["id"], "eur": eur}


async def test_the_quarterly_report_equals_the_ledger(client: AsyncClient, db: AsyncSession) -> None:
    m = await _build(client, db)
    admin = m["a"]["admin"]
    label = tax_report.label(CURRENT)
    r = await client.get("/api/v1/admin/tax-report", params={"quarter": label}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["quarter"], body["from"], body["to"]) == (label, str(CURRENT.first), str(CURRENT.last))
    rows = {(s["org_id"], s["currency"]): s for s in body["suppliers"]}
    a, b, c = (m[k]["asset"]["org_id"] for k in ("a", "b", "c"))
    assert set(rows) == {(a, "CNY"), (b, "EUR"), (c, "CNY")}

    kept_a = AMOUNT + AMOUNT // 2
    fee_a = ledger.commission(AMOUNT, 800) + ledger.commission(AMOUNT // 2, 800)
    ra = rows[(a, "CNY")]
    assert (ra["gross"], ra["refunds"], ra["commission"], ra["net"], ra["settlements"]) == (
        2 * AMOUNT,  # the refund of the void booking is not income: it never settled
        AMOUNT // 2,
        fee_a,
        kept_a - fee_a,
        2,
    )
    assert ra["contact_email"] == await _email(client, m["a"]["supplier"])
    rb = rows[(b, "EUR")]
    assert (rb["gross"], rb["refunds"], rb["commission"]) == (AMOUNT, 0, ledger.commission(AMOUNT, 800))
    rc = rows[(c, "CNY")]  # only the settlement posted at the quarter's first instant
    assert (rc["gross"], rc["commission"], rc["settlements"]) == (20_003, ledger.commission(20_003, 800), 1)
    for s in body["suppliers"]:
        assert s["gross"] - s["refunds"] - s["commission"] == s["net"]

    sums = await _ledger_sums(db, CURRENT)
    totals = {t["currency"]: {k: t[k] for k in ("gross", "refunds", "commission", "net")} for t in body["totals"]}
    assert totals == sums
    assert totals["CNY"]["gross"] == 2 * AMOUNT + 20_003
    # Control: counting every credit note of the quarter (the void booking's too) would give another figure.
    every_refund = await db.scalar(
        sa.text(
            "SELECT sum(e.amount) FROM journal_entries e JOIN journals j ON j.id = e.journal_id WHERE j.kind = "
            "'credit_note' AND e.account = 'customer_funds_held' AND e.currency = 'CNY' AND j.created_at >= :s"
        ),
        {"s": CURRENT.start},
    )
    assert int(every_refund) == AMOUNT // 2 + AMOUNT != totals["CNY"]["refunds"]

    before = (
        await client.get("/api/v1/admin/tax-report", params={"quarter": tax_report.label(PREVIOUS)}, headers=admin)
    ).json()
    assert [(s["org_id"], s["gross"]) for s in before["suppliers"]] == [(c, 10_001)]
    assert {t["currency"]: t["net"] for t in before["totals"]} == {
        "CNY": (await _ledger_sums(db, PREVIOUS))["CNY"]["net"]
    }


async def test_the_tax_report_csv_has_a_row_per_supplier_and_a_totals_row(
    client: AsyncClient, db: AsyncSession
) -> None:
    m = await _build(client, db)
    admin = m["a"]["admin"]
    label = tax_report.label(CURRENT)
    report = (await client.get("/api/v1/admin/tax-report", params={"quarter": label}, headers=admin)).json()
    r = await client.get("/api/v1/admin/tax-report.csv", params={"quarter": label}, headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    assert f'filename="tax-report-{label}.csv"' in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == tax_report.CSV_HEADER
    data = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    suppliers = [d for d in data if d["org_id"] != "TOTAL"]
    totals = {d["currency"]: d for d in data if d["org_id"] == "TOTAL"}
    assert len(suppliers) == 3 and set(totals) == {"CNY", "EUR"}
    a = next(d for d in suppliers if d["org_id"] == m["a"]["asset"]["org_id"])
    assert (a["gross"], a["refunds"]) == ("1600.00", "400.00")
    sums = await _ledger_sums(db, CURRENT)
    assert totals["CNY"]["gross"] == f"{sums['CNY']['gross'] / 100:.2f}" == "1800.03"
    assert totals["EUR"]["net"] == f"{sums['EUR']['net'] / 100:.2f}"
    assert int(totals["CNY"]["settlements"]) == sum(
        t["settlements"] for t in report["totals"] if t["currency"] == "CNY"
    )


async def test_only_admins_read_the_tax_report(client: AsyncClient, db: AsyncSession) -> None:
    m = await market(client, db)
    for path in ("/api/v1/admin/tax-report", "/api/v1/admin/tax-report.csv"):
        assert (await client.get(path, headers=m["supplier"])).status_code == 403
        assert (await client.get(path)).status_code == 401
        bad = await client.get(path, params={"quarter": "2026-Q5"}, headers=m["admin"])
        assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "query.quarter"
    default = (await client.get("/api/v1/admin/tax-report", headers=m["admin"])).json()
    assert default["quarter"] == tax_report.label(CURRENT)
