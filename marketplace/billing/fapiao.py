"""Fapiao data (issue #18, item 5): what a supplier needs to issue a fully digital VAT e-invoice (数电发票) for each
settled booking, and what the platform needs for its commission invoice to the supplier. Nothing is sent to a
tax platform: the data is exported (JSON, CSV) for the supplier's own invoicing software. docs/tax.md has the
format.

Every amount comes from the ledger: a **sales** fapiao totals the settlement journal's ``customer_funds_held``
debit (the kept amount, what the buyer finally pays); a **commission** fapiao totals its ``commission_revenue``
credit. Prices are tax-inclusive, so each line's tax is ``payments.invoices.tax_included(line, rate)`` and its
amount excluding tax the rest: the lines' amounts excluding tax plus their tax equal the ledger amount exactly.
The period is the settlement's day in China (Asia/Shanghai).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing import tax_codes
from marketplace.billing.fapiao_repository import FapiaoRepository
from marketplace.bookings.rules import field_error
from marketplace.core.settings import FapiaoTaxCode, Settings
from payments.invoices import tax_included

CHINA = ZoneInfo("Asia/Shanghai")
MAX_PERIOD_DAYS = 366
Kind = Literal["sales", "commission"]

# Chinese words for the fapiao (it is issued in Chinese whatever the reader's language).
UNITS_ZH = {"hour": "小时", "sample": "样品", "job": "项", "document": "份"}
LINE_ITEMS_ZH = {"setup_fee": "准备费"}
DOCUMENTS_ZH = {"coc": "合格证明", "fai": "首件检验报告", "material_cert": "材质证明"}


class FapiaoParty(BaseModel):
    org_id: uuid.UUID | None = Field(description="The organisation (none for the platform itself)")
    name: str = Field(description="The name on the fapiao: the registered legal name, else the display name")
    uscc: str = Field(description="统一社会信用代码 (the taxpayer identification number); empty if unknown")


class FapiaoLine(BaseModel):
    line_no: int
    item: str = Field(description="项目名称: the item name")
    specification: str = Field(description="规格型号: the listing's title, on the main line")
    tax_code: str = Field(description="商品和服务税收分类编码 (19 digits)")
    tax_short_name: str = Field(description="商品和服务分类简称, shown as *简称* before the item")
    quantity: float | None = Field(description="数量; none when the line is a lump sum")
    unit: str = Field(description="单位")
    amount_excl_tax: int = Field(description="金额 (excluding tax), minor units")
    tax_rate_bp: int = Field(description="税率 in basis points (600 = 6 %)")
    tax: int = Field(description="税额, minor units")
    amount: int = Field(description="价税合计 of the line (tax included), minor units")


class Fapiao(BaseModel):
    reference: str = Field(description="Stable reference: '<booking id>-S' (sales) or '<booking id>-C' (commission)")
    kind: Kind
    booking_id: uuid.UUID
    platform_invoice_id: uuid.UUID | None
    platform_invoice_number: str | None = Field(description="The platform's invoice to the buyer (INV-...), if any")
    journal_id: uuid.UUID = Field(description="The settlement journal the amounts come from")
    settled_at: datetime
    settlement_date: date = Field(description="The settlement's day in China (Asia/Shanghai)")
    currency: str
    seller: FapiaoParty
    buyer: FapiaoParty
    lines: list[FapiaoLine]
    amount_excl_tax: int
    tax: int
    total: int = Field(description="价税合计 = the kept amount (sales) or the commission, as posted in the ledger")


class FapiaoExport(BaseModel):
    org_id: uuid.UUID
    kind: Kind
    date_from: date = Field(alias="from", serialization_alias="from")
    date_to: date = Field(alias="to", serialization_alias="to")
    items: list[Fapiao]

    model_config = {"populate_by_name": True}


@dataclass(frozen=True)
class Period:
    """Days in China, ``first`` to ``last`` inclusive, and the UTC instants [start, end) they cover."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), CHINA).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), CHINA).astimezone(UTC)


def china_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


def quarter_of(day: date) -> Period:
    """The calendar quarter containing ``day``."""
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    following = date(first.year + (first.month == 10), (first.month + 3 - 1) % 12 + 1, 1)
    return Period(first, following - timedelta(days=1))


def period(first: date | None, last: date | None, *, today: date | None = None) -> Period:
    """The requested days; without them, the current quarter (China). Refuses a reversed or too long range."""
    current = quarter_of(today or china_today())
    chosen = Period(first or current.first, last or current.last)
    if chosen.last < chosen.first:
        raise field_error("to", "must be on or after from")
    if (chosen.last - chosen.first).days >= MAX_PERIOD_DAYS:
        raise field_error("to", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return chosen


def split_lines(*, amount: int, rate_bp: int, parts: list[dict[str, Any]]) -> list[FapiaoLine]:
    """Lines with their tax: each ``part`` gives item, specification, quantity, unit and its tax-inclusive
    ``amount``; tax = round half up of amount x rate / (10 000 + rate), the rest is the amount excluding tax."""
    if sum(int(p["amount"]) for p in parts) != amount:
        raise ValueError("fapiao lines must add up to the ledger amount")
    lines = []
    for n, p in enumerate((p for p in parts if int(p["amount"]) != 0), 1):
        line_amount = int(p["amount"])
        tax = tax_included(line_amount, rate_bp)
        lines.append(
            FapiaoLine(
                line_no=n,
                item=p["item"],
                specification=p.get("specification") or "",
                tax_code=p["code"].code,
                tax_short_name=p["code"].short_name,
                quantity=p.get("quantity"),
                unit=p.get("unit") or "",
                amount_excl_tax=line_amount - tax,
                tax_rate_bp=rate_bp,
                tax=tax,
                amount=line_amount,
            )
        )
    return lines


def _sales_parts(row: dict[str, Any], code: FapiaoTaxCode) -> list[dict[str, Any]]:
    """The platform invoice's lines when the buyer kept the whole booking; one lump-sum line for the kept amount
    after a credit note (a cancellation fee or a partial refund), or without a platform invoice (card path)."""
    kept, title = int(row["kept"]), str(row["title"] or "")
    items = row["line_items"] or []
    whole = row["invoice_total"] is not None and int(row["invoice_total"]) == kept
    if not whole or sum(int(i["amount"]) for i in items) != kept:
        return [{"item": code.item, "specification": title, "quantity": None, "unit": "", "code": code, "amount": kept}]
    parts = []
    for i in items:
        kind = i.get("kind")
        if kind == "quality_document":
            item = DOCUMENTS_ZH.get(str(i.get("document")), str(i.get("description") or ""))
        else:
            item = LINE_ITEMS_ZH.get(str(kind), code.item)
        main = kind in ("machine_time", "lab_samples", None)
        parts.append(
            {
                "item": item,
                "specification": title if main else "",
                "quantity": i.get("quantity"),
                "unit": UNITS_ZH.get(str(i.get("unit")), str(i.get("unit") or "")),
                "code": code,
                "amount": int(i["amount"]),
            }
        )
    return parts


def _party(org: dict[str, Any] | None, org_id: uuid.UUID) -> FapiaoParty:
    org = org or {}
    return FapiaoParty(
        org_id=org_id, name=str(org.get("legal_name") or org.get("name") or ""), uscc=str(org.get("uscc") or "")
    )


def _document(row: dict[str, Any], *, kind: Kind, seller: FapiaoParty, buyer: FapiaoParty) -> dict[str, Any]:
    settled_at: datetime = row["settled_at"]
    return {
        "reference": f"{row['booking_id']}-{'S' if kind == 'sales' else 'C'}",
        "kind": kind,
        "booking_id": row["booking_id"],
        "platform_invoice_id": row["invoice_id"],
        "platform_invoice_number": row["invoice_number"],
        "journal_id": row["journal_id"],
        "settled_at": settled_at,
        "settlement_date": settled_at.astimezone(CHINA).date(),
        "currency": row["currency"],
        "seller": seller,
        "buyer": buyer,
    }


def _fapiao(doc: dict[str, Any], lines: list[FapiaoLine]) -> Fapiao:
    return Fapiao(
        **doc,
        lines=lines,
        amount_excl_tax=sum(x.amount_excl_tax for x in lines),
        tax=sum(x.tax for x in lines),
        total=sum(x.amount for x in lines),
    )


async def fapiao_data(
    session: AsyncSession, settings: Settings, *, org_id: uuid.UUID, kind: Kind, days: Period
) -> list[Fapiao]:
    """The fapiao of the supplier's bookings settled in ``days``: ``sales`` (the supplier to the buyer, for the
    kept amount) or ``commission`` (the platform to the supplier). Settlements that kept nothing, or charged no
    commission, yield none."""
    repo = FapiaoRepository(session)
    rows = await repo.settlements(org_id, start=days.start, end=days.end)
    codes = tax_codes.merged(settings.fapiao_tax_codes)
    wanted = [r for r in rows if int(r["kept" if kind == "sales" else "commission"]) > 0]
    parties = await repo.parties({org_id} | {r["buyer_org_id"] for r in wanted if kind == "sales"})
    supplier = _party(parties.get(org_id), org_id)
    out = []
    for row in wanted:
        if kind == "sales":
            code = tax_codes.code_for(codes, tax_codes.family_of(row["process_codes"]))
            rate = int(row["tax_rate_bp"]) if row["tax_rate_bp"] is not None else settings.invoice_tax_rate_bp
            buyer = _party(parties.get(row["buyer_org_id"]), row["buyer_org_id"])
            doc = _document(row, kind=kind, seller=supplier, buyer=buyer)
            out.append(_fapiao(doc, split_lines(amount=int(row["kept"]), rate_bp=rate, parts=_sales_parts(row, code))))
        else:
            code = tax_codes.code_for(codes, tax_codes.COMMISSION)
            platform = FapiaoParty(org_id=None, name=settings.platform_legal_name, uscc=settings.platform_uscc)
            doc = _document(row, kind=kind, seller=platform, buyer=supplier)
            part = {"item": code.item, "specification": "", "quantity": None, "unit": "", "code": code}
            lines = split_lines(
                amount=int(row["commission"]),
                rate_bp=settings.fapiao_commission_tax_rate_bp,
                parts=[part | {"amount": int(row["commission"])}],
            )
            out.append(_fapiao(doc, lines))
    return out


# -- CSV ------------------------------------------------------------------------------------------------------

# One row per fapiao line; the fapiao's own fields repeat on each of its lines. Documented in docs/tax.md.
CSV_HEADER = (
    "reference", "kind", "booking_id", "platform_invoice_number", "settlement_date", "currency",
    "seller_name", "seller_uscc", "buyer_name", "buyer_uscc", "line_no", "item", "specification", "tax_code",
    "tax_short_name", "quantity", "unit", "amount_excl_tax", "tax_rate", "tax", "amount_incl_tax",
)  # fmt: skip


def rate_text(rate_bp: int) -> str:
    """A rate as the invoicing software takes it: 600 bp -> "0.06", 1300 -> "0.13", 150 -> "0.015"."""
    whole, rest = divmod(rate_bp, 10_000)
    return f"{whole}.{rest:04d}".rstrip("0").rstrip(".") if rest else str(whole)
