"""Translations (Babel message catalogs) and locale-aware formatting for the web pages.

Catalogs live in ``marketplace/web/translations/<locale>/LC_MESSAGES/messages.po`` and are compiled to
``.mo`` at install time (``make``'s install step, the Dockerfile); if a compiled catalog is missing the
``.po`` is read directly, so a checkout always renders translated pages.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime
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


def when(value: datetime | None, locale: str, tz: str | None) -> str:
    if value is None:
        return "–"
    return format_datetime(value.astimezone(zone(tz)), "medium", locale=Locale.parse(babel_name(locale)))
