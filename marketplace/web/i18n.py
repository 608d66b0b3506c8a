"""Translations (Babel message catalogs) and locale-aware formatting for the web pages.

Catalogs live in ``marketplace/web/translations/<locale>/LC_MESSAGES/messages.po`` and are compiled to
``.mo`` at install time (``make``'s install step, the Dockerfile); if a compiled catalog is missing the
``.po`` is read directly, so a checkout always renders translated pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import NullTranslations, Translations

from payments.money import to_major

TRANSLATIONS = Path(__file__).parent / "translations"
LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "en"


def babel_name(locale: str) -> str:
    return locale.replace("-", "_")


@cache
def translations(locale: str) -> NullTranslations:
    directory = TRANSLATIONS / babel_name(locale) / "LC_MESSAGES"
    mo, po = directory / "messages.mo", directory / "messages.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return Translations(fh)
    if po.exists():
        import io

        with po.open("rb") as fh:
            catalog = read_po(fh, locale=babel_name(locale))
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer)
    return NullTranslations()


def negotiate(accept_language: str | None) -> str:
    """Pick zh-CN or en from an Accept-Language header (q-values respected)."""
    if not accept_language:
        return DEFAULT_LOCALE
    choices = []
    for part in accept_language.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        choices.append((weight, lang.strip().lower()))
    for _, lang in sorted(choices, reverse=True):
        if lang.startswith("zh"):
            return "zh-CN"
        if lang.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


def money(amount: int | None, currency: str, locale: str) -> str:
    """Minor units shown in the locale with the currency's own decimals (1500 JPY → ¥1,500; 1250 CNY → ¥12.50)."""
    if amount is None:
        return "–"
    return format_currency(to_major(amount, currency), currency, locale=Locale.parse(babel_name(locale)))


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


# Times are shown to the minute (never seconds), written the locale's way (CLDR patterns).
MINUTE_PATTERNS = {"zh-CN": "yyyy年M月d日 HH:mm", "en": "d MMM yyyy, HH:mm"}


def when(value: datetime | None, locale: str, tz: str | None) -> str:
    """A moment to the minute in zone ``tz`` (an unknown zone: UTC), e.g. "7 Dec 2026, 09:00"."""
    if value is None:
        return "–"
    if value.tzinfo is None:  # stored times are UTC; a naive one is read as UTC rather than the server's zone
        value = value.replace(tzinfo=UTC)
    pattern = MINUTE_PATTERNS.get(locale, MINUTE_PATTERNS[DEFAULT_LOCALE])
    return format_datetime(value.astimezone(zone(tz)), pattern, locale=Locale.parse(babel_name(locale)))


def zone_name(tz: str | None, locale: str, at: datetime | None = None) -> str:
    """A zone as people read it: its identifier and its name in the locale at moment ``at`` (summer time
    counts), e.g. "Asia/Shanghai / China Standard Time" or "Asia/Shanghai / 中国标准时间"."""
    info = zone(tz)
    moment = (at if at is not None and at.tzinfo is not None else datetime.now(UTC)).astimezone(info)
    name = get_timezone_name(moment, "long", locale=Locale.parse(babel_name(locale)))
    return f"{info.key} / {name}"


def site_when(value: datetime | None, locale: str, site_tz: str | None) -> str:
    """A moment that belongs to a site (a booking slot, availability) in the site's own zone, with the zone
    named: "7 Dec 2026, 09:00 (Asia/Shanghai / China Standard Time)"."""
    if value is None:
        return "–"
    return f"{when(value, locale, site_tz)} ({zone_name(site_tz, locale, value)})"
