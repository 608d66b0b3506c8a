"""What a file is, from its bytes alone (the client's content type and file name are never trusted).

Allowed: PDF, PNG, JPEG (recognised by ``filetype``) and the CAD exchange formats STEP, IGES, STL (ASCII and
binary) and DXF (ASCII and binary), recognised here.
"""

from __future__ import annotations

import re
import struct

import filetype

HEAD_BYTES = 8192

PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
STEP, IGES, STL, DXF = "model/step", "model/iges", "model/stl", "image/vnd.dxf"
ALLOWED = frozenset({PDF, PNG, JPEG, STEP, IGES, STL, DXF})
EXTENSIONS = {PDF: ".pdf", PNG: ".png", JPEG: ".jpg", STEP: ".step", IGES: ".igs", STL: ".stl", DXF: ".dxf"}

_DXF_TEXT = re.compile(rb"^\s*(?:999[ \t]*\r?\n[^\r\n]*\r?\n\s*)?0[ \t]*\r?\n[ \t]*SECTION[ \t]*\r?\n")
_BOM = b"\xef\xbb\xbf"
_STL_FACET = re.compile(rb"\bfacet\s+normal\s")
_STL_END = re.compile(rb"\bendsolid\b")


def _is_iges(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    return 73 <= len(first) <= 80 and first[72:73] == b"S" and first[73:].strip().isdigit()


def _is_binary_stl(head: bytes, size: int) -> bool:
    if size < 84 or len(head) < 84:
        return False
    (count,) = struct.unpack_from("<I", head, 80)
    return 84 + 50 * count == size


def _is_ascii_stl(head: bytes) -> bool:
    text = head.lstrip()
    if not text[:5].lower() == b"solid":
        return False
    try:
        text.decode("ascii")
    except UnicodeDecodeError:
        return False
    return _STL_FACET.search(text) is not None or _STL_END.search(text) is not None


def sniff(head: bytes, size: int) -> str | None:
    """The content type of a file whose first bytes are ``head`` and whose length is ``size``; ``None`` when
    it is not an allowed type."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime if kind.mime in (PDF, PNG, JPEG) else None
    if head.startswith(b"AutoCAD Binary DXF"):
        return DXF
    text = head.removeprefix(_BOM)
    if text.startswith(b"ISO-10303-21;"):
        return STEP
    if _DXF_TEXT.match(text):
        return DXF
    if _is_iges(text):
        return IGES
    if _is_binary_stl(head, size):
        return STL
    if _is_ascii_stl(text):
        return STL
    return None
