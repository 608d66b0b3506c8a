"""The make + verify forms read into the API's shapes: the buyer's inspection order (characteristics in rows,
lot size, level, AQL) and the lab's measurements (a grid for small samples, pasted CSV for any size). Each
malformed value is a message beside its field, in the page's language; nothing here touches the database."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from marketplace.inspection import sampling
from marketplace.inspection.schemas import UNITS
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n
from marketplace.web.core import N_

CHAR_FIELDS = ("name", "nominal", "lower_tol", "upper_tol", "unit")
DEFAULT_ROWS = 3
MAX_ROWS = 50
GRID_LIMIT = 50  # a grid of inputs up to this sample size; CSV always
LEVELS = ("II", "I", "III", "S-1", "S-2", "S-3", "S-4")
AQLS = tuple(str(v) for v in sampling.AQL_VALUES)
DEFAULT_AQL = "1.0"

LOWER_TOL = N_("The lower tolerance is zero or negative (it is added to the nominal).")
UPPER_TOL = N_("The upper tolerance is zero or positive (it is added to the nominal).")
DUPLICATE = N_("Each characteristic needs its own name.")
NO_CHARACTERISTIC = N_("Describe at least one characteristic to measure.")
CHOOSE_LAB = N_("Choose a lab service.")
CSV_LINE = N_("Line %(line)s: give a serial and %(count)s values, separated by commas.")
CSV_VALUE = N_("Line %(line)s: %(value)s is not a number.")
UNITS_COUNT = N_("Enter the measurements of exactly %(count)s parts (one line per part).")
MEASURE = N_("Enter the measured value.")


def row_count(form: Any) -> int:
    """How many characteristic rows the order form shows (``rows``, plus one after "add a row")."""
    try:
        rows = int(str(form.get("rows") or DEFAULT_ROWS))
    except ValueError:
        rows = DEFAULT_ROWS
    if form.get("add_row"):
        rows += 1
    return max(1, min(MAX_ROWS, rows))


def order_aliases(rows: int) -> dict[str, str]:
    """Where the order form shows each field of InspectionCreate."""
    aliases = {
        "lab_asset_id": "lab_asset_id",
        "lot_size": "lot_size",
        "transit_days": "transit_days",
        "sampling.aql": "aql",
        "sampling.inspection_level": "inspection_level",
        "sampling": "aql",
        "characteristics": "c0_name",
        "require_accreditation": "require_accreditation",
    }
    for i in range(rows):
        aliases[f"characteristics.{i}"] = f"c{i}_lower_tol"
        for name in CHAR_FIELDS:
            aliases[f"characteristics.{i}.{name}"] = f"c{i}_{name}"
    return aliases


def order_fields(rows: int) -> set[str]:
    return set(order_aliases(rows).values())


def _decimal(raw: object) -> Decimal | None:
    text = str(raw or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


def order_payload(form: Any, *, locale: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The order form → InspectionCreate's shape, and the fields found wrong on the way (in ``locale``).
    A row left entirely empty is skipped."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    rows = row_count(form)
    characteristics: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(rows):
        raw = {name: str(form.get(f"c{i}_{name}") or "").strip() for name in CHAR_FIELDS}
        if not any(raw[name] for name in ("name", "nominal", "lower_tol", "upper_tol")):
            continue
        row: dict[str, Any] = {"name": raw["name"], "unit": raw["unit"] or "mm"}
        for name in ("nominal", "lower_tol", "upper_tol"):
            try:
                value = _decimal(raw[name])
            except ValueError:
                errors[f"c{i}_{name}"] = gettext(web_form_errors.NUMBER)
                continue
            if value is None:
                errors[f"c{i}_{name}"] = gettext(web_form_errors.REQUIRED)
            row[name] = str(value) if value is not None else None
        if isinstance(row.get("lower_tol"), str) and Decimal(row["lower_tol"]) > 0:
            errors[f"c{i}_lower_tol"] = gettext(LOWER_TOL)
        if isinstance(row.get("upper_tol"), str) and Decimal(row["upper_tol"]) < 0:
            errors[f"c{i}_upper_tol"] = gettext(UPPER_TOL)
        if not raw["name"]:
            errors[f"c{i}_name"] = gettext(web_form_errors.REQUIRED)
        elif raw["name"].casefold() in seen:
            errors[f"c{i}_name"] = gettext(DUPLICATE)
        seen.add(raw["name"].casefold())
        characteristics.append(row)  # the payload's rows skip empty form rows: see remap_row_errors
    if not seen:
        errors["c0_name"] = gettext(NO_CHARACTERISTIC)
    payload: dict[str, Any] = {
        "lab_asset_id": str(form.get("lab_asset_id") or "").strip() or None,
        "characteristics": characteristics,
        "sampling": {
            "standard": "ISO 2859-1",
            "inspection_level": str(form.get("inspection_level") or "II"),
            "aql": str(form.get("aql") or DEFAULT_AQL),
        },
        "require_accreditation": bool(form.get("require_accreditation")),
    }
    if payload["lab_asset_id"] is None:
        errors["lab_asset_id"] = gettext(CHOOSE_LAB)
    for name in ("lot_size", "transit_days"):
        text = str(form.get(name) or "").strip()
        if not text:
            if name == "lot_size":
                errors[name] = gettext(web_form_errors.REQUIRED)
            continue
        if not text.isdigit():
            errors[name] = gettext(web_form_errors.WHOLE_NUMBER)
            continue
        payload[name] = int(text)
    return payload, errors


def chars_in_form_order(form: Any) -> list[int]:
    """The form rows that hold a characteristic, in order (the payload's index → the form's row)."""
    rows = row_count(form)
    return [
        i
        for i in range(rows)
        if any(str(form.get(f"c{i}_{n}") or "").strip() for n in ("name", "nominal", "lower_tol", "upper_tol"))
    ]


def remap_row_errors(errors: dict[str, str], form: Any, *, found: dict[str, str]) -> dict[str, str]:
    """Errors the schema placed on payload rows (``c1_unit`` of the second *filled* row) → the form's rows,
    merged with the errors the form found itself (``found``, which win). A row whose tolerances the form
    already refused loses the schema's generic sentence about the same tolerances."""
    order = chars_in_form_order(form)
    out: dict[str, str] = {}
    for key, message in errors.items():
        head, sep, rest = key.partition("_")
        if sep and head.startswith("c") and head[1:].isdigit() and int(head[1:]) < len(order):
            row = order[int(head[1:])]
            key = f"c{row}_{rest}"
            if rest in ("lower_tol", "upper_tol") and (f"c{row}_lower_tol" in found or f"c{row}_upper_tol" in found):
                continue
        out.setdefault(key, message)
    return {**out, **found}


# -- the lab's measurements -------------------------------------------------------------------------------


def report_units(
    form: Any, *, characteristics: list[dict[str, Any]], sample_size: int, locale: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The measured parts: from the pasted CSV when there is any (``serial,value1,value2,...``, one line per
    part, in the plan's units), else from the grid (``s<u>`` serial, ``m<u>_<c>`` values)."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    units: list[dict[str, Any]] = []
    text = str(form.get("csv") or "").strip()

    def unit_of(serial: str, values: list[str]) -> dict[str, Any]:
        return {
            "serial": serial or None,
            "measurements": [
                {"characteristic": c["name"], "value": v, "unit": c["unit"]}
                for c, v in zip(characteristics, values, strict=True)
            ],
        }

    if text:
        for line_no, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = [c.strip() for c in cells]
            if not any(cells):
                continue
            if len(cells) != len(characteristics) + 1:
                errors.setdefault("csv", gettext(CSV_LINE) % {"line": line_no, "count": len(characteristics)})
                break
            values = [v.replace(",", ".") for v in cells[1:]]
            bad = next((v for v in values if _number_or_none(v) is None), None)
            if bad is not None:
                errors.setdefault("csv", gettext(CSV_VALUE) % {"line": line_no, "value": bad or "–"})
                break
            units.append(unit_of(cells[0], values))
        if not errors and len(units) != sample_size:
            errors["csv"] = gettext(UNITS_COUNT) % {"count": sample_size}
        return units, errors
    if sample_size > GRID_LIMIT:
        errors["csv"] = gettext(UNITS_COUNT) % {"count": sample_size}
        return units, errors
    for u in range(sample_size):
        typed: list[str] = []
        for c in range(len(characteristics)):
            raw = str(form.get(f"m{u}_{c}") or "").strip().replace(",", ".")
            if not raw:
                errors.setdefault(f"m{u}_{c}", gettext(MEASURE))
            elif _number_or_none(raw) is None:
                errors.setdefault(f"m{u}_{c}", gettext(web_form_errors.NUMBER))
            typed.append(raw)
        units.append(unit_of(str(form.get(f"s{u}") or "").strip(), typed))
    return units, errors


def _number_or_none(text: str) -> Decimal | None:
    try:
        return _decimal(text)
    except ValueError:
        return None


def plan_words(plan: Any, *, locale: str) -> str:
    """The sampling plan in one sentence: what the lab measures and when the lot passes."""
    gettext = i18n.translations(locale).gettext
    return gettext(
        N_(
            "Lot of %(lot)s parts, inspection level %(level)s, AQL %(aql)s: code letter %(letter)s. The lab measures "
            "%(n)s parts; the lot is accepted with at most %(ac)s nonconforming parts (Ac) and rejected with "
            "%(re)s or more (Re)."
        )
    ) % {
        "lot": plan.lot_size,
        "level": plan.inspection_level,
        "aql": plan.aql,
        "letter": plan.code_letter,
        "n": plan.sample_size,
        "ac": plan.accept_number,
        "re": plan.reject_number,
    }


__all__ = ["AQLS", "GRID_LIMIT", "LEVELS", "UNITS", "order_payload", "plan_words", "report_units"]
