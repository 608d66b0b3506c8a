"""A claim's documents for the programme's own books and its bureau: the PDF (WeasyPrint, bilingual headings,
CJK font; ``pdf_templates/claim.html``) and the CSV rows (:mod:`marketplace.core.csv_export`).

Both show amounts in major units with the currency (``payments.money``) and times in China Standard Time.
Everything printed comes from the claim and its lines' evidence, copied when the claim was built.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from marketplace.core.csv_export import safe_cell
from marketplace.inspection import pdf
from marketplace.vouchers.claim_schemas import month_text
from marketplace.vouchers.claims import ClaimView
from marketplace.vouchers.models import LineStatus
from payments import money

TEMPLATES = Path(__file__).parent / "pdf_templates"
CHINA = ZoneInfo("Asia/Shanghai")

# The inspection room's stylesheet (pdf.css) is shared: same page, same fonts.
_env = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES)), jinja2.FileSystemLoader(str(pdf.TEMPLATES))]),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

CLAIM_STATUS = {
    "open": ("Open", "待审核"),
    "decided": ("Decided, awaiting payment", "已审核，待付款"),
    "paid": ("Paid", "已付款"),
}
LINE_STATUS = {"pending": ("Pending", "待审核"), "approved": ("Approved", "核准"), "rejected": ("Rejected", "核减")}
MODE = {
    "advance": ("Paid in advance to the platform", "预付（项目向平台兑付）"),
    "after_use": ("Reimbursed after use", "先用后补"),
}
KIND = {"machine": ("Machine time", "设备共享"), "lab_service": ("Lab test", "检验检测")}
VERDICT = {"accepted": ("accepted", "合格"), "rejected": ("rejected", "不合格")}


def _pair(table: dict[str, tuple[str, str]], key: str) -> dict[str, str]:
    en, zh = table.get(key, (key, key))
    return {"en": en, "zh": zh}


def _local(value: str | None) -> str | None:
    """An ISO instant from the evidence as a China Standard Time minute ("2026-03-05 14:30")."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def report_text(evidence: dict[str, Any]) -> str:
    """The lab report of a line (verdict, test date, standard, verification hash) or the result reference."""
    report = evidence.get("lab_report")
    if report:
        verdict = _pair(VERDICT, report.get("verdict") or "")
        parts = [
            f"Report 报告 {report.get('tested_on') or ''}",
            f"{verdict['en']} {verdict['zh']}",
            report.get("test_standard") or "",
            f"verify 验证 {report['verify_hash']}" if report.get("verify_hash") else "",
        ]
        return "; ".join(p for p in parts if p)
    return str(evidence.get("result_reference") or "—")


def _totals(view: ClaimView) -> dict[str, int]:
    rejected = sum(line.amount for line in view.lines if line.status == LineStatus.rejected)
    return {"total": view.claim.total, "approved": view.claim.approved, "rejected": rejected}


def claim_html(view: ClaimView, *, operator: dict[str, Any]) -> str:
    claim, currency = view.claim, view.claim.currency
    lines = []
    for line in view.lines:
        ev = line.evidence
        lines.append(
            {
                "booking_ref": ev.get("booking_id", str(line.booking_id))[:8].upper(),
                "invoice_number": ev.get("invoice_number"),
                "supplier": ev.get("supplier", {}),
                "buyer": ev.get("buyer", {}),
                "service": ev.get("service", {}),
                "kind": _pair(KIND, ev.get("service", {}).get("kind", "")),
                "completed_at": _local(ev.get("completed_at")),
                "settled_at": _local(ev.get("settled_at")),
                "report": report_text(ev),
                "booking_amount": money.plain(int(ev.get("booking_amount", 0)), currency),
                "amount": money.plain(line.amount, currency),
                "status": _pair(LINE_STATUS, line.status),
                "reason": line.reason,
            }
        )
    return _env.get_template("claim.html").render(
        claim=claim,
        programme=view.programme,
        operator=operator,
        month=month_text(claim.month),
        built_on=claim.created_at.astimezone(CHINA).date().isoformat(),
        paid_on=claim.paid_at.astimezone(CHINA).date().isoformat() if claim.paid_at else None,
        status=_pair(CLAIM_STATUS, claim.status),
        mode=_pair(MODE, view.programme.payment_mode),
        lines=lines,
        **{k: money.plain(v, currency) for k, v in _totals(view).items()},
    )


async def claim_pdf(view: ClaimView, *, operator: dict[str, Any]) -> bytes:
    return await pdf.render_pdf(claim_html(view, operator=operator))


CSV_HEADER = (
    "Claim number 申领单号",
    "Month 月份",
    "Line 序号",
    "Booking ID 订单号",
    "Invoice number 发票号",
    "Supplier 服务机构",
    "Supplier USCC 服务机构信用代码",
    "Buyer 用券企业",
    "Buyer USCC 用券企业信用代码",
    "Service 服务",
    "Kind 类别",
    "Completed 完成时间",
    "Settled 结算时间",
    "Lab report / result 检测报告 / 结果",
    "Currency 币种",
    "Booking amount 订单金额",
    "Voucher amount 补贴金额",
    "Decision 审核",
    "Reason 理由",
)


def csv_rows(view: ClaimView) -> list[list[object]]:
    """The header and one row per line; amounts in major units beside the currency column, times ISO 8601."""
    claim, currency = view.claim, view.claim.currency
    rows: list[list[object]] = [list(CSV_HEADER)]
    for n, line in enumerate(view.lines, start=1):
        ev = line.evidence
        supplier, buyer, service = ev.get("supplier", {}), ev.get("buyer", {}), ev.get("service", {})
        rows.append(
            [
                claim.number,
                month_text(claim.month),
                n,
                str(line.booking_id),
                safe_cell(ev.get("invoice_number")),
                safe_cell(supplier.get("name")),
                safe_cell(supplier.get("uscc")),
                safe_cell(buyer.get("name")),
                safe_cell(buyer.get("uscc")),
                safe_cell(service.get("title")),
                safe_cell(service.get("kind")),
                safe_cell(ev.get("completed_at")),
                safe_cell(ev.get("settled_at")),
                safe_cell(report_text(ev)),
                currency,
                money.input_value(int(ev.get("booking_amount", 0)), currency),
                money.input_value(line.amount, currency),
                line.status,
                safe_cell(line.reason),
            ]
        )
    return rows
