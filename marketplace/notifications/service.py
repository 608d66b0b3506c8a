"""Notifications: stored per user, rendered in the recipient's locale, delivered by e-mail (SMTP, or the
log in development) from a Celery task enqueued after commit."""

from __future__ import annotations

import logging
import smtplib
import uuid
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import NotFound
from marketplace.core.jobs import enqueue
from marketplace.core.settings import Settings
from marketplace.core.sqltypes import utcnow
from marketplace.notifications.models import Notification
from marketplace.notifications.repository import NotificationRepository

logger = logging.getLogger(__name__)

# (kind, locale) -> (subject, body); bodies are str.format templates over the notification data.
TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {
    ("booking.requested", "en"): (
        "New booking request: {title}",
        "{buyer} requests {title} ({when}). Please accept or decline by {accept_by}.",
    ),
    ("booking.requested", "zh-CN"): (
        "新的预订请求：{title}",
        "{buyer} 预订了 {title}（{when}），请在 {accept_by} 前确认或拒绝。",
    ),
    ("booking.confirmed", "en"): (
        "Booking confirmed: {title}",
        "{supplier} confirmed your booking of {title} ({when}).",
    ),
    ("booking.confirmed", "zh-CN"): ("预订已确认：{title}", "{supplier} 已确认您对 {title} 的预订（{when}）。"),
    ("booking.declined", "en"): ("Booking declined: {title}", "{supplier} declined your booking of {title} ({when})."),
    ("booking.declined", "zh-CN"): ("预订被拒绝：{title}", "{supplier} 拒绝了您对 {title} 的预订（{when}）。"),
    ("booking.expired", "en"): ("Booking expired: {title}", "The booking of {title} ({when}) expired."),
    ("booking.expired", "zh-CN"): ("预订已过期：{title}", "{title} 的预订（{when}）已过期。"),
    ("booking.cancelled", "en"): (
        "Booking cancelled: {title}",
        "The booking of {title} ({when}) was cancelled by the {cancelled_by}. Refund: {refund}.",
    ),
    ("booking.cancelled", "zh-CN"): (
        "预订已取消：{title}",
        "{title} 的预订（{when}）已被{cancelled_by}取消。退款：{refund}。",
    ),
    ("booking.in_progress", "en"): ("Work started: {title}", "Work on {title} ({when}) has started."),
    ("booking.in_progress", "zh-CN"): ("已开工：{title}", "{title}（{when}）已开始加工。"),
    ("booking.completed", "en"): (
        "Work completed: {title}",
        "{supplier} marked {title} ({when}) as completed. Confirm it, or dispute it within {dispute_hours} hours.",
    ),
    ("booking.completed", "zh-CN"): (
        "已完工：{title}",
        "{supplier} 已将 {title}（{when}）标记为完成。请确认，或在 {dispute_hours} 小时内提出异议。",
    ),
    ("booking.settled", "en"): ("Booking settled: {title}", "The booking of {title} ({when}) is settled."),
    ("booking.settled", "zh-CN"): ("预订已结算：{title}", "{title} 的预订（{when}）已结算。"),
    ("booking.disputed", "en"): ("Booking disputed: {title}", "The buyer disputed {title} ({when}): {reason}"),
    ("booking.disputed", "zh-CN"): ("预订有争议：{title}", "买方对 {title}（{when}）提出异议：{reason}"),
    ("booking.resolved", "en"): ("Dispute resolved: {title}", "The dispute on {title} was resolved. Refund: {refund}."),
    ("booking.resolved", "zh-CN"): ("争议已解决：{title}", "{title} 的争议已解决。退款：{refund}。"),
    ("booking.released", "en"): (
        "Remaining time released: {title}",
        "{supplier} finished {title} ({when}) early and released the remaining machine time. {reason}",
    ),
    ("booking.released", "zh-CN"): (
        "剩余时段已释放：{title}",
        "{supplier} 已提前完成 {title}（{when}），并释放了剩余的设备时段。{reason}",
    ),
    ("booking.reminder", "en"): ("Tomorrow: {title}", "Reminder: {title} starts {when}."),
    ("booking.reminder", "zh-CN"): ("明天开始：{title}", "提醒：{title} 将于 {when} 开始。"),
    ("request.matched", "en"): ("A new request matches {title}", "An open request for {process} matches {title}."),
    ("request.matched", "zh-CN"): ("有新的需求匹配 {title}", "一个 {process} 的需求与 {title} 匹配。"),
    ("capacity.published", "en"): (
        "New capacity for your request",
        "{title} was published and matches your open request.",
    ),
    ("capacity.published", "zh-CN"): ("有新产能匹配您的需求", "{title} 已上架，与您的需求匹配。"),
    ("org.invitation", "en"): (
        "Invitation to join {org}",
        "{inviter} invites you to join {org} as {role}.\n\nTo accept, sign in with this e-mail address and open:\n"
        "{link}\n\nThe link works once and expires on {expires}. If you did not expect this, ignore this e-mail.",
    ),
    ("org.invitation", "zh-CN"): (
        "邀请您加入 {org}",
        "{inviter} 邀请您以{role}身份加入 {org}。\n\n请使用本邮箱地址登录后打开以下链接接受邀请：\n"
        "{link}\n\n该链接仅可使用一次，将于 {expires} 失效。如非本人预期，请忽略此邮件。",
    ),
    # E-mail links (marketplace.auth.service): sent straight to the address, never stored as notifications.
    ("auth.verify_email", "en"): (
        "Confirm your e-mail address",
        "Hello {name},\n\nplease confirm your e-mail address by opening this link (valid for 48 hours):\n\n{link}\n\n"
        "If you did not create an account, ignore this e-mail.",
    ),
    ("auth.verify_email", "zh-CN"): (
        "请确认您的电子邮箱",
        "{name}，您好：\n\n请打开以下链接确认您的电子邮箱（48 小时内有效）：\n\n{link}\n\n如果您没有注册账户，请忽略本邮件。",
    ),
    ("auth.reset_password", "en"): (
        "Reset your password",
        "Hello {name},\n\nto choose a new password, open this link (valid for 1 hour, usable once):\n\n{link}\n\n"
        "If you did not ask for this, ignore this e-mail: your password stays as it is.",
    ),
    ("auth.reset_password", "zh-CN"): (
        "重置您的密码",
        "{name}，您好：\n\n请打开以下链接设置新密码（1 小时内有效，仅可使用一次）：\n\n{link}\n\n"
        "如果这不是您本人的操作，请忽略本邮件，您的密码不会改变。",
    ),
}


class _Defaults(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


# Who cancelled, as the sentence names them in each language.
_PARTIES = {
    "buyer": {"en": "buyer", "zh-CN": "买方"},
    "supplier": {"en": "supplier", "zh-CN": "供应方"},
    "admin": {"en": "platform", "zh-CN": "平台"},
    "system": {"en": "platform", "zh-CN": "平台"},
}


def _values(data: dict[str, Any], locale: str) -> _Defaults:
    """The template's values in ``locale``: the data hold codes and numbers, never words of one language."""
    values = _Defaults(data)
    party = _PARTIES.get(str(data.get("cancelled_by") or ""))
    if party:
        values["cancelled_by"] = party.get(locale, party["en"])
    if data.get("samples") is not None and data.get("drop_off_date"):
        drop_off, samples = data["drop_off_date"], data["samples"]
        values["when"] = f"{drop_off}（{samples} 件样品）" if locale == "zh-CN" else f"{drop_off} ({samples} samples)"
    return values


def render(kind: str, locale: str, data: dict[str, Any]) -> tuple[str, str]:
    subject, body = TEMPLATES.get((kind, locale)) or TEMPLATES.get((kind, "en")) or (kind, kind)
    values = _values(data, locale)
    return subject.format_map(values), body.format_map(values)


def shown_in(note: Notification, locale: str) -> tuple[str, str]:
    """A stored notification's subject and body in the reader's language. The stored text is in the account's
    language when it was sent (that is what the e-mail said); a page in another language renders it again from
    its kind and data when a template exists for that language."""
    if note.locale == locale or note.data is None or (note.kind, locale) not in TEMPLATES:
        return note.subject, note.body
    return render(note.kind, locale, note.data)


async def notify_org(
    session: AsyncSession, org_id: uuid.UUID, *, kind: str, data: dict[str, Any], email: bool = True
) -> int:
    """A notification for every member of the organisation, in each member's own locale; ``email=False`` keeps
    it in-app only (new messages: their e-mail is the unread digest)."""
    repo = NotificationRepository(session)
    count = 0
    for user_id, locale in await repo.active_member_locales(org_id):
        subject, body = render(kind, locale, data)
        note = await repo.add(
            Notification(user_id=user_id, kind=kind, subject=subject, body=body, locale=locale, data=data)
        )
        if email:
            await enqueue(session, "notifications.deliver", str(note.id))
        count += 1
    return count


async def page(
    *,
    session: AsyncSession,
    user_id: uuid.UUID | None,
    unread: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Notification]:
    """A user's notifications, newest first (keyset pagination: ``after`` is the last one seen)."""
    return await NotificationRepository(session).page(user_id, unread=unread, after=after, limit=limit)


async def mark_read(*, session: AsyncSession, user_id: uuid.UUID | None, notification_id: uuid.UUID) -> Notification:
    """Mark the user's own notification read (the first read time stays); another user's answers 404."""
    note = await NotificationRepository(session).get(notification_id)
    if note is None or note.user_id != user_id:
        raise NotFound("Notification not found.")
    note.read_at = note.read_at or utcnow()
    await session.flush()
    return note


async def mark_all_read(session: AsyncSession, *, user_id: uuid.UUID | None) -> int:
    """Mark every unread notification of the user read; returns how many were unread."""
    return await NotificationRepository(session).mark_all_read(user_id, utcnow())


async def unread_count(session: AsyncSession, *, user_id: uuid.UUID | None) -> int:
    return await NotificationRepository(session).unread_count(user_id)


def send_email(settings: Settings, *, to: str, subject: str, body: str) -> None:
    if not settings.smtp_host:
        logger.info("e-mail (no SMTP configured) to=%s subject=%s\n%s", to, subject, body)
        return
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(msg)


async def deliver(session: AsyncSession, settings: Settings, notification_id: uuid.UUID) -> bool:
    """Send one notification by e-mail; idempotent (a delivered notification is not sent again)."""
    found = await NotificationRepository(session).with_email_for_update(notification_id)
    if found is None:
        return False
    note, email = found
    if note.delivered_at is not None:
        return False
    note.delivery_attempts += 1
    send_email(settings, to=email, subject=note.subject, body=note.body)
    note.delivered_at = utcnow()
    await session.flush()
    return True
