"""Form errors in the page's language (marketplace/web/form_errors.py): every Pydantic error type, our own
validators' messages and the services' error codes read as a sentence in English or Chinese, never as raw
Pydantic text or a field name, money in major units with its currency; region codes are checked in the schema,
so the API refuses "abc" too."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from pydantic import BaseModel, EmailStr, Field, HttpUrl, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from listings.errors import Invalid as ListingsInvalid
from listings.schemas import SiteCreate, check_region_code
from marketplace.core.errors import Conflict, RateLimited, Unprocessable
from marketplace.core.text import Line
from marketplace.orgs.schemas import OrgCreate
from marketplace.requests.schemas import RequestCreate
from marketplace.web.core import FieldError, field_errors, parse_number
from marketplace.web.form_errors import errors_for, placed, translate, validation_errors
from marketplace.web.form_errors_service import error_code, errors_from_code, service_errors
from payments.errors import DomainError
from tests import parity_support as ps
from tests.bookings.helpers import slot
from tests.factories import SUZHOU, supplier

CJK = re.compile(r"[\u4e00-\u9fff]")
PYDANTIC_ENGLISH = ("String should", "Input should", "Value error", "Field required", "validation error")


class Sample(BaseModel):
    name: Line = Field(min_length=1, max_length=5)
    code: str = Field(min_length=3)
    count: int = Field(default=0, ge=1, le=10)
    ratio: float = Field(default=1.0, gt=0, lt=2)
    day: date | None = None
    kind: Literal["machine", "lab_service"] = "machine"
    email: EmailStr | None = None
    site: HttpUrl | None = None
    tags: list[str] = Field(default_factory=list, min_length=0, max_length=2)
    budget_max: int | None = Field(default=None, ge=0)


def _one(payload: dict[str, Any], locale: str) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"name": "ok", "code": "abcd", **payload})
    return validation_errors(caught.value, locale=locale, currency="CNY")


def _chinese(message: str) -> None:
    assert CJK.search(message), message
    assert not any(text in message for text in PYDANTIC_ENGLISH), message


# (payload, field, English message)
CASES = [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "toolong"}, "name", "Enter at most 5 characters."),
    ({"code": "ab"}, "code", "Enter at least 3 characters."),
    ({"name": "a\x00b"}, "name", "Use a single line of text without control characters."),
    ({"count": "x"}, "count", "Enter a whole number."),
    ({"count": 0}, "count", "Enter a value of at least 1."),
    ({"count": 11}, "count", "Enter a value of at most 10."),
    ({"ratio": "abc"}, "ratio", "Enter a number."),
    ({"ratio": 0}, "ratio", "Enter a value greater than 0."),
    ({"ratio": 2}, "ratio", "Enter a value less than 2."),
    ({"day": "31.12.2026"}, "day", "Enter a date (YYYY-MM-DD)."),
    ({"kind": "robot"}, "kind", "Choose one of the options."),
    ({"email": "not-an-address"}, "email", "Enter a valid e-mail address."),
    ({"site": "not a url"}, "site", "Enter a valid web address, such as https://example.com."),
    ({"tags": ["a", "b", "c"]}, "tags", "Choose at most 2."),
    ({"budget_max": -1}, "budget_max", "The amount cannot be negative."),
]


@pytest.mark.parametrize(("payload", "field", "english"), CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_each_pydantic_error_type_reads_as_a_sentence_in_both_languages(
    payload: dict[str, Any], field: str, english: str
) -> None:
    assert _one(payload, "en") == {field: english}
    zh = _one(payload, "zh-CN")
    assert list(zh) == [field]
    _chinese(zh[field])


def test_a_missing_field_is_required_not_a_field_name() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"code": "abcd"})
    assert validation_errors(caught.value, locale="en") == {"name": "This field is required."}
    assert validation_errors(caught.value, locale="zh-CN") == {"name": "此项为必填项。"}


def test_a_money_limit_is_shown_in_major_units_with_the_currency() -> None:
    class Offer(BaseModel):
        price: int = Field(gt=100)

    with pytest.raises(ValidationError) as caught:
        Offer(price=50)
    assert validation_errors(caught.value, locale="en", currency="CNY") == {
        "price": "Enter a value greater than CN¥1.00."
    }
    zh = validation_errors(caught.value, locale="zh-CN", currency="JPY")["price"]
    assert "100" in zh and "¥" in zh and CJK.search(zh)


def test_a_required_number_left_empty_is_required_not_a_parse_error() -> None:
    assert _one({"ratio": None}, "en") == {"ratio": "This field is required."}
    assert _one({"count": None}, "zh-CN") == {"count": "此项为必填项。"}


def test_an_unknown_error_type_reads_as_the_generic_message() -> None:
    err = {"type": "some_future_type", "loc": ("x",), "msg": "Something internal went wrong", "input": 1}
    assert translate(err, locale="en") == "This value is not valid."
    assert translate(err, locale="zh-CN") == "该值无效。"


def test_an_unknown_value_error_of_a_validator_is_never_shown_as_is() -> None:
    err = {"type": "value_error", "loc": ("x",), "msg": "Value error, secret_field must be 42", "ctx": {"error": "x"}}
    assert translate(err, locale="en") == "This value is not valid."


def test_a_deadline_before_the_earliest_start_is_named_on_the_deadline() -> None:
    payload = {
        "kind": "machine",
        "process_code": "machining.milling.cnc_3axis",
        "duration_minutes": 60,
        "currency": "CNY",
        "earliest_start": "2026-06-10T00:00:00+08:00",
        "deadline": "2026-06-01T00:00:00+08:00",
    }
    with pytest.raises(ValidationError) as caught:
        RequestCreate.model_validate(payload)
    assert validation_errors(caught.value, locale="en") == {
        "deadline": "The deadline must be after the earliest start."
    }
    zh = validation_errors(caught.value, locale="zh-CN")
    assert zh == {"deadline": "截止日期必须晚于最早开始日期。"}


def test_a_wrong_uscc_and_country_at_registration_read_in_chinese() -> None:
    with pytest.raises(ValidationError) as caught:
        OrgCreate.model_validate({"name": "A", "roles": [], "country": "12", "uscc": "91320500MA1X00000X"})
    zh = validation_errors(caught.value, locale="zh-CN")
    assert set(zh) == {"roles", "country", "uscc"}
    for message in zh.values():
        _chinese(message)
    assert "uscc" not in " ".join(zh.values()).lower()


@pytest.mark.parametrize("code", ["abc", "Suzhou", "32050", "990000", "3205001"])
def test_a_chinese_site_needs_a_gb_t_2260_region_code(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SiteCreate.model_validate({**SUZHOU, "region_code": code})
    assert validation_errors(caught.value, locale="en") == {
        "region_code": "Chinese sites need the 6-digit administrative division code (GB/T 2260), such as 320500."
    }
    _chinese(validation_errors(caught.value, locale="zh-CN")["region_code"])


def test_region_codes_that_are_accepted() -> None:
    assert check_region_code("CN", "320500") == "320500"
    assert check_region_code("CN", "110000") == "110000"
    assert check_region_code("DE", "de-by") == "DE-BY"
    with pytest.raises(ValueError):
        check_region_code("DE", "abc")
    with pytest.raises(ValueError):
        check_region_code("DE", "FR-75")


async def test_the_api_refuses_a_region_code_abc_with_422(client: AsyncClient, db: AsyncSession) -> None:
    _, headers, _site = await supplier(client, db)
    for site in ({**SUZHOU, "region_code": "abc"}, {**SUZHOU, "country": "DE", "region_code": "abc"}):
        resp = await client.post("/api/v1/sites", json=site, headers=headers)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "validation_error"


def test_an_optional_empty_number_is_not_given_and_a_bad_one_is_named() -> None:
    assert parse_number("", field="latitude", locale="zh-CN") is None
    assert parse_number("  ", field="latitude", locale="zh-CN") is None
    assert parse_number("31.5", field="latitude", locale="en") == 31.5
    with pytest.raises(FieldError) as caught:
        parse_number("abc", field="latitude", locale="zh-CN")
    assert caught.value.field == "latitude" and caught.value.message == "请输入数字。"
    with pytest.raises(FieldError) as whole:
        parse_number("2.5", field="samples", locale="en", integer=True)
    assert whole.value.message == "Enter a whole number."


# -- service errors ------------------------------------------------------------------------------


def test_a_duplicate_uscc_is_shown_beside_the_uscc_field_in_chinese() -> None:
    exc = Conflict("Another organisation is registered with this USCC.")
    exc.code = "uscc_taken"
    assert service_errors(exc, locale="zh-CN") == {"uscc": "该统一社会信用代码已被其他企业使用。"}
    assert service_errors(exc, locale="en") == {
        "uscc": "Another organisation already uses this Unified Social Credit Code."
    }


def test_a_refund_out_of_range_is_in_major_units_with_the_currency_and_no_field_name() -> None:
    exc = Unprocessable("refund_amount must be between 0 and the booking amount (38000).")
    en = service_errors(exc, locale="en", currency="CNY")
    assert en == {"refund_amount": "The refund must be between CN¥0.00 and CN¥380.00."}
    zh = service_errors(exc, locale="zh-CN", currency="CNY")["refund_amount"]
    _chinese(zh)
    assert "380.00" in zh and "38000" not in zh and "refund_amount" not in zh


def test_our_validators_messages_reach_the_field_they_name() -> None:
    exc = ListingsInvalid(
        "region_code: Chinese sites need the 6-digit administrative division code (GB/T 2260), e.g. 1"
    )
    assert list(service_errors(exc, locale="zh-CN")) == ["region_code"]
    reason = Unprocessable("reason: say what is wrong.")
    assert service_errors(reason, locale="en") == {"reason": "Say what is wrong."}


def test_an_unknown_service_detail_reads_as_a_generic_sentence_never_as_its_text() -> None:
    exc = Unprocessable("internal_thing: blew up at row 42")
    shown = service_errors(exc, locale="en")
    assert "42" not in " ".join(shown.values()) and "internal_thing" not in " ".join(shown.values())
    assert service_errors(DomainError("Something odd."), locale="zh-CN") == {
        "_": "操作未能完成。请检查填写内容后重试。"
    }


def test_a_rate_limit_says_how_long_to_wait() -> None:
    exc = RateLimited(extra={"retry_after": 30})
    assert service_errors(exc, locale="en") == {"_": "Too many attempts. Please wait 30 seconds and try again."}


def test_a_bare_value_error_is_never_shown_as_pythons_text() -> None:
    shown = errors_for(ValueError("could not convert string to float: 'abc'"), locale="en")
    assert shown == {"_": "This value is not valid."}
    assert field_errors(ValueError("Invalid isoformat string: 'x'"), locale="zh-CN") == {"_": "该值无效。"}


def test_a_code_in_the_url_maps_back_to_the_translated_message() -> None:
    reason = Unprocessable("reason: say what is wrong.")
    assert error_code(reason) == "reason_required"
    assert errors_from_code("reason_required", locale="zh-CN") == {"reason": "请说明问题所在。"}
    slot = Conflict("The slot is taken.")
    slot.code = "slot_unavailable"
    assert error_code(slot) == "slot_unavailable"
    assert errors_from_code("slot_unavailable", locale="en") == {
        "start": "This time is no longer free. Choose another time."
    }
    # Anything else: a generic sentence, whatever the URL says.
    assert errors_from_code("<script>alert(1)</script>", locale="en") == {
        "_": "This could not be done. Please check the entries and try again."
    }
    assert errors_from_code(None, locale="en") == {}


def test_a_too_long_comment_travels_as_a_code_with_its_field() -> None:
    class Review(BaseModel):
        comment: str = Field(max_length=3)

    with pytest.raises(ValidationError) as caught:
        Review(comment="four")
    assert error_code(caught.value) == "too_long.comment"
    assert errors_from_code("too_long.comment", locale="zh-CN") == {"comment": "文本过长，请缩短后重试。"}


def test_messages_for_fields_the_form_does_not_have_go_to_the_summary() -> None:
    assert placed({"deadline": "a", "buyer_org_id": "b"}, ["deadline"]) == {"deadline": "a", "_": "b"}


# -- the buyer's dispute and review forms (a code in the URL, the message beside the field) -------------


async def _buyer_booking(
    app: Any, client: AsyncClient, db: AsyncSession, status: str, *, locale: str = "en"
) -> tuple[Any, str, str]:
    scenario = await ps.booking_in(client, db, status, slot(3))
    await db.execute(
        sa.text("UPDATE users SET locale = :l WHERE email = :e"), {"l": locale, "e": scenario.emails["buyer"]}
    )
    await db.commit()
    browser, token = await ps.web_sign_in(app, scenario.emails["buyer"])
    page = f"/buyer/{scenario.ids['buyer_org']}/bookings/{scenario.ids['booking']}"
    return browser, token, page


async def test_an_empty_dispute_is_refused_beside_its_field_in_chinese(
    app: Any, client: AsyncClient, db: AsyncSession
) -> None:
    browser, token, page = await _buyer_booking(app, client, db, "completed", locale="zh-CN")
    zh = {"Accept-Language": "zh-CN"}
    try:
        sent = await browser.post(f"{page}/dispute", data={"csrf_token": token, "reason": ""}, headers=zh)
        assert sent.status_code == 303
        location = sent.headers["location"]
        assert "error=reason_required" in location and "say what" not in location.lower()
        html = (await browser.get(location, headers=zh)).text
    finally:
        await browser.aclose()
    assert re.search(r'id="dispute-reason"[^>]*aria-describedby="dispute-reason-error"', html), html[-3000:]
    assert 'id="dispute-reason-error">请说明问题所在。</p>' in html
    assert "data-error-summary" in html and 'href="#dispute-reason"' in html
    status = await db.scalar(sa.text("SELECT status FROM bookings WHERE id = :b"), {"b": page.rsplit("/", 1)[1]})
    assert status == "completed"  # nothing changed


async def test_a_too_long_review_comment_is_refused_beside_it_and_nothing_is_saved(
    app: Any, client: AsyncClient, db: AsyncSession
) -> None:
    browser, token, page = await _buyer_booking(app, client, db, "settled")
    try:
        form = {"csrf_token": token, "rating": "5", "comment": "x" * 4001}
        sent = await browser.post(f"{page}/review", data=form, headers={"Accept-Language": "en"})
        assert sent.status_code == 303 and "error=too_long.comment" in sent.headers["location"]
        html = (await browser.get(sent.headers["location"], headers={"Accept-Language": "en"})).text
    finally:
        await browser.aclose()
    assert 'id="comment-error">This text is too long. Shorten it and try again.</p>' in html
    booking = page.rsplit("/", 1)[1]
    assert await db.scalar(sa.text("SELECT count(*) FROM reviews WHERE booking_id = :b"), {"b": booking}) == 0
