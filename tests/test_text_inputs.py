"""Architecture: every string a route accepts carries the text rule (marketplace/core/text.py).

The walk covers every route of the app (API and web pages): path, query, header, cookie, form and body
parameters, and inside bodies every nested model, list and union. Each string in the parameter's JSON schema
must be constrained by one of the two text patterns, by another pattern that refuses control characters (listed
below, each with an example that proves it), by a format or enum that admits no control character, or be on the
explicit allow-list with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

import listings.schemas
import payments.schemas
from marketplace.core.settings import Settings
from marketplace.core.text import LINE_PATTERN, TEXT_PATTERN, Line, Text

# Other patterns some inputs carry instead, each with a value it accepts: the test proves it refuses that value
# with a control character in it.
OTHER_SAFE_PATTERNS = {
    "^password$": "password",  # OAuth2 grant_type
    r"^[A-Za-z0-9-]{1,20}$": "3205",  # observatory region prefix
    "^[0-9]{2,6}$": "3205",  # a voucher programme's region prefix
    "^[A-Z]{3}$": "CNY",  # a currency code
    "^[0-9]{4}-(0[1-9]|1[0-2])$": "2026-11",  # a claim's month
    "^[0-9]{4}-Q[1-4]$": "2026-Q4",  # a tax report's quarter
    "^(current|previous|[0-9]{4}-Q[1-4])$": "previous",  # the same on the admin's web download
}
# Formats whose validator admits no control character (tests/test_bad_input.py sends NUL to each kind).
SAFE_FORMATS = {"uuid", "date", "date-time", "time", "email", "uri", "duration"}
# (method, path, parameter) -> why a free string is right there.
ALLOWED = {
    ("POST", "/api/v1/auth/register", "data.password"): "only ever hashed (argon2), never stored or compared as text",
    ("POST", "/api/v1/auth/token", "password"): "only ever verified against the hash",
    ("POST", "/login", "password"): "only ever verified against the hash",
    ("POST", "/api/v1/auth/change-password", "data.current_password"): "only ever verified against the hash",
    ("POST", "/api/v1/auth/change-password", "data.new_password"): "only ever hashed (argon2)",
    ("POST", "/api/v1/auth/password-reset/confirm", "data.new_password"): "only ever hashed (argon2)",
    ("POST", "/account/password", "current_password"): "only ever verified against the hash",
    ("POST", "/account/password", "new_password"): "only ever hashed (argon2)",
    ("POST", "/reset-password", "new_password"): "only ever hashed (argon2)",
    ("POST", "/api/v1/auth/2fa/disable", "data.password"): "only ever verified against the hash",
    ("POST", "/account/2fa/disable", "password"): "only ever verified against the hash",
}
KINDS = ("path_params", "query_params", "header_params", "cookie_params", "body_params")


def _app() -> FastAPI:
    from marketplace.app import create_app

    return create_app(Settings(environment="test", jwt_secret="x" * 40), database_url="unused", redis_url="unused")


def _free_strings(schema: Any, defs: dict[str, Any], where: str, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(where, why) for every string in ``schema`` that the text rule does not cover."""
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _free_strings(defs[name], defs, where, seen | {name})
        return
    if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
        pattern = schema.get("pattern")
        if pattern is None and schema.get("format") not in SAFE_FORMATS:
            yield where, "a string without the text rule"
        elif pattern is not None and pattern not in (LINE_PATTERN, TEXT_PATTERN, *OTHER_SAFE_PATTERNS):
            yield where, f"a pattern not known to refuse control characters: {pattern}"
    if schema.get("type") == "object" and schema.get("additionalProperties") in (True, {}):
        yield where, "free-form JSON"
    for key, sub in schema.items():
        if key == "properties":
            for name, prop in sub.items():
                yield from _free_strings(prop, defs, f"{where}.{name}", seen)
        elif key in ("items", "additionalProperties"):
            yield from _free_strings(sub, defs, f"{where}[]", seen)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for option in sub:
                yield from _free_strings(option, defs, where, seen)


def unruled_inputs(app: FastAPI) -> tuple[int, dict[tuple[str, str, str], str]]:
    """(number of parameters walked, {(method, path, parameter): problem}) over every route of ``app``."""
    walked = 0
    problems: dict[tuple[str, str, str], str] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        stack, fields = [context.dependant], []
        while stack:  # the route's own parameters and those of every dependency, recursively
            dependant = stack.pop()
            stack.extend(dependant.dependencies)
            fields += [field for kind in KINDS for field in getattr(dependant, kind)]
        for method in sorted(context.methods or ()):
            for field in fields:
                walked += 1
                schema = field._type_adapter.json_schema()  # exactly what FastAPI validates the parameter with
                for where, problem in _free_strings(schema, schema.get("$defs", {}), field.alias, frozenset()):
                    problems[(method, str(context.path), where)] = problem
    return walked, problems


def test_every_string_input_of_every_route_carries_the_text_rule() -> None:
    walked, problems = unruled_inputs(_app())
    assert walked > 200, f"the walk found only {walked} parameters: it does not see the routes"
    unexplained = {key: why for key, why in problems.items() if key not in ALLOWED}
    assert unexplained == {}, "\n".join(f"{m} {p} {f}: {why}" for (m, p, f), why in sorted(unexplained.items()))
    stale = set(ALLOWED) - set(problems)
    assert stale == set(), f"allow-list entries that no longer exist or are now ruled: {stale}"


class _ProbeInner(BaseModel):
    note: str


class _ProbeBody(BaseModel):
    title: Line
    items: list[_ProbeInner]


def test_the_walk_finds_a_bare_string_in_a_query_a_body_and_a_nested_model() -> None:
    """Control: a route with unruled strings is caught (so the test above cannot pass vacuously)."""
    app = FastAPI()
    router = APIRouter()

    @router.post("/things/{thing}")
    async def things(thing: str, body: _ProbeBody, q: Annotated[str | None, Query()] = None) -> None:
        return None

    app.include_router(router, prefix="/x")
    _, problems = unruled_inputs(app)
    assert set(problems) == {
        ("POST", "/x/things/{thing}", "thing"),
        ("POST", "/x/things/{thing}", "q"),
        ("POST", "/x/things/{thing}", "body.items[].note"),
    }


def test_the_domain_packages_declare_the_same_text_rule_as_the_shell() -> None:
    for module in (listings.schemas, payments.schemas):
        assert TypeAdapter(module.Line).json_schema()["pattern"] == LINE_PATTERN, module.__name__
        assert TypeAdapter(module.Text).json_schema()["pattern"] == TEXT_PATTERN, module.__name__


@pytest.mark.parametrize(
    "value", ["Plant 1", "苏州精密机械有限公司", "Müller & Söhne", "ISO/IEC 17025", "", "a\u00a0b"]
)
def test_a_line_and_a_text_accept_ordinary_text(value: str) -> None:
    assert TypeAdapter(Line).validate_python(value) == value
    assert TypeAdapter(Text).validate_python(value) == value


@pytest.mark.parametrize("value", ["two\nlines", "tab\there", "crlf\r\n", "trailing\n"])
def test_a_text_keeps_tabs_and_line_breaks_but_a_line_does_not(value: str) -> None:
    assert TypeAdapter(Text).validate_python(value) == value
    with pytest.raises(ValidationError):
        TypeAdapter(Line).validate_python(value)


@pytest.mark.parametrize(
    "value", ["a\x00b", "\x00", "bell\x07", "esc\x1b[31m", "vt\x0b", "del\x7f", "c1\x85", "c1\x9b", "lone \ud800"]
)
def test_neither_accepts_other_control_characters(value: str) -> None:
    for rule in (Line, Text):
        with pytest.raises(ValidationError):
            TypeAdapter(rule).validate_python(value)


@pytest.mark.parametrize("value", ["a\u2028b", "a\u2029b"])
def test_a_line_refuses_unicode_line_separators(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Line).validate_python(value)


@pytest.mark.parametrize(("pattern", "example"), sorted(OTHER_SAFE_PATTERNS.items()))
def test_the_other_allowed_patterns_refuse_control_characters(pattern: str, example: str) -> None:
    """Checked with Pydantic's own regex engine (where ``$`` is the end of the text, unlike Python's ``re``)."""
    constrained = TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])
    assert constrained.validate_python(example) == example
    for bad in (example + "\x00", "\x00" + example, example[:1] + "\n" + example[1:], example + "\n"):
        with pytest.raises(ValidationError):
            constrained.validate_python(bad)
