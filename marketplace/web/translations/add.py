"""Merge new translations into the catalogs without re-extracting everything:

    python -m marketplace.web.translations.add FRAGMENT.po [FRAGMENT.po ...]

A fragment is a small .po file of ``msgid``/``msgstr`` pairs (the msgstr in Simplified Chinese). Each message
is added to (or updated in) the zh_CN catalog, and added untranslated to the en catalog (English pages show
the msgid). The catalogs are rewritten sorted, under a file lock, so several people can add at once;
``make i18n`` later re-extracts and drops messages no longer used.
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent
LOCK = HERE / ".add.lock"


def _read(path: Path, locale: str) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _write(path: Path, catalog: Catalog) -> None:
    tmp = path.with_suffix(".po.tmp")
    with tmp.open("wb") as fh:
        write_po(fh, catalog, width=0, no_location=True, sort_output=True, include_lineno=False)
    tmp.replace(path)


def merge(fragments: list[Path]) -> int:
    added = 0
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        zh_path = HERE / "zh_CN" / "LC_MESSAGES" / "messages.po"
        en_path = HERE / "en" / "LC_MESSAGES" / "messages.po"
        zh, en = _read(zh_path, "zh_CN"), _read(en_path, "en")
        for fragment in fragments:
            for message in _read(fragment, "zh_CN"):
                if not message.id:
                    continue
                if not message.string:
                    raise SystemExit(f"{fragment}: no Chinese text for {message.id!r}")
                flags = {"python-format"} if "%(" in str(message.id) else set()
                zh.add(message.id, message.string, flags=flags)
                if message.id not in en:
                    en.add(message.id, "", flags=flags)
                added += 1
        _write(zh_path, zh)
        _write(en_path, en)
    return added


if __name__ == "__main__":
    count = merge([Path(p) for p in sys.argv[1:]])
    print(f"{count} messages merged")
