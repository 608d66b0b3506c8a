"""Every table model, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from marketplace.audit import AuditLog
from marketplace.auth.models import ApiKey, User
from marketplace.idempotency import IdempotencyRecord
from marketplace.orgs.models import Membership, Organisation, OrgInvitation

metadata = SQLModel.metadata

__all__ = [
    "ApiKey",
    "AuditLog",
    "IdempotencyRecord",
    "Membership",
    "OrgInvitation",
    "Organisation",
    "User",
    "metadata",
]
