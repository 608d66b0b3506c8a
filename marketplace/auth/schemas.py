from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from marketplace.orgs.schemas import OrgCreate, OrgPublic
from marketplace.text import Line

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
