"""The printable invoice: one HTML page in both languages (UTF-8, a CJK-capable font stack), from the invoice
document (``payments.invoices.invoice_document``)."""

from __future__ import annotations

import html
from typing import Any

from payments.money import plain as money_text


def _money(amount: int, currency: str) -> str:
    return money_text(amount, currency)  # the currency's own decimals: "1,500 JPY", "12.50 CNY"


def render_html(doc: dict[str, Any]) -> str:
    """A printable invoice. UTF-8 and a CJK-capable font stack, so Chinese names render."""
    e = html.escape
    cur = doc["currency"]

    def party(p: dict[str, Any]) -> str:
        lines = [p.get("legal_name") or p.get("name") or ""]
        if p.get("legal_name") and p.get("name") and p["name"] != p["legal_name"]:
            lines.append(p["name"])
        if p.get("uscc"):
            lines.append(f"统一社会信用代码 USCC: {p['uscc']}")
        return "<br>".join(e(str(x)) for x in lines)

    rows = "".join(
        f"<tr><td>{e(str(i.get('description', '')))}</td><td class=n>{e(str(i.get('quantity') or ''))}</td>"
        f"<td class=n>{_money(int(i.get('unit_price') or 0), cur)}</td>"
        f"<td class=n>{_money(int(i.get('amount') or 0), cur)}</td></tr>"
        for i in doc["line_items"]
    )
    notes = "".join(
        f"<tr><td>{e(n['number'])} ({e(n['reason'])})</td><td class=n>-{_money(n['amount'], cur)}</td></tr>"
        for n in doc["credit_notes"]
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>Invoice 发票 {e(doc["number"])}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei",
  "Hiragino Sans GB", "Heiti SC", SimSun, "Helvetica Neue", Arial, sans-serif; margin: 2em; color: #111; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ccc; padding: .4em; }}
.n {{ text-align: right; white-space: nowrap; }} .parties {{ display: flex; gap: 4em; margin: 1em 0; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>Invoice 发票 {e(doc["number"])}</h1>
<p>Issued 开票日期: {doc["issued_at"]:%Y-%m-%d} · Due 付款期限: {doc["due_date"]} · Status 状态: {e(doc["status"])}</p>
<div class=parties><div><h3>Buyer 购买方</h3>{party(doc["buyer"])}</div>
<div><h3>Supplier 销售方</h3>{party(doc["supplier"])}</div></div>
<table><tr><th>Item 项目</th><th class=n>Qty 数量</th><th class=n>Unit price 单价</th><th class=n>Amount 金额</th></tr>
{rows}
<tr><td colspan=3>Subtotal 不含税金额</td><td class=n>{_money(doc["subtotal"], cur)}</td></tr>
<tr><td colspan=3>Tax 税额 ({doc["tax_rate_bp"] / 100:.2f} %)</td><td class=n>{_money(doc["tax"], cur)}</td></tr>
<tr><th colspan=3>Total 价税合计</th><th class=n>{_money(doc["total"], cur)}</th></tr>{_voucher_rows(doc)}</table>
{f"<h3>Credit notes 红字发票</h3><table>{notes}</table>" if notes else ""}
<p><strong>Amount due 应付金额: {_money(doc["amount_due"], cur)}</strong></p>
<p>Pay by bank transfer quoting the invoice number 请对公转账并注明发票号 {e(doc["number"])}.</p>
</body></html>"""


def _voucher_rows(doc: dict[str, Any]) -> str:
    """The split of an invoice paid in part by an innovation voucher: the programme's share and the buyer's."""
    payer = doc.get("voucher_payer")
    if not payer:
        return ""
    cur = doc["currency"]
    name = html.escape(str(payer.get("name") or ""))
    return (
        f"<tr><td colspan=3>Innovation voucher 创新券 ({name})</td>"
        f"<td class=n>-{_money(doc['voucher_share'], cur)}</td></tr>"
        f"<tr><th colspan=3>Buyer's share 购买方应付</th><th class=n>{_money(doc['buyer_share'], cur)}</th></tr>"
    )
