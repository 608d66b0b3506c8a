"""ISO 2859-1 single sampling plans for normal inspection (a pure module: no database, no I/O).

A buyer states the lot size, the inspection level and the AQL; Table 1 of the standard turns the lot size
and the level into a sample size code letter, and Table 2-A turns the code letter and the AQL into a plan:
the sample size n, the acceptance number Ac and the rejection number Re (Re = Ac + 1 for single sampling).
Where Table 2-A holds an arrow instead of a plan, the first plan below (or above) the arrow in the same AQL
column is used, *with its own sample size*; when that sample size equals or exceeds the lot size, every item
of the lot is inspected (n = lot size) with the Ac/Re of that plan.

Sources (ISO 2859-1:1999 Tables 1 and 2-A carry the same values as ANSI/ASQ Z1.4-2003 Tables I and II-A and
MIL-STD-105E Tables I and II-A, from which ISO 2859 was adopted):
- MIL-STD-105E Table II-A (single sampling plans for normal inspection, master table) as transcribed in
  "Tablas" (scribd document 563507790): the plans of every code letter A..R, in column order;
- the "AQL sampling chart" for ANSI/ASQC Z1.4 / MIL-STD-105E / BS 6001 / DIN 40080 / ISO 2859 (pdfcoffee):
  Table I (code letters for S-1..S-4, I, II, III) and Table II;
- the US Army "Table 1-A" (general level II, single sampling, normal), developed from MIL-STD-105E Tables I
  and II-A (nibs.org FMOC AC-TABLE.ASC): code letters A..Q with every cell, arrows included, for AQL 0.65..15;
- wisetool.com "AQL sampling plan and sampling table": Table 1 and the arrow rule ("the sample size to be used
  is given by the new code letter, not by the original letter").
The tests (tests/inspection/test_sampling.py) compare this module against independently typed copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = [
    "AQL_VALUES",
    "CODE_LETTERS",
    "INSPECTION_LEVELS",
    "SAMPLE_SIZES",
    "TABLE_2A",
    "SamplingPlan",
    "code_letter_for",
    "lot_verdict",
    "single_sampling_plan",
]

INSPECTION_LEVELS: tuple[str, ...] = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")

CODE_LETTERS: tuple[str, ...] = tuple("ABCDEFGHJKLMNPQR")

SAMPLE_SIZES: dict[str, int] = dict(
    zip(CODE_LETTERS, (2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000), strict=True)
)

# The standard's preferred AQL values, in the order of Table 2-A's columns. Up to 10 they may express percent
# nonconforming or nonconformities per 100 items; above 10 only nonconformities per 100 items.
AQL_VALUES: tuple[Decimal, ...] = tuple(
    Decimal(v)
    for v in (
        "0.010 0.015 0.025 0.040 0.065 0.10 0.15 0.25 0.40 0.65 1.0 1.5 2.5 4.0 6.5 "
        "10 15 25 40 65 100 150 250 400 650 1000"
    ).split()
)

# Table 1: sample size code letters. Upper bound of each lot-size range (None: "500 001 and over"), then the
# letter for S-1, S-2, S-3, S-4, I, II, III.
_TABLE_1: tuple[tuple[int | None, str], ...] = (
    (8, "AAAAAAB"),
    (15, "AAAAABC"),
    (25, "AABBBCD"),
    (50, "ABBCCDE"),
    (90, "BBCCCEF"),
    (150, "BBCDDFG"),
    (280, "BCDEEGH"),
    (500, "BCDEFHJ"),
    (1200, "CCEFGJK"),
    (3200, "CDEGHKL"),
    (10000, "CDFGJLM"),
    (35000, "CDFHKMN"),
    (150000, "DEGJLNP"),
    (500000, "DEGJMPQ"),
    (None, "DEHKNQR"),
)

# Table 2-A: single sampling plans for normal inspection. One row per code letter, one token per AQL column
# (0.010 .. 1000, as AQL_VALUES): a number is Ac (Re = Ac + 1), "v" is the arrow "use the first sampling plan
# below", "^" is "use the first sampling plan above". The diagonal pattern of the table puts an up arrow at
# A / AQL 10 (some transcriptions print it) and a down arrow at R / AQL 0.015, but there is no plan above A
# nor below R: those two corner cells follow the only plan their column offers (A / 10 -> C, Ac 1 Re 2;
# R / 0.015 -> P, Ac 0 Re 1), which is what a reader of the printed table does.
_TABLE_2A: dict[str, str] = {
    "A": "v v v v v v v v v v v v v v 0 v v 1 2 3 5 7 10 14 21 30",
    "B": "v v v v v v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 30 44",
    "C": "v v v v v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 30 44 ^",
    "D": "v v v v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 30 44 ^ ^",
    "E": "v v v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 30 44 ^ ^ ^",
    "F": "v v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^",
    "G": "v v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^",
    "H": "v v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^",
    "J": "v v v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "K": "v v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "L": "v v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "M": "v v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "N": "v v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "P": "v 0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "Q": "0 ^ v 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
    "R": "^ ^ 1 2 3 5 7 10 14 21 ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^",
}

Cell = int | Literal["v", "^"]


def _parse_row(row: str) -> tuple[Cell, ...]:
    cells: list[Cell] = []
    for token in row.split():
        if token == "v":
            cells.append("v")
        elif token == "^":
            cells.append("^")
        else:
            cells.append(int(token))
    return tuple(cells)


TABLE_2A: dict[str, tuple[Cell, ...]] = {letter: _parse_row(row) for letter, row in _TABLE_2A.items()}


@dataclass(frozen=True)
class SamplingPlan:
    """A single sampling plan for one lot: inspect `sample_size` items, accept on <= `accept` nonconforming."""

    code_letter: str  # the code letter of the plan actually used (after following an arrow)
    sample_size: int  # items to inspect; equals lot_size when the whole lot is inspected
    accept: int  # Ac
    reject: int  # Re
    lot_size: int
    inspection_level: str
    aql: Decimal

    @property
    def full_inspection(self) -> bool:
        """True when every item of the lot is inspected (the plan's sample would not fit in the lot)."""
        return self.sample_size == self.lot_size


def _level(inspection_level: str) -> str:
    if not isinstance(inspection_level, str):
        raise ValueError(f"The inspection level must be one of {', '.join(INSPECTION_LEVELS)}.")
    level = inspection_level.strip().upper()
    if level in {"S1", "S2", "S3", "S4"}:
        level = f"S-{level[1]}"
    if level not in INSPECTION_LEVELS:
        raise ValueError(f"The inspection level must be one of {', '.join(INSPECTION_LEVELS)}.")
    return level


def _lot_size(lot_size: int) -> int:
    if isinstance(lot_size, bool) or not isinstance(lot_size, int):
        raise ValueError("The lot size must be a whole number of items.")
    if lot_size < 2:
        raise ValueError("The lot size must be at least 2 items.")
    return lot_size


def _aql(aql: str | Decimal) -> Decimal:
    allowed = ", ".join(str(v) for v in AQL_VALUES)
    message = f"The AQL must be one of the standard's preferred values: {allowed}."
    if isinstance(aql, bool) or not isinstance(aql, str | Decimal | int | float):
        raise ValueError(message)
    try:
        value = Decimal(str(aql).strip())
    except InvalidOperation:
        raise ValueError(message) from None
    if not value.is_finite():
        raise ValueError(message)
    for preferred in AQL_VALUES:
        if value == preferred:
            return preferred
    raise ValueError(message)


def code_letter_for(*, lot_size: int, inspection_level: str) -> str:
    """Table 1: the sample size code letter for a lot size and an inspection level."""
    size = _lot_size(lot_size)
    column = INSPECTION_LEVELS.index(_level(inspection_level))
    for upper, letters in _TABLE_1:
        if upper is None or size <= upper:
            return letters[column]
    raise AssertionError("unreachable: the last range of Table 1 is open-ended")


def _resolve(letter: str, column: int) -> tuple[str, int]:
    """Follow the arrows of Table 2-A from (letter, column) to the plan to use: (code letter, Ac)."""
    row = CODE_LETTERS.index(letter)
    cell = TABLE_2A[letter][column]
    while not isinstance(cell, int):
        row += 1 if cell == "v" else -1
        cell = TABLE_2A[CODE_LETTERS[row]][column]
    return CODE_LETTERS[row], cell


def single_sampling_plan(*, lot_size: int, inspection_level: str, aql: str | Decimal) -> SamplingPlan:
    """The ISO 2859-1 single sampling plan for normal inspection (Tables 1 and 2-A)."""
    size = _lot_size(lot_size)
    level = _level(inspection_level)
    value = _aql(aql)
    letter, accept = _resolve(code_letter_for(lot_size=size, inspection_level=level), AQL_VALUES.index(value))
    return SamplingPlan(
        code_letter=letter,
        sample_size=min(SAMPLE_SIZES[letter], size),
        accept=accept,
        reject=accept + 1,
        lot_size=size,
        inspection_level=level,
        aql=value,
    )


def lot_verdict(plan: SamplingPlan, defectives: int) -> Literal["accept", "reject"]:
    """The lot's verdict from the nonconforming items (or nonconformities) found in the sample."""
    if isinstance(defectives, bool) or not isinstance(defectives, int):
        raise ValueError("The number of nonconforming items must be a whole number.")
    if defectives < 0:
        raise ValueError("The number of nonconforming items cannot be negative.")
    if defectives <= plan.accept:
        return "accept"
    if defectives >= plan.reject:
        return "reject"
    raise AssertionError("unreachable: single sampling plans have Re = Ac + 1")
