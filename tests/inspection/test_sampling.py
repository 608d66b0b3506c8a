"""ISO 2859-1 single sampling plans (normal inspection) against published values and independent copies."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.inspection.sampling import (
    AQL_VALUES,
    CODE_LETTERS,
    INSPECTION_LEVELS,
    SAMPLE_SIZES,
    TABLE_2A,
    SamplingPlan,
    code_letter_for,
    lot_verdict,
    single_sampling_plan,
)

# --- Published worked examples ------------------------------------------------------------------------------
# (lot size, level, AQL) -> (code letter of the plan used, n, Ac, Re)
WORKED_EXAMPLES = [
    # Lot 1,000 at level II is code letter J, n = 80 (the textbook example).
    (1000, "II", "1.0", ("J", 80, 2, 3)),
    (1000, "II", "2.5", ("J", 80, 5, 6)),
    (1000, "II", "0.65", ("J", 80, 1, 2)),
    (1000, "II", "4.0", ("J", 80, 7, 8)),
    (1000, "II", "6.5", ("J", 80, 10, 11)),
    (1000, "II", "1.5", ("J", 80, 3, 4)),
    (1000, "II", "0.15", ("J", 80, 0, 1)),
    # Lot 500, level II: H, n = 50; lot 3,200 level II: K, n = 125; 3,201: L, n = 200.
    (500, "II", "1.0", ("H", 50, 1, 2)),
    (500, "II", "2.5", ("H", 50, 3, 4)),
    (500, "II", "4.0", ("H", 50, 5, 6)),
    (3200, "II", "1.0", ("K", 125, 3, 4)),
    (3200, "II", "2.5", ("K", 125, 7, 8)),
    (3201, "II", "2.5", ("L", 200, 10, 11)),
    (10000, "II", "0.65", ("L", 200, 3, 4)),
    (35000, "II", "1.5", ("M", 315, 10, 11)),
    (150000, "II", "0.40", ("N", 500, 5, 6)),
    (500001, "II", "0.065", ("Q", 1250, 2, 3)),
    # Levels I and III for the same lot of 1,000.
    (1000, "I", "2.5", ("G", 32, 2, 3)),
    (1000, "III", "1.0", ("K", 125, 3, 4)),
    (1000, "III", "2.5", ("K", 125, 7, 8)),
    # Special levels.
    (1000, "S-1", "2.5", ("C", 5, 0, 1)),
    (1000, "S-2", "10", ("C", 5, 1, 2)),
    (1000, "S-4", "2.5", ("F", 20, 1, 2)),
    (200000, "S-4", "1.0", ("J", 80, 2, 3)),
    (600000, "S-3", "4.0", ("H", 50, 5, 6)),
    # Nonconformities per 100 items (AQL above 10): Ac may exceed n.
    (5, "II", "1000", ("A", 2, 30, 31)),
    (10, "II", "650", ("B", 3, 30, 31)),
    (100, "I", "250", ("D", 8, 30, 31)),
]


@pytest.mark.parametrize(("lot_size", "level", "aql", "expected"), WORKED_EXAMPLES)
def test_published_worked_examples(lot_size: int, level: str, aql: str, expected: tuple[str, int, int, int]) -> None:
    plan = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=aql)
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == expected
    assert plan.lot_size == lot_size
    assert plan.inspection_level == level
    assert plan.aql == Decimal(aql)
    assert not plan.full_inspection


# --- The arrows ---------------------------------------------------------------------------------------------


def test_down_arrow_uses_the_larger_sample_of_the_plan_below() -> None:
    # J at AQL 0.40 is a down arrow: the plan used is K's (n = 125, Ac 1 Re 2), not J's n = 80.
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="0.40")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("K", 125, 1, 2)
    # J at AQL 0.10: down arrow to K's 0/1 (n = 125).
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="0.10")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("K", 125, 0, 1)


def test_up_arrow_uses_the_smaller_sample_of_the_plan_above() -> None:
    # J at AQL 0.25 is an up arrow: H's plan (n = 50, Ac 0 Re 1).
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="0.25")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("H", 50, 0, 1)
    # K at AQL 15 is past the last plan of the column: up to J's 21/22 (n = 80).
    plan = single_sampling_plan(lot_size=3000, inspection_level="II", aql="15")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("J", 80, 21, 22)
    # J at AQL 100 climbs to E's 21/22 (n = 13).
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="100")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("E", 13, 21, 22)


def test_small_lot_arrow_down_to_a_larger_sample_that_still_fits() -> None:
    # Lot 50, level II: D (n = 8); AQL 1.0 is a down arrow to E's 0/1, n = 13 < 50.
    plan = single_sampling_plan(lot_size=50, inspection_level="II", aql="1.0")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("E", 13, 0, 1)
    assert not plan.full_inspection


def test_small_lot_arrow_down_past_the_lot_size_means_100_percent_inspection() -> None:
    # Lot 10, level II: B (n = 3); AQL 1.0 points down to E's 0/1 with n = 13 >= 10: inspect all 10.
    plan = single_sampling_plan(lot_size=10, inspection_level="II", aql="1.0")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("E", 10, 0, 1)
    assert plan.full_inspection
    # Lot 8, level II: A; AQL 0.010 points all the way down to Q (n = 1250): inspect all 8, Ac 0 Re 1.
    plan = single_sampling_plan(lot_size=8, inspection_level="II", aql="0.010")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("Q", 8, 0, 1)
    assert plan.full_inspection


def test_sample_equal_to_the_lot_is_100_percent_inspection() -> None:
    # Lot 13 at level III is C (n = 5); AQL 1.0 points down to E: n = 13 equals the lot.
    plan = single_sampling_plan(lot_size=13, inspection_level="III", aql="1.0")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("E", 13, 0, 1)
    assert plan.full_inspection
    # Lot 2, level II, AQL 6.5: A's own plan n = 2 = lot.
    plan = single_sampling_plan(lot_size=2, inspection_level="II", aql="6.5")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("A", 2, 0, 1)
    assert plan.full_inspection


def test_corner_cells_follow_the_only_plan_of_their_column() -> None:
    # A at AQL 10: nothing above A, so the column's down arrow leads to C (n = 5, Ac 1 Re 2).
    plan = single_sampling_plan(lot_size=8, inspection_level="II", aql="10")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("C", 5, 1, 2)
    # R at AQL 0.015: nothing below R, so up to P (n = 800, Ac 0 Re 1); at 0.010 up to Q (n = 1250).
    plan = single_sampling_plan(lot_size=600000, inspection_level="III", aql="0.015")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("P", 800, 0, 1)
    plan = single_sampling_plan(lot_size=600000, inspection_level="III", aql="0.010")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("Q", 1250, 0, 1)
    plan = single_sampling_plan(lot_size=600000, inspection_level="III", aql="0.025")
    assert (plan.code_letter, plan.sample_size, plan.accept, plan.reject) == ("R", 2000, 1, 2)


def test_every_arrow_leads_to_a_plan_in_its_own_column() -> None:
    for start, letter in enumerate(CODE_LETTERS):
        for column, first in enumerate(TABLE_2A[letter]):
            row, cell = start, first
            while not isinstance(cell, int):
                row += 1 if cell == "v" else -1
                assert 0 <= row < len(CODE_LETTERS), (letter, AQL_VALUES[column])
                following = TABLE_2A[CODE_LETTERS[row]][column]
                assert following == cell or isinstance(following, int), "arrows never point back"
                cell = following


# --- Table 1: independent copy (AQL sampling chart for Z1.4 / MIL-STD-105E / ISO 2859, Table I) ---------------
# (first lot size, last lot size, S-1, S-2, S-3, S-4, I, II, III)
TABLE_1_COPY = [
    (2, 8, "A", "A", "A", "A", "A", "A", "B"),
    (9, 15, "A", "A", "A", "A", "A", "B", "C"),
    (16, 25, "A", "A", "B", "B", "B", "C", "D"),
    (26, 50, "A", "B", "B", "C", "C", "D", "E"),
    (51, 90, "B", "B", "C", "C", "C", "E", "F"),
    (91, 150, "B", "B", "C", "D", "D", "F", "G"),
    (151, 280, "B", "C", "D", "E", "E", "G", "H"),
    (281, 500, "B", "C", "D", "E", "F", "H", "J"),
    (501, 1200, "C", "C", "E", "F", "G", "J", "K"),
    (1201, 3200, "C", "D", "E", "G", "H", "K", "L"),
    (3201, 10000, "C", "D", "F", "G", "J", "L", "M"),
    (10001, 35000, "C", "D", "F", "H", "K", "M", "N"),
    (35001, 150000, "D", "E", "G", "J", "L", "N", "P"),
    (150001, 500000, "D", "E", "G", "J", "M", "P", "Q"),
    (500001, 10**9, "D", "E", "H", "K", "N", "Q", "R"),
]


@pytest.mark.parametrize("row", TABLE_1_COPY, ids=lambda r: f"{r[0]}-{r[1]}")
def test_table_1_code_letters_at_both_ends_of_every_range(row: tuple) -> None:
    first, last, *letters = row
    for level, letter in zip(INSPECTION_LEVELS, letters, strict=True):
        assert code_letter_for(lot_size=first, inspection_level=level) == letter
        assert code_letter_for(lot_size=last, inspection_level=level) == letter


# --- Table 2-A: independent copies ----------------------------------------------------------------------------
# 1) Full rows typed as Ac/Re with arrows, from the ANSI/ASQ Z1.4 Table II-A layout (AQL 0.010 .. 1000).
FULL_ROWS_COPY = {
    "A": "↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ 0/1 ↓ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31",
    "B": "↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ 0/1 ↑ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31 44/45",
    "E": "↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ 0/1 ↑ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 30/31 44/45 ↑ ↑ ↑",
    "F": "↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ ↓ 0/1 ↑ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ↑ ↑ ↑ ↑ ↑ ↑",
    "J": "↓ ↓ ↓ ↓ ↓ ↓ 0/1 ↑ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑",
    "Q": "0/1 ↑ ↓ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑",
    "R": "↑ ↑ 1/2 2/3 3/4 5/6 7/8 10/11 14/15 21/22 ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑ ↑",
}


def _as_copy_token(cell: int | str) -> str:
    if isinstance(cell, int):
        return f"{cell}/{cell + 1}"
    return "↓" if cell == "v" else "↑"


@pytest.mark.parametrize("letter", sorted(FULL_ROWS_COPY))
def test_full_rows_against_the_z14_layout(letter: str) -> None:
    expected = FULL_ROWS_COPY[letter].split()
    assert len(expected) == len(AQL_VALUES)
    assert [_as_copy_token(c) for c in TABLE_2A[letter]] == expected


# 2) MIL-STD-105E Table II-A, plan by plan in column order for every code letter (transcription "Tablas").
MIL_STD_PLANS = {
    "A": "0 1 1 2 2 3 3 4 5 6 7 8 10 11 14 15 21 22 30 31",
    **{letter: "0 1 1 2 2 3 3 4 5 6 7 8 10 11 14 15 21 22 30 31 44 45" for letter in "BCDE"},
    **{letter: "0 1 1 2 2 3 3 4 5 6 7 8 10 11 14 15 21 22" for letter in "FGHJKLMNPQ"},
    "R": "1 2 2 3 3 4 5 6 7 8 10 11 14 15 21 22",
}


@pytest.mark.parametrize("letter", CODE_LETTERS)
def test_every_row_lists_the_mil_std_plans_in_order(letter: str) -> None:
    numbers = []
    for cell in TABLE_2A[letter]:
        if isinstance(cell, int):
            numbers += [cell, cell + 1]
    assert numbers == [int(x) for x in MIL_STD_PLANS[letter].split()]


# 3) US Army Table 1-A (general level II, single normal, from MIL-STD-105E): Re or arrow for AQL 0.65 .. 15.
#    Its A row prints an up arrow under AQL 10 where there is no plan above (see the module's note).
ARMY_COLUMNS = ["0.65", "1.0", "1.5", "2.5", "4.0", "6.5", "10", "15"]
ARMY_TABLE_1A = {
    "A": "↓ ↓ ↓ ↓ ↓ 1 ↑* ↓",
    "B": "↓ ↓ ↓ ↓ 1 ↑ ↓ 2",
    "C": "↓ ↓ ↓ 1 ↑ ↓ 2 3",
    "D": "↓ ↓ 1 ↑ ↓ 2 3 4",
    "E": "↓ 1 ↑ ↓ 2 3 4 6",
    "F": "1 ↑ ↓ 2 3 4 6 8",
    "G": "↑ ↓ 2 3 4 6 8 11",
    "H": "↓ 2 3 4 6 8 11 15",
    "J": "2 3 4 6 8 11 15 22",
    "K": "3 4 6 8 11 15 22 ↑",
    "L": "4 6 8 11 15 22 ↑ ↑",
    "M": "6 8 11 15 22 ↑ ↑ ↑",
    "N": "8 11 15 22 ↑ ↑ ↑ ↑",
    "P": "11 15 22 ↑ ↑ ↑ ↑ ↑",
    "Q": "15 22 ↑ ↑ ↑ ↑ ↑ ↑",
}


@pytest.mark.parametrize("letter", sorted(ARMY_TABLE_1A))
def test_cells_against_the_army_level_ii_table(letter: str) -> None:
    for aql, token in zip(ARMY_COLUMNS, ARMY_TABLE_1A[letter].split(), strict=True):
        cell = TABLE_2A[letter][AQL_VALUES.index(Decimal(aql))]
        if token == "↑*":
            assert cell == "v"  # no plan above A: the column's plan is below (C, 1/2)
        elif token in {"↑", "↓"}:
            assert _as_copy_token(cell) == token, (letter, aql)
        else:
            assert isinstance(cell, int) and cell + 1 == int(token), (letter, aql)


def test_the_table_is_constant_along_its_diagonals() -> None:
    # One step down (n about 1.6x) and one step left (AQL about /1.6) keeps the same plan: a property of 2-A.
    for row in range(len(CODE_LETTERS) - 1):
        upper, lower = TABLE_2A[CODE_LETTERS[row]], TABLE_2A[CODE_LETTERS[row + 1]]
        for column in range(1, len(AQL_VALUES)):
            if isinstance(upper[column], int) and isinstance(lower[column - 1], int):
                assert upper[column] == lower[column - 1]


def test_shape_of_the_tables() -> None:
    assert len(AQL_VALUES) == 26
    assert [SAMPLE_SIZES[letter] for letter in CODE_LETTERS] == [
        2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000,
    ]  # fmt: skip
    assert all(len(TABLE_2A[letter]) == 26 for letter in CODE_LETTERS)


# --- Every cell through the public function ------------------------------------------------------------------
LOT_SIZES = [first for first, *_ in TABLE_1_COPY] + [last for _, last, *_ in TABLE_1_COPY[:-1]]


def test_every_level_lot_range_and_aql_gives_a_plan_from_the_table() -> None:
    for lot_size in LOT_SIZES:
        for level in INSPECTION_LEVELS:
            for aql in AQL_VALUES:
                plan = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=aql)
                assert TABLE_2A[plan.code_letter][AQL_VALUES.index(aql)] == plan.accept
                assert plan.reject == plan.accept + 1
                assert plan.sample_size == min(SAMPLE_SIZES[plan.code_letter], lot_size)


# --- Properties ----------------------------------------------------------------------------------------------
lot_sizes = st.integers(min_value=2, max_value=2_000_000)
levels = st.sampled_from(INSPECTION_LEVELS)
aqls = st.sampled_from(AQL_VALUES)


@given(lot_size=lot_sizes, level=levels, aql=aqls)
def test_single_sampling_rejects_at_one_more_than_it_accepts(lot_size: int, level: str, aql: Decimal) -> None:
    plan = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=aql)
    assert plan.reject == plan.accept + 1
    assert 1 <= plan.sample_size <= lot_size
    assert plan.full_inspection == (SAMPLE_SIZES[plan.code_letter] >= lot_size)


@given(a=lot_sizes, b=lot_sizes, level=levels, aql=aqls)
def test_sample_size_never_shrinks_as_the_lot_grows(a: int, b: int, level: str, aql: Decimal) -> None:
    small, large = sorted((a, b))
    n_small = single_sampling_plan(lot_size=small, inspection_level=level, aql=aql).sample_size
    n_large = single_sampling_plan(lot_size=large, inspection_level=level, aql=aql).sample_size
    assert n_small <= n_large


@given(letter=st.sampled_from(CODE_LETTERS), i=st.integers(0, 25), j=st.integers(0, 25))
def test_acceptance_number_never_drops_as_the_aql_rises(letter: str, i: int, j: int) -> None:
    # For a fixed code letter (a lot size and level that give it), Ac is non-decreasing in the AQL.
    lo, hi = sorted((i, j))
    level = next(lv for lv in INSPECTION_LEVELS if _letter_reachable(letter, lv))
    lot_size = _lot_for(letter, level)
    low = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=AQL_VALUES[lo])
    high = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=AQL_VALUES[hi])
    assert code_letter_for(lot_size=lot_size, inspection_level=level) == letter
    assert low.accept <= high.accept


def _lot_for(letter: str, level: str) -> int:
    column = INSPECTION_LEVELS.index(level) + 2
    return max(row[1] for row in TABLE_1_COPY if row[column] == letter)


def _letter_reachable(letter: str, level: str) -> bool:
    column = INSPECTION_LEVELS.index(level) + 2
    return any(row[column] == letter for row in TABLE_1_COPY)


@given(lot_size=lot_sizes, level=levels, aql=aqls, defectives=st.integers(0, 3000))
def test_verdict_boundary(lot_size: int, level: str, aql: Decimal, defectives: int) -> None:
    plan = single_sampling_plan(lot_size=lot_size, inspection_level=level, aql=aql)
    assert lot_verdict(plan, plan.accept) == "accept"
    assert lot_verdict(plan, plan.reject) == "reject"
    assert lot_verdict(plan, defectives) == ("accept" if defectives <= plan.accept else "reject")


def test_verdict_for_the_textbook_plan() -> None:
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="2.5")  # J: n 80, Ac 5, Re 6
    assert [lot_verdict(plan, d) for d in (0, 5, 6, 80)] == ["accept", "accept", "reject", "reject"]


# --- Validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aql", ["0.3", "2", "abc", "", "-1.0", "NaN", "Infinity", "1e400000", None, True])
def test_aql_outside_the_preferred_values_is_refused_naming_them(aql: object) -> None:
    with pytest.raises(ValueError, match="must be one of the standard's preferred values") as raised:
        single_sampling_plan(lot_size=1000, inspection_level="II", aql=aql)  # type: ignore[arg-type]
    assert "0.010, 0.015, 0.025" in str(raised.value)
    assert "650, 1000." in str(raised.value)


@pytest.mark.parametrize(("given_aql", "canonical"), [("1", "1.0"), (Decimal("0.01"), "0.010"), ("10.0", "10")])
def test_aql_written_differently_is_the_same_preferred_value(given_aql: str | Decimal, canonical: str) -> None:
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql=given_aql)
    assert str(plan.aql) == canonical


@pytest.mark.parametrize("level", ["IV", "S-5", "", "general", None])
def test_unknown_inspection_level_is_refused(level: object) -> None:
    with pytest.raises(ValueError, match="inspection level must be one of S-1, S-2, S-3, S-4, I, II, III"):
        single_sampling_plan(lot_size=1000, inspection_level=level, aql="1.0")  # type: ignore[arg-type]


def test_inspection_level_spellings() -> None:
    assert single_sampling_plan(lot_size=1000, inspection_level=" ii ", aql="1.0").inspection_level == "II"
    assert single_sampling_plan(lot_size=1000, inspection_level="s3", aql="1.0").inspection_level == "S-3"


@pytest.mark.parametrize("lot_size", [1, 0, -5, True, 2.5, "100"])
def test_bad_lot_size_is_refused(lot_size: object) -> None:
    with pytest.raises(ValueError, match="lot size"):
        single_sampling_plan(lot_size=lot_size, inspection_level="II", aql="1.0")  # type: ignore[arg-type]


@pytest.mark.parametrize("defectives", [-1, True, 1.5])
def test_bad_defective_count_is_refused(defectives: object) -> None:
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="1.0")
    with pytest.raises(ValueError, match="nonconforming items"):
        lot_verdict(plan, defectives)  # type: ignore[arg-type]


def test_plan_is_immutable() -> None:
    plan = single_sampling_plan(lot_size=1000, inspection_level="II", aql="1.0")
    assert isinstance(plan, SamplingPlan)
    with pytest.raises(AttributeError):
        plan.accept = 99  # type: ignore[misc]
