"""The dependency rule: domain packages never import the app shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["listings", "matching", "payments"])
def test_domain_packages_never_import_marketplace(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "marketplace"]
    assert offenders == []


def test_matching_algorithms_do_not_touch_the_database_or_web() -> None:
    banned = {"sqlalchemy", "sqlmodel", "fastapi", "asyncpg", "starlette"}
    for path in (ROOT / "matching").rglob("*.py"):
        if path.name in {"adapter.py", "repository.py"}:  # the one thin query adapter
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in banned, path
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned, path
