"""Pure tests of the shipped process/material taxonomy (no database)."""

from __future__ import annotations

import pytest

from listings.taxonomy import (
    Material,
    Process,
    Taxonomy,
    get_taxonomy,
    parse_taxonomy,
)

REQUIRED_PROCESSES = {
    "machining.milling.cnc_3axis",
    "machining.milling.cnc_4axis",
    "machining.milling.cnc_5axis",
    "machining.turning.cnc_lathe",
    "testing.mechanical.tensile",
    "testing.dimensional.cmm",
    "testing.corrosion.salt_spray_nss",
    "sheet_metal.laser_cut.fiber",
    "sheet_metal.waterjet_cut",
    "additive.slm",
}
REQUIRED_MATERIALS = {
    "al_6061", "al_6063", "al_7075", "q235", "q355", "steel_45", "steel_40cr",
    "steel_42crmo", "ss_304", "ss_316l", "ti_tc4", "abs", "pa12", "peek", "pc", "pom",
}  # fmt: skip
MILL = "machining.milling"


def test_singleton_is_cached() -> None:
    assert get_taxonomy() is get_taxonomy()


def test_required_codes_present() -> None:
    tax = get_taxonomy()
    assert REQUIRED_PROCESSES <= set(tax.processes)
    assert REQUIRED_MATERIALS <= set(tax.materials)
    assert all(tax.is_process(c) for c in REQUIRED_PROCESSES)
    assert all(tax.is_material(c) for c in REQUIRED_MATERIALS)
    assert not tax.is_process("al_6061")
    assert not tax.is_material("machining")
    assert 30 <= len(tax.materials) <= 45


def test_at_least_sixty_leaves_with_kinds() -> None:
    tax = get_taxonomy()
    leaves = tax.leaves()
    assert len(leaves) >= 60
    assert [p.code for p in leaves] == sorted(p.code for p in leaves)
    for p in leaves:
        expected = "lab_service" if p.code.startswith("testing.") else "machine"
        assert p.kind == expected, p.code
    leaf_codes = {p.code for p in leaves}
    for code, p in tax.processes.items():
        if code not in leaf_codes:
            assert p.kind is None, code


def test_parents_exist_and_tree_is_acyclic() -> None:
    tax = get_taxonomy()
    for p in tax.processes.values():
        seen: set[str] = set()
        code: str | None = p.code
        while code is not None:
            assert code not in seen, f"cycle at {code}"
            seen.add(code)
            parent = tax.processes[code].parent
            assert parent is None or parent in tax.processes, code
            code = parent
        # Codes are dotted paths, so the parent is the code minus its last segment.
        expected_parent = p.code.rsplit(".", 1)[0] if "." in p.code else None
        assert p.parent == expected_parent


def test_can_also_do_references_existing_codes() -> None:
    tax = get_taxonomy()
    assert tax.can_also_do
    for asset, serves in tax.can_also_do:
        assert tax.is_leaf(asset)
        assert tax.is_leaf(serves)
        assert not asset.startswith("testing.")
        assert not serves.startswith("testing.")


def test_serving_codes_milling_ladder() -> None:
    tax = get_taxonomy()
    three = tax.serving_codes(f"{MILL}.cnc_3axis")
    assert {f"{MILL}.cnc_3axis", f"{MILL}.cnc_4axis", f"{MILL}.cnc_5axis"} <= three
    assert f"{MILL}.gantry" in three
    assert f"{MILL}.manual" not in three
    five = tax.serving_codes(f"{MILL}.cnc_5axis")
    assert five == {f"{MILL}.cnc_5axis"}
    assert f"{MILL}.cnc_3axis" not in five
    # CNC does manual work, transitively through the ladder.
    assert f"{MILL}.cnc_5axis" in tax.serving_codes(f"{MILL}.manual")


def test_serving_codes_other_relations() -> None:
    tax = get_taxonomy()
    lathe = tax.serving_codes("machining.turning.cnc_lathe")
    assert {"machining.turning.turn_mill", "machining.turning.swiss"} <= lathe
    assert "machining.turning.manual" not in lathe
    assert "machining.edm.wire_slow" in tax.serving_codes("machining.edm.wire_fast")
    plasma = tax.serving_codes("sheet_metal.plasma_cut")
    assert "sheet_metal.laser_cut.fiber" in plasma
    # mjf <-> sls is a cycle: must terminate and be symmetric.
    assert tax.serving_codes("additive.sls") == {"additive.sls", "additive.mjf"}
    assert tax.serving_codes("additive.mjf") == {"additive.sls", "additive.mjf"}
    # Injection presses never substitute automatically (tie-bars, shot size).
    le200 = "moulding.injection.le_200t"
    assert tax.serving_codes(le200) == {le200}


def test_serving_codes_group_includes_descendants() -> None:
    tax = get_taxonomy()
    milling = tax.serving_codes(MILL)
    assert milling == tax.descendants(MILL)
    assert MILL in milling
    assert {f"{MILL}.cnc_3axis", f"{MILL}.gantry", f"{MILL}.manual"} <= milling
    assert not any(c.startswith("machining.turning") for c in milling)
    machining = tax.serving_codes("machining")
    assert "machining.edm.sinker" in machining
    assert "sheet_metal.plasma_cut" not in machining


def test_testing_codes_serve_only_themselves() -> None:
    tax = get_taxonomy()
    for p in tax.leaves():
        if p.code.startswith("testing."):
            assert tax.serving_codes(p.code) == {p.code}
    hardness = tax.serving_codes("testing.hardness")
    assert hardness == tax.descendants("testing.hardness")


def test_serving_codes_returns_a_copy() -> None:
    tax = get_taxonomy()
    codes = tax.serving_codes("additive.slm")
    codes.add("junk")
    assert "junk" not in tax.serving_codes("additive.slm")


def test_unknown_codes_raise() -> None:
    tax = get_taxonomy()
    with pytest.raises(KeyError):
        tax.serving_codes("machining.milling.cnc_9axis")
    with pytest.raises(KeyError):
        tax.descendants("nope")
    with pytest.raises(KeyError):
        tax.name("nope", "en")


def test_names_in_both_languages() -> None:
    tax = get_taxonomy()
    for code, p in tax.processes.items():
        assert p.name_en.strip() and p.name_zh.strip(), code
        assert p.name_en.isascii(), code
        assert not p.name_zh.isascii(), code  # has CJK characters
    for code, m in tax.materials.items():
        assert m.name_en.strip() and m.name_zh.strip(), code
        assert m.grades, code
    assert tax.name("machining.milling.cnc_5axis", "zh-CN") == "五轴联动加工中心"
    assert tax.name("machining.milling.cnc_5axis", "en").startswith("CNC 5-axis")
    assert tax.name("ss_304", "zh-CN") == "304不锈钢"
    assert "06Cr19Ni10" in tax.materials["ss_304"].grades


def test_material_families() -> None:
    tax = get_taxonomy()
    assert tax.materials["al_6061"].family == "aluminium"
    assert tax.materials["steel_45"].family == "steel"
    assert tax.materials["ss_316l"].family == "stainless"
    assert tax.materials["tl_h13"].family == "tool_steel"
    assert tax.materials["ti_tc4"].family == "titanium"
    assert tax.materials["cu_h62"].family == "copper"
    assert tax.materials["pa12"].family == "plastic"


def _proc(code: str, parent: str | None, kind: str | None) -> Process:
    return Process(code, parent, code, code + "中", kind)


def test_validation_rejects_cycles_and_dangling_refs() -> None:
    cyclic = [_proc("a", "b", None), _proc("b", "a", None), _proc("a.x", "a", "machine")]
    with pytest.raises(ValueError, match="cycle"):
        Taxonomy(cyclic, [])
    with pytest.raises(ValueError, match="unknown parent"):
        Taxonomy([_proc("a.x", "a", "machine")], [])
    ok = [_proc("a", None, None), _proc("a.x", "a", "machine")]
    with pytest.raises(ValueError, match="unknown process"):
        Taxonomy(ok, [], [("a.x", "a.y")])
    with pytest.raises(ValueError, match="needs a kind"):
        Taxonomy([_proc("a", None, None)], [])
    mat = Material("m", "M", "M中", "unobtainium", ())
    with pytest.raises(ValueError, match="family"):
        Taxonomy(ok, [mat])


def test_parse_taxonomy_rejects_bad_shapes() -> None:
    with pytest.raises(TypeError):
        parse_taxonomy([], {"materials": []})
    with pytest.raises(ValueError, match="name_zh"):
        parse_taxonomy(
            {"processes": [{"code": "a", "parent": None, "name_en": "A", "kind": None}]},
            {"materials": []},
        )


def test_serving_kind_is_the_kind_of_every_listing_that_can_serve() -> None:
    tax = get_taxonomy()
    for code in tax.processes:
        kind = tax.serving_kind(code)
        assert kind is not None, f"{code}: the shipped taxonomy has no process served by both kinds"
        assert all(tax.processes[c].kind in (None, kind) for c in tax.serving_codes(code))
    assert tax.serving_kind("machining.milling") == "machine"
    assert tax.serving_kind("testing.mechanical.tensile") == "lab_service"


def test_serving_kind_is_none_when_both_kinds_serve() -> None:
    tax = Taxonomy(
        [
            Process("root", None, "Root", "根", None),
            Process("root.cut", "root", "Cut", "切", "machine"),
            Process("root.test", "root", "Test", "测", "lab_service"),
        ],
        [],
    )
    assert tax.serving_kind("root") is None
    assert tax.serving_kind("root.cut") == "machine"
    # A machine process that a lab's listing can also do is served by both kinds.
    both = Taxonomy(tax.processes.values(), [], can_also_do=[("root.test", "root.cut")])
    assert both.serving_kind("root.cut") is None
