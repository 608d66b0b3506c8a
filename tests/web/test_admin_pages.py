"""The admin area for people: each queue on its own cursor-paged page, flags with the listing's title, the
ledger by account name, the audit log with actor and object title, CSV exports equal to the database, errors
beside the field in the page's language, and nothing of it for anyone but a platform admin."""

from __future__ import annotations

import csv
import io
import re
import uuid
from html import unescape
from typing import Any

import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.web import i18n
from tests.bookings.helpers import book, market, slot
from tests.factories import (
    PASSWORD,
    create_admin,
    create_asset,
    csrf_token,
    machine_payload,
    published_asset,
    signed_up,
    supplier,
)


def _lang(client: AsyncClient, locale: str) -> None:
    """This browser's language choice (the header switch's cookie), which pages follow before all else."""
    client.cookies.set("lang", locale)


def _text(html: str) -> str:
    """The visible text of a page (tags and attributes stripped)."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


async def _sign_in(client: AsyncClient, email: str) -> str:
    token = csrf_token((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    return csrf_token((await client.get("/dashboard")).text)


async def _web_admin(client: AsyncClient, db: AsyncSession) -> str:
    admin = await create_admin(db)
    await db.commit()
    return await _sign_in(client, admin.email)


def _row_ids(html: str, table: str) -> list[str]:
    section = html.split(f'data-rows="{table}"', 1)[1]
    return re.findall(r'data-row="([^"]+)"', section)


async def _walk(client: AsyncClient, url: str, table: str) -> list[str]:
    """Every row id of a paged list, following its "Next page" links to the end."""
    seen: list[str] = []
    pages = 0
    while url:
        page = await client.get(url)
        assert page.status_code == 200, page.text
        seen += _row_ids(page.text, table) if f'data-rows="{table}"' in page.text else []
        link = re.search(r'<a class="button secondary" href="([^"]+)" rel="next"', page.text)
        url = unescape(link.group(1)) if link else ""
        pages += 1
        assert pages < 20
    return seen


async def _pending_listings(client: AsyncClient, db: AsyncSession, titles: list[str]) -> list[str]:
    _, headers, site = await supplier(client, db)
    ids = []
    for title in titles:
        asset = await create_asset(client, headers, machine_payload(site["id"], title=title))
        assert (await client.post(f"/api/v1/assets/{asset['id']}/submit", headers=headers)).status_code == 200
        ids.append(asset["id"])
    return ids


async def test_moderation_pages_through_every_waiting_listing_once(client: AsyncClient, db: AsyncSession) -> None:
    ids = await _pending_listings(client, db, [f"Mill {n}" for n in range(5)])
    await _web_admin(client, db)
    walked = await _walk(client, "/admin/moderation?limit=2", "moderation")
    assert sorted(walked) == sorted(ids) and len(walked) == len(set(walked)) == 5
    page = (await client.get("/admin/moderation")).text
    assert "Mill 0" in page and f'href="/listings/{ids[0]}"' in page
    overview = await client.get("/admin")
    assert overview.status_code == 200 and 'data-count="moderation">5<' in overview.text


async def test_a_refused_moderation_shows_a_translated_message_beside_the_reason(
    client: AsyncClient, db: AsyncSession
) -> None:
    [asset_id] = await _pending_listings(client, db, ["Lathe without reason"])
    token = await _web_admin(client, db)
    refused = await client.post(
        f"/admin/assets/{asset_id}/reject", data={"csrf_token": token, "reason": " ", "back": "moderation"}
    )
    assert refused.status_code == 303
    location = refused.headers["location"]
    assert "error=reason_required" in location and asset_id in location
    _lang(client, "zh-CN")
    page = await client.get(location)
    zh_message = i18n.translations("zh-CN").gettext("Give a reason so the owner knows what to fix.")
    assert zh_message != "Give a reason so the owner knows what to fix."
    assert f'id="reject-{asset_id}-error">{zh_message}<' in page.text
    status = (await db.execute(sa.text("SELECT status FROM assets WHERE id = :id"), {"id": asset_id})).scalar()
    assert status == "pending_review"


async def test_flags_show_the_listing_title_link_reason_and_reporter(client: AsyncClient, db: AsyncSession) -> None:
    admin_api = await _api_admin(client, db)
    listings = [await published_asset(client, db, admin_api, title=f"Reported mill {n}") for n in range(3)]
    _, reporter_headers = await signed_up(client, roles=("buyer",), org_name="Careful Buyer Ltd")
    for asset, _, _ in listings:
        resp = await client.post(
            f"/api/v1/assets/{asset['id']}/flags",
            headers=reporter_headers,
            json={"reason_code": "wrong_capacity_or_price", "reason": "price is per minute"},
        )
        assert resp.status_code == 201, resp.text
    await _web_admin(client, db)
    walked = await _walk(client, "/admin/flags?limit=2", "flags")
    assert len(walked) == len(set(walked)) == 3
    for locale in ("en", "zh-CN"):
        _lang(client, locale)
        page = await client.get("/admin/flags")
        text = _text(page.text)
        asset = listings[0][0]
        assert f'href="/listings/{asset["id"]}" data-flag-listing>Reported mill 0<' in page.text
        assert asset["id"] not in text  # never the raw id as the label
        assert i18n.translations(locale).gettext("Wrong capacity or price") in text
        assert "price is per minute" in text and "Careful Buyer Ltd" in text
    # Suspending the listing from its report needs a reason, asked for beside the field of that row.
    token = csrf_token(page.text)
    flag_id = _row_ids(page.text, "flags")[0]
    asset_id = listings[0][0]["id"]
    refused = await client.post(
        f"/admin/assets/{asset_id}/suspend", data={"csrf_token": token, "reason": "", "back": "flags"}
    )
    assert refused.headers["location"].startswith("/admin/flags?")
    again = await client.get(refused.headers["location"])
    zh_message = i18n.translations("zh-CN").gettext("Give a reason so the owner knows what to fix.")
    assert f'id="suspend-{flag_id}-error">{zh_message}<' in again.text
    done = await client.post(
        f"/admin/assets/{asset_id}/suspend", data={"csrf_token": token, "reason": "fake prices", "back": "flags"}
    )
    assert "notice=suspended" in done.headers["location"]
    status = (await db.execute(sa.text("SELECT status FROM assets WHERE id = :id"), {"id": asset_id})).scalar()
    assert status == "suspended"


async def test_resolving_a_flag_closes_it_and_is_audited_with_actor_and_title(
    client: AsyncClient, db: AsyncSession
) -> None:
    admin_api = await _api_admin(client, db)
    asset, _, _ = await published_asset(client, db, admin_api, title="Dubious press")
    _, reporter_headers = await signed_up(client, roles=("buyer",))
    flag = await client.post(
        f"/api/v1/assets/{asset['id']}/flags", headers=reporter_headers, json={"reason": "looks fake"}
    )
    admin = await create_admin(db)
    await db.commit()
    token = await _sign_in(client, admin.email)
    empty = await client.post(f"/admin/flags/{flag.json()['id']}/resolve", data={"csrf_token": token})
    assert "error=resolution_required" in empty.headers["location"]
    done = await client.post(
        f"/admin/flags/{flag.json()['id']}/resolve", data={"csrf_token": token, "resolution": "owner corrected it"}
    )
    assert done.status_code == 303 and "notice=flag_resolved" in done.headers["location"]
    assert "Dubious press" not in _text((await client.get("/admin/flags")).text)
    audit = await client.get("/admin/audit?action=flag.resolved")
    row = audit.text.split('data-rows="audit"', 1)[1]
    assert "Listing report resolved" in row and admin.full_name in row and admin.email in row
    assert f'<a href="/listings/{asset["id"]}">Dubious press</a>' in row and "owner corrected it" in row
    # An object that no longer exists reads as its kind and the name the entry recorded, never a raw id.
    await db.execute(
        sa.text(
            "INSERT INTO audit_log (action, target_type, target_id, before) "
            "VALUES ('document.deleted', 'document', :id, '{\"name\": \"licence.pdf\"}')"
        ),
        {"id": str(uuid.uuid4())},
    )
    deleted = _text((await client.get("/admin/audit?action=document.deleted")).text)
    assert "Document: licence.pdf" in deleted and "System" in deleted
    mine = await client.get(f"/admin/audit?actor={admin.email}")
    assert len(_row_ids(mine.text, "audit")) == 1
    system = await client.get("/admin/audit?actor=system")
    system_rows = system.text.split('data-rows="audit"', 1)[1]
    assert "Document: licence.pdf" in _text(system_rows) and admin.email not in system_rows


async def _api_admin(client: AsyncClient, db: AsyncSession) -> dict[str, str]:
    from tests.factories import admin_headers

    return await admin_headers(client, db)


async def _disputed_booking(client: AsyncClient, db: AsyncSession) -> tuple[dict[str, Any], dict[str, Any]]:
    m = await market(client, db, title="Disputed mill")
    start, end = slot(3)
    b = (await book(client, m["buyer"], m["asset"]["id"], start, end)).json()
    url = f"/api/v1/bookings/{b['id']}"
    for action, who in (
        ("payment/accept-terms", m["buyer"]),
        ("accept", m["supplier"]),
        ("start", m["supplier"]),
        ("complete", m["supplier"]),
    ):
        body = {"reason": "finished early"} if action == "complete" else None
        assert (await client.post(f"{url}/{action}", headers=who, json=body)).status_code == 200
    d = await client.post(f"{url}/dispute", headers=m["buyer"], json={"reason": "surface finish not as agreed"})
    assert d.status_code == 200, d.text
    return m, b


async def test_a_dispute_error_shows_beside_the_refund_in_the_page_language(
    client: AsyncClient, db: AsyncSession
) -> None:
    _, b = await _disputed_booking(client, db)
    token = await _web_admin(client, db)
    page = await client.get("/admin/disputes")
    text = _text(page.text)
    assert "Disputed mill" in text and "surface finish not as agreed" in text and "¥800.00" in text
    for locale in ("en", "zh-CN"):
        _lang(client, locale)
        too_much = await client.post(
            f"/admin/bookings/{b['id']}/resolve",
            data={"csrf_token": token, "refund_amount": "800.01", "note": "partial"},
        )
        assert too_much.status_code == 422
        message = i18n.translations(locale).gettext("The refund can be at most the booking amount, %(amount)s.")
        amount = i18n.money(b["amount"], "CNY", locale)
        expected = f'id="refund_amount-{b["id"]}-error">{message % {"amount": amount}}<'
        assert expected in too_much.text, too_much.text
        assert "38000" not in too_much.text and "80000" not in _text(too_much.text)
        assert 'value="800.01"' in too_much.text  # what the admin typed stays in the field
    bad = await client.post(
        f"/admin/bookings/{b['id']}/resolve", data={"csrf_token": token, "refund_amount": "abc", "note": "x"}
    )
    assert bad.status_code == 422 and f'id="refund_amount-{b["id"]}-error"' in bad.text
    _lang(client, "en")
    no_note = await client.post(
        f"/admin/bookings/{b['id']}/resolve", data={"csrf_token": token, "refund_amount": "100"}
    )
    assert no_note.status_code == 422 and f'id="note-{b["id"]}-error"' in no_note.text
    status = (await db.execute(sa.text("SELECT status FROM bookings WHERE id = :id"), {"id": b["id"]})).scalar()
    assert status == "disputed"
    ok = await client.post(
        f"/admin/bookings/{b['id']}/resolve",
        data={"csrf_token": token, "refund_amount": "300.00", "note": "half the machining refunded"},
    )
    assert ok.status_code == 303 and "notice=dispute_resolved" in ok.headers["location"]
    row = (
        await db.execute(sa.text("SELECT status, refund_amount FROM bookings WHERE id = :id"), {"id": b["id"]})
    ).one()
    assert tuple(row) == ("resolved", 30000)


async def test_the_ledger_names_accounts_for_people_in_both_languages(client: AsyncClient, db: AsyncSession) -> None:
    await _disputed_booking(client, db)
    await _web_admin(client, db)
    accounts = (await db.execute(sa.text("SELECT DISTINCT account FROM journal_entries"))).scalars().all()
    assert accounts
    for locale in ("en", "zh-CN"):
        _lang(client, locale)
        page = await client.get("/admin/ledger")
        text = _text(page.text)
        gettext = i18n.translations(locale).gettext
        assert gettext("Buyer receivables") in text
        if locale == "zh-CN":
            assert gettext("Buyer receivables") != "Buyer receivables"
        for code in accounts:
            assert code not in text
    _lang(client, "en")
    walked = await _walk(client, "/admin/ledger?limit=1", "journal")
    ids = (await db.execute(sa.text("SELECT id FROM journal_entries"))).scalars().all()
    assert sorted(int(i) for i in walked) == sorted(ids) and len(walked) == len(set(walked))


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_ledger_and_audit_csv_match_the_database(client: AsyncClient, db: AsyncSession) -> None:
    _, b = await _disputed_booking(client, db)
    await _web_admin(client, db)
    resp = await client.get("/admin/ledger.csv")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    header, *rows = _csv(resp.content)
    assert header[0] == "Line" and "Account" in header
    db_lines = (
        await db.execute(sa.text("SELECT id, account, currency, amount FROM journal_entries ORDER BY id"))
    ).all()
    assert [int(r[0]) for r in rows] == [int(x.id) for x in db_lines]
    for row, line in zip(rows, db_lines, strict=True):
        debit, credit = row[header.index("Debit")], row[header.index("Credit")]
        major = f"{abs(line.amount) / 100:.2f}"
        assert (debit, credit) == ((major, "") if line.amount > 0 else ("", major))
        assert row[header.index("Account code")] == line.account
        assert row[header.index("Account")] != line.account  # the account's name, not its code
    _lang(client, "zh-CN")
    zh_header = _csv((await client.get("/admin/ledger.csv")).content)[0]
    assert zh_header[4] == i18n.translations("zh-CN").gettext("Account") != "Account"
    _lang(client, "en")

    # A reason starting with "=" is text in a spreadsheet, never a formula.
    await db.execute(
        sa.text(
            "INSERT INTO audit_log (action, target_type, target_id, reason) "
            "VALUES ('booking.resolve', 'booking', :id, '=HYPERLINK(\"x\")')"
        ),
        {"id": b["id"]},
    )
    audit = await client.get("/admin/audit.csv")
    header, *rows = _csv(audit.content)
    count = (await db.execute(sa.text("SELECT count(*) FROM audit_log"))).scalar()
    assert len(rows) == count and header[:2] == ["When (UTC)", "Actor"]
    newest = rows[0]
    assert newest[header.index("Reason")] == '\'=HYPERLINK("x")'
    assert newest[header.index("Actor")] == "System" and newest[header.index("Action")] == "Dispute resolved"
    assert newest[header.index("Object")].startswith("Disputed mill")


async def test_organisations_page_filters_by_status_and_pages(client: AsyncClient, db: AsyncSession) -> None:
    for n in range(3):
        await signed_up(client, roles=("buyer",), org_name=f"Pending works {n}")
    await db.execute(
        sa.text("UPDATE organisations SET verification_status = 'pending' WHERE name LIKE 'Pending works%'")
    )
    await db.commit()
    await _web_admin(client, db)
    walked = await _walk(client, "/admin/orgs?status=pending&limit=2", "orgs")
    pending = (
        (await db.execute(sa.text("SELECT id FROM organisations WHERE verification_status = 'pending'")))
        .scalars()
        .all()
    )
    assert sorted(walked) == sorted(str(i) for i in pending) and len(walked) == 3
    everyone = await _walk(client, "/admin/orgs?limit=2", "orgs")
    total = (await db.execute(sa.text("SELECT count(*) FROM organisations"))).scalar()
    assert len(set(everyone)) == len(everyone) == total


async def test_a_tampered_cursor_is_a_friendly_page(client: AsyncClient, db: AsyncSession) -> None:
    await _web_admin(client, db)
    for url in ("/admin/moderation?cursor=bm9wZQ", "/admin/audit?cursor=WyJ4Il0", "/admin/ledger?cursor=%%%"):
        resp = await client.get(url)
        assert resp.status_code in (400, 422) and "<html" in resp.text and "Traceback" not in resp.text


ADMIN_GETS = (
    "/admin",
    "/admin/moderation",
    "/admin/flags",
    "/admin/disputes",
    "/admin/orgs",
    "/admin/ledger",
    "/admin/audit",
    "/admin/ledger.csv",
    "/admin/audit.csv",
)


async def test_a_non_admin_gets_403_on_every_admin_route(client: AsyncClient, db: AsyncSession) -> None:
    reg, _ = await signed_up(client, roles=("buyer", "supplier"))
    token = await _sign_in(client, reg["email"])
    for url in ADMIN_GETS:
        assert (await client.get(url)).status_code == 403, url
    some = str(uuid.uuid4())
    for url, data in (
        (f"/admin/assets/{some}/approve", {}),
        (f"/admin/assets/{some}/reject", {"reason": "x"}),
        (f"/admin/assets/{some}/suspend", {"reason": "x"}),
        (f"/admin/flags/{some}/resolve", {"resolution": "x"}),
        (f"/admin/bookings/{some}/resolve", {"refund_amount": "0", "note": "x"}),
    ):
        assert (await client.post(url, data={"csrf_token": token, **data})).status_code == 403, url
