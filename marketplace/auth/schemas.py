from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from marketplace.core.text import Line
from marketplace.orgs.schemas import OrgCreate, OrgPublic

Locale = Literal["zh-CN", "en"]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=10, max_length=256)
    full_name: Line = Field(min_length=1, max_length=200)
    locale: Locale = "en"
    org: OrgCreate | None = Field(
        default=None, description="The organisation to create; omit to join through an invitation."
    )

    @field_validator("full_name")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be blank")
        return v


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    locale: str
    is_platform_admin: bool
    created_at: datetime
    email_verified_at: datetime | None = None


# The token of an e-mail link: urlsafe base64 of 32 random bytes (43 characters).
EmailLinkToken = Annotated[Line, Field(min_length=20, max_length=200)]
NewPassword = Annotated[str, Field(min_length=10, max_length=256, json_schema_extra={"format": "password"})]


class VerifyEmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailLinkToken


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class PasswordResetConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailLinkToken
    new_password: NewPassword


class ChangePasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=256, json_schema_extra={"format": "password"})
    new_password: NewPassword


class AcceptedOut(BaseModel):
    """The same answer whether or not anything was sent, so it reveals nothing about accounts."""

    detail: str


class RegisterOut(BaseModel):
    user: UserPublic
    org: OrgPublic | None


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RefreshIn(BaseModel):
    refresh_token: Line = Field(min_length=10, max_length=4096)


class MembershipOut(BaseModel):
    org: OrgPublic
    role: str


class MeOut(BaseModel):
    user: UserPublic
    memberships: list[MembershipOut]


class MePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: Line | None = Field(default=None, min_length=1, max_length=200)
    locale: Locale | None = None


class SessionOut(BaseModel):
    """One signed-in session (a refresh-token family); never carries a token."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(validation_alias="family_id", description="The session's id (its token family)")
    kind: Literal["api", "web"]
    started_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    user_agent: str | None
    ip: str | None


# -- two-factor sign-in ----------------------------------------------------------------------------

OtpCode = Annotated[Line, Field(min_length=6, max_length=40, description="A TOTP code or a recovery code")]


class TwoFactorSetupOut(BaseModel):
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an SVG QR code (generated on the server)")


class TwoFactorConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: OtpCode


class TwoFactorConfirmOut(BaseModel):
    recovery_codes: list[str] = Field(description="Each works once instead of a code; shown only now")


class TwoFactorDisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256, json_schema_extra={"format": "password"})
    code: OtpCode


class TwoFactorStatusOut(BaseModel):
    enabled: bool
