"""Web hardening (issue #13 item 9): no secret ever travels in the session cookie, every response carries the
browser security headers, no template needs inline script, and /metrics is not public."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx import ASGITransport, AsyncClient

from marketplace.core.settings import Settings
from tests.bookings.live_server import LiveServer, live_settings, sql
from tests.factories import PASSWORD, csrf_token, signed_up
from tests.web.conftest import in_browser

TEMPLATES = Path(__file__).resolve().parent.parent / "marketplace" / "web" / "templates"


def _cookie_texts(response: httpx.Response) -> list[str]:
    """Every Set-Cookie header, raw and with each cookie value's base64 part decoded (Starlette's session cookie
    is base64 JSON, signed but readable by anyone holding it)."""
    texts = []
    for header in response.headers.get_list("set-cookie"):
        texts.append(header)
        value = header.split(";", 1)[0].split("=", 1)[-1].strip('"')
        payload = value.split(".", 1)[0]
        try:
            texts.append(base64.b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8", "replace"))
        except ValueError:
            pass
    return texts


async def test_new_api_key_and_webhook_secrets_never_appear_in_a_set_cookie_header(client: AsyncClient) -> None:
    reg, _ = await signed_up(client, roles=("supplier",))
    org = reg["org"]["id"]
    responses: list[httpx.Response] = []
    client.event_hooks["response"] = [lambda r: _keep(responses, r)]
    token = csrf_token((await client.get("/login")).text)
    await client.post("/login", data={"email": reg["email"], "password": PASSWORD, "csrf_token": token})
    token = csrf_token((await client.get(f"/factory/{org}/integrations")).text)

    key = await client.post(
        f"/factory/{org}/integrations/api-keys", data={"csrf_token": token, "name": "MES", "scopes": "bookings:read"}
    )
    hook = await client.post(
        f"/factory/{org}/integrations/webhooks",
        data={"csrf_token": token, "url": "https://93.184.215.14/hook", "events": "booking.*"},
    )
    await client.get(f"/factory/{org}/integrations")
    await client.get("/dashboard")

    api_key = re.search(r"mk_[A-Za-z0-9_-]{40,}", key.text)
    webhook_secret = re.search(r"whsec_[A-Za-z0-9_-]{40,}", hook.text)
    assert api_key and webhook_secret, "each secret is shown once, in the response page"
    assert key.headers["cache-control"] == "no-store" and hook.headers["cache-control"] == "no-store"
    cookies = [text for r in responses for text in _cookie_texts(r)]
    assert any("user_id" in text for text in cookies), "the decoding is checked against what the session holds"
    for secret in (api_key.group(0), webhook_secret.group(0)):
        assert not [text for text in cookies if secret in text]
        assert not [text for text in cookies if secret.split("_", 1)[1][:20] in text]


async def _keep(responses: list[httpx.Response], response: httpx.Response) -> None:
    responses.append(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", "/login"),
        ("get", "/static/app.js"),
        ("get", "/api/v1/me"),  # a 401 error
        ("get", "/no-such-page"),
        ("get", "/healthz"),
    ],
)
async def test_every_response_carries_the_browser_security_headers(client: AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path)
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["object-src"] == ["'none'"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_no_template_has_inline_script_or_event_handlers() -> None:
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append(f"{template.name}: {tag}")
        offenders += [f"{template.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offenders += [f"{template.name}: {m}" for m in re.findall(r"\sstyle\s*=", text)]
        offenders += [f"{template.name}: {m}" for m in re.findall(r"javascript:", text)]
    assert offenders == []


async def test_metrics_needs_the_bearer_token_when_one_is_set(
    app: Any, settings: Settings, client: AsyncClient
) -> None:
    settings.metrics_token = "metrics-" + uuid.uuid4().hex
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer metrics-wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "not_authenticated"
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {settings.metrics_token}"})
    assert ok.status_code == 200 and ok.text.startswith("# HELP")


async def test_metrics_without_a_token_answers_loopback_only_and_never_in_production(
    app: Any, settings: Settings, client: AsyncClient
) -> None:
    assert (await client.get("/metrics")).status_code == 200  # the test client is 127.0.0.1
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("203.0.113.5", 5000)), base_url="http://testserver"
    ) as outsider:
        assert (await outsider.get("/metrics")).status_code == 404
    settings.environment = "production"
    assert (await client.get("/metrics")).status_code == 404


# -- in a real browser: nothing the pages need is blocked by the policy ------------------------------------


@pytest.fixture
def live(committed_db_url: str, redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(committed_db_url, redis_url, live_settings()) as server:
        yield server


def test_the_pages_run_under_the_content_security_policy_in_a_real_browser(live: LiveServer) -> None:
    in_browser(_pages_under_csp, live)


def _pages_under_csp(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(locale="en", extra_http_headers={"Accept-Language": "en"})
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    tag = uuid.uuid4().hex[:6]
    page.goto(f"{live.url}/register")
    page.fill("#full_name", "CSP Tester")
    page.fill("#email", f"csp-{tag}@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#org_name", f"CSP Works {tag}")
    page.fill("#country", "DE")
    page.check("input[name=role_supplier]")
    page.click("form[action='/register'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard$"))
    # Creating an API key needs a confirmed e-mail address (not what this test is about).
    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's sync API keeps a loop in this thread
        statement = "UPDATE users SET email_verified_at = now() WHERE email = :e"
        pool.submit(asyncio.run, sql(live.database_url, statement, {"e": f"csp-{tag}@example.com"})).result()
    page.click("a[href^='/factory/']")
    page.goto(page.url + "/integrations")
    page.fill("#key-name", "MES")
    page.click("form[action$='/integrations/api-keys'] button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("p.notice code").inner_text().startswith("mk_")
    for path in ("/", "/search", "/dashboard"):
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
    # The language switch submits on change through app.js (it had an inline handler before).
    with page.expect_navigation():  # the change event submits the form: wait for that page, not the old one
        page.select_option("#lang-switch", "zh-CN")
    page.wait_for_load_state("networkidle")
    assert (page.locator("html").get_attribute("lang") or "").startswith("zh")
    # The app's scripts ran: htmx is loaded and app.js set the time-zone cookie.
    assert page.evaluate("typeof window.htmx") == "object"
    assert any(c["name"] == "tz" for c in context.cookies())
    assert violations == []
    context.close()
