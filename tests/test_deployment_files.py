"""The deployment files agree with the code: no database, no Docker, no network.

Docker cannot run in CI, so these checks are all that stands between a renamed CLI command or
setting and a container that crash-loops in production: every ``marketplace <command>`` and
``--option`` used by docker-compose.yml or the Dockerfile exists in the Typer app, and every
``MARKETPLACE_*`` variable in docker-compose.yml, .env.example and docs/operations.md is a field of
:class:`Settings`.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
OPERATIONS = ROOT / "docs" / "operations.md"

APP_SERVICES = ("api", "relay", "worker", "beat")
REQUIRED_SERVICES = (*APP_SERVICES, "postgres", "redis")
PACKAGE_DIRS = ("marketplace", "listings", "matching", "payments", "alembic")
REQUIRED_COPIES = (*PACKAGE_DIRS, "alembic.ini", "pyproject.toml", "README.md")

ENV_NAME = re.compile(r"\bMARKETPLACE_[A-Z][A-Z0-9_]*")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
COMMAND_PREFIXES = {"exec", "env", "nohup", "time"}
SHELLS = {"sh", "bash", "dash", "ash"}


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # SafeLoader resolves `<<: *anchor` merge keys
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


@cache
def cli_commands() -> dict[str, Any]:
    """Top-level commands of the Typer app, by the name the shell uses (``create-admin``).

    Duck-typed: recent Typer releases vendor Click, so the group is not a ``click.Group``.
    """
    from marketplace.cli import app

    root = typer.main.get_command(app)
    commands = getattr(root, "commands", None)
    if isinstance(commands, dict):
        return dict(commands)
    return {root.name or "": root}  # a Typer app with a single command has no group


def settings_env_names() -> set[str]:
    from marketplace.core.settings import Settings

    return {f"MARKETPLACE_{name.upper()}" for name in Settings.model_fields}


def shell_words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def invocations(command: str | list[str] | None) -> list[list[str]]:
    """Every ``marketplace ...`` invocation in a command, as ``[subcommand, *arguments]``.

    Handles exec form (a list, also compose's ``["CMD", ...]`` and ``["CMD-SHELL", "..."]``), shell
    form (a string) and scripts nested in ``sh -c "..."``. Only words in command position count, so
    ``pg_isready -U marketplace`` is not an invocation.
    """
    if command is None:
        return []
    if isinstance(command, str):
        return scan_words(shell_words(command))
    words = [str(word) for word in command]
    if words and words[0] == "CMD-SHELL":
        return [args for script in words[1:] for args in invocations(script)]
    if words and words[0] == "CMD":
        words = words[1:]
    return scan_words(words)


def scan_words(words: list[str]) -> list[list[str]]:
    found: list[list[str]] = []
    command_position = True
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word in SHELL_OPERATORS:
            command_position = True
            continue
        if not command_position:
            continue
        if word in COMMAND_PREFIXES or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
            continue  # `exec marketplace ...`, `FOO=bar marketplace ...`
        command_position = False
        program = Path(word).name
        if program == "marketplace":
            args: list[str] = []
            while index < len(words) and words[index] not in SHELL_OPERATORS:
                args.append(words[index])
                index += 1
            found.append(args)
        elif program in SHELLS and index + 1 < len(words) and words[index] == "-c":
            found.extend(invocations(words[index + 1]))
            index += 2
    return found


def assert_real_invocation(args: list[str], where: str) -> str:
    commands = cli_commands()
    assert args and not args[0].startswith("-"), f"{where}: `marketplace` without a command"
    name = args[0]
    assert name in commands, f"{where}: `marketplace {name}` is not one of {sorted(commands)}"
    params = commands[name].params
    options = {opt for param in params for opt in (*param.opts, *param.secondary_opts)}
    options.add("--help")
    for arg in args[1:]:
        if arg.startswith("-"):
            option = arg.split("=", 1)[0]
            assert option in options, f"{where}: `marketplace {name}` has no option {option}"
    return name


def service_commands(service: dict[str, Any]) -> list[str | list[str] | None]:
    healthcheck = service.get("healthcheck") or {}
    return [service.get("entrypoint"), service.get("command"), healthcheck.get("test")]


def image_major(image: str) -> int:
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    match = re.match(r"\d+", tag)
    assert match, f"image {image!r} has no numeric version tag"
    return int(match.group())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are ignored by Docker
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def exec_or_shell(arguments: str) -> list[str]:
    if arguments.startswith("["):
        parsed = json.loads(arguments)
        assert isinstance(parsed, list)
        return [str(word) for word in parsed]
    return ["/bin/sh", "-c", arguments]


def copy_sources(arguments: str) -> list[str]:
    words = shlex.split(arguments)
    if any(word.startswith("--from=") for word in words):
        return []  # copied from another stage, not from the build context
    sources = [word for word in words if not word.startswith("--")][:-1]
    return [source.removeprefix("./").strip("/") for source in sources]


# ------------------------------------------------------------------------------------------------
# docker-compose.yml
# ------------------------------------------------------------------------------------------------


def test_compose_has_the_services() -> None:
    missing = set(REQUIRED_SERVICES) - set(services())
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_commands_are_real_cli_commands(name: str) -> None:
    service = services()[name]
    used = [
        assert_real_invocation(args, f"service {name}")
        for command in service_commands(service)
        for args in invocations(command)
    ]
    assert used, f"service {name} runs no `marketplace` command"


def test_every_marketplace_command_in_compose_is_real() -> None:
    for name, service in services().items():
        for command in service_commands(service):
            for args in invocations(command):
                assert_real_invocation(args, f"service {name}")


def test_compose_runs_the_expected_commands() -> None:
    def names(service: str) -> set[str]:
        return {args[0] for command in service_commands(services()[service]) for args in invocations(command) if args}

    assert {"migrate", "serve"} <= names("api")
    assert "relay" in names("relay")
    assert "worker" in names("worker")
    assert "beat" in names("beat")


def test_only_the_api_talks_http_the_other_services_disable_the_images_healthcheck() -> None:
    """The image's HEALTHCHECK probes the API's /healthz; a relay, worker or beat container would be marked
    unhealthy (and restarted by orchestrators) forever."""
    for name in ("relay", "worker", "beat"):
        assert (services()[name].get("healthcheck") or {}).get("disable") is True, name


def test_every_process_of_marketplace_run_has_a_compose_service() -> None:
    """`marketplace run` starts the development stack's processes; production must run each of them too:
    a deployment without the relay would accept bookings whose jobs never reach a worker."""
    import inspect

    from marketplace.cli import run

    started = set(re.findall(r'\[\*exe, "([a-z-]+)"', inspect.getsource(run)))
    assert {"serve", "relay", "worker", "beat"} <= started
    used = {
        args[0] for service in services().values() for cmd in service_commands(service) for args in invocations(cmd)
    }
    assert started <= used, f"docker-compose.yml runs no {sorted(started - used)}"


def test_compose_environment_uses_only_real_settings() -> None:
    known = settings_env_names()
    seen: set[str] = set()
    for name, service in services().items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            keys = [entry.split("=", 1)[0] for entry in environment]
        else:
            keys = list(environment)
        for key in keys:
            if key.startswith("MARKETPLACE_"):
                assert key in known, f"service {name} sets {key}, which is not a setting"
                seen.add(key)
    # ${MARKETPLACE_...} substitutions and anything else spelled in the file
    for key in ENV_NAME.findall(COMPOSE.read_text()):
        assert key in known, f"docker-compose.yml mentions {key}, which is not a setting"
    assert {"MARKETPLACE_DATABASE_URL", "MARKETPLACE_REDIS_URL", "MARKETPLACE_JWT_SECRET"} <= seen


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_in_production_against_real_services(name: str) -> None:
    environment = services()[name].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(entry.split("=", 1) for entry in environment if "=" in entry)
    assert environment.get("MARKETPLACE_ENVIRONMENT") == "production"
    assert str(environment.get("MARKETPLACE_DATABASE_URL", "")).startswith("postgresql+asyncpg://")
    assert "@postgres:" in str(environment.get("MARKETPLACE_DATABASE_URL", ""))
    assert str(environment.get("MARKETPLACE_REDIS_URL", "")).startswith("redis://redis:")


def test_database_images_are_recent_enough() -> None:
    postgres = services()["postgres"]["image"]
    redis = services()["redis"]["image"]
    assert postgres.split(":")[0].endswith("postgres")
    assert image_major(postgres) >= 16
    assert redis.split(":")[0].endswith("redis")
    assert image_major(redis) == 7


def test_stateful_services_have_healthchecks_and_volumes() -> None:
    for name in ("postgres", "redis"):
        service = services()[name]
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("volumes"), f"{name} keeps its data in the container"
    assert "pg_isready" in json.dumps(services()["postgres"]["healthcheck"]["test"])
    assert "ping" in json.dumps(services()["redis"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(name: str) -> None:
    depends_on = services()[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form with conditions"
    for dependency in ("postgres", "redis"):
        assert dependency in depends_on, f"{name} does not depend on {dependency}"
        condition = (depends_on[dependency] or {}).get("condition")
        assert condition == "service_healthy", f"{name} starts before {dependency} is healthy"


def test_documents_go_to_the_minio_service() -> None:
    minio = services()["minio"]
    assert minio["image"].startswith("minio/minio")
    assert minio.get("healthcheck", {}).get("test") and minio.get("volumes")
    for name in ("api", "worker"):
        env = services()[name]["environment"]
        assert env["MARKETPLACE_STORAGE_BACKEND"] == "s3"
        assert "minio:9000" in env["MARKETPLACE_STORAGE_S3_ENDPOINT_URL"]
        assert env["MARKETPLACE_STORAGE_S3_ACCESS_KEY"] and env["MARKETPLACE_STORAGE_S3_SECRET_KEY"]
        assert services()[name]["depends_on"]["minio"]["condition"] == "service_healthy"


def test_api_healthcheck_probes_healthz() -> None:
    test = services()["api"].get("healthcheck", {}).get("test")
    assert test, "api has no healthcheck"
    assert "/healthz" in json.dumps(test)


# ------------------------------------------------------------------------------------------------
# .env.example and docs
# ------------------------------------------------------------------------------------------------


def env_example_names() -> list[str]:
    assignment = re.compile(r"^\s*#?\s*(MARKETPLACE_[A-Z0-9_]+)\s*=", re.MULTILINE)
    return assignment.findall(ENV_EXAMPLE.read_text())


def test_env_example_uses_only_real_settings() -> None:
    known = settings_env_names()
    unknown = {name for name in ENV_NAME.findall(ENV_EXAMPLE.read_text()) if name not in known}
    assert not unknown, f".env.example mentions unknown settings {sorted(unknown)}"


def test_env_example_documents_every_setting() -> None:
    missing = settings_env_names() - set(env_example_names())
    assert not missing, f".env.example does not document {sorted(missing)}"


def test_operations_doc_uses_only_real_settings() -> None:
    if not OPERATIONS.exists():
        pytest.skip("docs/operations.md not written")
    known = settings_env_names()
    unknown = {name for name in ENV_NAME.findall(OPERATIONS.read_text()) if name not in known}
    assert not unknown, f"docs/operations.md mentions unknown settings {sorted(unknown)}"


# ------------------------------------------------------------------------------------------------
# Dockerfile
# ------------------------------------------------------------------------------------------------


def test_dockerfile_default_command_is_a_real_cli_command() -> None:
    stage = final_stage(dockerfile_instructions())
    commands = [exec_or_shell(arguments) for keyword, arguments in stage if keyword in {"CMD", "ENTRYPOINT"}]
    assert commands, "the final stage has no CMD or ENTRYPOINT"
    used = [assert_real_invocation(args, "Dockerfile") for command in commands for args in invocations(command)]
    assert used == ["serve"], f"the image should serve the API by default, runs {used}"


def test_dockerfile_copies_every_package() -> None:
    copied = {
        source
        for keyword, arguments in dockerfile_instructions()
        if keyword in {"COPY", "ADD"}
        for source in copy_sources(arguments)
    }
    missing = set(REQUIRED_COPIES) - copied
    assert not missing, f"the Dockerfile does not COPY {sorted(missing)}"
    for directory in PACKAGE_DIRS:
        assert (ROOT / directory).is_dir(), f"{directory}/ is copied but does not exist"


def test_dockerfile_installs_the_project_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0][0] in {"FROM", "ARG"}
    bases = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    args = " ".join(arguments for keyword, arguments in instructions if keyword == "ARG")
    assert any("python:3.11-slim" in base for base in bases) or "python:3.11-slim" in args
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs), "the project is not installed"

    stage = final_stage(instructions)
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image runs as root"
    exposed = " ".join(arguments for keyword, arguments in stage if keyword == "EXPOSE")
    assert "8000" in exposed.split()
    healthchecks = [arguments for keyword, arguments in stage if keyword == "HEALTHCHECK"]
    assert healthchecks and "/healthz" in healthchecks[-1] and "urllib" in healthchecks[-1]
