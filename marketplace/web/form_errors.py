"""Form errors in the page's language: a Pydantic validation error is translated by its ``type`` and ``ctx``,
a message of our own validators by what it says, and a service error (``AppError``/``ListingsError``/...) by its
``code``. Never a field name, never raw Pydantic or service English, money in major units with the currency;
anything unknown reads "This value is not valid." (or, for a service error, a generic sentence).

``errors_for(exc, locale=...)`` returns ``{field: message}`` with ``_`` for the form as a whole; the form
templates show each message beside its field (``f-<field>``) and all of them in a summary at the top.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from marketplace.web import i18n

Errors = dict[str, str]


def N_(message: str) -> str:
    return message


GENERIC = N_("This value is not valid.")
REQUIRED = N_("This field is required.")
NUMBER = N_("Enter a number.")
WHOLE_NUMBER = N_("Enter a whole number.")
DATE = N_("Enter a date (YYYY-MM-DD).")
DATETIME = N_("Enter a date and time.")
TIME = N_("Enter a time (HH:MM).")
CHOICE = N_("Choose one of the options.")
EMAIL = N_("Enter a valid e-mail address.")
CURRENCY = N_("Use the ISO 4217 code of a currency in use, such as CNY, EUR, USD or JPY.")
END_AFTER_START = N_("The end must be after the start.")
POSITIVE = N_("Enter a number greater than zero.")
BOTH_COORDINATES = N_("Enter both latitude and longitude, or neither.")
SERVICE_GENERIC = N_("This could not be done. Please check the entries and try again.")

# Schema fields that hold money in minor units: their limits are shown as amounts in major units.
MONEY_FIELDS = frozenset(
    {"budget_max", "budget", "hourly_rate", "setup_fee", "price_per_sample", "amount", "refund_amount", "price"}
)

_NUMBER_TYPES = {"float_parsing", "float_type", "decimal_parsing", "decimal_type", "finite_number", "number_type"}
_INT_TYPES = {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}
_DATE_TYPES = {"date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact"}
_DATETIME_TYPES = {"datetime_parsing", "datetime_type", "datetime_from_date_parsing", "timezone_aware"}
_TIME_TYPES = {"time_parsing", "time_type"}
_URL_TYPES = {"url_parsing", "url_type", "url_scheme", "url_syntax_violation", "url_too_long"}
_UUID_TYPES = {"uuid_parsing", "uuid_type", "uuid_version"}

# Messages of a type that need no context.
_SIMPLE = {
    "missing": REQUIRED,
    "string_unicode": N_("Enter valid text."),
    "string_type": N_("Enter text."),
    "enum": CHOICE,
    "literal_error": CHOICE,
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "date_past": N_("Enter a date in the past."),
    "date_future": N_("Enter a date in the future."),
    "datetime_past": N_("Enter a time in the past."),
    "datetime_future": N_("Enter a time in the future."),
    **dict.fromkeys(_NUMBER_TYPES, NUMBER),
    **dict.fromkeys(_INT_TYPES, WHOLE_NUMBER),
    **dict.fromkeys(_DATE_TYPES, DATE),
    **dict.fromkeys(_DATETIME_TYPES, DATETIME),
    **dict.fromkeys(_TIME_TYPES, TIME),
    **dict.fromkeys(_URL_TYPES, N_("Enter a valid web address, such as https://example.com.")),
    **dict.fromkeys(_UUID_TYPES, CHOICE),
}

# The text rule of marketplace/core/text.py (the listings package declares the same patterns).
_LINE = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
_TEXT = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
_PATTERNS = {
    _LINE: N_("Use a single line of text without control characters."),
    _TEXT: N_("Remove the control characters from this text."),
}

# Messages our own validators raise (``ValueError`` in a schema), matched by their start: (start, field, message).
# ``field`` names where the message belongs when Pydantic reports it for the model as a whole ("" = where it is).
_VALUE_ERRORS: list[tuple[str, str, str]] = [
    ("end must be after start", "end", END_AFTER_START),
    ("to must be after from", "to", END_AFTER_START),
    ("horizon_end must be after horizon_start", "horizon_end", END_AFTER_START),
    ("deadline must be after earliest_start", "deadline", N_("The deadline must be after the earliest start.")),
    (
        "region_code: chinese sites need",
        "region_code",
        N_("Chinese sites need the 6-digit administrative division code (GB/T 2260), such as 320500."),
    ),
    (
        "region_code: give the iso 3166-2",
        "region_code",
        N_("Give the ISO 3166-2 code of the region in the site's country, such as DE-BY."),
    ),
    (
        "invalid unified social credit code",
        "uscc",
        N_("This is not a valid Unified Social Credit Code: 18 characters with a correct check character."),
    ),
    ("must be an iso 3166-1 alpha-2 code", "country", N_("Enter a two-letter country code, such as CN or DE.")),
    ("unknown iana time zone", "timezone", N_("Enter a time zone such as Asia/Shanghai or Europe/Berlin.")),
    ("valid_until must not be before valid_from", "valid_until", N_("The end of validity cannot be before its start.")),
    (
        "partial_refund_hours must not exceed full_refund_hours",
        "partial_refund_hours",
        N_("The partial-refund notice cannot be longer than the full-refund notice."),
    ),
    ("process_code: unknown process", "process_code", N_("Choose a process from the list.")),
    ("unknown process code", "process_codes", N_("Choose a process from the list.")),
    ("material: unknown material", "material", N_("Choose a material from the list.")),
    ("unknown material codes", "materials", N_("Choose a material from the list.")),
    (
        "slot_minutes must divide a day",
        "slot_minutes",
        N_("The slot length must divide a day, such as 15, 30 or 60 minutes."),
    ),
    (
        "min_booking_minutes must be a multiple of slot_minutes",
        "min_booking_minutes",
        N_("The minimum booking must be a multiple of the slot length."),
    ),
    ("duration_minutes: a machine request", "duration_minutes", N_("Enter the machine time you need.")),
    ("samples: a lab request", "samples", N_("Enter the number of samples.")),
    (
        "max_distance_km needs a location",
        "max_distance_km",
        N_("A maximum distance needs your latitude and longitude."),
    ),
    ("latitude and longitude go together", "latitude", BOTH_COORDINATES),
    ("give either site_id or latitude", "latitude", BOTH_COORDINATES),
    ("start and end go together", "start", N_("Enter both the start and the end.")),
    ("drop_off_date and samples go together", "drop_off_date", N_("Enter both the drop-off day and the samples.")),
    ("give either start and end", "start", N_("Enter the time (machine) or the drop-off day (lab service).")),
    ("must be an upper-case iso 4217 code", "currency", CURRENCY),
    ("unknown currency", "currency", CURRENCY),
    ("unknown scopes", "scopes", N_("Choose permissions from the list.")),
    ("must not be blank", "", REQUIRED),
    ("value is not a valid email address", "", EMAIL),
    ("an email address must have", "", EMAIL),
    ("the email address is not valid", "", EMAIL),
    ("invalid time", "", TIME),
    ("every exception must lie inside", "exceptions", N_("Every exception must lie inside the period.")),
]
_PROCESS_KIND = N_("This process does not fit this kind of listing.")
_PROCESS_GROUP = N_("Choose a specific process, not a group.")


def _t(locale: str) -> Callable[[str], str]:
    return i18n.translations(locale).gettext


def _number(value: Any, locale: str) -> str:
    from babel.numbers import format_decimal

    try:
        return str(format_decimal(value, locale=i18n.babel_name(locale)))
    except (TypeError, ValueError, ArithmeticError):
        return str(value)


def _limit(value: Any, *, field: str, locale: str, currency: str | None) -> str:
    """A numeric limit as the page shows it: an amount in major units with the currency for money fields."""
    if field in MONEY_FIELDS and currency and isinstance(value, int | float):
        try:
            return i18n.money(int(value), currency, locale)
        except (ValueError, KeyError, ArithmeticError):
            pass
    return _number(value, locale)


def known_value_error(text: str) -> tuple[str, str] | None:
    """``(field, message id)`` of a message one of our validators raised, or None if it is not one we know."""
    low = text.strip().lower().removeprefix("value error, ")
    for start, field, message in _VALUE_ERRORS:
        if low.startswith(start):
            return field, message
    if "is a process group" in low:
        return "process_codes", _PROCESS_GROUP
    if " process and cannot be listed as " in low or re.search(r" is a \w+ process, not a ", low):
        return "process_code", _PROCESS_KIND
    return None


def translate(err: Mapping[str, Any], *, locale: str, currency: str | None = None) -> str:
    """One Pydantic error (an item of ``ValidationError.errors()``) as a sentence in ``locale``."""
    gettext = _t(locale)
    kind = str(err.get("type", ""))
    ctx = dict(err.get("ctx") or {})
    loc = [str(p) for p in err.get("loc", ())]
    field = loc[-1] if loc else ""
    if err.get("input", "") is None and (kind.endswith("_type") or kind in ("finite_number", "enum", "literal_error")):
        return gettext(REQUIRED)  # an empty field the form passed on as None
    if kind in _SIMPLE:
        return gettext(_SIMPLE[kind])
    if kind == "string_too_short":
        minimum = int(ctx.get("min_length", 1))
        if minimum <= 1:
            return gettext(REQUIRED)
        return gettext(N_("Enter at least %(count)s characters.")) % {"count": minimum}
    if kind == "string_too_long":
        return gettext(N_("Enter at most %(count)s characters.")) % {"count": ctx.get("max_length", "")}
    if kind == "too_short":
        minimum = int(ctx.get("min_length", 1))
        if minimum <= 1:
            return gettext(N_("Choose at least one."))
        return gettext(N_("Choose at least %(count)s.")) % {"count": minimum}
    if kind == "too_long":
        return gettext(N_("Choose at most %(count)s.")) % {"count": ctx.get("max_length", "")}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _bound(kind, ctx, field=field, locale=locale, currency=currency)
    if kind == "multiple_of":
        return gettext(N_("Enter a multiple of %(step)s.")) % {"step": _number(ctx.get("multiple_of"), locale)}
    if kind == "string_pattern_mismatch":
        return gettext(_PATTERNS.get(str(ctx.get("pattern")), N_("This value has the wrong format.")))
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error") or err.get("msg") or "")
        known = known_value_error(text)
        return gettext(known[1] if known else GENERIC)
    return gettext(GENERIC)


def _bound(kind: str, ctx: Mapping[str, Any], *, field: str, locale: str, currency: str | None) -> str:
    gettext = _t(locale)
    key = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}[kind]
    value = ctx.get(key)
    money_field = field in MONEY_FIELDS
    if money_field and key == "ge" and value == 0:
        return gettext(N_("The amount cannot be negative."))
    if money_field and key == "gt" and value == 0:
        return gettext(N_("Enter an amount greater than zero."))
    limit = _limit(value, field=field, locale=locale, currency=currency)
    messages = {
        "gt": N_("Enter a value greater than %(limit)s."),
        "ge": N_("Enter a value of at least %(limit)s."),
        "lt": N_("Enter a value less than %(limit)s."),
        "le": N_("Enter a value of at most %(limit)s."),
    }
    return gettext(messages[key]) % {"limit": limit}


# Parts of a location that name no form field: the request body, discriminated-union tags.
_SKIP = {"body", "machine", "lab_service"}


def _field_of(err: Mapping[str, Any], aliases: Mapping[str, str]) -> str:
    # Validator wrappers ("function-after[...]") name no field either.
    loc = [str(p) for p in err.get("loc", ()) if str(p) not in _SKIP and not str(p).startswith("function-")]
    if not loc:
        if err.get("type") == "value_error":
            known = known_value_error(str((err.get("ctx") or {}).get("error") or err.get("msg") or ""))
            if known and known[0]:
                return aliases.get(known[0], known[0])
        return "_"
    dotted = ".".join(loc)
    for candidate in (dotted, loc[0], loc[-1]):
        if candidate in aliases:
            return aliases[candidate]
    return loc[0]


def validation_errors(
    exc: ValidationError, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> Errors:
    """``{form field: message}`` of a Pydantic error; the first message of a field wins. ``aliases`` maps a
    schema field (or dotted location, "org.name") to the form field that holds it ("org_name")."""
    out: Errors = {}
    for err in exc.errors():
        out.setdefault(_field_of(err, aliases or {}), translate(err, locale=locale, currency=currency))
    return out


class FormInvalid(ValueError):
    """Several fields of a form are wrong; ``errors`` maps each to its message, already in the page's language."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(", ".join(self.errors))


def validated(
    model: Any,
    payload: Any,
    *,
    errors: Mapping[str, str],
    locale: str,
    currency: str | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Any:
    """``model.model_validate(payload)`` (or a TypeAdapter's ``validate_python``), with the errors the form
    handler found itself (a malformed number, left out of ``payload``): raises :class:`FormInvalid` with both,
    the handler's winning on the same field, so that every wrong field is named at once."""
    validate = getattr(model, "model_validate", None) or model.validate_python
    try:
        data = validate(payload)
    except ValidationError as exc:
        found = validation_errors(exc, locale=locale, currency=currency, aliases=aliases)
        raise FormInvalid({**found, **errors}) from None
    if errors:
        raise FormInvalid(errors)
    return data


def errors_for(
    exc: Exception, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> Errors:
    """Any error a form handler catches, as ``{form field: message}`` in ``locale``."""
    from marketplace.web.form_errors_service import service_errors  # it builds on this module

    if isinstance(exc, FormInvalid):
        return dict(exc.errors)
    if isinstance(exc, ValidationError):
        return validation_errors(exc, locale=locale, currency=currency, aliases=aliases)
    return service_errors(exc, locale=locale, currency=currency, aliases=aliases)


__all__ = ["GENERIC", "N_", "errors_for", "known_value_error", "translate", "validation_errors"]


def placed(errors: Mapping[str, str], fields: Iterable[str]) -> Errors:
    """``errors`` with every key the form has no field for moved to ``_`` (the summary at the top), so that no
    message is lost and none links to a field that is not there."""
    known = set(fields)
    out: Errors = {}
    for name, message in errors.items():
        key = name if name in known else "_"
        out.setdefault(key, message)
    return out
