"""What people read instead of the codes the system stores: statuses, ledger accounts, audit actions, events.

One dictionary per kind of code, every name marked with ``N_`` (translated in the catalogs). Templates get
four helpers from :func:`helpers` (installed by ``core.render``):

- ``label(code, kind=None)``: a status, role or actor kind (``kind`` picks the meaning when a code means
  different things, e.g. an invoice's ``open`` is "unpaid");
- ``account_name(code)``: a ledger account;
- ``audit_action(code)``: an audit-log action;
- ``event_name(code)``: a notification, webhook, booking-timeline or journal event.

A code without a name is never shown raw: it reads "Other" (and is logged, so it gets a name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from babel import Locale
from babel.numbers import format_percent

logger = logging.getLogger(__name__)


def N_(message: str) -> str:
    return message


# -- statuses ------------------------------------------------------------------------------------------------

BOOKING_STATUS = {
    "held": N_("held"), "requested": N_("requested"), "confirmed": N_("confirmed"), "in_progress": N_("in progress"),
    "completed": N_("completed"), "settled": N_("settled"), "cancelled": N_("cancelled"), "declined": N_("declined"),
    "expired": N_("expired"), "disputed": N_("disputed"), "resolved": N_("resolved"),
}  # fmt: skip
LISTING_STATUS = {
    "draft": N_("draft"), "pending_review": N_("pending review"), "published": N_("published"),
    "rejected": N_("rejected"), "suspended": N_("suspended"), "archived": N_("archived"),
}  # fmt: skip
# An organisation's verification and a certificate's review.
VERIFICATION_STATUS = {
    "unverified": N_("unverified"), "pending": N_("pending"), "verified": N_("verified"), "rejected": N_("rejected"),
}  # fmt: skip
REQUEST_STATUS = {
    "open": N_("open"), "booked": N_("booked"), "closed": N_("request closed"), "cancelled": N_("cancelled"),
    "expired": N_("expired"),
}  # fmt: skip
PLAN_STATUS = {
    "queued": N_("queued"), "running": N_("being calculated"), "done": N_("done"), "failed": N_("failed"),
}  # fmt: skip
QUOTE_STATUS = {
    "submitted": N_("quote received"), "countered": N_("counter-offer made"), "accepted": N_("quote accepted"),
    "declined": N_("quote declined"), "withdrawn": N_("quote withdrawn"), "expired": N_("quote expired"),
    "closed": N_("closed (another quote was accepted)"),
}  # fmt: skip
# A factory invited to quote on a request.
QUOTE_INVITATION_STATUS = {
    "invited": N_("waiting for a quote"), "quoted": N_("quote received"), "declined": N_("declined"),
    "lapsed": N_("no answer in time"), "withdrawn": N_("withdrawn"),
}  # fmt: skip
# A person invited to join an organisation, and a membership.
MEMBER_INVITATION_STATUS = {
    "pending": N_("awaiting acceptance"), "expired": N_("expired"), "accepted": N_("accepted"),
    "revoked": N_("revoked"),
    "active": N_("active"),
}  # fmt: skip
# Invoice rows, and what the booking page says about an invoice (payments.invoices.invoice_status).
INVOICE_STATUS = {
    "open": N_("unpaid"), "paid": N_("paid"), "void": N_("void"), "closed": N_("invoice closed"),
    "no_invoice": N_("no invoice yet"), "awaiting_payment": N_("awaiting payment"),
    "partially_paid": N_("partially paid"), "overdue": N_("overdue"), "refund_due": N_("refund due"),
    "payout_due": N_("payout due"), "settled": N_("settled"),
}  # fmt: skip
# A card payment (a Stripe PaymentIntent as last seen) and what the booking page says about it.
PAYMENT_STATUS = {
    "no_payment": N_("no payment yet"), "requires_payment_method": N_("awaiting card details"),
    "requires_confirmation": N_("awaiting confirmation"), "requires_action": N_("awaiting card authentication"),
    "processing": N_("processing"), "requires_capture": N_("card hold in place"),
    "canceled": N_("card hold released"), "succeeded": N_("paid by card"), "disputed": N_("disputed"),
}  # fmt: skip
# Bank transfers recorded against an invoice (marketplace.billing.service.Direction).
TRANSFER_DIRECTION = {"in": N_("payment received"), "payout": N_("payout"), "refund": N_("refund")}
# A card dispute at the card network (Stripe's dispute statuses).
DISPUTE_STATUS = {
    "warning_needs_response": N_("inquiry: response needed"), "warning_under_review": N_("inquiry under review"),
    "warning_closed": N_("inquiry closed"), "needs_response": N_("response needed"),
    "under_review": N_("under review"), "won": N_("won"), "lost": N_("lost"),
}  # fmt: skip
FLAG_STATUS = {"open": N_("open"), "resolved": N_("resolved")}
# Webhook deliveries and received Stripe events.
DELIVERY_STATUS = {
    "pending": N_("waiting to be sent"), "delivered": N_("delivered"), "failed": N_("failed"),
    "processed": N_("processed"), "ignored": N_("ignored"),
}  # fmt: skip
ROLES = {
    "buyer": N_("buyer"), "supplier": N_("supplier"), "programme": N_("voucher programme"), "owner": N_("owner"),
    "member": N_("member"),
}  # fmt: skip
ACTORS = {"buyer": N_("buyer"), "supplier": N_("supplier"), "admin": N_("admin"), "system": N_("system"),
          "platform": N_("platform")}  # fmt: skip
ASSET_KINDS = {"machine": N_("machine"), "lab_service": N_("lab service")}
# Make + verify (issue #17): an inspection of a produced lot, its verdict, and whether the lab's accreditation
# covered the test.
INSPECTION_STATUS = {
    "planned": N_("inspection planned"), "shipped": N_("samples shipped"), "received": N_("samples received"),
    "reported": N_("report submitted"), "waived": N_("inspection waived"), "cancelled": N_("inspection cancelled"),
}  # fmt: skip
VERDICTS = {"accepted": N_("lot accepted"), "rejected": N_("lot rejected")}
ACCREDITATION = {
    "covered": N_("covered by the lab's accreditation"), "no_certificate": N_("no valid accreditation certificate"),
    "not_valid_on_test_date": N_("accreditation not valid on the test day"),
    "out_of_scope": N_("test standard outside the accreditation's scope"),
}  # fmt: skip

STATUS_KINDS: dict[str, dict[str, str]] = {
    "booking": BOOKING_STATUS,
    "listing": LISTING_STATUS,
    "verification": VERIFICATION_STATUS,
    "certificate": VERIFICATION_STATUS,
    "request": REQUEST_STATUS,
    "plan": PLAN_STATUS,
    "quote": QUOTE_STATUS,
    "quote_invitation": QUOTE_INVITATION_STATUS,
    "invitation": MEMBER_INVITATION_STATUS,
    "invoice": INVOICE_STATUS,
    "payment": PAYMENT_STATUS,
    "transfer": TRANSFER_DIRECTION,
    "dispute": DISPUTE_STATUS,
    "flag": FLAG_STATUS,
    "delivery": DELIVERY_STATUS,
    "role": ROLES,
    "actor": ACTORS,
    "asset_kind": ASSET_KINDS,
    "inspection": INSPECTION_STATUS,
    "verdict": VERDICTS,
    "accreditation": ACCREDITATION,
}

# ``label(code)`` without a kind: the first kind naming the code wins (bookings, listings, ... in this order,
# so "open" reads as a request's "open", not an invoice's "unpaid").
LABELS: dict[str, str] = {}
for _names in (
    BOOKING_STATUS, LISTING_STATUS, VERIFICATION_STATUS, REQUEST_STATUS, ACTORS, ROLES, FLAG_STATUS, PLAN_STATUS,
    MEMBER_INVITATION_STATUS, DELIVERY_STATUS, INVOICE_STATUS, PAYMENT_STATUS, DISPUTE_STATUS, ASSET_KINDS,
    INSPECTION_STATUS, VERDICTS, ACCREDITATION,
):  # fmt: skip
    for _code, _name in _names.items():
        LABELS.setdefault(_code, _name)

# What an API key may do (marketplace.core.principal.API_SCOPES); the scope itself is shown beside it in
# <code> for the developers who use it.
API_SCOPES = {
    "orgs:read": N_("Read the organisation"), "listings:read": N_("Read listings"),
    "listings:write": N_("Change listings"), "availability:write": N_("Change availability"),
    "requests:read": N_("Read requests"), "requests:write": N_("Post and change requests"),
    "bookings:read": N_("Read bookings"), "bookings:write": N_("Book and act on bookings"),
    "payments:read": N_("Read payments and statements"), "analytics:read": N_("Read statistics"),
    "webhooks:write": N_("Manage webhooks"), "documents:read": N_("Download documents"),
    "documents:write": N_("Upload documents"),
}  # fmt: skip

# -- ledger accounts (payments.ledger) ----------------------------------------------------------------------

ACCOUNT_NAMES = {
    "clearing_bank": N_("Bank clearing account"),
    "clearing_stripe": N_("Card payments clearing (Stripe)"),
    "buyer_receivable": N_("Buyer receivables"),
    "customer_funds_held": N_("Customer funds held"),
    "supplier_payable": N_("Payable to factories"),
    "refunds_payable": N_("Refunds payable"),
    "commission_revenue": N_("Commission revenue"),
    "dispute_losses": N_("Dispute losses"),
    "programme_receivable": N_("Voucher programme receivables"),
}
ACCOUNT_TYPES = {"asset": N_("asset"), "liability": N_("liability"), "income": N_("income"), "expense": N_("expense")}

# -- audit-log actions (every ``audit.record(action=...)``) --------------------------------------------------

AUDIT_ACTIONS = {
    "asset.approve": N_("Listing approved"),
    "asset.reject": N_("Listing rejected"),
    "asset.suspend": N_("Listing suspended"),
    "asset.reinstate": N_("Listing reinstated"),
    "certificate.verified": N_("Certificate verified"),
    "certificate.rejected": N_("Certificate rejected"),
    "flag.resolved": N_("Listing report resolved"),
    "booking.resolve": N_("Dispute resolved"),
    "booking.release": N_("Remaining time released"),
    "booking.rework": N_("Rework ordered"),
    "quote.submitted": N_("Quote submitted"),
    "quote.countered": N_("Counter-offer made"),
    "quote.accepted": N_("Quote accepted"),
    "quote.declined": N_("Quote declined"),
    "quote.withdrawn": N_("Quote withdrawn"),
    "quote.expired": N_("Quote expired"),
    "quote.closed": N_("Quote closed (another was accepted)"),
    "request.invited": N_("Factory invited to quote"),
    "request.invitation_declined": N_("Invitation to quote declined"),
    "org.member_invited": N_("Member invited"),
    "org.invitation_revoked": N_("Invitation revoked"),
    "org.invitation_accepted": N_("Invitation accepted"),
    "org.member_removed": N_("Member removed"),
    "org.member_role_changed": N_("Member's role changed"),
    "org.verification_submitted": N_("Verification submitted"),
    "org.verified": N_("Organisation verified"),
    "org.rejected": N_("Organisation verification rejected"),
    "org.commission": N_("Commission rate changed"),
    "org.webhook_created": N_("Webhook added"),
    "org.webhook_deleted": N_("Webhook deleted"),
    "invoice.payment": N_("Bank payment recorded"),
    "invoice.payout": N_("Payout recorded"),
    "invoice.refund": N_("Refund recorded"),
    "document.deleted": N_("Document deleted"),
    "observatory.rollup": N_("Market statistics recalculated"),
    "observer.grant": N_("Observer access granted"),
    "observer.revoke": N_("Observer access revoked"),
    "programme.create": N_("Voucher programme created"),
    "programme.update": N_("Voucher programme changed"),
    "voucher.grant": N_("Voucher granted"),
    "voucher.apply": N_("Voucher applied for"),
    "voucher.approve": N_("Voucher application approved"),
    "voucher.reject": N_("Voucher application rejected"),
    "voucher.revoke": N_("Voucher revoked"),
    "voucher_claim.build": N_("Voucher claim built"),
    "voucher_claim.approve_line": N_("Voucher claim line approved"),
    "voucher_claim.reject_line": N_("Voucher claim line rejected"),
    "voucher_claim.pay": N_("Voucher claim payment recorded"),
}

# What an audit record is about (``audit.record(target_type=...)``).
TARGET_TYPES = {
    "asset": N_("listing"), "certificate": N_("certificate"), "listing_flag": N_("listing report"),
    "quote": N_("quote"), "request": N_("request"), "organisation": N_("organisation"), "invoice": N_("invoice"),
    "booking": N_("booking"), "document": N_("document"), "observatory_month": N_("market statistics"),
    "observer_grant": N_("observer access"), "user": N_("user"), "webhook": N_("webhook"),
    "voucher_programme": N_("voucher programme"), "voucher": N_("voucher"), "voucher_claim": N_("voucher claim"),
}  # fmt: skip

# -- events: notifications, webhooks, booking timeline, listing history, journals ----------------------------

NOTIFICATION_KINDS = {
    "booking.*": N_("All booking events"),
    "booking.held": N_("Booking held"),
    "booking.requested": N_("Booking requested"),
    "booking.confirmed": N_("Booking confirmed"),
    "booking.declined": N_("Booking declined"),
    "booking.expired": N_("Booking expired"),
    "booking.in_progress": N_("Work started"),
    "booking.completed": N_("Work completed"),
    "booking.settled": N_("Booking settled"),
    "booking.cancelled": N_("Booking cancelled"),
    "booking.disputed": N_("Booking disputed"),
    "booking.resolved": N_("Dispute resolved"),
    "booking.released": N_("Remaining time released"),
    "booking.reminder": N_("Booking reminder"),
    "request.matched": N_("New matching request"),
    "request.cascaded": N_("Request sent to more factories"),
    "request.cascade_exhausted": N_("No more factories to ask"),
    "capacity.published": N_("New matching capacity"),
    "quote.submitted": N_("Quote received"),
    "quote.countered": N_("Counter-offer received"),
    "quote.accepted": N_("Quote accepted"),
    "quote.declined": N_("Quote declined"),
    "quote.withdrawn": N_("Quote withdrawn"),
    "quote.expired": N_("Quote expired"),
    "quote.closed": N_("Quote closed (another was accepted)"),
    "quote.invited": N_("Invitation to quote"),
    "quote.invitation_declined": N_("Invitation to quote declined"),
    "org.invitation": N_("Invitation to join an organisation"),
    "message.received": N_("New message"),
    "message.received_buyer": N_("New message from a buyer"),
    "message.received_platform": N_("New message from the platform"),
    "messages.digest": N_("Unread messages"),
    "messages.digest.request": N_("Unread messages about a request"),
    "messages.digest.booking": N_("Unread messages about a booking"),
    "auth.verify_email": N_("E-mail address confirmation"),
    "auth.reset_password": N_("Password reset"),
    # Make + verify (issue #17).
    "inspection.planned": N_("Inspection planned"),
    "inspection.shipped": N_("Samples shipped to the lab"),
    "inspection.received": N_("Samples received by the lab"),
    "inspection.extended": N_("Inspection due date extended"),
    "inspection.overdue": N_("Inspection results overdue"),
    "inspection.reported": N_("Inspection report submitted"),
    "inspection.accepted": N_("Lot accepted by the inspection"),
    "inspection.rejected": N_("Lot rejected by the inspection"),
    "inspection.not_gating": N_("Inspection report without the required accreditation"),
    "inspection.cancelled": N_("Inspection cancelled"),
    "inspection.waived": N_("Inspection waived"),
    "quality_document.supplied.coc": N_("Certificate of conformance supplied"),
    "quality_document.supplied.fai": N_("First-article inspection report supplied"),
    "quality_document.supplied.material_cert": N_("Material certificate supplied"),
}
# What happened to a booking (bookings.transitions actions, and "book" when it was placed).
BOOKING_ACTIONS = {
    "book": N_("Booked"), "pay": N_("Paid"), "accept": N_("Accepted"), "decline": N_("Declined"),
    "expire": N_("Expired"), "cancel": N_("Cancelled"), "start": N_("Work started"), "complete": N_("Completed"),
    "confirm": N_("Confirmed by the buyer"), "dispute": N_("Disputed"), "resolve": N_("Dispute resolved"),
    "release": N_("Remaining time released"), "rework": N_("Rework ordered"),
    "milestone": N_("Milestone reached and invoiced"),
}  # fmt: skip
# What happened to a listing (listings.lifecycle and moderation).
LISTING_ACTIONS = {
    "create": N_("Created"), "submit": N_("Submitted for review"), "archive": N_("Archived"),
    "approve": N_("Approved"), "reject": N_("Rejected"), "suspend": N_("Suspended"), "reinstate": N_("Reinstated"),
    "material_edit": N_("Changed; back to review"),
}  # fmt: skip
# Ledger journals (payments.invoices, payments.stripe_gateway).
JOURNAL_KINDS = {
    "invoice_issued": N_("Invoice issued"), "payment_received": N_("Payment received"),
    "card_captured": N_("Card payment captured"), "settlement": N_("Settlement"), "credit_note": N_("Credit note"),
    "refund_sent": N_("Refund sent"), "payout_sent": N_("Payout sent"), "payout_reversed": N_("Payout reversed"),
    "dispute_lost": N_("Card dispute lost"),
    "voucher_claim_paid": N_("Voucher share paid by the programme"),
    "voucher_rebilled": N_("Voucher share billed to the buyer"),
}  # fmt: skip
EVENT_NAMES: dict[str, str] = {**LISTING_ACTIONS, **BOOKING_ACTIONS, **JOURNAL_KINDS, **NOTIFICATION_KINDS}

# Reasons the system itself writes on a booking's timeline or a listing's history (people's own reasons are
# shown as they wrote them).
SYSTEM_REASONS = {
    "deadline passed": N_("the deadline passed"),
    "start time reached": N_("the start time was reached"),
    "no dispute within the window": N_("no dispute within the dispute period"),
    "card hold in place": N_("the card hold is in place"),
    "agreed in the quote": N_("agreed in the quote"),
    "valid_until passed": N_("the quote's validity ended"),
    "site location changed": N_("the site's location changed"),
    "capability, price or location changed": N_("capability, price or location changed"),
    "retention period over": N_("the retention period is over"),
    "demo data": N_("demo data"),
    "resolved": N_("resolved"),
    "inspection report submitted": N_("the inspection report was submitted"),
    "lot accepted by the inspection report": N_("the inspection report accepted the lot"),
    "lot rejected by the inspection report": N_("the inspection report rejected the lot"),
}
# Why a booking's money was settled (the "(reason)" of a settlement journal's memo, payments.invoices).
SETTLEMENT_REASONS = {
    "settled": N_("work accepted"), "cancelled": N_("booking cancelled"), "released": N_("booking released"),
    "dispute resolved": N_("dispute resolved"),
}  # fmt: skip

OTHER = N_("Other")
_COMMISSION = re.compile(r"commission (\d+) bp")
_SETTLEMENT_REASON = re.compile(r"^Settlement \(([^)]*)\)")
_REFERENCE = re.compile(r", ref (.+)$")
_CREDIT_NOTE = re.compile(r"^Credit note (\S+)")


def _lookup(names: dict[str, str], code: object, gettext: Callable[[str], str], *, what: str) -> str:
    if code is None or code == "":
        return "–"
    key = str(code)
    if key in names:
        return gettext(names[key])
    logger.warning("no %s name for code %r; showing 'Other'", what, key)
    return gettext(OTHER)


def percent(basis_points: int, locale: str) -> str:
    """A rate in basis points written as a percentage the locale's way: 800 → "8%", 1250 → "12.5%"."""
    return format_percent(basis_points / 10000, "#,##0.##%", locale=Locale.parse(locale.replace("-", "_")))


def ledger_text(kind: str, memo: str | None, *, gettext: Callable[[str], str], locale: str) -> str:
    """A ledger line in words: the journal's event, with what its memo adds for people (why a settlement
    happened and the commission as a percentage, a bank reference, a credit note's number); the memo's own
    English and internal ids never reach the page."""
    text = _lookup(JOURNAL_KINDS, kind, gettext, what="journal")
    memo = memo or ""
    details: list[str] = []
    if kind == "settlement":
        reason = _SETTLEMENT_REASON.search(memo)
        if reason and reason.group(1) in SETTLEMENT_REASONS:
            details.append(gettext(SETTLEMENT_REASONS[reason.group(1)]))
        rate = _COMMISSION.search(memo)
        if rate:
            details.append(gettext(N_("commission %(rate)s")) % {"rate": percent(int(rate.group(1)), locale)})
    if kind == "credit_note" and (number := _CREDIT_NOTE.search(memo)):
        details.append(number.group(1))
    if reference := _REFERENCE.search(memo):
        details.append(gettext(N_("reference %(ref)s")) % {"ref": reference.group(1)})
    return " · ".join([text, *details])


def reason_text(reason: str | None, gettext: Callable[[str], str]) -> str:
    """A reason on a timeline: the system's own reasons translated, a person's shown as written."""
    if not reason:
        return ""
    return gettext(SYSTEM_REASONS[reason]) if reason in SYSTEM_REASONS else reason


def helpers(gettext: Callable[[str], str], locale: str = "en") -> dict[str, Any]:
    """The template helpers in one language (``gettext`` of the page's catalog)."""

    def label(code: object, kind: str | None = None) -> str:
        names = STATUS_KINDS.get(kind, LABELS) if kind else LABELS
        if kind and code not in names and code in LABELS:
            names = LABELS
        return _lookup(names, code, gettext, what="status")

    return {
        "label": label,
        "account_name": lambda code: _lookup(ACCOUNT_NAMES, code, gettext, what="account"),
        "account_type": lambda code: _lookup(ACCOUNT_TYPES, code, gettext, what="account type"),
        "audit_action": lambda code: _lookup(AUDIT_ACTIONS, code, gettext, what="audit action"),
        "event_name": lambda code: _lookup(EVENT_NAMES, code, gettext, what="event"),
        "scope_name": lambda code: _lookup(API_SCOPES, code, gettext, what="API scope"),
        "target_type": lambda code: _lookup(TARGET_TYPES, code, gettext, what="audit target"),
        "ledger_text": lambda kind, memo=None: ledger_text(kind, memo, gettext=gettext, locale=locale),
        "reason_text": lambda reason: reason_text(reason, gettext),
        "percent": lambda basis_points: percent(basis_points, locale),
    }
