"""Every code the system can produce reads as words in both languages; an unknown code reads "Other".

The codes are taken from where they are made: the enums and state machines, the tables' CHECK constraints,
the ledger's chart of accounts, the notification templates and webhook events, and (for audit actions,
journal kinds, notification kinds and the system's own reasons) the literals in the source that writes them.
A new code without a name fails here, before a person ever sees it raw."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from listings import moderation
from listings.models import AssetKind, AssetStatus, CertificateStatus, ListingFlag
from marketplace.bookings import transitions
from marketplace.bookings.models import BookingStatus
from marketplace.bookings.schemas import WEBHOOK_EVENTS
from marketplace.core.principal import API_SCOPES
from marketplace.messages import notices as _message_notices  # noqa: F401  (registers the messages room's templates)
from marketplace.notifications.models import WebhookDelivery
from marketplace.notifications.service import TEMPLATES
from marketplace.orgs.models import MemberRole, OrgRole, VerificationStatus
from marketplace.quotes.invitation_models import InvitationStatus
from marketplace.quotes.models import QuoteStatus
from marketplace.requests.models import PlanStatus, RequestStatus
from marketplace.web import i18n, labels
from payments import invoices, ledger
from payments.models import Invoice, StripeEvent
from payments.stripe_gateway import HOLDABLE

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "marketplace", ROOT / "listings", ROOT / "payments"]
CJK = re.compile(r"[\u4e00-\u9fff]")
# A PaymentIntent's statuses (Stripe API reference) and a dispute's.
STRIPE_INTENT = ("requires_payment_method", "requires_confirmation", "requires_action", "processing",
                 "requires_capture", "canceled", "succeeded")  # fmt: skip
STRIPE_DISPUTE = ("warning_needs_response", "warning_under_review", "warning_closed", "needs_response",
                  "under_review", "won", "lost")  # fmt: skip


def _source_files() -> Iterable[tuple[Path, str]]:
    for root in SOURCES:
        for path in root.rglob("*.py"):
            if "/web/" not in path.as_posix() and "/demo/" not in path.as_posix():
                yield path, path.read_text(encoding="utf-8")


def _literals(pattern: str) -> set[str]:
    found: set[str] = set()
    for _, text in _source_files():
        found.update(re.findall(pattern, text))
    return found


def _check_values(table: type[SQLModel], column: str) -> set[str]:
    """The values a ``column IN ('a', 'b')`` CHECK constraint of ``table`` allows."""
    for constraint in table.__table__.constraints:  # type: ignore[attr-defined]
        if isinstance(constraint, sa.CheckConstraint):
            text = str(constraint.sqltext)
            match = re.match(rf"{column} IN \(([^)]*)\)", text)
            if match:
                return set(re.findall(r"'([^']+)'", match.group(1)))
    raise AssertionError(f"no CHECK constraint on {table.__name__}.{column}")


def _returned_strings(function: Callable[..., Any]) -> set[str]:
    import inspect

    return set(re.findall(r'"([a-z_]+)"', inspect.getsource(function)))


def audit_actions() -> set[str]:
    """Every audit action written: literal ``action="x.y"`` and the f-string ones expanded."""
    plain = _literals(r'action="([a-z_]+\.[a-z_]+)"')
    plain |= _literals(r'"(org\.member_[a-z_]+)"')  # chosen in a conditional expression
    templated = _literals(r'action=f"([a-z_]+\.\{[^}]*\}[a-z_]*)"') | _literals(r'= f"(certificate\.\{[^}]*\})"')
    expansions = {
        "asset.{action}": {f"asset.{a}" for a in moderation.ADMIN_ACTIONS},
        "certificate.{data.decision}": {"certificate.verified", "certificate.rejected"},
        "org.{data.decision}": {"org.verified", "org.rejected"},
        "invoice.{'payment' if direction == 'in' else direction}": {
            "invoice.payment", "invoice.payout", "invoice.refund",
        },
    }  # fmt: skip
    unknown = templated - set(expansions)
    assert not unknown, f"audit actions built from an f-string this test does not expand yet: {unknown}"
    return plain | set().union(*expansions.values())


def notification_kinds() -> set[str]:
    # Every room's notification templates (they register on import); a template without a subject is a phrase
    # another notification borrows ("A buyer" in the message digest), not a kind of notification.
    kinds = {kind for (kind, _locale), (subject, _body) in TEMPLATES.items() if subject}
    return kinds | set(WEBHOOK_EVENTS) | _literals(r'kind="([a-z_]+\.[a-z_]+)"')


def journal_kinds() -> set[str]:
    found: set[str] = set()
    for path, text in _source_files():
        if path.parent.name == "payments":
            found.update(re.findall(r'kind="([a-z_]+)"', text))
    return found - {"machine", "lab_service"}


def system_reasons() -> set[str]:
    """Reasons the system writes on timelines and histories (not a person's words)."""
    found: set[str] = set()
    for path, text in _source_files():
        if path.parent.name in ("bookings", "billing", "quotes", "listings", "documents"):
            found.update(re.findall(r'reason="([a-z][a-z_ ,]+)"', text))
    return found


STATUSES: dict[str | None, set[str]] = {
    None: {*BookingStatus, *AssetStatus, *CertificateStatus, *VerificationStatus, *RequestStatus},
    "booking": set(BookingStatus),
    "listing": set(AssetStatus),
    "certificate": set(CertificateStatus),
    "verification": set(VerificationStatus),
    "request": set(RequestStatus),
    "plan": set(PlanStatus),
    "quote": set(QuoteStatus),
    "quote_invitation": set(InvitationStatus),
    "invitation": {"pending", "expired", "active"},
    "invoice": _check_values(Invoice, "status") | _returned_strings(invoices.invoice_status) | {"no_invoice"},
    "payment": set(STRIPE_INTENT) | set(HOLDABLE) | {"no_payment", "disputed"},
    "dispute": set(STRIPE_DISPUTE),
    "flag": _check_values(ListingFlag, "status"),
    "delivery": _check_values(WebhookDelivery, "status") | _check_values(StripeEvent, "status"),
    "role": {*OrgRole, *MemberRole},
    "actor": {"buyer", "supplier", "admin", "system"} | _literals(r'actor_kind="([a-z]+)"'),
    "asset_kind": set(AssetKind),
    "transfer": {"in", "payout", "refund"},
}


def _translated(name: str, locale: str) -> None:
    assert name not in ("Other", "其他", "–"), "no name"
    if locale == "zh-CN":
        assert CJK.search(name), f"no Chinese translation: {name!r}"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_status_role_and_actor_has_a_translated_label(locale: str) -> None:
    helpers = labels.helpers(i18n.translations(locale).gettext, locale)
    for kind, codes in STATUSES.items():
        for code in codes:
            name = helpers["label"](code, kind)
            _translated(name, locale)
            assert "_" not in name, (kind, code, name)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_ledger_account_audit_action_and_event_has_a_translated_name(locale: str) -> None:
    helpers = labels.helpers(i18n.translations(locale).gettext, locale)
    cases = [
        ("account_name", set(ledger.ACCOUNTS)),
        ("scope_name", set(API_SCOPES)),
        ("account_type", set(ledger.ACCOUNTS.values())),
        ("audit_action", audit_actions()),
        ("target_type", _literals(r'target_type="([a-z_]+)"') | _literals(r'target *= *\("([a-z_]+)"')),
        ("event_name", notification_kinds()),
        ("event_name", journal_kinds()),
        ("event_name", set(transitions.ACTIONS) | {"book"}),
        ("event_name", {action for _, action in moderation.TRANSITIONS} | {"create"}),
    ]
    for helper, codes in cases:
        assert codes, helper
        for code in codes:
            name = helpers[helper](code)
            _translated(name, locale)
            assert "_" not in name and not re.search(r"[a-z]\.[a-z]", name), (helper, code, name)


def test_the_scan_finds_the_codes_it_is_meant_to_find() -> None:
    # Guards the regular expressions above: were they to find nothing, the tests would pass vacuously.
    assert {"asset.approve", "org.webhook_deleted", "quote.accepted", "invoice.payout"} <= audit_actions()
    assert {"quote.invited", "request.cascaded", "booking.reminder"} <= notification_kinds()
    assert {"settlement", "payout_sent", "invoice_issued"} <= journal_kinds()
    assert {"deadline passed", "no dispute within the window"} <= system_reasons()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_systems_own_reasons_are_translated(locale: str) -> None:
    helpers = labels.helpers(i18n.translations(locale).gettext, locale)
    for reason in system_reasons():
        text = helpers["reason_text"](reason)
        if locale == "zh-CN":
            assert CJK.search(text), f"untranslated system reason {reason!r}"
    assert helpers["reason_text"]("The spindle was out of true") == "The spindle was out of true"


@pytest.mark.parametrize(("locale", "other"), [("en", "Other"), ("zh-CN", "其他")])
def test_an_unknown_code_reads_other_never_the_code(locale: str, other: str) -> None:
    helpers = labels.helpers(i18n.translations(locale).gettext, locale)
    for helper in ("label", "account_name", "audit_action", "event_name", "target_type", "scope_name"):
        assert helpers[helper]("made_up_code") == other
        assert helpers[helper](None) == "–"
    assert helpers["label"]("made_up_code", "invoice") == other


def test_a_code_with_two_meanings_reads_by_its_kind() -> None:
    helpers = labels.helpers(i18n.translations("zh-CN").gettext, "zh-CN")
    assert helpers["label"]("open", "invoice") == "未付款"
    assert helpers["label"]("open") == i18n.translations("zh-CN").gettext("open")
    assert helpers["label"]("held", "invoice") == helpers["label"]("held")  # falls back to the generic name


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Settlement · work accepted · commission 8%"),
        ("zh-CN", "结算 · 工作已验收 · 佣金 8%"),
    ],
)
def test_a_settlement_line_reads_as_words_with_the_commission_in_percent(locale: str, expected: str) -> None:
    text = labels.ledger_text(
        "settlement",
        "Settlement (settled), commission 800 bp",
        gettext=i18n.translations(locale).gettext,
        locale=locale,
    )
    assert text == expected
    assert "bp" not in text


def test_a_payout_line_keeps_its_bank_reference() -> None:
    gettext = i18n.translations("en").gettext
    assert labels.ledger_text("payout_sent", "Payout sent, ref HSBC-991", gettext=gettext, locale="en") == (
        "Payout sent · reference HSBC-991"
    )
    assert labels.percent(1250, "en") == "12.5%"


def test_old_imports_of_the_labels_keep_working() -> None:
    from marketplace.web.core import LABELS

    assert LABELS["in_progress"] == "in progress"
