"""A notification reads in the reader's language: the stored text is the account's language when it was sent,
and a page in another language renders it again from its kind and data; the data carry codes, not words."""

from __future__ import annotations

import uuid

from marketplace.notifications.models import Notification
from marketplace.notifications.service import render, shown_in

DATA: dict[str, object] = {
    "title": "5-axis cell",
    "when": "2026-12-07 01:00 UTC",
    "supplier": "Acme",
    "refund": "¥0.00",
    "cancelled_by": "buyer",
}


def _stored(kind: str, locale: str, data: dict[str, object] | None = DATA) -> Notification:
    subject, body = render(kind, locale, dict(data or {}))
    return Notification(user_id=uuid.uuid4(), kind=kind, subject=subject, body=body, locale=locale, data=data)


def test_an_english_notification_reads_in_chinese_on_a_chinese_page() -> None:
    note = _stored("booking.confirmed", "en")
    assert note.subject == "Booking confirmed: 5-axis cell"
    subject, body = shown_in(note, "zh-CN")
    assert subject == "预订已确认：5-axis cell"
    assert body.startswith("Acme 已确认")


def test_the_stored_text_is_kept_in_its_own_language_and_for_kinds_without_a_template() -> None:
    note = _stored("booking.confirmed", "zh-CN")
    assert shown_in(note, "zh-CN") == (note.subject, note.body)
    odd = Notification(user_id=uuid.uuid4(), kind="custom.kind", subject="S", body="B", locale="en", data={})
    assert shown_in(odd, "zh-CN") == ("S", "B")


def test_who_cancelled_is_named_in_the_readers_language() -> None:
    _subject, zh = render("booking.cancelled", "zh-CN", DATA)
    _subject, en = render("booking.cancelled", "en", DATA)
    assert "已被买方取消" in zh and "buyer" not in zh
    assert "cancelled by the buyer" in en


def test_a_lab_booking_names_its_samples_in_the_readers_language() -> None:
    lab = {**DATA, "when": "2026-12-09 (3 samples)", "samples": 3, "drop_off_date": "2026-12-09"}
    assert "2026-12-09（3 件样品）" in render("booking.confirmed", "zh-CN", lab)[1]
    assert "2026-12-09 (3 samples)" in render("booking.confirmed", "en", lab)[1]
