"""Every state-changing web route checks the session's CSRF token: a page added without it fails here, not in
a penetration test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from marketplace.web.core import check_csrf

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def web_writes(app: FastAPI) -> list[tuple[str, Dependant]]:
    """Every state-changing route of the web pages (not in the API schema), with its resolved dependencies."""
    out = []
    for context in iter_route_contexts(app.routes):  # included routers too, with their prefixes
        route = context.original_route
        methods = set(context.methods or ()) & WRITES
        if isinstance(route, APIRoute) and not route.include_in_schema and methods:
            out.append((f"{sorted(methods)} {context.path}", context.dependant))
    return out


def unguarded_web_writes(app: FastAPI) -> list[str]:
    return sorted(where for where, dependant in web_writes(app) if check_csrf not in set(_calls(dependant)))


def test_every_web_form_post_checks_the_csrf_token(app: FastAPI) -> None:
    assert len(web_writes(app)) > 50  # the web app's forms are all seen (the check below is not vacuous)
    assert unguarded_web_writes(app) == []


def test_the_check_sees_a_post_without_the_token(app: FastAPI) -> None:
    """Control: a web route added without ``CsrfChecked`` is reported."""

    @app.post("/test-only/unguarded", include_in_schema=False)
    async def unguarded() -> None:
        return None

    assert unguarded_web_writes(app) == ["['POST'] /test-only/unguarded"]
