"""Small files of every accepted type (and a few that must be refused), built in code."""

from __future__ import annotations

import struct
import zlib


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
STEP = (
    b"ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('bracket'),'2;1');\nFILE_NAME('bracket.step','2026-12-06',"
    b"(''),(''),'','','');\nFILE_SCHEMA(('AUTOMOTIVE_DESIGN'));\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n"
)
IGES = ("Bracket, exported for the marketplace".ljust(72) + "S" + "1".rjust(7) + "\n").encode() + (
    "1H,,1H;,7Hbracket,".ljust(72) + "G" + "1".rjust(7) + "\n"
).encode()
STL_ASCII = (
    b"solid cube\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n   vertex 1 0 0\n   vertex 0 1 0\n"
    b"  endloop\n endfacet\nendsolid cube\n"
)
STL_BINARY = b"binary stl exported".ljust(80, b" ") + struct.pack("<I", 2) + b"\x00" * 100
DXF_ASCII = b"  0\r\nSECTION\r\n  2\r\nHEADER\r\n  0\r\nENDSEC\r\n  0\r\nEOF\r\n"
DXF_BINARY = b"AutoCAD Binary DXF\r\n\x1a\x00" + b"\x00" * 40

ALLOWED = {
    "pdf": (PDF, "application/pdf"),
    "png": (PNG, "image/png"),
    "jpeg": (JPEG, "image/jpeg"),
    "step": (STEP, "model/step"),
    "iges": (IGES, "model/iges"),
    "stl-ascii": (STL_ASCII, "model/stl"),
    "stl-binary": (STL_BINARY, "model/stl"),
    "dxf-ascii": (DXF_ASCII, "image/vnd.dxf"),
    "dxf-binary": (DXF_BINARY, "image/vnd.dxf"),
}

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 100
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100
TEXT = b"Hello, this is not a drawing at all.\n"
