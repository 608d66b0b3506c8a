"""What the programme operator's pages show (issue #18): the choices of the new-programme form (kinds, the
taxonomy's top-level process families in the reader's language, payment modes, partner programmes), the
statistics by kind and family, and a claim line's evidence as labelled rows. Never a raw code on a page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from listings.taxonomy import get_taxonomy
from marketplace.web.labels import ASSET_KINDS, N_, VERDICTS
from marketplace.web.voucher_labels import PAYMENT_MODE


def value(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a service result, whether it is a mapping, a dataclass or a Pydantic model."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def family_choices(locale: str) -> list[tuple[str, str]]:
    """The taxonomy's top-level processes (``machining``, ``testing`` ...), named in ``locale``."""
    tax = get_taxonomy()
    tops = sorted({p.code.split(".")[0] for p in tax.leaves()})
    return sorted(((code, tax.name(code, locale)) for code in tops if tax.is_process(code)), key=lambda c: c[1])


def kind_choices(gettext: Callable[[str], str]) -> list[tuple[str, str]]:
    return [(code, gettext(name)) for code, name in ASSET_KINDS.items()]


def mode_choices(gettext: Callable[[str], str]) -> list[tuple[str, str]]:
    return [(code, gettext(name)) for code, name in PAYMENT_MODE.items()]


def partner_choices(programmes: Iterable[Any], *, exclude: uuid.UUID | None = None) -> list[tuple[str, str]]:
    """Other active programmes, for the partner multi-select ("name (region prefix)")."""
    return [
        (str(p.id), f"{p.name} ({p.region_prefix})")
        for p in programmes
        if p.id != exclude and value(p, "status", "active") == "active"
    ]


def breakdown(rows: Iterable[Any], *, kind: str, locale: str, gettext: Callable[[str], str]) -> list[dict[str, Any]]:
    """Statistics rows ``{key, bookings, amount}`` with the key named: an asset kind or a process family."""
    tax = get_taxonomy()
    out = []
    for row in rows or ():
        key = str(value(row, "key", ""))
        if kind == "kind":
            name = gettext(ASSET_KINDS[key]) if key in ASSET_KINDS else gettext(N_("Other"))
        else:
            name = tax.name(key, locale) if key and tax.is_process(key) else gettext(N_("Other"))
        out.append({"name": name, "bookings": value(row, "bookings", 0), "amount": value(row, "amount", 0)})
    return out


# A line's evidence (``marketplace.vouchers.claims.evidence_of``): what each entry is called on the page, in order;
# a dotted key reads inside a nested object ("supplier.name").
EVIDENCE_LABELS: tuple[tuple[str, str], ...] = (
    ("service.title", N_("Service")),
    ("service.kind", N_("Kind")),
    ("supplier.name", N_("Supplier")),
    ("supplier.uscc", N_("Supplier's USCC")),
    ("buyer.name", N_("Buyer")),
    ("buyer.uscc", N_("Buyer's USCC")),
    ("booked_at", N_("Booked")),
    ("completed_at", N_("Completed")),
    ("settled_at", N_("Settled")),
    ("booking_amount", N_("Booking amount")),
    ("kept_amount", N_("Amount the buyer kept paying for")),
    ("voucher_share_booked", N_("Voucher share when booked")),
    ("invoice_number", N_("Invoice")),
    ("lab_report.test_standard", N_("Lab report: test standard")),
    ("lab_report.tested_on", N_("Lab report: tested on")),
    ("lab_report.verdict", N_("Lab report: verdict")),
    ("result_reference", N_("Result reference")),
)
_MONEY = ("booking_amount", "kept_amount", "voucher_share_booked")


def _dig(evidence: dict[str, Any], key: str) -> Any:
    found: Any = evidence
    for part in key.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


def evidence_rows(
    evidence: dict[str, Any],
    *,
    currency: str,
    gettext: Callable[[str], str],
    money: Callable[[int, str], str],
    when: Callable[[Any], str],
) -> list[tuple[str, str]]:
    """A line's evidence as (label, text) rows: times in the reader's zone, money with the currency, kinds and
    verdicts by name. Entries without a name (ids) are not shown."""
    rows: list[tuple[str, str]] = []
    for key, label in EVIDENCE_LABELS:
        raw = _dig(evidence, key)
        if raw is None or raw == "":
            continue
        if key.endswith("_at"):
            try:
                text = when(datetime.fromisoformat(str(raw)))
            except ValueError:
                text = str(raw)
        elif key in _MONEY:
            text = money(int(raw), str(evidence.get("currency") or currency))
        elif key == "service.kind":
            text = gettext(ASSET_KINDS.get(str(raw), N_("Other")))
        elif key == "lab_report.verdict":
            text = gettext(VERDICTS.get(str(raw), N_("Other")))
        else:
            text = str(raw)
        rows.append((gettext(label), text))
    return rows


def lab_report_link(evidence: dict[str, Any]) -> str | None:
    """The public verification page of the line's lab report, when the evidence names one."""
    digest = _dig(evidence, "lab_report.verify_hash")
    return f"/verify/{digest}" if digest else None
