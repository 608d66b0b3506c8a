"""Quality documents a machine listing may sell as priced add-ons (issue #17): what each kind is, in one place.

* ``coc``: certificate of conformance, the factory's signed statement that the lot meets the order;
* ``fai``: first-article inspection report (AS9102-style: every characteristic of the first part measured);
* ``material_cert``: material certificate, inspection certificate 3.1 under EN 10204 (the mill's or the
  factory's test results for the material, validated by its own inspection department).

A listing's offer is ``{kind: price}`` in the listing's currency (minor units); a booking orders a subset and
pays those prices with the machine time. The factory supplies each ordered document before it may complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import Field

COC: Final = "coc"
FAI: Final = "fai"
MATERIAL_CERT: Final = "material_cert"
QUALITY_DOCUMENT_KINDS: Final[tuple[str, ...]] = (COC, FAI, MATERIAL_CERT)

# What a listing's offer may hold: a known kind, each once (a JSON object), at a price of 0 or more.
QualityDocumentKind = Literal["coc", "fai", "material_cert"]
QualityOffer = Annotated[
    dict[QualityDocumentKind, Annotated[int, Field(ge=0, le=10**12)]],
    Field(
        description="Machines only: quality documents sold with the machine time, {kind: price in minor units "
        "of the listing's currency}; kinds: coc (certificate of conformance), fai (first-article inspection "
        "report), material_cert (material certificate EN 10204 3.1)",
        examples=[{"coc": 3000, "fai": 25000, "material_cert": 8000}],
    ),
]


class NotOffered(ValueError):
    """A kind the listing does not offer."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"this listing does not offer {kind!r}")
        self.kind = kind


def priced(offer: dict[str, int] | None, kinds: Sequence[str]) -> list[tuple[str, int]]:
    """The ordered kinds with the listing's prices, in the order given; :class:`NotOffered` for a kind the
    listing does not sell."""
    offered = offer or {}
    out: list[tuple[str, int]] = []
    for kind in kinds:
        if kind not in offered:
            raise NotOffered(kind)
        out.append((kind, int(offered[kind])))
    return out
