"""Whether a lab's accreditation covered a test: a verified CNAS / ISO/IEC 17025 certificate of the lab,
valid on the test day, whose scope names the test standard (issue #17).

Certificates are stored with ``standard`` as the listings room spells it (``"ISO/IEC 17025"``; the demo data
and older rows may say ``"ISO 17025"``, ``"CNAS-CL01"`` or ``"CNAS"``). Standards are compared after
normalising: full-width characters (``GB／T``) folded, case and spaces ignored, and a year suffix
(``:2019``, ``-2021``) dropped, so ``"GB/T 228.1-2021"`` is covered by a scope listing ``"GB／T228.1"`` but
``"ISO 6892"`` is not covered by ``"ISO 6892-1"`` alone, nor ``"GB/T 228.1"`` by ``"GB/T 228.10"``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from listings.models import CertificateStatus
from listings.repository import ListingsRepository

Status = Literal["covered", "no_certificate", "not_valid_on_test_date", "out_of_scope"]

# The spellings of the accreditation of testing and calibration laboratories (CNAS-CL01 is CNAS's adoption
# of ISO/IEC 17025), compared normalised (upper case, without spaces).
_ACCREDITATION_STANDARDS = frozenset({"ISO/IEC17025", "ISO17025", "IEC17025", "CNAS-CL01", "CNAS", "GB/T27025"})
_YEAR_SUFFIX = re.compile(r"\s*[:\-]\s*(19|20)\d{2}\s*$")
_DASHES = str.maketrans({"—": "-", "–": "-", "‐": "-", "‑": "-"})


class _Certificate(Protocol):
    id: uuid.UUID
    standard: str
    status: str
    scope: str
    valid_from: date
    valid_until: date


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DASHES).upper()


def normalise_standard(text: str) -> str:
    """``"gb／t 228.1-2021"`` → ``"GB/T228.1"``: folded, upper case, no year suffix, no spaces."""
    folded = _YEAR_SUFFIX.sub("", _fold(text).strip())
    return re.sub(r"\s+", "", folded)


def is_accreditation(standard: str) -> bool:
    return re.sub(r"\s+", "", _fold(standard)) in _ACCREDITATION_STANDARDS


def scope_covers(scope: str, test_standard: str) -> bool:
    """Whether ``scope`` (free text: a list of methods) names ``test_standard``, whatever the spacing and year."""
    wanted = normalise_standard(test_standard)
    if not wanted:
        return False
    # Spaces may sit anywhere between the characters of the standard in the scope ("GB / T 228.1").
    body = r"\s*".join(re.escape(c) for c in wanted)
    # Not inside a longer code: no letter or digit right before; after it, no further digit or letter, no
    # ".<digit>" (another part: 228.10) and no "-<part>" (6892-1), but a year suffix (":2019", "-2021") is fine.
    pattern = rf"(?<![A-Z0-9]){body}(?![0-9A-Z])(?!\s*\.\s*\d)(?!\s*-\s*\d{{1,3}}(?!\d))"
    return re.search(pattern, _fold(scope)) is not None


def assess(certificates: Iterable[_Certificate], *, test_standard: str, on: date) -> tuple[Status, uuid.UUID | None]:
    """The accreditation status of a test from the lab's certificates (pure; see :func:`check`)."""
    accreditations = [
        c for c in certificates if c.status == CertificateStatus.verified and is_accreditation(c.standard)
    ]
    if not accreditations:
        return "no_certificate", None
    valid = [c for c in accreditations if c.valid_from <= on <= c.valid_until]
    if not valid:
        return "not_valid_on_test_date", None
    for cert in sorted(valid, key=lambda c: c.valid_until, reverse=True):
        if scope_covers(cert.scope, test_standard):
            return "covered", cert.id
    return "out_of_scope", None


async def check(
    session: AsyncSession, *, lab_org_id: uuid.UUID, test_standard: str, on: date
) -> tuple[Status, uuid.UUID | None]:
    """``("covered", certificate_id)``, or why not: ``no_certificate`` (no verified accreditation at all),
    ``not_valid_on_test_date`` (expired or not yet valid on ``on``) or ``out_of_scope``."""
    certificates = await ListingsRepository(session).certificates_of_org(lab_org_id)
    return assess(certificates, test_standard=test_standard, on=on)
