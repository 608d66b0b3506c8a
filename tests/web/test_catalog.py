"""Every message the web UI can show has a Chinese translation, with the same placeholders: a zh-CN page
never falls back to English text."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent.parent
WEB = ROOT / "marketplace" / "web"
CATALOG = WEB / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _used_messages() -> dict[str, str]:
    """msgid → the file it is used in, as ``make i18n`` would extract them."""
    found: dict[str, str] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(WEB), METHOD_MAP, OPTIONS, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, filename)
    return found


def _catalog() -> dict[str, str]:
    with CATALOG.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    out: dict[str, str] = {}
    for m in catalog:
        if not m.id or m.fuzzy:
            continue
        # A plural message: each form's msgid maps to the (only, in Chinese) plural form's text.
        ids = (m.id,) if isinstance(m.id, str) else m.id
        assert m.string is not None, m.id
        text = m.string if isinstance(m.string, str) else m.string[0]
        for msgid in ids:
            out[str(msgid)] = str(text)
    return out


def test_every_message_used_by_the_web_ui_has_a_chinese_translation() -> None:
    catalog = _catalog()
    missing = {msgid: where for msgid, where in _used_messages().items() if not catalog.get(msgid)}
    assert not missing, f"{len(missing)} messages without a zh_CN translation: {sorted(missing.items())[:20]}"


def test_translations_keep_every_placeholder() -> None:
    broken = {
        msgid: text
        for msgid, text in _catalog().items()
        if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(text))
    }
    assert not broken, broken


def test_extraction_finds_the_messages_of_templates_and_code() -> None:
    """The control: the extractor really reads both kinds of file (an empty extraction would pass the rest)."""
    used = _used_messages()
    assert any(where.endswith(".html") for where in used.values())
    assert any(where.endswith(".py") for where in used.values())
    assert len(used) > 300


def test_the_catalogs_compile_without_placeholder_errors() -> None:
    """``pybabel compile`` (run by ``make``'s install step) refuses a catalog whose python-format message and
    translation disagree, e.g. a message starting with "% of": a fresh machine would fail to install."""
    for locale in ("zh_CN", "en"):
        path = WEB / "translations" / locale / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        problems = [(message.id, [str(e) for e in errors]) for message, errors in catalog.check()]
        assert not problems, (locale, problems)
