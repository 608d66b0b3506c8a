"""Schemathesis over the whole OpenAPI document: no input gets a 5xx (issue #12).

Every operation of the API, with valid and invalid inputs (Schemathesis' positive and negative modes), once with
a normal user's token (a verified supplier) and once with a platform admin's, against a live server on a
database of its own seeded with a small market. Path parameters are drawn from the market's real ids as often
as from random ones, so the calls reach the code behind the 404s. Every response must be below 500, and every
error must be in the standard shape with the request id.

Bounded: ``FUZZ_EXAMPLES`` examples per operation and token (``MARKETPLACE_FUZZ_EXAMPLES``, default 8) and
Schemathesis' deterministic coverage examples off; the module runs in about 1 m 45 s on two cores. The deeper run
(``test_deep_*``: 100 examples, coverage examples and shrinking; an hour or more) is marked ``bench``:
``pytest -m bench tests/test_schemathesis.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.bookings.helpers import slot
from tests.bookings.live_server import LiveServer, _ok, build_market, http_client, live_settings
from tests.conftest import _admin, create_migrated_database

FUZZ_EXAMPLES = int(os.environ.get("MARKETPLACE_FUZZ_EXAMPLES", "8"))
DEEP_EXAMPLES = 100


def _openapi() -> dict[str, Any]:
    from marketplace.app import create_app
    from marketplace.core.settings import Settings

    app = create_app(Settings(environment="test", jwt_secret="x" * 40), database_url="unused", redis_url="unused")
    return app.openapi()


SCHEMA = schemathesis.openapi.from_dict(_openapi())
# Real ids by path-parameter name, filled in by the ``fuzz`` fixture before any example is drawn.
KNOWN_IDS: dict[str, list[str]] = {}


@SCHEMA.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Half of the time, a path parameter names something that exists (an id of the seeded market)."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        name: st.sampled_from([value, *KNOWN_IDS[name]]) if KNOWN_IDS.get(name) else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


@dataclass
class Fuzz:
    url: str
    tokens: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
async def fuzz(server_url: str, redis_url: str) -> AsyncIterator[Fuzz]:
    name = f"mk_fuzz_{uuid.uuid4().hex[:10]}"
    database_url = await create_migrated_database(server_url, name)
    try:
        with LiveServer(database_url, redis_url, live_settings(auth_rate_limit=1_000_000)) as server:
            async with http_client(server, concurrency=4) as client:
                market = await build_market(client, database_url)
                start, end = slot(72, minutes=60)
                booking = _ok(
                    await client.post(
                        "/api/v1/bookings",
                        json={"asset_id": market.machine["id"], "start": start.isoformat(), "end": end.isoformat()},
                        headers={**market.buyer, "Idempotency-Key": "fuzz-seed"},
                    ),
                    201,
                )
                KNOWN_IDS.update(
                    org_id=[market.supplier_org, market.buyer_org],
                    asset_id=[market.machine["id"], market.lab["id"]],
                    site_id=[market.site["id"]],
                    booking_id=[booking["id"]],
                )
            yield Fuzz(url=server.url, tokens={"user": market.supplier, "admin": market.admin})
    finally:
        KNOWN_IDS.clear()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check_response(case: schemathesis.Case, fuzz: Fuzz, who: str) -> None:
    """Call the live server; no 5xx, and every error in the standard shape with the request id."""
    response = case.call(base_url=fuzz.url, headers=fuzz.tokens[who], timeout=60)
    where = f"{case.method} {case.formatted_path} as {who}: {response.status_code} {response.text[:500]}"
    assert response.status_code < 500, f"{where}\n{case.as_curl_command()}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and set(body) >= {"error", "detail", "request_id"}, where
        header = response.headers.get("x-request-id") or [""]  # Schemathesis keeps every value of a header
        assert body["request_id"] == header[0], where


FAST = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.generate],  # no coverage examples, no shrinking: a failure prints its curl command as it is
    database=None,
)
DEEP = settings(FAST, max_examples=DEEP_EXAMPLES, phases=[Phase.explicit, Phase.generate, Phase.shrink])


@SCHEMA.parametrize()
@FAST
def test_no_input_gives_a_user_a_server_error(case: schemathesis.Case, fuzz: Fuzz) -> None:
    check_response(case, fuzz, "user")


@SCHEMA.parametrize()
@FAST
def test_no_input_gives_an_admin_a_server_error(case: schemathesis.Case, fuzz: Fuzz) -> None:
    check_response(case, fuzz, "admin")


@pytest.mark.bench
@SCHEMA.parametrize()
@DEEP
def test_deep_no_input_gives_a_user_a_server_error(case: schemathesis.Case, fuzz: Fuzz) -> None:
    check_response(case, fuzz, "user")


@pytest.mark.bench
@SCHEMA.parametrize()
@DEEP
def test_deep_no_input_gives_an_admin_a_server_error(case: schemathesis.Case, fuzz: Fuzz) -> None:
    check_response(case, fuzz, "admin")
