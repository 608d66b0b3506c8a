"""What the buyer is told when the factory supplies an ordered quality document (in-app and by e-mail), in
English and Simplified Chinese. One notification kind per document kind, so that the words of the document's
name come from the template, never from the data (the data hold codes)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.notifications.service import TEMPLATES, notify_org

# kind -> (English name, the same inside a sentence, Chinese name), as the templates say them.
_NAMES = {
    "coc": ("Certificate of conformance", "certificate of conformance", "合格证明"),
    "fai": ("First-article inspection report", "first-article inspection report", "首件检验报告"),
    "material_cert": (
        "Material certificate (EN 10204 3.1)",
        "material certificate (EN 10204 3.1)",
        "材质证明（EN 10204 3.1）",
    ),
}


def supplied_kind(kind: str) -> str:
    """The notification kind for a supplied document of ``kind``."""
    return f"quality_document.supplied.{kind}"


for _kind, (_name, _inline, _zh) in _NAMES.items():
    TEMPLATES[(supplied_kind(_kind), "en")] = (
        f"{_name} supplied: {{title}}",
        f"The factory supplied the {_inline} you ordered with {{title}} ({{when}}). Download it from the booking.",
    )
    TEMPLATES[(supplied_kind(_kind), "zh-CN")] = (
        f"{_zh}已提供：{{title}}",
        f"工厂已提供您随 {{title}}（{{when}}）订购的{_zh}，请在预订页面下载。",
    )


async def document_supplied(
    session: AsyncSession, *, buyer_org_id: uuid.UUID, booking_id: uuid.UUID, kind: str, title: str, when: str
) -> int:
    """Tell the buyer's members that an ordered quality document is there to download."""
    data = {"booking_id": str(booking_id), "document": kind, "title": title, "when": when}
    return await notify_org(session, buyer_org_id, kind=supplied_kind(kind), data=data)
