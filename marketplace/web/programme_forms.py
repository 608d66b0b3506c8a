"""The programme operator's forms read into the API's shapes (issue #18): a new programme (money typed in major
units of the programme's currency, the rate as a percentage), the programme's settings, a grant, a decision with
its reason, a claim's month, a line's decision and a claim's payment. Each malformed value is a message beside
its field in the page's language; the voucher room's own refusals (``voucher_not_eligible``, ``claim_paid`` ...)
read as sentences here, since the shared error tables do not know them. Nothing here touches the database."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n
from marketplace.web.core import N_, FieldError, form_errors, parse_money_input

MONEY_FIELDS = ("cap_per_booking", "cap_per_buyer_year", "budget")
# Where the new-programme form shows each field of ProgrammeCreate (the rate is typed as a percentage).
PROGRAMME_FIELDS = {
    "name": "name",
    "region_prefix": "region_prefix",
    "eligible_kinds": "eligible_kinds",
    "eligible_families": "eligible_families",
    "rate_bp": "rate",
    "currency": "currency",
    "cap_per_booking": "cap_per_booking",
    "cap_per_buyer_year": "cap_per_buyer_year",
    "budget": "budget",
    "valid_from": "valid_from",
    "valid_until": "valid_until",
    "payment_mode": "payment_mode",
    "partner_programme_ids": "partner_programme_ids",
    "auto_grant": "auto_grant",
}
SETTINGS_FIELDS = {
    "budget": "s-budget",
    "partner_programme_ids": "s-partner_programme_ids",
    "auto_grant": "s-auto_grant",
}
GRANT_FIELDS = {"buyer_org_id": "buyer", "buyer": "buyer", "note": "note"}
PAYMENT_FIELDS = {"amount": "amount", "reference": "reference"}

RATE = N_("Enter a percentage between 0.01 and 100, such as 50.")
REGION = N_("Enter the first 2 to 6 digits of a GB/T 2260 region code, such as 3205 for Suzhou.")
MONTH = N_("Choose a month (YYYY-MM).")
BUYER = N_("Enter the buyer's Unified Social Credit Code.")
BUYER_UNKNOWN = N_("No organisation on the platform has this Unified Social Credit Code.")
REASON = N_("Say why.")

# The voucher room's refusals (marketplace.vouchers), by code: (form field, message); "" is the form as a whole.
# The codes whose field or words differ on these forms; the claim codes read as the shared table
# (``form_errors_service``) words them.
VOUCHER_ERRORS: dict[str, tuple[str, str]] = {
    "not_programme_org": ("", N_("Only an organisation registered as a voucher programme can run programmes.")),
    "programme_org_unverified": (
        "",
        N_("Your organisation must be verified by the platform before it can run programmes."),
    ),
    "voucher_not_eligible": (
        "buyer",
        N_("This buyer is not eligible: it must be a buyer registered in the programme's region."),
    ),
    "voucher_exists": ("buyer", N_("This buyer already holds or has applied for a voucher of this programme.")),
    "programme_not_found": ("", N_("This programme no longer exists or is not yours. Reload the page.")),
    "voucher_not_found": ("", N_("This voucher no longer exists. Reload the page.")),
    "claim_not_found": ("", N_("This claim no longer exists. Reload the page.")),
    "voucher_not_granted": ("", N_("Only a granted voucher can be revoked. Reload the page.")),
    "invalid_voucher_state": ("", N_("This is not possible in the voucher's current state. Reload the page.")),
    "voucher_exhausted": ("", N_("The programme's budget or the buyer's yearly cap is used up.")),
}
NOT_BUYER = N_("This organisation is not registered as a buyer.")
CLOSED = N_("This programme is closed.")
BUDGET_DOWN = N_("The budget can only be raised.")
PARTNERS = N_("Choose other programmes from the list.")
MONTH_NOT_OVER = N_("A month can be claimed once it is over (China time).")
NO_USCC = N_("This buyer has no Unified Social Credit Code, so its region is unknown: it is not eligible.")
OUTSIDE = N_("This buyer is registered in region %(region)s, outside the programme's region %(prefix)s.")
_OUTSIDE = re.compile(r"registered in region (\d+), outside the programme's region (\d+)")


def errors_of(
    exc: Exception, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Any error a programme form's handler catches, as ``{form field: message}`` in ``locale``: the voucher
    room's codes here, everything else through the shared tables (``core.form_errors``)."""
    gettext = i18n.translations(locale).gettext
    code = str(getattr(exc, "code", "") or "")
    detail = str(getattr(exc, "detail", "") or "")
    if code == "voucher_not_eligible":  # say why: the reason the service names
        if "no unified social credit code" in detail.lower():
            return {"buyer": gettext(NO_USCC)}
        if "not a buyer" in detail.lower():
            return {"buyer": gettext(NOT_BUYER)}
        if "programme is closed" in detail.lower():
            return {"_": gettext(CLOSED)}
        if outside := _OUTSIDE.search(detail):
            return {"buyer": gettext(OUTSIDE) % {"region": outside.group(1), "prefix": outside.group(2)}}
    if code in VOUCHER_ERRORS:
        field, message = VOUCHER_ERRORS[code]
        return {(aliases or {}).get(field, field) or "_": gettext(message)}
    low = detail.lower()
    if low.startswith("reason"):
        return {(aliases or {}).get("reason", "reason"): gettext(REASON)}
    if low.startswith("month") and "ended" in low:
        return {"month": gettext(MONTH_NOT_OVER)}
    if low.startswith("budget: can only be raised"):
        return {(aliases or {}).get("budget", "budget"): gettext(BUDGET_DOWN)}
    if low.startswith("partner_programme_ids:"):
        return {(aliases or {}).get("partner_programme_ids", "partner_programme_ids"): gettext(PARTNERS)}
    return form_errors(exc, locale=locale, currency=currency, aliases=aliases)


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _list(form: Any, name: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if getlist else ([form[name]] if form.get(name) else [])
    return [str(v).strip() for v in values if str(v).strip()]


def rate_bp(text: str) -> int:
    """A percentage typed by a person ("50", "12,5") → basis points; ValueError when it is not one."""
    try:
        value = Decimal(text.replace(",", ".").replace("%", "").strip())
    except InvalidOperation:
        raise ValueError(text) from None
    bp = value * 100
    if not value.is_finite() or bp != bp.to_integral_value() or not 1 <= bp <= 10000:
        raise ValueError(text)
    return int(bp)


def programme_payload(form: Any, *, org_id: str, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The new-programme form → ProgrammeCreate's shape, and the fields found wrong on the way."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    currency = _text(form, "currency").upper() or "CNY"
    payload: dict[str, Any] = {
        "org_id": org_id,
        "name": _text(form, "name"),
        "region_prefix": _text(form, "region_prefix"),
        "eligible_kinds": _list(form, "eligible_kinds"),
        "eligible_families": _list(form, "eligible_families"),
        "currency": currency,
        "valid_from": _text(form, "valid_from") or None,
        "valid_until": _text(form, "valid_until") or None,
        "payment_mode": _text(form, "payment_mode") or None,
        "partner_programme_ids": _list(form, "partner_programme_ids"),
        "auto_grant": bool(form.get("auto_grant")),
    }
    if not re.fullmatch(r"[0-9]{2,6}", payload["region_prefix"]):
        errors["region_prefix"] = gettext(REGION)
    try:
        payload["rate_bp"] = rate_bp(_text(form, "rate"))
    except ValueError:
        errors["rate"] = gettext(RATE)
    for name in MONEY_FIELDS:
        try:
            payload[name] = parse_money_input(form.get(name), currency, field=name, locale=locale)
        except FieldError as exc:
            errors[exc.field] = exc.message
        else:
            if payload[name] is None:
                errors[name] = gettext(web_form_errors.REQUIRED)
    return payload, errors


def settings_payload(form: Any, *, currency: str, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings form → the PATCH shape (auto-grant, partners, a raised budget); closing is its own button."""
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {
        "auto_grant": bool(form.get("auto_grant")),
        "partner_programme_ids": _list(form, "partner_programme_ids"),
    }
    try:
        budget = parse_money_input(form.get("s-budget"), currency, field="s-budget", locale=locale)
    except FieldError as exc:
        errors[exc.field] = exc.message
    else:
        if budget is not None:
            payload["budget"] = budget
    return payload, errors


def month_value(text: str, *, locale: str) -> str:
    """A claim's month as the API takes it ("2026-03"); FieldError otherwise."""
    text = text.strip()
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise FieldError("month", i18n.translations(locale).gettext(MONTH))
    return text


def payment_payload(form: Any, *, currency: str, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The record-payment form → {amount (minor units), reference}."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {"reference": _text(form, "reference")}
    try:
        payload["amount"] = parse_money_input(form.get("amount"), currency, field="amount", locale=locale)
    except FieldError as exc:
        errors[exc.field] = exc.message
    else:
        if payload["amount"] is None:
            errors["amount"] = gettext(web_form_errors.REQUIRED)
    if not payload["reference"]:
        errors["reference"] = gettext(web_form_errors.REQUIRED)
    return payload, errors


__all__ = ["VOUCHER_ERRORS", "errors_of", "month_value", "payment_payload", "programme_payload", "settings_payload"]
