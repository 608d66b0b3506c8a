"""The line items of a whole-booking invoice, from the booking's facts (``payments.invoices`` issues it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

QUALITY_DOCUMENT_NAMES = {
    "coc": "Certificate of conformance",
    "fai": "First-article inspection report",
    "material_cert": "Material certificate (EN 10204 3.1)",
}


def _utc_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def line_items(facts: dict[str, Any], amount: int) -> list[dict[str, Any]]:
    """The invoice's lines. Each carries a ``kind`` (``machine_time``, ``setup_fee``, ``lab_samples``,
    ``quality_document`` with its ``document``: coc, fai, material_cert) and the facts its words are made of
    (``title``, ``start_at``/``end_at`` in ISO 8601 UTC, ``samples``, ``drop_off_date``), so a reader can word it
    in any language; ``description`` is the English text the API and older invoices show."""
    stored_title = facts.get("title") or ""
    title = stored_title or "Booking"
    setup_fee = int(facts.get("setup_fee") or 0)
    if facts.get("kind") == "lab_service" and facts.get("samples"):
        samples = int(facts["samples"])
        drop_off = facts.get("drop_off_date")
        return [
            {
                "kind": "lab_samples",
                "title": stored_title,
                "samples": samples,
                "drop_off_date": drop_off.isoformat() if drop_off is not None else None,
                "description": f"{title}: {samples} samples, drop-off {drop_off}",
                "quantity": samples,
                "unit": "sample",
                "unit_price": int(facts.get("unit_price") or 0),
                "amount": amount,
            }
        ]
    items = []
    documents = list(facts.get("quality_documents") or ())
    start, end = facts.get("start_at"), facts.get("end_at")
    hours = round((end - start).total_seconds() / 3600, 2) if start and end else None
    when = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC" if start and end else ""
    items.append(
        {
            "kind": "machine_time",
            "title": stored_title,
            "start_at": _utc_iso(start),
            "end_at": _utc_iso(end),
            "description": f"{title}: machine time {when}".strip(),
            "quantity": hours,
            "unit": "hour",
            "unit_price": int(facts.get("unit_price") or 0),
            "amount": amount - setup_fee - sum(int(price) for _, price in documents),
        }
    )
    if setup_fee:
        items.append(
            {
                "kind": "setup_fee",
                "description": "Setup fee",
                "quantity": 1,
                "unit": "job",
                "unit_price": setup_fee,
                "amount": setup_fee,
            }
        )
    for document, price in documents:  # one line per ordered quality document
        name = QUALITY_DOCUMENT_NAMES.get(document, document)
        line = {"kind": "quality_document", "document": document, "description": name, "quantity": 1}
        items.append(line | {"unit": "document", "unit_price": int(price), "amount": int(price)})
    return items
