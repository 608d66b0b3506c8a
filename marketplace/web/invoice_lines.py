"""An invoice's line items in the reader's language. Lines are stored with a ``kind`` and the facts their words
are made of (``payments.invoices.line_items``); the page words them from those. A line without a kind (an
invoice issued before lines carried one) shows its stored text, except the plain "Setup fee", which is
recognised."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from marketplace.web import i18n
from marketplace.web.core import N_
from marketplace.web.quality_labels import quality_document_label

logger = logging.getLogger(__name__)

Translate = Callable[[str], str]

MACHINE_TIME = N_("%(title)s: machine time %(when)s")
LAB_SAMPLES = N_("%(title)s: %(samples)s samples, drop-off %(date)s")
SETUP_FEE = N_("Setup fee")
UNTITLED = N_("Booking")
TIME_RANGE = N_("%(start)s–%(end)s UTC")
# An instalment of a booking paid in parts (a deposit, milestones: issue #18 item 4).
INSTALMENT = N_("Instalment %(n)s: %(name)s, %(percent)s of %(booking)s")
INSTALMENT_CAPTION = N_(
    "This invoice is instalment %(n)s of its booking: %(name)s, %(percent)s of the booking's amount."
)
# The two instalments of a deposit listing; a milestone's label is the factory's own words, shown as written.
INSTALMENT_LABELS = {"deposit": N_("Deposit"), "balance": N_("Balance payment")}

_STORED_SETUP_FEE = "Setup fee"


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _day(value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return ""


def _when(item: Mapping[str, Any], gettext: Translate) -> str | None:
    start, end = _moment(item.get("start_at")), _moment(item.get("end_at"))
    if start is None or end is None:
        return None
    end_text = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return gettext(TIME_RANGE) % {"start": f"{start:%Y-%m-%d %H:%M}", "end": end_text}


def instalment_label(label: object, gettext: Translate) -> str:
    """An instalment's name: "Deposit" and "Balance" translated, a milestone's label as the factory wrote it."""
    text = str(label or "")
    return gettext(INSTALMENT_LABELS[text]) if text in INSTALMENT_LABELS else text


def _instalment_words(item: Mapping[str, Any], gettext: Translate) -> dict[str, str]:
    return {
        "n": str(item.get("n") or ""),
        "name": instalment_label(item.get("label"), gettext),
        "percent": f"{item.get('percent') or 0}%",
    }


def instalment_caption(items: object, gettext: Translate) -> str | None:
    """Which instalment of its booking an invoice is (None for a whole-booking invoice)."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, Mapping) and item.get("kind") == "instalment":
            return gettext(INSTALMENT_CAPTION) % _instalment_words(item, gettext)
    return None


def line_text(item: Mapping[str, Any], gettext: Translate) -> str:
    """One line's description in the language of ``gettext``; the stored text for a line without a kind."""
    kind = item.get("kind")
    if kind == "instalment":  # worded from the booking's own facts (machine time or lab samples)
        facts = {**item, "kind": "machine_time" if item.get("start_at") else "lab_samples"}
        booking = line_text(facts, gettext) if item.get("start_at") or item.get("drop_off_date") else ""
        words = _instalment_words(item, gettext)
        return gettext(INSTALMENT) % {**words, "booking": booking or str(item.get("title") or "") or gettext(UNTITLED)}
    stored = str(item.get("description") or "")
    title = str(item.get("title") or "") or gettext(UNTITLED)
    if kind == "setup_fee" or (kind is None and stored == _STORED_SETUP_FEE):
        return gettext(SETUP_FEE)
    if kind == "machine_time":
        when = _when(item, gettext)
        if when is None:
            return title
        return gettext(MACHINE_TIME) % {"title": title, "when": when}
    if kind == "lab_samples":
        return gettext(LAB_SAMPLES) % {
            "title": title,
            "samples": item.get("samples") or item.get("quantity") or "",
            "date": _day(item.get("drop_off_date")),
        }
    if kind == "quality_document":
        return quality_document_label(item.get("document"), gettext)
    if kind is not None:
        logger.warning("no wording for invoice line kind %r; showing its stored text", kind)
    return stored


def line_texts(locale: str) -> Callable[[Mapping[str, Any]], str]:
    """A function wording one line item in ``locale`` (the template helper ``line_text``)."""
    gettext = i18n.translations(locale).gettext

    def worded(item: Mapping[str, Any]) -> str:
        return line_text(item, gettext)

    return worded


def lines_summary(items: object, gettext: Translate) -> str:
    """Every line of an invoice in one cell (a CSV column): the descriptions joined by "; "."""
    if not isinstance(items, list):
        return ""
    return "; ".join(line_text(i, gettext) for i in items if isinstance(i, Mapping))
