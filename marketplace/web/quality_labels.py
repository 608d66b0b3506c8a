"""The names of the quality documents a machine listing may sell (``listings.quality_documents``), for every
page and invoice line that shows one; marked for the catalogs (zh-CN: 合格证明, 首件检验报告, 材质证明)."""

from __future__ import annotations

from collections.abc import Callable

from marketplace.web.core import N_

QUALITY_DOCUMENT_LABELS: dict[str, str] = {
    "coc": N_("Certificate of conformance"),
    "fai": N_("First-article inspection report"),
    "material_cert": N_("Material certificate (EN 10204 3.1)"),
}
OTHER_DOCUMENT = N_("Quality document")


def quality_document_label(kind: object, gettext: Callable[[str], str]) -> str:
    """A kind's name in the language of ``gettext`` ("Quality document" for an unknown kind, never the code)."""
    return gettext(QUALITY_DOCUMENT_LABELS.get(str(kind), OTHER_DOCUMENT))
