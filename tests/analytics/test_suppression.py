"""Primary + complementary suppression as pure functions (no database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.analytics import suppression as sup
from marketplace.analytics.suppression import TOTAL, Backing


def test_primary_rule_counts_both_sides() -> None:
    assert sup.is_primary(Backing(2, 5), 3)
    assert sup.is_primary(Backing(5, 1), 3)
    assert not sup.is_primary(Backing(3, 3), 3)
    assert not sup.is_primary(Backing(0, 0), 3)  # an empty cell names nobody
    assert not sup.is_primary(Backing(4, 0), 3)


def test_single_small_cell_gets_a_partner_in_row_and_column() -> None:
    rows, cols = ["a", "b"], ["x", "y"]
    cells = {
        ("a", "x"): Backing(1, 1), ("a", "y"): Backing(5, 5), ("b", "x"): Backing(6, 6), ("b", "y"): Backing(7, 7),
        ("a", TOTAL): Backing(6, 6), ("b", TOTAL): Backing(9, 9), (TOTAL, "x"): Backing(7, 7),
        (TOTAL, "y"): Backing(9, 9), (TOTAL, TOTAL): Backing(12, 12),
    }  # fmt: skip
    hidden = sup.suppress(rows, cols, cells, min_organisations=3)
    assert ("a", "x") in hidden
    assert sup.recoverable(rows, cols, hidden) == []
    assert len(hidden) >= 4  # the classic 2x2 pattern
    assert sup.suppress(rows, cols, cells, min_organisations=3, complementary=False) == {("a", "x")}


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[str], dict[tuple[str, str], Backing]]:
    rows = [f"r{i}" for i in range(draw(st.integers(1, 6)))]
    cols = [f"c{j}" for j in range(draw(st.integers(1, 6)))]
    counts = st.integers(0, 6)
    cells: dict[tuple[str, str], Backing] = {}
    for r in rows:
        for c in cols:
            if draw(st.booleans()) or len(rows) * len(cols) == 1:
                cells[(r, c)] = Backing(draw(counts), draw(counts), draw(st.floats(0, 100)))
    # Totals are backed by at least the largest of their members (distinct counts are sub-additive).
    for r in rows:
        mem = [cells[(r, c)] for c in cols if (r, c) in cells]
        cells[(r, TOTAL)] = Backing(max([b.suppliers for b in mem], default=0) + draw(st.integers(0, 3)),
                                    max([b.buyers for b in mem], default=0) + draw(st.integers(0, 3)))  # fmt: skip
    for c in cols:
        mem = [cells[(r, c)] for r in rows if (r, c) in cells]
        cells[(TOTAL, c)] = Backing(max([b.suppliers for b in mem], default=0) + draw(st.integers(0, 3)),
                                    max([b.buyers for b in mem], default=0) + draw(st.integers(0, 3)))  # fmt: skip
    allm = [cells[k] for k in cells]
    cells[(TOTAL, TOTAL)] = Backing(max(b.suppliers for b in allm) + draw(st.integers(0, 3)),
                                    max(b.buyers for b in allm) + draw(st.integers(0, 3)))  # fmt: skip
    return rows, cols, cells


@settings(max_examples=500, deadline=None)
@given(tables(), st.integers(2, 5))
def test_no_suppressed_cell_is_recoverable_from_totals(
    table: tuple[list[str], list[str], dict[tuple[str, str], Backing]], k: int
) -> None:
    rows, cols, cells = table
    hidden = sup.suppress(rows, cols, cells, min_organisations=k)
    # every primary cell is suppressed
    for key, b in cells.items():
        if sup.is_primary(b, k):
            assert key in hidden
    # for each row/column with its total: 0 or >= 2 suppressed members (the total counts as a member)
    for rel in sup.relations(rows, cols):
        assert sum(1 for key in rel if key in hidden) != 1, rel
    assert sup.recoverable(rows, cols, hidden) == []
