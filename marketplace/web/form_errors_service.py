"""Service errors (``AppError``, ``ListingsError``, ``PaymentsError``: any ``DomainError``) reaching a form, as
``{form field: message}`` in the page's language. A service error carries a ``code`` (``uscc_taken``,
``slot_unavailable`` ...) and an English ``detail`` for API clients; the page shows a translated sentence chosen
by the code, or for the generic codes (``validation_error``, ``conflict``) by what the detail says. The detail
itself is never shown: an unknown one reads as a generic sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError

from marketplace.web import i18n
from marketplace.web.form_errors import N_, SERVICE_GENERIC, Errors, known_value_error
from payments.errors import DomainError

# code → (field, message); field "" means the form as a whole.
_CODES: dict[str, tuple[str, str]] = {
    "uscc_taken": ("uscc", N_("Another organisation already uses this Unified Social Credit Code.")),
    "email_taken": ("email", N_("An account with this e-mail address already exists. Sign in instead.")),
    "invalid_credentials": ("", N_("Incorrect e-mail or password.")),
    "wrong_password": ("current_password", N_("The current password is not correct.")),
    "invalid_otp": ("code", N_("The code is wrong, expired or already used.")),
    "otp_required": ("code", N_("Enter the code from your authenticator app.")),
    "email_unverified": ("", N_("Confirm your e-mail address first: open the link in the e-mail we sent you.")),
    "organisation_not_verified": (
        "",
        N_("Only verified organisations can do this. Send your company for verification first."),
    ),
    "forbidden": ("", N_("You are not allowed to do this.")),
    "not_found": ("", N_("This item no longer exists. Reload the page.")),
    "slot_unavailable": ("start", N_("This time is no longer free. Choose another time.")),
    "capacity_unavailable": ("drop_off_date", N_("There is not enough capacity on that day. Choose another day.")),
    "not_bookable": ("", N_("This listing cannot be booked at the moment.")),
    "own_asset": ("", N_("You cannot book your own organisation's listing.")),
    "invalid_transition": (
        "",
        N_("This is not possible in the booking's or listing's current state. Reload the page."),
    ),
    "already_member": ("email", N_("This person is already a member of the organisation.")),
    "last_owner": ("", N_("An organisation needs at least one owner.")),
    "invitation_expired": ("", N_("This invitation has expired. Ask for a new one.")),
    "invitation_not_found": ("", N_("This invitation is no longer valid.")),
    "nda_required": ("", N_("Accept the non-disclosure agreement first.")),
    "quote_exists": ("", N_("You have already quoted for this request.")),
    "quote_not_open": ("", N_("This quote is no longer open.")),
    "request_not_open": ("", N_("This request is no longer open.")),
    "not_your_turn": ("", N_("Wait for the other side to answer first.")),
    "outside_your_regions": ("", N_("This request is outside the regions you serve.")),
    "supplier_not_onboarded": ("", N_("This factory cannot receive payments yet.")),
    "card_declined": ("", N_("The card was declined. Try another card.")),
    "payment_conflict": ("", N_("The payment is already being processed. Reload the page.")),
    "payment_not_authorised": ("", N_("The payment was not authorised.")),
    "payment_provider_error": ("", N_("The payment provider did not answer. Please try again.")),
    "amount_exceeds_outstanding": ("amount", N_("The amount is more than what is still owed.")),
    "rate_limited": ("", N_("Too many attempts. Please wait a minute and try again.")),
    "two_factor_enabled": ("", N_("Two-factor sign-in is already on.")),
    "two_factor_not_enabled": ("", N_("Two-factor sign-in is off.")),
    "two_factor_not_started": ("", N_("Start the two-factor set-up again.")),
    "nothing_to_release": ("", N_("There is no booked time left to release.")),
    "milestone_not_due": ("", N_("This milestone cannot be invoiced now (the earlier ones come first).")),
    "not_releasable": ("", N_("A lab booking keeps its samples: there is no time to release.")),
    "try_again": ("", N_("Something went wrong. Please try again.")),
    # Make + verify (issue #17).
    "quality_documents_missing": (
        "",
        N_("Supply the ordered quality documents (upload them or issue the certificate) before completing."),
    ),
    "inspection_open": ("", N_("This lot already has an open inspection.")),
    "lab_not_independent": (
        "lab_asset_id",
        N_("This lab belongs to the factory that made the parts. Choose an independent lab."),
    ),
    "lab_unavailable": (
        "lab_asset_id",
        N_("This lab has no day with room for the samples in the next month. Choose another lab."),
    ),
    "invalid_inspection_state": ("", N_("This is not possible in the inspection's current state. Reload the page.")),
    "inspection_not_received": ("", N_("Record the receipt of the samples before submitting the report.")),
    "report_exists": ("", N_("This inspection already has its report.")),
    "lab_booking_not_confirmed": ("", N_("The lab booking must be accepted before its report can be submitted.")),
    "due_date_invalid": ("due_date", N_("Enter a date (YYYY-MM-DD).")),
    # Innovation vouchers (issue #18): the voucher and programme pages word these with more detail.
    "voucher_exhausted": (
        "voucher_id",
        N_("This voucher has nothing left to pay with: its yearly limit or the programme's budget is used up."),
    ),
    "voucher_not_eligible": ("voucher_id", N_("This voucher cannot be used for this booking.")),
    "voucher_not_granted": ("voucher_id", N_("This voucher has not been granted, or it was revoked.")),
    "voucher_not_found": ("voucher_id", N_("This voucher no longer exists.")),
    "voucher_invoice_only": (
        "voucher_id",
        N_("This programme pays its share on the invoice: book with payment by bank transfer, not by card."),
    ),
    "vouchers_unavailable": ("voucher_id", N_("Vouchers cannot be used at the moment.")),
    "voucher_exists": ("", N_("Your organisation has already applied for this programme's voucher.")),
    "programme_not_found": ("", N_("This programme no longer exists.")),
    "claim_not_found": ("", N_("This claim no longer exists. Reload the page.")),
    "nothing_to_claim": (
        "month",
        N_("There is nothing to claim for this month: no settled voucher booking is unclaimed."),
    ),
    "claim_paid": ("", N_("This claim has already been paid.")),
    "claim_not_decided": ("amount", N_("Decide every line before recording the payment.")),
    "amount_mismatch": ("amount", N_("The amount must equal the approved total of the claim.")),
    "line_decided": ("", N_("This line has already been decided. Reload the page.")),
    "database_unavailable": ("", N_("Something went wrong. Please try again.")),
    "service_unavailable": ("", N_("Something went wrong. Please try again.")),
}

_REFUND = re.compile(r"refund(?:_amount)? must be between 0 and (?:the booking amount \(|the captured )?(\d+)")

# Details of the generic codes (validation_error, conflict, bad_request), by their start: (start, field, message).
_DETAILS: list[tuple[str, str, str]] = [
    ("reason: say what is wrong", "reason", N_("Say what is wrong.")),
    (
        "reason: completing before the booked start",
        "reason",
        N_("Say why the work was finished before the booked start."),
    ),
    ("the dispute window has closed", "", N_("The time to dispute this booking has passed.")),
    ("reviews open once the booking is settled", "", N_("You can review once the booking is settled.")),
    ("you already reviewed this booking", "", N_("You have already reviewed this booking.")),
    (
        "uscc: chinese organisations must give",
        "uscc",
        N_("Chinese companies must give their Unified Social Credit Code."),
    ),
    ("body: write a message", "body", N_("Write a message.")),
    ("buyer_org_id:", "buyer_org_id", N_("Choose the organisation you act for.")),
    ("org_id:", "", N_("Choose the organisation you act for.")),
    ("supplier_org_id:", "", N_("Choose the organisation you act for.")),
    ("valid_until: must be in the future", "valid_until", N_("Enter a date in the future.")),
    ("valid_until: must not be after", "valid_until", N_("The offer cannot be valid after the request's deadline.")),
    ("start: must be in the future", "start", N_("Enter a time in the future.")),
    (
        "start, end: must lie inside",
        "start",
        N_("The time must lie inside the request's window (earliest start to deadline)."),
    ),
    (
        "drop_off_date: must lie inside",
        "drop_off_date",
        N_("The day must lie inside the request's window (earliest start to deadline)."),
    ),
    ("start, end: this listing is machine time", "start", N_("Enter a start and an end for machine time.")),
    (
        "drop_off_date, samples: this listing is a lab",
        "drop_off_date",
        N_("Enter a drop-off day and the samples for a lab service."),
    ),
    ("currency: this listing is priced in", "currency", N_("Use the listing's currency.")),
    ("asset_id:", "asset_id", N_("Choose one of your published listings that fits this request.")),
    ("location.site_id:", "", N_("Choose one of your own sites.")),
    ("horizon_end:", "", N_("The period lies in the past.")),
    ("version: the nda in force", "", N_("Read and accept the current version of the non-disclosure agreement.")),
    ("this factory has already been asked", "", N_("This factory has already been asked to quote.")),
    ("this invitation can no longer be declined", "", N_("This invitation can no longer be declined.")),
    ("org_id: you belong to several", "", N_("Choose the organisation you act for.")),
    ("process_codes:", "process_codes", N_("Choose a process from the list.")),
    ("url: must be an http(s) url", "url", N_("Enter a valid web address, such as https://example.com.")),
    ("url: cannot resolve host", "url", N_("This address cannot be found. Check the host name.")),
    ("url: webhook endpoints must be public", "url", N_("Webhooks must go to a public internet address.")),
    ("unknown scopes", "scopes", N_("Choose permissions from the list.")),
    ("lab_asset_id: not a published lab service", "lab_asset_id", N_("Choose a published lab service.")),
    (
        "lab_asset_id: this is your own organisation's lab",
        "lab_asset_id",
        N_("Choose an independent lab, not your own organisation's."),
    ),
    (
        "lot_size: the plan inspects",
        "lot_size",
        N_("This lab cannot take that many samples in a day. Choose a smaller lot, another level or another lab."),
    ),
    ("due_date: must be later than", "due_date", N_("Choose a day after the current due date.")),
    ("due_date: at most", "due_date", N_("Choose a day at most a year after the current due date.")),
    ("tested_on: cannot be in the future", "tested_on", N_("The test day cannot be in the future.")),
    (
        "tested_on: cannot be before the samples were received",
        "tested_on",
        N_("The test day cannot be before the samples were received."),
    ),
    ("units: the plan's sample is", "units", N_("Enter the measurements of exactly the plan's sample size.")),
    ("units.", "units", N_("Measure every characteristic of the plan once per part, in the plan's units.")),
    (
        "document_id: no such document",
        "document_id",
        N_("Upload the document again: it is not one of your organisation's."),
    ),
]
_NOT_EDITABLE = N_("This listing can no longer be edited.")
_DOES_NOT_APPLY = N_("Some entries do not apply to this kind of listing.")
_REFUND_RANGE = N_("The refund must be between %(zero)s and %(amount)s.")


def _place(field: str, aliases: Mapping[str, str]) -> str:
    return aliases.get(field, field) if field else "_"


def service_errors(
    exc: Exception, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> Errors:
    """A service error (or a bare ``ValueError``) as ``{form field: message}`` in ``locale``."""
    gettext = i18n.translations(locale).gettext
    names = aliases or {}
    if not isinstance(exc, DomainError):
        known = known_value_error(str(exc)) if isinstance(exc, ValueError) else None
        if known:
            return {_place(known[0], names): gettext(known[1])}
        return {"_": gettext(N_("This value is not valid."))}
    code = str(getattr(exc, "code", "") or "")
    detail = str(getattr(exc, "detail", "") or "")
    if code == "rate_limited" and isinstance((exc.extra or {}).get("retry_after"), int):
        message = gettext(N_("Too many attempts. Please wait %(seconds)s seconds and try again."))
        return {"_": message % {"seconds": exc.extra["retry_after"]}}
    if code in _CODES:
        field, message = _CODES[code]
        return {_place(field, names): gettext(message)}
    return _by_detail(detail, locale=locale, currency=currency, aliases=names)


def _by_detail(detail: str, *, locale: str, currency: str | None, aliases: Mapping[str, str]) -> Errors:
    gettext = i18n.translations(locale).gettext
    low = detail.strip().lower()
    refund = _REFUND.search(low)
    if refund:
        amount = int(refund.group(1))
        cur = currency or "CNY"
        text = gettext(_REFUND_RANGE) % {"zero": i18n.money(0, cur, locale), "amount": i18n.money(amount, cur, locale)}
        return {_place("refund_amount", aliases): text}
    for start, field, message in _DETAILS:
        if low.startswith(start):
            return {_place(field, aliases): gettext(message)}
    if "can no longer be edited" in low:
        return {"_": gettext(_NOT_EDITABLE)}
    if "do not apply to a" in low or "cannot be set to null" in low:
        return {"_": gettext(_DOES_NOT_APPLY)}
    known = known_value_error(detail)
    if known:
        return {_place(known[0], aliases): gettext(known[1])}
    head, sep, _rest = detail.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+", head):
        return {_place(head, aliases): gettext(N_("This value is not valid."))}
    return {"_": gettext(SERVICE_GENERIC)}


# -- errors passed to the next page as a short code (never free text in a URL) ---------------------------

# Codes of the generic service errors, by what the detail says (each maps back through ``errors_from_code``).
_DETAIL_CODES = {
    "reason: say what is wrong": "reason_required",
    "reason: completing before the booked start": "early_reason_required",
    "the dispute window has closed": "dispute_closed",
    "reviews open once the booking is settled": "review_not_open",
    "you already reviewed this booking": "already_reviewed",
    "body: write a message": "body_required",
    "buyer_org_id:": "choose_org",
    "url: must be an http(s) url": "webhook_url",
    "url: cannot resolve host": "webhook_host",
    "url: webhook endpoints must be public": "webhook_private",
    "unknown scopes": "unknown_scopes",
    "due_date: must be later than": "due_date_not_later",
    "due_date: at most": "due_date_too_late",
}
_CODE_DETAILS = {code: start for start, code in _DETAIL_CODES.items()}
# A validation error of one of these fields travels as "<kind>.<field>" ("too_long.comment").
_URL_FIELDS = frozenset(
    {"comment", "rating", "reason", "body", "note", "amount", "refund_amount", "name", "url", "events", "scopes"}
    | {"statement", "tracking_reference"}  # make + verify: the CoC statement, the shipment's tracking reference
)
_URL_KINDS = {
    "missing": "required",
    "string_too_short": "required",
    "too_short": "choose",
    "string_too_long": "too_long",
    **dict.fromkeys(("url_parsing", "url_type", "url_scheme", "url_syntax_violation", "url_too_long"), "url"),
}
_URL_MESSAGES = {
    "required": N_("This field is required."),
    "choose": N_("Choose at least one."),
    "url": N_("Enter a valid web address, such as https://example.com."),
    "too_long": N_("This text is too long. Shorten it and try again."),
    "invalid": N_("This value is not valid."),
}


def error_code(exc: Exception) -> str:
    """A short code for ``exc`` to put in a redirect's URL (``?error=slot_unavailable``), which
    :func:`errors_from_code` turns back into a message on the next page; ``invalid`` for anything else."""
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())]
        field = loc[-1] if loc and loc[-1] in _URL_FIELDS else ""
        kind = _URL_KINDS.get(str(err.get("type")), "invalid")
        return f"{kind}.{field}" if field else "invalid"
    if isinstance(exc, DomainError):
        code = str(getattr(exc, "code", ""))
        if code in _CODES:
            return code
        low = str(exc.detail).strip().lower()
        for start, slug in _DETAIL_CODES.items():
            if low.startswith(start):
                return slug
    return "invalid"


def errors_from_code(code: str | None, *, locale: str) -> Errors:
    """``{field: message}`` for a code of :func:`error_code` (an unknown code reads as a generic sentence);
    empty when there is no code."""
    if not code:
        return {}
    gettext = i18n.translations(locale).gettext
    if code in _CODES:
        field, message = _CODES[code]
        return {field or "_": gettext(message)}
    kind, _dot, field = code.partition(".")
    if field in _URL_FIELDS and kind in _URL_MESSAGES:
        return {field: gettext(_URL_MESSAGES[kind])}
    if code in _CODE_DETAILS:
        return _by_detail(_CODE_DETAILS[code], locale=locale, currency=None, aliases={})
    return {"_": gettext(SERVICE_GENERIC)}


def message_from_code(code: str | None, *, locale: str) -> str | None:
    """The same as one sentence (for a page that shows a single message at the top), or None."""
    return " ".join(errors_from_code(code, locale=locale).values()) or None


def errors_from_url(params: Mapping[str, str], *, locale: str, prefixes: Mapping[str, str]) -> Errors:
    """The errors of a refused form the previous request redirected from (``?error=<code>&form=<name>``),
    keyed by the id of the field on this page: ``prefixes`` maps a form's name to its fields' id prefix
    (``{"hook": "hook-"}`` → ``hook-url``). A form not in ``prefixes`` gets its messages in the summary."""
    errors = errors_from_code(params.get("error"), locale=locale)
    prefix = prefixes.get(params.get("form") or "")
    if prefix is None:
        return {"_": " ".join(errors.values())} if errors else {}
    return {(k if k == "_" else f"{prefix}{k}"): v for k, v in errors.items()}
