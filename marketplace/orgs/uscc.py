"""Unified Social Credit Code (统一社会信用代码) validation per GB 32100-2015.

18 characters from a 31-symbol alphabet (no I, O, S, V, Z). Characters 9-17 carry the GB 11714
organisation code with its own MOD 11 check (position 17); position 18 is the ISO 7064 MOD 31-3 check
character over the first 17.
"""

from __future__ import annotations

import re

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, ...
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def uscc_check_char(first17: str) -> str:
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    # GB 11714 values letters A=10 ... Z=35 (the full Latin alphabet, unlike the USCC alphabet).
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def validate_uscc(code: str) -> str | None:
    """Return None when ``code`` is a valid USCC, else a human-readable reason."""
    if len(code) != 18:
        return "must be exactly 18 characters"
    if not _SHAPE.match(code):
        return "contains characters outside the GB 32100 alphabet (digits and A-Y without I, O, S, V, Z)"
    org = code[8:17]
    if org_code_check_char(org[:8]) != org[8]:
        return "organisation code (characters 9-17) fails its GB 11714 check digit"
    if uscc_check_char(code[:17]) != code[17]:
        return "check character (position 18) does not match"
    return None


def normalise_uscc(code: str) -> str:
    return code.strip().upper()
