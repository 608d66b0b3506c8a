"""A claim's documents: the CSV (UTF-8 with BOM, amounts in major units, formula-safe text) and the bilingual PDF
(programme, number, month, each line's evidence, totals, status), for its operators and admins only."""

from __future__ import annotations

import csv
import io
import uuid

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.vouchers import claim_pdf, claims
from marketplace.vouchers.claim_schemas import LineDecision
from tests.inspection.test_verify_helpers import pdf_contains
from tests.vouchers.test_claims import china, claim_market, lines_of, redeem


async def _claim_with_two_lines(client: AsyncClient, db: AsyncSession) -> tuple[dict, claims.ClaimView]:  # type: ignore[type-arg]
    m = await claim_market(client, db, bookings=2)
    await redeem(db, m, m["bookings"][0], amount=40_050, settled_at=china(2025, 4, 3))
    await redeem(db, m, m["bookings"][1], amount=30_000, settled_at=china(2025, 4, 9))
    op, pid = m["operator"], m["programme"].id
    claim, _ = await claims.build_claim(db, op, programme_id=pid, month="2025-04")
    first, second = await lines_of(db, claim.id)
    await claims.decide_line(
        db, op, programme_id=pid, claim_id=claim.id, line_id=first.id, data=LineDecision(decision="approve")
    )
    await claims.decide_line(
        db,
        op,
        programme_id=pid,
        claim_id=claim.id,
        line_id=second.id,
        data=LineDecision(decision="reject", reason='=HYPERLINK("http://x") not eligible'),
    )
    await db.commit()
    return m, await claims.claim_view(db, op, programme_id=pid, claim_id=claim.id)


async def test_the_csv_has_one_row_per_line_in_major_units_with_safe_text(
    client: AsyncClient, db: AsyncSession
) -> None:
    m, view = await _claim_with_two_lines(client, db)
    # A supplier's name a person typed, starting like a formula, must stay text in a spreadsheet.
    await db.execute(
        sa.text(
            "UPDATE voucher_claim_lines SET evidence = jsonb_set(evidence, '{supplier,name}', '\"=1+1\"') "
            "WHERE claim_id = :id"
        ),
        {"id": view.claim.id},
    )
    await db.commit()

    resp = await client.get(
        f"/api/v1/programmes/{view.programme.id}/claims/{view.claim.id}.csv", headers=m["programme_headers"]
    )

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert f'filename="{view.claim.number}.csv"' in resp.headers["content-disposition"]
    assert resp.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[0] == "Claim number 申领单号" and len(body) == 2
    col = {name: i for i, name in enumerate(header)}
    amounts = sorted(row[col["Voucher amount 补贴金额"]] for row in body)
    assert amounts == ["300.00", "400.50"]
    assert {row[col["Decision 审核"]] for row in body} == {"approved", "rejected"}
    assert all(row[col["Supplier 服务机构"]] == "'=1+1" for row in body)
    assert any(row[col["Reason 理由"]].startswith("'=HYPERLINK") for row in body)
    assert all(row[col["Month 月份"]] == "2025-04" and row[col["Currency 币种"]] == "CNY" for row in body)
    assert {row[col["Booking ID 订单号"]] for row in body} == {b["id"] for b in m["bookings"]}


def test_the_html_of_the_pdf_is_bilingual_with_lines_evidence_totals_and_status() -> None:
    from datetime import UTC, date, datetime

    from marketplace.vouchers.models import VoucherClaim, VoucherClaimLine, VoucherProgramme

    programme = VoucherProgramme(
        org_id=uuid.uuid4(),
        name="苏州市科技创新券",
        region_prefix="3205",
        eligible_kinds=["lab_service"],
        rate_bp=5000,
        cap_per_booking=1,
        cap_per_buyer_year=1,
        budget=1,
        valid_from=date(2025, 1, 1),
        valid_until=date(2025, 12, 31),
        payment_mode="advance",
    )
    claim = VoucherClaim(
        number="CLM-2025-000042",
        programme_id=programme.id,
        month=date(2025, 4, 1),
        currency="CNY",
        total=70_050,
        approved=40_050,
        status="decided",
        created_at=datetime(2025, 5, 1, 1, tzinfo=UTC),
    )
    evidence = {
        "booking_id": str(uuid.uuid4()),
        "supplier": {"id": "s", "name": "苏州检测中心", "uscc": "91320500MA1234567X"},
        "buyer": {"id": "b", "name": "Acme <script>", "uscc": "91320500MA7654321Y"},
        "service": {"title": "Tensile test", "kind": "lab_service", "process_codes": ["testing.mechanical"]},
        "completed_at": "2025-04-02T16:30:00+00:00",
        "settled_at": "2025-04-03T04:00:00+00:00",
        "booking_amount": 80_100,
        "invoice_number": "INV-2025-000007",
        "lab_report": {
            "id": "r",
            "verdict": "accepted",
            "tested_on": "2025-04-02",
            "test_standard": "GB/T 228.1-2021",
            "verify_hash": "ab" * 32,
        },
        "result_reference": None,
    }
    lines = [
        VoucherClaimLine(
            claim_id=claim.id,
            redemption_id=uuid.uuid4(),
            booking_id=uuid.uuid4(),
            amount=40_050,
            evidence=evidence,
            status="approved",
        ),
        VoucherClaimLine(
            claim_id=claim.id,
            redemption_id=uuid.uuid4(),
            booking_id=uuid.uuid4(),
            amount=30_000,
            evidence={**evidence, "lab_report": None, "result_reference": "Report no. 77"},
            status="rejected",
            reason="Out of scope",
        ),
    ]
    html = claim_pdf.claim_html(
        claims.ClaimView(claim=claim, programme=programme, lines=lines),
        operator={"name": "苏州市科学技术局", "uscc": None},
    )

    for text in (
        "创新券补贴申领单",
        "Innovation voucher claim",
        "苏州市科技创新券",
        "CLM-2025-000042",
        "2025-04",
        "苏州检测中心",
        "91320500MA1234567X",
        "INV-2025-000007",
        "GB/T 228.1-2021",
        "ab" * 32,
        "Report no. 77",
        "2025-04-03 00:30",  # 16:30 UTC is 00:30 the next day in China
        "400.50 CNY",  # the approved total
        "700.50 CNY",  # claimed
        "300.00 CNY",  # rejected
        "Decided, awaiting payment",
        "已审核，待付款",
        "Out of scope",
    ):
        assert text in html, text
    assert "<script>" not in html and "Acme &lt;script&gt;" in html


async def test_the_pdf_is_rendered_for_operators_and_admins(client: AsyncClient, db: AsyncSession) -> None:
    m, view = await _claim_with_two_lines(client, db)
    url = f"/api/v1/programmes/{view.programme.id}/claims/{view.claim.id}.pdf"

    resp = await client.get(url, headers=m["programme_headers"])
    by_admin = await client.get(url, headers=m["admin"])

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-")
    assert pdf_contains(resp.content, view.claim.number)  # in the metadata (keywords)
    assert by_admin.status_code == 200
