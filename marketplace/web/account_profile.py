"""The account page: the person's name, e-mail address (read-only) and saved language, with links to the
password, sessions and two-factor pages.

The saved language is the account's: e-mails use it, and so does any browser that has made no choice of
its own. The language switch in the header only sets this browser's choice (``POST /lang``, a cookie); the
order is browser choice > account setting > Accept-Language > default (``core.locale_of``, docs/web.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from marketplace.auth import service as auth_service
from marketplace.auth.models import User
from marketplace.auth.repository import UserRepository
from marketplace.auth.schemas import MePatch
from marketplace.core.db import SessionDep
from marketplace.web import i18n
from marketplace.web.core import (
    BROWSER_LOCALE_COOKIE,
    N_,
    CsrfChecked,
    SignedIn,
    WebError,
    locale_of,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)

LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}

_ERRORS = {
    "full_name_missing": N_("Enter your name."),
    "full_name_too_long": N_("Your name can have at most 200 characters."),
    "full_name_invalid": N_("Your name cannot contain control characters or line breaks."),
    "locale": N_("Choose one of the languages offered."),
}


async def _me(session: SessionDep, user: SignedIn) -> User:
    if user.user_id is None:  # pragma: no cover - a web session is always a person
        raise WebError(403, "forbidden")
    me = await UserRepository(session).get(user.user_id)
    if me is None:  # pragma: no cover - the principal was just loaded from this row
        raise WebError(404, "not_found")
    return me


def _page(request: Request, *, me: User, form: dict[str, str], errors: dict[str, str]) -> dict[str, object]:
    choice = request.cookies.get(BROWSER_LOCALE_COOKIE)
    return {
        "me": me,
        "form": form,
        "errors": errors,
        "languages": LANGUAGE_NAMES,
        "browser_choice": choice if choice in i18n.LOCALES else None,  # None: this browser follows the account
        "saved": request.query_params.get("saved") == "1",
    }


@router.get("/account", response_class=HTMLResponse)
async def profile_page(request: Request, session: SessionDep, user: SignedIn) -> HTMLResponse:
    me = await _me(session, user)
    form = {"full_name": me.full_name, "locale": me.locale}
    return render(request, "account/profile.html", _page(request, me=me, form=form, errors={}), user=user)


def _validation_errors(exc: ValidationError, locale: str) -> dict[str, str]:
    """Each refused field's message in the page's language (never Pydantic's English)."""
    gettext = i18n.translations(locale).gettext
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else "_"
        if field == "full_name":
            kind = {"string_too_short": "full_name_missing", "string_too_long": "full_name_too_long"}
            key = kind.get(err["type"], "full_name_invalid")
        else:
            field, key = "locale", "locale"
        errors.setdefault(field, gettext(_ERRORS[key]))
    return errors


@router.post("/account", response_class=HTMLResponse)
async def save_profile(request: Request, session: SessionDep, user: SignedIn, _csrf: CsrfChecked) -> Response:
    """Save the name and the account's language (nothing is saved when either is refused)."""
    me = await _me(session, user)
    raw = await request.form()
    form = {name: str(raw.get(name) or "") for name in ("full_name", "locale")}
    try:
        data = MePatch.model_validate({"full_name": form["full_name"].strip(), "locale": form["locale"]})
    except ValidationError as exc:
        errors = _validation_errors(exc, locale_of(request))
        context = _page(request, me=me, form=form, errors=errors)
        return render(request, "account/profile.html", context, status=422, user=user)
    if data.full_name is not None:
        me.full_name = data.full_name
    if data.locale is not None:
        await auth_service.set_locale(session, user_id=me.id, locale=data.locale)
        request.session["locale"] = data.locale  # the copy locale_of falls back on before the principal is read
    await session.flush()
    return redirect("/account?saved=1")


@router.post("/account/browser-language")
async def follow_account_language(request: Request, user: SignedIn, _csrf: CsrfChecked) -> Response:
    """Forget this browser's own choice: its pages then follow the account's saved language again."""
    response = redirect("/account")
    response.delete_cookie(BROWSER_LOCALE_COOKIE)
    return response
