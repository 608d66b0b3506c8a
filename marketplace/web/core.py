"""Web plumbing: session-cookie sign-in, CSRF tokens, locale and time-zone choice, template rendering, and
turning service errors into messages next to the form fields."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from marketplace.auth import sessions
from marketplace.auth.deps import _principal_for_user
from marketplace.bookings import service as bookings
from marketplace.core.db import SessionDep
from marketplace.core.principal import Principal
from marketplace.core.text import Line
from marketplace.orgs.models import Organisation
from marketplace.orgs.repository import OrgRepository
from marketplace.web import form_errors as web_form_errors
from marketplace.web import i18n, labels
from payments import money

TEMPLATES = Path(__file__).parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, extensions=["jinja2.ext.i18n"]
)
_env.policies["ext.i18n.trimmed"] = True
templates = Jinja2Templates(env=_env)


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site only. ``//host`` and ``/\\host`` (browsers read a
    backslash as a slash) would leave it, as would anything with a scheme; those go home instead."""
    if not target.startswith("/") or target[1:2] in ("/", "\\") or any(c in target for c in "\t\r\n"):
        return "/"
    return target


class WebError(Exception):
    """Rendered as a friendly page (never a stack trace)."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message
        super().__init__(message)


def N_(message: str) -> str:
    return message


class FieldError(ValueError):
    """A form field a person filled in wrongly; ``message`` is already in the page's language."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# Messages of payments.money.InvalidAmount reasons, shown next to a money field.
_MONEY_ERRORS = {
    "not_a_number": N_("Enter an amount in %(currency)s, such as %(example)s."),
    "too_many_decimals": N_("%(currency)s amounts have at most %(digits)s decimal places."),
    "no_decimals": N_("%(currency)s amounts have no decimal places."),
    "negative": N_("The amount cannot be negative."),
    "too_large": N_("The amount is too large."),
    "unknown_currency": N_("Use the ISO 4217 code of a currency in use, such as CNY, EUR, USD or JPY."),
}


def parse_money_input(raw: object, currency: str, *, field: str, locale: str) -> int | None:
    """A money field typed in major units (yuan, euros, yen) → integer minor units of ``currency``, exactly
    (Decimal, the currency's own exponent); an empty field is None. A bad amount or currency raises
    :class:`FieldError` with a message in ``locale`` (on the currency field when the currency is wrong)."""
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return money.parse(text, currency)
    except money.InvalidAmount as exc:
        gettext = i18n.translations(locale).gettext
        if exc.reason == "unknown_currency":
            raise FieldError("currency", gettext(_MONEY_ERRORS["unknown_currency"])) from None
        cur = currency.strip().upper()
        digits = money.exponent(cur)
        reason = "no_decimals" if exc.reason == "too_many_decimals" and digits == 0 else exc.reason
        message = gettext(_MONEY_ERRORS.get(reason, _MONEY_ERRORS["not_a_number"]))
        raise FieldError(field, message % {"currency": cur, "example": money.example(cur), "digits": digits}) from None


# Status codes and actor kinds shown to people live in marketplace.web.labels (re-exported for old imports).
LABELS = labels.LABELS


# The language switch in the header sets this browser's choice in a cookie of its own (it outlives signing in
# and out); the account's saved language is edited on the account page (marketplace/web/account_profile.py).
BROWSER_LOCALE_COOKIE = "lang"


def locale_of(request: Request) -> str:
    """The page's language: this browser's choice (the header switch) > the signed-in account's saved
    language > the browser's Accept-Language > the default (docs/web.md, "Language")."""
    chosen = request.cookies.get(BROWSER_LOCALE_COOKIE)
    if chosen in i18n.LOCALES:
        return str(chosen)
    # The account's setting as read with the principal on this request (``optional_user``); before that has
    # run (a malformed query string), the copy taken at sign-in.
    account = getattr(request.state, "account_locale", None)
    if account is None and "session" in request.scope:
        account = request.session.get("locale")
    if account in i18n.LOCALES:
        return str(account)
    return i18n.negotiate(request.headers.get("accept-language"))


def viewer_tz(request: Request) -> str:
    """The browser reports its zone in a cookie (set by app.js, percent-encoded: ``Asia%2FShanghai``); Chinese
    pages default to China time."""
    tz = unquote(request.cookies.get("tz") or "").strip()
    if tz:
        if i18n.zone(tz).key == tz:  # an invalid cookie falls back instead of breaking the page
            return tz
    return "Asia/Shanghai" if locale_of(request) == "zh-CN" else "UTC"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Every state-changing form carries the session's CSRF token (HTMX sends it as a header)."""
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    # Bytes: compare_digest raises TypeError on str with non-ASCII characters (a forged form may send any).
    if not expected or not sent or not secrets.compare_digest(str(expected).encode(), sent.encode()):
        raise WebError(403, "csrf")


CsrfChecked = Annotated[None, Depends(check_csrf)]


async def optional_user(request: Request, session: SessionDep) -> Principal | None:
    user_id = request.session.get("user_id")
    if not user_id:
        return None
    principal: Principal | None = None
    try:
        uid, sid = uuid.UUID(str(user_id)), uuid.UUID(str(request.session.get("sid")))
    except ValueError:  # a malformed cookie, or one from before web sessions were stored: sign in again
        pass
    else:
        # The cookie names a stored web session: signing out (here, everywhere, a password reset) ends it.
        if await sessions.web_session_is_live(session, user_id=uid, family_id=sid):
            principal = await _principal_for_user(
                session, uid, admins_need_two_factor=request.app.state.settings.environment == "production"
            )
    if principal is None:
        request.session.clear()
    else:
        request.state.account_locale = principal.locale  # read by locale_of (the account's saved language)
    return principal


WebUser = Annotated[Principal | None, Depends(optional_user)]


async def required_user(request: Request, user: WebUser) -> Principal:
    if user is None:
        raise WebError(401, "login")
    return user


SignedIn = Annotated[Principal, Depends(required_user)]


@dataclass(frozen=True)
class BookingActionForm:
    """A web button on a booking (buyer's or factory's side): which organisation acts, on which booking, what
    it does, the submitted form and the booking rules' dependencies."""

    org_id: uuid.UUID
    booking_id: uuid.UUID
    action: str
    form: FormData
    deps: Any

    def field(self, name: str) -> str | None:
        """A form field as text, ``None`` when empty."""
        return str(self.form.get(name) or "") or None

    async def perform(self, session: AsyncSession, user: Principal) -> None:
        """Run the action through the booking rules (the same service the API calls), with the form's reason
        and, for a lab's completion, its result reference."""
        await bookings.act(
            session=session,
            principal=user,
            booking_id=self.booking_id,
            action=self.action,
            deps=self.deps,
            reason=self.field("reason"),
            result_reference=self.field("result_reference"),
        )


async def booking_action_form(
    request: Request, org_id: uuid.UUID, booking_id: uuid.UUID, action: Line
) -> BookingActionForm:
    form = await request.form()
    return BookingActionForm(org_id, booking_id, action, form, request.app.state.booking_deps)


BookingAction = Annotated[BookingActionForm, Depends(booking_action_form)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    user: Principal | None = None,
) -> HTMLResponse:
    locale = locale_of(request)
    translations = i18n.translations(locale)
    templates.env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    tz = viewer_tz(request)
    ctx: dict[str, Any] = {
        "request": request,
        "locale": locale,
        "lang": "zh-Hans" if locale == "zh-CN" else "en",
        "user": user,
        "csrf": csrf_token(request),
        "viewer_tz": tz,
        "money": lambda amount, currency: i18n.money(amount, currency, locale),
        # The value of a money input in major units with the currency's decimals (1250 CNY → "12.50").
        "money_input": money.input_value,
        "when": lambda value, tz_name=None: i18n.when(value, locale, tz_name or tz),
        # A time belonging to a site (slots, availability): in the site's zone, the zone named.
        "site_when": lambda value, site_tz: i18n.site_when(value, locale, site_tz),
        "zone_name": lambda tz_name=None: i18n.zone_name(tz_name or tz, locale),
        "viewer_zone": i18n.zone_name(tz, locale),
        "tname": lambda code: _taxonomy_name(code, locale),
        # label(), account_name(), audit_action(), event_name(): never a raw code (labels.py).
        **labels.helpers(translations.gettext, locale),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, template, ctx, status_code=status)


def _taxonomy_name(code: str | None, locale: str) -> str:
    from listings.taxonomy import get_taxonomy

    if not code:
        return ""
    tax = get_taxonomy()
    if tax.is_process(code):
        return tax.name(code, locale)
    if tax.is_material(code):
        m = tax.materials[code]
        return m.name_zh if locale == "zh-CN" else m.name_en
    return code


def field_errors(
    exc: Exception, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Map a service or validation error to ``{form field: message}`` in ``locale`` (``_`` for the form as a
    whole): translated by error type and code (marketplace/web/form_errors.py), never raw Pydantic text or a
    field name; ``aliases`` maps a schema field to the form field showing it (``budget_max`` → ``budget``)."""
    if isinstance(exc, FieldError):
        return {exc.field: exc.message}
    return web_form_errors.errors_for(exc, locale=locale, currency=currency, aliases=aliases)


def form_errors(
    exc: Exception, *, locale: str, currency: str | None = None, aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``field_errors``; a bare ValueError (a malformed value the handler did not attribute to a field) reads
    as "This value is not valid." for the form as a whole, never as Python's own text."""
    return field_errors(exc, locale=locale, currency=currency, aliases=aliases)


def parse_number(raw: object, *, field: str, locale: str, integer: bool = False) -> float | None:
    """An optional numeric form field: empty is None ("not given", never a parse error); anything that is not
    a (whole) number raises :class:`FieldError` with a message in ``locale``."""
    text = str(raw or "").strip().replace(",", ".") if raw is not None else ""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")) or (integer and not value.is_integer()):
        message = web_form_errors.WHOLE_NUMBER if integer else web_form_errors.NUMBER
        raise FieldError(field, i18n.translations(locale).gettext(message))
    return value


async def member_org(session: AsyncSession, user: Principal, org_id: uuid.UUID, *, role: str) -> Organisation:
    """The organisation a page acts for: its members (or a platform admin) only, and only in ``role``
    ("buyer" or "supplier"); anyone else gets a 404, a member of an organisation without the role a 403."""
    org = await OrgRepository(session).get(org_id)
    if org is None or not (user.is_member(org_id) or user.is_platform_admin):
        raise WebError(404, "not_found")
    if role not in org.roles:
        raise WebError(403, f"not_{role}")
    return org


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def hx_redirect(request: Request, url: str) -> Response:
    """Redirect that works for plain form posts and for HTMX requests alike."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return redirect(url)
