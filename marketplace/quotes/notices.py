"""Notification texts of the quotes room (en, zh-CN), registered into the notification templates at import.

The data of every quote notification: ``title`` (the listing), ``amount`` (the latest version's total with its
currency), ``when`` (the slot or the drop-off day), ``valid_until`` and, for a decline, ``reason``. The buyer's
name is never part of a text a supplier receives."""

from __future__ import annotations

from marketplace.notifications.service import TEMPLATES

QUOTE_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("quote.submitted", "en"): (
        "New quote for your request: {title}",
        "A factory quoted {amount} for {title} ({when}). The offer is valid until {valid_until}.",
    ),
    ("quote.submitted", "zh-CN"): (
        "您的需求收到新报价：{title}",
        "有工厂为 {title}（{when}）报价 {amount}，报价有效期至 {valid_until}。",
    ),
    ("quote.countered", "en"): (
        "Counter-offer: {title}",
        "The other party proposes {amount} for {title} ({when}), valid until {valid_until}. "
        "Accept, decline or counter it.",
    ),
    ("quote.countered", "zh-CN"): (
        "收到还价：{title}",
        "对方提出 {title}（{when}）的新条件：{amount}，有效期至 {valid_until}。您可以接受、拒绝或再次还价。",
    ),
    ("quote.accepted", "en"): (
        "Quote accepted: {title}",
        "The quote of {amount} for {title} ({when}) was accepted and the booking has been placed.",
    ),
    ("quote.accepted", "zh-CN"): (
        "报价已被接受：{title}",
        "{title}（{when}）的报价 {amount} 已被接受，预订已生成。",
    ),
    ("quote.declined", "en"): (
        "Quote declined: {title}",
        "The quote of {amount} for {title} ({when}) was declined. Reason: {reason}",
    ),
    ("quote.declined", "zh-CN"): (
        "报价被拒绝：{title}",
        "{title}（{when}）的报价 {amount} 被拒绝。原因：{reason}",
    ),
    ("quote.withdrawn", "en"): (
        "Quote withdrawn: {title}",
        "The quote of {amount} for {title} ({when}) was withdrawn.",
    ),
    ("quote.withdrawn", "zh-CN"): (
        "报价已撤回：{title}",
        "{title}（{when}）的报价 {amount} 已被撤回。",
    ),
    ("quote.expired", "en"): (
        "Quote expired: {title}",
        "The quote of {amount} for {title} ({when}) expired on {valid_until} without an answer.",
    ),
    ("quote.expired", "zh-CN"): (
        "报价已过期：{title}",
        "{title}（{when}）的报价 {amount} 已于 {valid_until} 过期，未获答复。",
    ),
    ("quote.closed", "en"): (
        "Request booked elsewhere: {title}",
        "The buyer accepted another offer for this request, so your quote for {title} ({when}) is closed.",
    ),
    ("quote.closed", "zh-CN"): (
        "需求已选定其他报价：{title}",
        "买方已接受该需求的其他报价，您对 {title}（{when}）的报价已关闭。",
    ),
}

TEMPLATES.update(QUOTE_TEMPLATES)
