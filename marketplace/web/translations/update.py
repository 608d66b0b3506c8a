"""Extract messages and update the catalogs (``make i18n``); then translate new entries in the .po files.

python -m marketplace.web.translations.update
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent.parent


def main() -> None:
    pot = HERE / "messages.pot"
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [
            str(bin_dir / "pybabel"),
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_",
            "-k",
            "N_",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "--sort-output",
            "-o",
            str(pot),
            str(ROOT),
        ],
        check=True,
    )
    for locale in ("zh_CN", "en"):
        po = HERE / locale / "LC_MESSAGES" / "messages.po"
        action = "update" if po.exists() else "init"
        subprocess.run(
            [
                str(bin_dir / "pybabel"),
                action,
                "-i",
                str(pot),
                "-d",
                str(HERE),
                "-l",
                locale,
                "--no-wrap",
                "--ignore-obsolete",
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
