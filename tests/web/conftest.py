"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright, against the real app
served by uvicorn on 127.0.0.1 with a committed database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
CHROMIUM = os.environ.get("MARKETPLACE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "screenshots"


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def in_browser(body: Callable[..., T], *args: Any) -> T:
    """Run ``body(browser, *args)`` with a headless Chromium, in a thread of its own: Playwright's sync API
    cannot run in a thread where an asyncio loop is running (pytest-asyncio keeps one for the session)."""
    if not chromium_available():
        missing = f"Chromium not installed at {CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
        if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure, not a skip
            pytest.fail(missing)
        pytest.skip(missing)

    def run() -> T:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-sync",
                    "--disable-background-networking",
                    "--disable-component-update",
                ],
            )
            try:
                return body(browser, *args)
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even while pytest-asyncio's loop is running."""
    import asyncio

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextmanager
def live_server(server_url: str, redis_url: str, *, prefix: str, settings: Any = None) -> Iterator[tuple[Any, str]]:
    """The real app served by uvicorn on a freshly migrated database of its own (dropped afterwards): the
    server and the database's URL, for a module's browser tests."""
    from tests.bookings.live_server import LiveServer, live_settings
    from tests.conftest import _admin, create_migrated_database

    name = f"mk_{prefix}_{uuid.uuid4().hex[:8]}"
    url = run_sync(create_migrated_database(server_url, name))
    server = LiveServer(url, redis_url, settings or live_settings()).start()
    try:
        yield server, url
    finally:
        server.stop()
        run_sync(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def new_page(browser: Any, locale: str) -> Any:
    """A page in a fresh browser context speaking ``locale``, in China's time zone, desktop width."""
    context = browser.new_context(
        locale=locale,
        timezone_id="Asia/Shanghai",
        extra_http_headers={"Accept-Language": locale},
        viewport={"width": 1100, "height": 900},
    )
    return context.new_page()


def sign_in(page: Any, base: str, email: str) -> None:
    """Sign in through the login form with the test password."""
    from tests.factories import PASSWORD

    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("networkidle")
