from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from listings.schemas import check_country
from marketplace.core.principal import API_SCOPES
from marketplace.core.text import Line, Text
from marketplace.orgs.uscc import normalise_uscc, validate_uscc

Role = Literal["supplier", "buyer", "programme"]


def _check_uscc(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    v = normalise_uscc(v)
    reason = validate_uscc(v)
    if reason:
        raise ValueError(f"invalid Unified Social Credit Code: {reason}")
    return v


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=1, max_length=200)
    roles: list[Role] = Field(
        min_length=1, description="supplier, buyer or both; or programme (a voucher programme's operator), alone"
    )
    country: Line = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    legal_name: Line | None = Field(default=None, max_length=300)
    uscc: Line | None = Field(
        default=None, max_length=40, description="统一社会信用代码 (18 characters), Chinese companies"
    )

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return check_country(v)

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        if "programme" in v and len(set(v)) > 1:  # a funder does not trade on the market it subsidises
            raise ValueError("a programme organisation has no other role")
        return sorted(set(v))

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str | None) -> str | None:
        return _check_uscc(v)


class OrgPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    legal_name: str | None
    country: str
    uscc: str | None
    roles: list[str]
    verification_status: str
    verification_reason: str | None
    created_at: datetime


class VerificationDocument(BaseModel):
    name: Line = Field(min_length=1, max_length=200, description="e.g. business licence (营业执照)")
    reference: Line = Field(min_length=1, max_length=1000, description="URL or document-store reference")


class VerificationSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_name: Line = Field(min_length=1, max_length=300)
    uscc: Line | None = Field(default=None, max_length=40)
    licence_document_id: uuid.UUID | None = Field(
        default=None,
        description="The business licence (营业执照): a PDF, PNG or JPEG uploaded to /documents for this organisation",
    )
    documents: list[VerificationDocument] = Field(default_factory=list, max_length=20)
    contact_phone: Line | None = Field(default=None, max_length=40)
    notes: Text | None = Field(default=None, max_length=2000)

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str | None) -> str | None:
        return _check_uscc(v)

    @model_validator(mode="after")
    def _evidence(self) -> VerificationSubmit:
        if self.licence_document_id is None and not self.documents:
            raise ValueError("licence_document_id: attach the business licence (or list documents)")
        return self


class VerificationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["verified", "rejected"]
    reason: Text = Field(min_length=1, max_length=1000)


class MemberInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Literal["owner", "member"] = "member"


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: str
    status: Literal["active"]
    created_at: datetime


class MemberRoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["owner", "member"]


class InvitationOut(BaseModel):
    """The same shape whether or not the e-mail has an account: it never names or identifies a user."""

    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str | None = Field(default=None, description="Only in the invitee's own list")
    email: str
    role: str
    status: Literal["pending", "expired"]
    created_at: datetime
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Line = Field(min_length=16, max_length=200, description="The token from the invitation e-mail's link")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=1, max_length=100)
    scopes: list[Line] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _known_scopes(self) -> ApiKeyCreate:
        unknown = sorted(set(self.scopes) - API_SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; valid scopes: {sorted(API_SCOPES)}")
        self.scopes = sorted(set(self.scopes))
        return self


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown once. Send as `Authorization: Bearer` or `X-API-Key`.")


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_user_id: uuid.UUID | None
    actor_api_key_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None
    request_id: str | None
    created_at: datetime
