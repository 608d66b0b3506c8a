"""Errors of the payments domain. The app shell renders any of them as
``{"error": code, "detail": ..., "request_id": ...}`` with ``status_code``."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """The base of every error rendered as ``{"error": code, ...}``: the shell's ``AppError`` and the domain
    packages' errors. It lives here because payments imports no other package, so listings (which already
    imports payments) and the shell may all derive from it."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.code
        self.extra = extra or {}
        super().__init__(self.detail)


class PaymentsError(DomainError):
    code = "payments_error"


class NotFound(PaymentsError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Invalid(PaymentsError):
    """The request is invalid."""

    status_code = 422
    code = "validation_error"


class PaymentConflict(PaymentsError):
    """The payment is not in a state that allows this."""

    status_code = 409
    code = "payment_conflict"


class Overpayment(PaymentConflict):
    """The amount exceeds what is outstanding."""

    code = "amount_exceeds_outstanding"


class NotAuthorised(PaymentConflict):
    """The card payment is not authorised yet: the buyer has not completed the card hold."""

    code = "payment_not_authorised"


class SupplierNotOnboarded(PaymentConflict):
    """The supplier cannot take card payments yet (Stripe onboarding incomplete)."""

    code = "supplier_not_onboarded"


class UnbalancedJournal(PaymentsError):
    """A journal does not sum to zero per currency (a programming error, never a user error)."""

    status_code = 500
    code = "unbalanced_journal"


class GatewayError(PaymentsError):
    """The payment provider refused or failed the request."""

    status_code = 502
    code = "payment_provider_error"


class CardDeclined(PaymentsError):
    """The card was declined."""

    status_code = 402
    code = "card_declined"
