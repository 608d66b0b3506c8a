"""PDFs the platform issues (inspection reports, certificates of conformance): HTML + CSS rendered by WeasyPrint
with system fonts (Noto Sans CJK SC for both languages), and the QR code drawn as inline SVG.

Rendering never fetches anything: the templates embed everything they show, and the URL fetcher accepts only
``data:`` URLs (no http, https or file), so a value printed in a document cannot make the server reach out.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jinja2
import segno

TEMPLATES = Path(__file__).parent / "pdf_templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(template: str, context: dict[str, Any]) -> str:
    """A PDF template (``pdf_templates/<template>``) filled with ``context``."""
    return _env.get_template(template).render(**context)


def qr_svg(url: str) -> str:
    """A QR code of ``url`` as an inline ``<svg>`` element (error correction M, a quiet zone of 2 modules)."""
    return str(segno.make(url, error="m", micro=False).svg_inline(scale=4, border=2, dark="#000"))


def _render(html: str, base_url: str | None) -> bytes:
    from weasyprint import HTML, URLFetcher  # imported late: it loads pango through cffi

    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)
    pdf = HTML(string=html, base_url=base_url, url_fetcher=fetcher).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf() without a target returns the bytes
        raise TypeError("WeasyPrint returned no bytes")
    return pdf


async def render_pdf(html: str, *, base_url: str | None = None) -> bytes:
    """The PDF of ``html``, rendered in a worker thread (WeasyPrint is CPU-bound and blocking)."""
    return await asyncio.to_thread(_render, html, base_url)
