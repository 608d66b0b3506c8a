"""The platform's quarterly tax report (issue #18, item 6; State Council Decree 810 of 20 June 2025, 互联网平台企业
涉税信息报送规定: a platform reports its sellers' identity and income of each quarter in the month after it).

Per supplier and currency: identity (legal name, USCC, country, contact: the first owner's e-mail and name) and
income through the platform in the quarter (days in China, Asia/Shanghai), every figure a sum of ledger journals
posted in the quarter:

* kept = the settlement journals' ``customer_funds_held`` debits (what buyers finally paid);
* commission = their ``commission_revenue`` credits; net = their ``supplier_payable`` credits (kept − commission);
* refunds = the credit-note journals' ``customer_funds_held`` debits, for bookings that settled;
* gross = kept + refunds.

The totals (per currency) are sums of the same journal entries, so they tie to the ledger.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import date

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.billing.fapiao import Period, china_today, quarter_of
from marketplace.billing.tax_report_repository import TaxReportRepository
from marketplace.bookings.rules import field_error

_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")


class SupplierIncome(BaseModel):
    org_id: uuid.UUID
    name: str
    legal_name: str | None
    uscc: str | None = Field(description="统一社会信用代码")
    country: str
    contact_email: str | None = Field(description="The organisation's first owner's e-mail")
    contact_name: str | None
    currency: str
    settlements: int = Field(description="Settlement journals of the quarter (bookings that kept something)")
    gross: int = Field(description="kept + refunds, minor units")
    refunds: int
    commission: int
    net: int = Field(description="gross − refunds − commission: the supplier_payable credits")


class CurrencyTotals(BaseModel):
    currency: str
    suppliers: int
    settlements: int
    gross: int
    refunds: int
    commission: int
    net: int


class TaxReport(BaseModel):
    quarter: str
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    suppliers: list[SupplierIncome]
    totals: list[CurrencyTotals]


def parse_quarter(text: str | None, *, today: date | None = None) -> tuple[str, Period]:
    """``2026-Q4`` -> (its label, its days); none = the current quarter in China."""
    if text is None:
        days = quarter_of(today or china_today())
        return label(days), days
    match = _QUARTER.match(text.strip())
    if match is None:
        raise field_error("quarter", "give a quarter as YYYY-Qn, e.g. 2026-Q4")
    year, q = int(match.group(1)), int(match.group(2))
    if year < 2000:
        raise field_error("quarter", "give a quarter as YYYY-Qn, e.g. 2026-Q4")
    return text.strip(), quarter_of(date(year, 3 * q - 2, 1))


def label(days: Period) -> str:
    return f"{days.first.year}-Q{(days.first.month - 1) // 3 + 1}"


def previous(days: Period) -> Period:
    return quarter_of(date.fromordinal(days.first.toordinal() - 1))


async def tax_report(session: AsyncSession, *, quarter: str, days: Period) -> TaxReport:
    rows = await TaxReportRepository(session).supplier_totals(start=days.start, end=days.end)
    suppliers = [
        SupplierIncome(
            org_id=r["org_id"],
            name=r["name"],
            legal_name=r["legal_name"],
            uscc=r["uscc"],
            country=r["country"],
            contact_email=r["contact_email"],
            contact_name=r["contact_name"],
            currency=r["currency"],
            settlements=int(r["settlements"]),
            gross=int(r["kept"]) + int(r["refunds"]),
            refunds=int(r["refunds"]),
            commission=int(r["commission"]),
            net=int(r["net"]),
        )
        for r in rows
    ]
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in suppliers:
        t = sums[s.currency]
        t["suppliers"] += 1
        for field in ("settlements", "gross", "refunds", "commission", "net"):
            t[field] += getattr(s, field)
    totals = [CurrencyTotals(currency=cur, **t) for cur, t in sorted(sums.items())]
    return TaxReport(quarter=quarter, date_from=days.first, date_to=days.last, suppliers=suppliers, totals=totals)


# One row per supplier and currency, then one TOTAL row per currency. Documented in docs/tax.md.
CSV_HEADER = (
    "quarter", "org_id", "legal_name", "name", "uscc", "country", "contact_email", "contact_name", "currency",
    "settlements", "gross", "refunds", "commission", "net",
)  # fmt: skip
