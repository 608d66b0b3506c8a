"""Errors of the listings domain. The app shell renders any of them as
``{"error": code, "detail": ..., "request_id": ...}`` with ``status_code``."""

from __future__ import annotations

from payments.errors import DomainError


# No docstring: a bare ``ListingsError()`` reads as its code, ``bad_request``.
class ListingsError(DomainError):
    pass


class BadRequest(ListingsError):
    """Malformed request."""


class NotFound(ListingsError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Forbidden(ListingsError):
    """You are not allowed to do this."""

    status_code = 403
    code = "forbidden"


class EmailUnverified(Forbidden):
    """Confirm your e-mail address first: open the link in the e-mail we sent you (or ask for a new one)."""

    code = "email_unverified"


class OrganisationNotVerified(Forbidden):
    """Only verified organisations can submit listings for review."""

    code = "organisation_not_verified"


class Invalid(ListingsError):
    """The request is invalid."""

    status_code = 422
    code = "validation_error"


class InvalidTransition(ListingsError):
    status_code = 409
    code = "invalid_transition"

    def __init__(self, current: str, action: str) -> None:
        super().__init__(f"Cannot {action} a listing that is {current}.", extra={"current_status": current})


class OwnListing(Forbidden):
    """An organisation cannot report its own listing."""

    code = "own_listing"


class AlreadyFlagged(ListingsError):
    """You have already reported this listing; an administrator will review it."""

    status_code = 409
    code = "already_flagged"
