"""The dependency rule: domain packages never import the app shell."""

from __future__ import annotations

import ast
import re
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
        if path.name in {"adapter.py", "repository.py", "conditions_repository.py"}:  # the one thin query adapter
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in banned, path
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned, path


# --- The shell's layout: composition root -> feature rooms -> core (and the domain packages) ---------------

COMPOSITION_ROOT = {"app", "cli", "celery_app", "models", "__main__"}


def _shell_imports(root: Path = ROOT) -> list[tuple[str, str, Path]]:
    """(importing part, imported part, file) for every import between parts of ``marketplace``."""

    def part(module: str) -> str | None:
        bits = module.split(".")
        if bits[0] != "marketplace" or len(bits) < 2:
            return None
        return "root" if bits[1] in COMPOSITION_ROOT else bits[1]

    edges = []
    for path in (root / "marketplace").rglob("*.py"):
        rel = path.relative_to(root).with_suffix("")
        source = part(".".join(rel.parts)) or "root"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module] + [
                    f"{node.module}.{a.name}" for a in node.names if node.module == "marketplace"
                ]
            else:
                continue
            for module in modules:
                target = part(module)
                if target and target != source:
                    edges.append((source, target, path.relative_to(root)))
    return edges


def test_the_shell_root_holds_only_the_composition_root() -> None:
    loose = sorted(p.name for p in (ROOT / "marketplace").glob("*.py") if p.stem not in COMPOSITION_ROOT | {"__init__"})
    assert loose == [], "infrastructure goes to marketplace/core/, features to a room"


def test_core_imports_no_feature_room_and_no_composition_root() -> None:
    offenders = [f"{path}: imports marketplace.{target}" for src, target, path in _shell_imports() if src == "core"]
    assert offenders == []


def test_rooms_never_import_the_composition_root() -> None:
    offenders = [
        f"{path}: imports the composition root"
        for src, target, path in _shell_imports()
        if src != "root" and target == "root"
    ]
    assert offenders == []


def test_the_layout_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """Control: a room importing the root and core importing a room are both reported."""
    shell = tmp_path / "marketplace"
    for folder in ("core", "bookings"):
        (shell / folder).mkdir(parents=True)
    (shell / "app.py").write_text("")
    (shell / "bookings" / "service.py").write_text("from marketplace import cli\nfrom marketplace.app import x\n")
    (shell / "core" / "db.py").write_text("from marketplace.bookings.models import Booking\n")
    edges = {(src, target) for src, target, _ in _shell_imports(tmp_path)}
    assert {("bookings", "root"), ("core", "bookings")} <= edges


# --- All SQL lives in repositories ------------------------------------------------------------------------

SQL_CALLS = re.compile(
    r"\bsa\.(?:select|text|update|delete|insert)\(|(?<![\w.])(?:select|text)\("
    r"|\bsession\.(?:execute|exec|scalar|scalars)\("
)

# Where statements may be written: each room's repository (a module or a package), the one thin query
# adapter of matching, the core infrastructure (unit of work, outbox, idempotency claims, health), table
# definitions (server defaults, constraints), migrations, and the payments ledger (its repository: postings
# and balances are statements by nature).
SQL_HOMES = re.compile(
    r"(^|/)(\w+_)?repository(_\w+)?\.py$|(^|/)repository/|^matching/adapter\.py$|^marketplace/core/|(^|/)models\.py$"
    r"|^payments/ledger\.py$"
)


def sql_outside_repositories(root: Path = ROOT) -> list[str]:
    offenders = []
    for package in ("marketplace", "listings", "payments", "matching"):
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            if SQL_HOMES.search(rel):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SQL_CALLS.search(line.split("#")[0]):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    return offenders


def test_sql_lives_only_in_repositories() -> None:
    assert sql_outside_repositories() == []


def test_the_sql_check_sees_a_query_in_a_service(tmp_path: Path) -> None:
    """Control: a statement in a service or a web handler is reported; the same in a repository is not."""
    for rel, code in {
        "marketplace/bookings/service.py": "rows = await session.execute(sa.select(Booking))\n",
        "marketplace/web/admin.py": "orgs = (await session.scalars(select(Organisation))).all()\n",
        "marketplace/bookings/repository.py": "rows = await session.execute(sa.select(Booking))\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(code)
    for package in ("listings", "payments", "matching"):
        (tmp_path / package).mkdir()
    reported = {line.split(":")[0] for line in sql_outside_repositories(tmp_path)}
    assert reported == {"marketplace/bookings/service.py", "marketplace/web/admin.py"}


# --- Small modules ----------------------------------------------------------------------------------------

MAX_LINES = 500
# Data, not logic: the demo catalogue is a table of processes, materials and machine families.
DATA_MODULES = {"marketplace/demo/catalogue.py"}


def oversized_modules(root: Path = ROOT) -> list[str]:
    found = []
    for package in ("marketplace", "listings", "payments", "matching"):
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and rel not in DATA_MODULES:
                found.append(f"{rel}: {lines} lines")
    return found


def test_no_source_module_exceeds_the_size_limit() -> None:
    assert oversized_modules() == []


def test_the_size_check_sees_a_large_module(tmp_path: Path) -> None:
    """Control: a 501-line service is reported; the allow-listed catalogue of the same size is not."""
    for rel in ("marketplace/bookings/service.py", "marketplace/demo/catalogue.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n" * (MAX_LINES + 1))
    for package in ("listings", "payments", "matching"):
        (tmp_path / package).mkdir()
    assert oversized_modules(tmp_path) == [f"marketplace/bookings/service.py: {MAX_LINES + 1} lines"]


# --- Keyword-only functions -------------------------------------------------------------------------------

MAX_POSITIONAL = 3
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "api_route", "websocket", "task"}
# Signatures fixed by a framework callback (Alembic's include_object; a FastAPI dependency whose parameters
# are the route's path parameters, matched by name).
FRAMEWORK_CALLBACKS = {"marketplace/models.py:include_object", "marketplace/web/core.py:booking_action_form"}


def _framework_injected(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """FastAPI routes and Celery tasks are called by name by their framework, not by our code."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr in ROUTE_DECORATORS:
            return True
    return False


def positional_heavy_functions(root: Path = ROOT) -> list[str]:
    """Functions our own code calls with more than three positional parameters, or with **kwargs."""
    found = []
    for package in ("marketplace", "listings", "payments", "matching"):
        for path in sorted((root / package).rglob("*.py")):
            rel = str(path.relative_to(root))
            if path.name == "deps.py":  # FastAPI dependencies: injected by parameter name
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _framework_injected(node):
                    continue
                if f"{rel}:{node.name}" in FRAMEWORK_CALLBACKS:
                    continue
                args = node.args
                positional = [a.arg for a in args.posonlyargs + args.args if a.arg not in ("self", "cls")]
                if len(positional) > MAX_POSITIONAL:
                    found.append(f"{rel}:{node.lineno} {node.name}({', '.join(positional)})")
    return found


def test_functions_with_many_parameters_are_keyword_only() -> None:
    assert positional_heavy_functions() == []


def test_the_keyword_check_sees_a_positional_helper_but_not_a_route(tmp_path: Path) -> None:
    """Control: an 8-positional helper is reported; a route with as many injected parameters is not."""
    (tmp_path / "marketplace").mkdir()
    (tmp_path / "marketplace" / "service.py").write_text(
        "def org(session, name, kind, region, lat, lon, uscc, verified): ...\n"
        "def fine(session, *, name, kind, region): ...\n"
        "@router.post('/x')\nasync def route(a, b, c, d, e): ...\n"
    )
    for package in ("listings", "payments", "matching"):
        (tmp_path / package).mkdir()
    assert positional_heavy_functions(tmp_path) == [
        "marketplace/service.py:1 org(session, name, kind, region, lat, lon, uscc, verified)"
    ]


# --- No assert in source ----------------------------------------------------------------------------------


def asserts_in_source(root: Path = ROOT) -> list[str]:
    """``assert`` statements outside tests: ``python -O`` strips them, so a check written as one vanishes in
    an optimised deployment; source code raises explicit errors instead."""
    found = []
    for package in ("marketplace", "listings", "payments", "matching"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            found += [f"{path.relative_to(root)}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    return found


def test_source_code_has_no_assert_statements() -> None:
    assert asserts_in_source() == []


def test_the_assert_check_sees_an_assert(tmp_path: Path) -> None:
    """Control: an ``assert`` in a service is reported; the word in a string or comment is not."""
    (tmp_path / "marketplace").mkdir()
    (tmp_path / "marketplace" / "service.py").write_text('x = "assert y"  # assert z\nassert x\n')
    for package in ("listings", "payments", "matching"):
        (tmp_path / package).mkdir()
    assert asserts_in_source(tmp_path) == ["marketplace/service.py:2"]
