"""What the negotiation pages share: labels of quote and invitation states, file sizes, the local-time inputs
of quote forms, turning the quotes service's output into what the templates show, and a downloaded file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

from babel import Locale
from babel.dates import format_datetime
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.core.errors import AppError
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.quotes import service as quotes
from marketplace.quotes.convert import version_out
from marketplace.quotes.schemas import CounterIn, DeclineIn
from marketplace.web import i18n, labels
from marketplace.web.core import N_, WebError, form_errors, locale_of, parse_money_input, viewer_tz
from marketplace.web.form_errors_service import error_code, message_from_code
from marketplace.web.instalment_views import milestone_inputs, milestones_payload

# Quote states, invitation states and the two parties, as people read them (the code stays in data-status).
QUOTE_LABELS = {
    "submitted": N_("quote received"), "countered": N_("counter-offer made"), "accepted": N_("quote accepted"),
    "declined": N_("quote declined"), "withdrawn": N_("quote withdrawn"), "expired": N_("quote expired"),
    "closed": N_("closed (another quote was accepted)"),
}  # fmt: skip
INVITATION_LABELS = {
    "invited": N_("waiting for a quote"), "quoted": N_("quote received"), "declined": N_("declined"),
    "lapsed": N_("no answer in time"), "withdrawn": N_("withdrawn"),
}  # fmt: skip
PARTIES = {"buyer": N_("buyer"), "supplier": N_("factory")}
# Times on these pages: to the minute (CLDR patterns).
MINUTE_PATTERNS = {"zh-CN": "yyyy年M月d日 HH:mm", "en": "d MMM yyyy, HH:mm"}


def page_helpers(request: Request) -> dict[str, Any]:
    """Template functions of the negotiation pages, in the page's language and the viewer's zone."""
    locale = locale_of(request)
    gettext = i18n.translations(locale).gettext
    tz = i18n.zone(viewer_tz(request))

    def local_input(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if value else ""

    def when(value: datetime | None, tz_name: str | None = None) -> str:
        """A time to the minute in the viewer's zone (or ``tz_name``), written the locale's way."""
        if value is None:
            return "–"
        zone = i18n.zone(tz_name) if tz_name else tz
        pattern = MINUTE_PATTERNS.get(locale, MINUTE_PATTERNS["en"])
        return format_datetime(value.astimezone(zone), pattern, locale=Locale.parse(i18n.babel_name(locale)))

    return {
        "when": when,
        # An unknown code reads "Other", never the code (marketplace.web.labels).
        "qlabel": lambda code: gettext(QUOTE_LABELS.get(code, labels.OTHER)),
        "ilabel": lambda code: gettext(INVITATION_LABELS.get(code, labels.OTHER)),
        "party": lambda code: gettext(PARTIES.get(code, labels.OTHER)),
        "filesize": filesize,
        "local_input": local_input,
        "milestone_inputs": milestone_inputs,  # the milestone rows of the quote and counter forms
    }


# Refusals of the negotiation rules, in the page's language (the API keeps its English detail).
REFUSALS = {
    "quote_not_open": N_("This quote or its request is no longer open."),
    "not_your_turn": N_("The other party has to answer the latest offer first."),
    "quote_exists": N_("You already have an open quote for this request and listing: counter or withdraw it."),
    "slot_unavailable": N_("That time is no longer free on the machine. Propose another time."),
    "capacity_unavailable": N_("The lab has no capacity left on that day. Propose another day."),
    "try_again": N_("Someone else is booking at the same moment. Please try again."),
    "payload_too_large": N_("The file is too large."),
    "unsupported_media_type": N_("This type of file is not accepted: upload a PDF, PNG, JPEG, STEP, IGES, STL or DXF."),
    "request_not_open": N_("The request is no longer open."),
    "nda_required": N_("Accept the NDA to see the drawings."),
    "email_unverified": N_("Please confirm your e-mail address first."),
}


def refusal(request: Request, exc: Exception) -> str:
    """What to show next to the form when a service refused: a known refusal translated, else the error's
    translated message (marketplace/web/form_errors.py), never the service's English."""
    code = getattr(exc, "code", None)
    if isinstance(exc, AppError) and code in REFUSALS:
        return i18n.translations(locale_of(request)).gettext(REFUSALS[code])
    return " ".join(form_errors(exc, locale=locale_of(request)).values())


def refusal_code(exc: Exception) -> str:
    """The refusal as a short code for a redirect's URL (never free text there); see :func:`refusal_text`."""
    code = getattr(exc, "code", None)
    if isinstance(exc, AppError) and code in REFUSALS:
        return str(code)
    return error_code(exc)


def refusal_text(request: Request, code: str | None) -> str | None:
    """The message of a :func:`refusal_code` from the URL, in the page's language (None without a code)."""
    if not code:
        return None
    if code in REFUSALS:
        return i18n.translations(locale_of(request)).gettext(REFUSALS[code])
    return message_from_code(code, locale=locale_of(request))


def url_refusal(request: Request) -> tuple[str | None, dict[str, str]]:
    """The refusal the previous request redirected with: ``(message for the top of the page, {quote id:
    message})``. A refused quote action names its quote (``&quote=<id>``): the message goes on that card."""
    message = refusal_text(request, request.query_params.get("error"))
    quote = request.query_params.get("quote") or ""
    try:
        quote_id = str(uuid.UUID(quote)) if quote and message else ""
    except ValueError:
        quote_id = ""
    return (None, {quote_id: message}) if quote_id and message else (message, {})


def filesize(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def local_datetime(request: Request, raw: object) -> str | None:
    """A ``datetime-local`` field (the viewer's zone) → an ISO time with its offset; empty → None."""
    text = str(raw or "").strip()
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=i18n.zone(viewer_tz(request)))
    return value.isoformat()


def terms_payload(request: Request, form: Any, *, kind: str, currency: str) -> dict[str, Any]:
    """The terms of an offer typed into a form: the amount in major units, then machine time or lab terms."""
    locale = locale_of(request)
    payload: dict[str, Any] = {"amount": parse_money_input(form.get("amount"), currency, field="amount", locale=locale)}
    if kind == "lab_service":
        payload["drop_off_date"] = str(form.get("drop_off_date") or "") or None
        payload["samples"] = str(form.get("samples") or "") or None
    else:
        payload["start"] = local_datetime(request, form.get("start"))
        payload["end"] = local_datetime(request, form.get("end"))
    note = str(form.get("note") or "").strip()
    if note:
        payload["note"] = note
    if form.get("valid_until"):
        payload["valid_until"] = local_datetime(request, form.get("valid_until"))
    payload["milestones"] = milestones_payload(form)  # optional payment milestones (issue #18 item 4)
    return {k: v for k, v in payload.items() if v is not None}


@dataclass(frozen=True)
class QuoteActionIn:
    quote_id: uuid.UUID
    action: str  # counter, accept, decline or withdraw


def _quote_action_in(quote_id: uuid.UUID, action: Line) -> QuoteActionIn:
    return QuoteActionIn(quote_id, action)


# The quote and the action a quote-action URL names (``.../quotes/{quote_id}/{action}``, either party's page).
QuoteActionPath = Annotated[QuoteActionIn, Depends(_quote_action_in)]


async def run_quote_action(
    request: Request, session: AsyncSession, user: Principal, *, current: Any, action: str, form: Any
) -> Any:
    """Counter, accept, decline or withdraw the quote ``current`` from a form (either party's page); returns the
    booking when accepted, else None. An unknown action is a 404; a refusal raises for the page to show."""
    quote_id = current.id
    if action == "counter":
        data = CounterIn.model_validate(terms_payload(request, form, kind=current.kind, currency=current.currency))
        await quotes.counter(session=session, principal=user, quote_id=quote_id, data=data)
    elif action == "accept":
        deps = request.app.state.booking_deps
        booking, _events, _role = await quotes.accept(session=session, principal=user, quote_id=quote_id, deps=deps)
        return booking
    elif action == "decline":
        reason = DeclineIn(reason=str(form.get("reason") or ""))
        await quotes.decline(session=session, principal=user, quote_id=quote_id, reason=reason.reason)
    elif action == "withdraw":
        await quotes.withdraw(session=session, principal=user, quote_id=quote_id)
    else:
        raise WebError(404, "not_found")
    return None


@dataclass
class VersionView:
    number: int
    by: str
    amount: int
    start: datetime | None
    end: datetime | None
    drop_off_date: date | None
    samples: int | None
    valid_until: datetime | None
    note: str | None
    created_at: datetime
    milestones: list[dict[str, Any]] | None = None  # the payment milestones offered (issue #18 item 4)


@dataclass
class QuoteView:
    id: uuid.UUID
    kind: str
    status: str
    currency: str
    amount: int
    latest_by: str
    valid_until: datetime | None
    title: str
    supplier_org_id: uuid.UUID
    supplier_name: str | None = None
    versions: list[VersionView] = field(default_factory=list)
    booking_url: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ("submitted", "countered")

    @property
    def latest(self) -> VersionView | None:
        return self.versions[-1] if self.versions else None

    @property
    def start(self) -> datetime | None:
        return self.latest.start if self.latest else None

    @property
    def end(self) -> datetime | None:
        return self.latest.end if self.latest else None

    @property
    def drop_off_date(self) -> date | None:
        return self.latest.drop_off_date if self.latest else None

    @property
    def samples(self) -> int | None:
        return self.latest.samples if self.latest else None


def quote_view(q: Any, *, titles: dict[uuid.UUID, str], names: dict[uuid.UUID, str] | None = None) -> QuoteView:
    """A quote as the quotes service returns it (its row and every version)."""
    quote = q.quote
    versions = sorted(
        (VersionView(by=o.party, **o.model_dump(exclude={"party"})) for o in map(version_out, q.versions)),
        key=lambda v: v.number,
    )
    return QuoteView(
        id=quote.id,
        kind=quote.kind,
        status=quote.status,
        currency=quote.currency,
        amount=versions[-1].amount if versions else 0,
        latest_by=quote.latest_by,
        valid_until=quote.valid_until,
        title=titles.get(quote.asset_id, ""),
        supplier_org_id=quote.supplier_org_id,
        supplier_name=(names or {}).get(quote.supplier_org_id),
        versions=versions,
    )
