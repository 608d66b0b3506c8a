"""Which language a page is in: this browser's choice (the header switch) > the account's saved language >
Accept-Language > the default. The switch never rewrites the account; the account page does."""

from __future__ import annotations

import re

from httpx import AsyncClient

from tests.factories import PASSWORD, csrf_token, login, register

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def _lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, html[:200]
    return match.group(1)


async def _web_sign_in(client: AsyncClient, email: str) -> None:
    token = csrf_token((await client.get("/login")).text)
    signed_in = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 303


async def _switch(client: AsyncClient, locale: str) -> None:
    token = csrf_token((await client.get("/")).text)
    switched = await client.post("/lang", data={"locale": locale, "next": "/", "csrf_token": token})
    assert switched.status_code == 303 and switched.headers["location"] == "/"


async def _saved_locale(client: AsyncClient, email: str) -> str:
    headers = await login(client, email)
    locale: str = (await client.get("/api/v1/me", headers=headers)).json()["user"]["locale"]
    return locale


async def test_the_header_switch_changes_this_browser_only_not_the_saved_language(client: AsyncClient) -> None:
    reg = await register(client, locale="en")
    await _web_sign_in(client, reg["email"])
    await _switch(client, "zh-CN")
    assert _lang((await client.get("/dashboard", headers=EN)).text) == "zh-Hans"
    assert await _saved_locale(client, reg["email"]) == "en"
    await _switch(client, "fr")  # an unknown locale changes nothing
    assert _lang((await client.get("/dashboard", headers=EN)).text) == "zh-Hans"
    assert await _saved_locale(client, reg["email"]) == "en"


async def test_the_browser_choice_outlives_signing_out_and_in(client: AsyncClient) -> None:
    reg = await register(client, locale="en")
    await _switch(client, "zh-CN")
    await _web_sign_in(client, reg["email"])
    assert _lang((await client.get("/dashboard")).text) == "zh-Hans"
    token = csrf_token((await client.get("/dashboard")).text)
    await client.post("/logout", data={"csrf_token": token})
    assert _lang((await client.get("/", headers=EN)).text) == "zh-Hans"


async def test_the_account_page_changes_the_saved_language_and_pages_follow_it(client: AsyncClient) -> None:
    reg = await register(client, locale="en")
    await _web_sign_in(client, reg["email"])
    page = await client.get("/account", headers=ZH)
    assert page.status_code == 200 and _lang(page.text) == "en"  # the account's language beats Accept-Language
    assert reg["email"] in page.text and "The language switch in the header only affects this browser." in page.text
    assert 'href="/account/password"' in page.text and 'href="/account/sessions"' in page.text
    assert 'href="/account/2fa"' in page.text and '<a href="/account" aria-current="page">' in page.text
    saved = await client.post(
        "/account", data={"full_name": "Li Na", "locale": "zh-CN", "csrf_token": csrf_token(page.text)}, headers=EN
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/account?saved=1"
    after = await client.get("/account?saved=1", headers=EN)
    assert _lang(after.text) == "zh-Hans" and "账户信息已保存。" in after.text and 'value="Li Na"' in after.text
    assert "页面顶部的语言切换只对当前浏览器生效。" in after.text
    assert await _saved_locale(client, reg["email"]) == "zh-CN"


async def test_the_account_page_refuses_an_empty_name_beside_the_field_and_saves_nothing(client: AsyncClient) -> None:
    reg = await register(client, locale="zh-CN")
    await _web_sign_in(client, reg["email"])
    token = csrf_token((await client.get("/account")).text)
    refused = await client.post("/account", data={"full_name": "  ", "locale": "en", "csrf_token": token})
    assert refused.status_code == 422 and _lang(refused.text) == "zh-Hans"
    assert 'class="error-summary"' in refused.text and 'href="#f-full_name"' in refused.text
    assert '<p class="field-error" id="f-full_name-error">请输入您的姓名。</p>' in refused.text
    bad_locale = await client.post("/account", data={"full_name": "Li", "locale": "fr", "csrf_token": token})
    assert bad_locale.status_code == 422 and "请选择所提供的语言之一。" in bad_locale.text
    assert await _saved_locale(client, reg["email"]) == "zh-CN"
    headers = await login(client, reg["email"])
    assert (await client.get("/api/v1/me", headers=headers)).json()["user"]["full_name"] == "Test User"


async def test_the_account_page_needs_a_signed_in_person_and_a_csrf_token(client: AsyncClient) -> None:
    anonymous = await client.get("/account")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    reg = await register(client, locale="en")
    await _web_sign_in(client, reg["email"])
    forged = await client.post("/account", data={"full_name": "X", "locale": "zh-CN", "csrf_token": "forged"})
    assert forged.status_code == 403
    assert await _saved_locale(client, reg["email"]) == "en"


async def test_the_order_is_browser_choice_then_account_then_accept_language(client: AsyncClient) -> None:
    # No choice, nobody signed in: Accept-Language, then the default (English).
    assert _lang((await client.get("/", headers=ZH)).text) == "zh-Hans"
    assert _lang((await client.get("/", headers={"Accept-Language": "fr"})).text) == "en"
    # Signed in: the account's saved language beats Accept-Language.
    reg = await register(client, locale="zh-CN")
    await _web_sign_in(client, reg["email"])
    assert _lang((await client.get("/", headers=EN)).text) == "zh-Hans"
    # This browser's choice beats the account's language...
    await _switch(client, "en")
    assert _lang((await client.get("/", headers=ZH)).text) == "en"
    account = await client.get("/account")
    assert "This browser shows pages in English, as chosen with the switch." in account.text
    # ... until the browser gives its choice up on the account page: the account's language again.
    back = await client.post("/account/browser-language", data={"csrf_token": csrf_token(account.text)})
    assert back.status_code == 303
    assert _lang((await client.get("/", headers=EN)).text) == "zh-Hans"
