"""Primary and complementary cell suppression over a 2-D table with row and column totals (pure).

A table has interior cells ``(row, col)``, row totals ``(row, TOTAL)``, column totals ``(TOTAL, col)`` and the
grand total ``(TOTAL, TOTAL)``. Each cell knows how many distinct organisations back it on the supplier and on
the buyer side.

* **Primary suppression**: a cell backed by 1..k-1 organisations on either side is suppressed (a cell with no
  organisation at all is an empty cell: every number in it is zero and reveals nobody).
* **Complementary suppression**: the table publishes four families of additive relations (each row sums to its
  row total, each column to its column total, the row totals and the column totals to the grand total). A
  relation with exactly one suppressed member would give that member away by subtraction, so another member
  is suppressed, until every relation has zero or at least two suppressed members. The extra member is the
  cheapest one: a non-empty cell before an empty one (suppressing a known zero protects nothing), then the
  fewest organisations, then the smallest ``cost`` (e.g. booked hours), then the key (determinism).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOTAL = "*"


@dataclass(frozen=True)
class Backing:
    """Who stands behind one cell."""

    suppliers: int = 0
    buyers: int = 0
    cost: float = 0.0

    @property
    def empty(self) -> bool:
        return self.suppliers == 0 and self.buyers == 0


Key = tuple[Hashable, Hashable]


def is_primary(cell: Backing, min_organisations: int) -> bool:
    """Backed by fewer than ``min_organisations`` (but more than zero) organisations on either side."""
    return 0 < cell.suppliers < min_organisations or 0 < cell.buyers < min_organisations


def relations(rows: Sequence[Hashable], cols: Sequence[Hashable]) -> list[list[Key]]:
    """The additive relations a table with totals publishes; each list sums to its last member."""
    out: list[list[Key]] = []
    for r in rows:
        out.append([*((r, c) for c in cols), (r, TOTAL)])
    for c in cols:
        out.append([*((r, c) for r in rows), (TOTAL, c)])
    if rows and cols:
        out.append([*((TOTAL, c) for c in cols), (TOTAL, TOTAL)])
        out.append([*((r, TOTAL) for r in rows), (TOTAL, TOTAL)])
    return out


def suppress(
    rows: Sequence[Hashable],
    cols: Sequence[Hashable],
    cells: Mapping[Any, Backing],
    *,
    min_organisations: int,
    complementary: bool = True,
) -> set[Key]:
    """The set of suppressed keys (interior cells and totals) of the table. Missing keys are empty cells."""
    every: list[Key] = [(r, c) for r in (*rows, TOTAL) for c in (*cols, TOTAL)]
    suppressed = {k for k in every if is_primary(cells.get(k, Backing()), min_organisations)}
    if not complementary:
        return suppressed
    rels = relations(rows, cols)

    def rank(key: Key) -> tuple[Any, ...]:
        b = cells.get(key, Backing())
        return (b.empty, b.suppliers + b.buyers, b.cost, str(key[0]), str(key[1]))

    changed = True
    while changed:
        changed = False
        for rel in rels:
            hidden = [k for k in rel if k in suppressed]
            if len(hidden) != 1:
                continue
            candidates = [k for k in rel if k not in suppressed]
            if not candidates:  # pragma: no cover - a relation always has >= 2 members
                continue
            suppressed.add(min(candidates, key=rank))
            changed = True
    return suppressed


def recoverable(rows: Sequence[Hashable], cols: Sequence[Hashable], suppressed: Iterable[Key]) -> list[Key]:
    """Suppressed keys that are the only suppressed member of some relation (should always be empty)."""
    hidden = set(suppressed)
    out: list[Key] = []
    for rel in relations(rows, cols):
        inside = [k for k in rel if k in hidden]
        if len(inside) == 1:
            out.append(inside[0])
    return out
