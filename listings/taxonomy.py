"""Process and material taxonomy, shipped as JSON package data (``listings/data``).

The process tree is our own design (see DOMAIN.md section 1): dotted codes, group
nodes have ``kind=None``, bookable leaves are ``"machine"`` or ``"lab_service"``.
"Can also do" edges say an asset of one process can serve a request for another (a
5-axis centre can take 3-axis work); there are deliberately none for testing, where
accreditation scope is per method standard.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

PROCESS_KINDS: frozenset[str] = frozenset({"machine", "lab_service"})
MATERIAL_FAMILIES: frozenset[str] = frozenset(
    {
        "aluminium",
        "steel",
        "stainless",
        "tool_steel",
        "titanium",
        "copper",
        "plastic",
        "other",
    }
)


@dataclass(frozen=True)
class Process:
    code: str
    parent: str | None
    name_en: str
    name_zh: str
    kind: str | None  # "machine" | "lab_service" for leaves, None for group nodes


@dataclass(frozen=True)
class Material:
    code: str
    name_en: str
    name_zh: str
    family: str
    # Designations a buyer may type (GB, old GB, AA/AISI/EN/JIS); some are nearest
    # equivalents rather than identical grades, which is fine for search.
    grades: tuple[str, ...]


class Taxonomy:
    """Immutable, validated view of the taxonomy; build via :func:`get_taxonomy`."""

    processes: dict[str, Process]
    materials: dict[str, Material]
    can_also_do: tuple[tuple[str, str], ...]  # (asset code, code it also serves)

    def __init__(
        self,
        processes: Iterable[Process],
        materials: Iterable[Material],
        can_also_do: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.processes = {}
        for p in processes:
            if p.code in self.processes:
                raise ValueError(f"duplicate process code {p.code!r}")
            self.processes[p.code] = p
        self.materials = {}
        for m in materials:
            if m.code in self.materials:
                raise ValueError(f"duplicate material code {m.code!r}")
            if m.family not in MATERIAL_FAMILIES:
                raise ValueError(f"material {m.code!r}: unknown family {m.family!r}")
            self.materials[m.code] = m
        # name() looks codes up in both dicts, so they must not collide.
        clash = self.processes.keys() & self.materials.keys()
        if clash:
            raise ValueError(f"codes used for both a process and a material: {sorted(clash)}")
        self.can_also_do = tuple(can_also_do)

        self._children: dict[str, list[str]] = {code: [] for code in self.processes}
        for p in self.processes.values():
            if p.parent is not None:
                if p.parent not in self.processes:
                    raise ValueError(f"process {p.code!r}: unknown parent {p.parent!r}")
                self._children[p.parent].append(p.code)
        self._check_acyclic()
        for p in self.processes.values():
            is_leaf = not self._children[p.code]
            if is_leaf and p.kind not in PROCESS_KINDS:
                raise ValueError(f"leaf process {p.code!r} needs a kind, got {p.kind!r}")
            if not is_leaf and p.kind is not None:
                raise ValueError(f"group process {p.code!r} must have kind null")

        # Reverse edges: who can also serve X.
        self._served_by: dict[str, set[str]] = {code: set() for code in self.processes}
        for asset, serves in self.can_also_do:
            for code in (asset, serves):
                if code not in self.processes:
                    raise ValueError(f"can_also_do references unknown process {code!r}")
            self._served_by[serves].add(asset)
        # Small tree (~100 nodes): precompute so search-time lookups are dict hits.
        self._serving: dict[str, frozenset[str]] = {code: self._compute_serving(code) for code in self.processes}

    def _check_acyclic(self) -> None:
        for start in self.processes:
            seen: set[str] = set()
            code: str | None = start
            while code is not None:
                if code in seen:
                    raise ValueError(f"cycle in process parent tree at {code!r}")
                seen.add(code)
                code = self.processes[code].parent

    def _compute_serving(self, requested: str) -> frozenset[str]:
        result = set(self.descendants(requested))
        stack = list(result)
        while stack:  # transitive closure; mjf <-> sls is a cycle, hence the seen-set
            for asset in self._served_by[stack.pop()]:
                if asset not in result:
                    result.add(asset)
                    stack.append(asset)
        return frozenset(result)

    def _require_process(self, code: str) -> None:
        if code not in self.processes:
            raise KeyError(f"unknown process code {code!r}")

    def is_process(self, code: str) -> bool:
        return code in self.processes

    def is_material(self, code: str) -> bool:
        return code in self.materials

    def is_leaf(self, code: str) -> bool:
        """True for bookable processes (no children); KeyError for unknown codes."""
        self._require_process(code)
        return not self._children[code]

    def leaves(self) -> list[Process]:
        """Bookable processes, sorted by code."""
        return [p for code, p in sorted(self.processes.items()) if not self._children[code]]

    def children(self, code: str) -> list[str]:
        self._require_process(code)
        return list(self._children[code])

    def descendants(self, code: str) -> set[str]:
        """``code`` and every node below it. Raises KeyError for unknown codes."""
        self._require_process(code)
        out: set[str] = set()
        stack = [code]
        while stack:
            c = stack.pop()
            out.add(c)
            stack.extend(self._children[c])
        return out

    def serving_codes(self, requested: str) -> set[str]:
        """Every process code whose asset can serve a request for ``requested``.

        That is ``requested`` itself, its descendants (a request for a group is
        served by any of its leaves) and, transitively, every code that "can also
        do" any of those.
        Meant for an SQL ``process_codes && ARRAY[...]`` filter. Raises KeyError for
        unknown codes so a typo never silently matches nothing.
        """
        self._require_process(requested)
        return set(self._serving[requested])

    def serving_kind(self, requested: str) -> str | None:
        """The one listing kind that can serve ``requested`` (listings hold leaves of their own kind only), or
        ``None`` when leaves of both kinds serve it. Raises KeyError for unknown codes."""
        kinds = {self.processes[c].kind for c in self.serving_codes(requested)} - {None}
        return kinds.pop() if len(kinds) == 1 else None

    def name(self, code: str, locale: str) -> str:
        """Display name of a process or material: ``zh*`` locales get Chinese."""
        entry: Process | Material | None = self.processes.get(code) or self.materials.get(code)
        if entry is None:
            raise KeyError(f"unknown process or material code {code!r}")
        return entry.name_zh if locale.lower().startswith("zh") else entry.name_en


def _str(obj: Mapping[str, object], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"taxonomy entry {obj.get('code')!r}: {key!r} must be a non-empty string")
    return value


def _opt_str(obj: Mapping[str, object], key: str) -> str | None:
    return None if obj.get(key) is None else _str(obj, key)


def _records(doc: object, key: str) -> list[Mapping[str, object]]:
    if not isinstance(doc, dict):
        raise TypeError("taxonomy file must contain a JSON object")
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"taxonomy key {key!r} must be a list of objects")
    return items


def parse_taxonomy(processes_doc: object, materials_doc: object) -> Taxonomy:
    """Build a Taxonomy from decoded JSON documents, validating shape and refs."""
    processes = [
        Process(
            code=_str(r, "code"),
            parent=_opt_str(r, "parent"),
            name_en=_str(r, "name_en"),
            name_zh=_str(r, "name_zh"),
            kind=_opt_str(r, "kind"),
        )
        for r in _records(processes_doc, "processes")
    ]
    edges = [(_str(r, "code"), _str(r, "serves")) for r in _records(processes_doc, "can_also_do")]
    materials: list[Material] = []
    for r in _records(materials_doc, "materials"):
        grades = r.get("grades", [])
        if not isinstance(grades, list) or not all(isinstance(g, str) for g in grades):
            raise ValueError(f"material {r.get('code')!r}: 'grades' must be a list of strings")
        materials.append(
            Material(
                code=_str(r, "code"),
                name_en=_str(r, "name_en"),
                name_zh=_str(r, "name_zh"),
                family=_str(r, "family"),
                grades=tuple(grades),
            )
        )
    return Taxonomy(processes, materials, edges)


def _load_json(name: str) -> object:
    # importlib.resources also works from wheels/zips (data/*.json is package data).
    data_dir = resources.files(__package__ or "listings").joinpath("data")
    text = data_dir.joinpath(name).read_text(encoding="utf-8")
    result: object = json.loads(text)
    return result


@cache
def get_taxonomy() -> Taxonomy:
    """Process-wide singleton, loaded once from the shipped JSON."""
    return parse_taxonomy(_load_json("processes.json"), _load_json("materials.json"))
