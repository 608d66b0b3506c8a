from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status

from marketplace.auth import service
from marketplace.auth.deps import CurrentUser
from marketplace.auth.models import User
from marketplace.auth.repository import UserRepository
from marketplace.auth.schemas import (
    MembershipOut,
    MeOut,
    MePatch,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    TokenOut,
    UserPublic,
)
from marketplace.db import SessionDep
from marketplace.errors import NotAuthenticated, NotFound, error_responses
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import OrgPublic
from marketplace.ratelimit import RateLimiter
from marketplace.text import Line

router = APIRouter(tags=["auth"])


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.auth_rate_limiter
    return limiter


Limiter = Annotated[RateLimiter, Depends(_limiter)]


class TokenForm:
    """The OAuth2 password grant's form (RFC 6749 4.3.2), with the text rule on the user name: the e-mail
    address is looked up in PostgreSQL. The password is only ever hashed, so it may hold any character.
    ``scope``, ``client_id`` and ``client_secret`` are not used and, as form fields nobody reads, ignored."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[Line, Form(min_length=1, max_length=320, description="The e-mail address")],
        password: Annotated[str, Form(max_length=256, json_schema_extra={"format": "password"})],
    ) -> None:
        self.grant_type = grant_type
        self.username = username
        self.password = password


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterOut,
    responses=error_responses(409, 422, 429),
    summary="Create a user and (optionally) their organisation",
)
async def register(data: RegisterIn, request: Request, session: SessionDep, limiter: Limiter) -> RegisterOut:
    await limiter.hit("register", f"ip:{_client_ip(request)}", f"email:{data.email.lower()}")
    user, org = await service.register(session, data)
    return RegisterOut(user=UserPublic.model_validate(user), org=OrgPublic.model_validate(org) if org else None)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses=error_responses(401, 422, 429),
    summary="OAuth2 password flow: e-mail as username",
)
async def token(
    form: Annotated[TokenForm, Depends()],
    request: Request,
    session: SessionDep,
    limiter: Limiter,
) -> TokenOut:
    await limiter.hit("login", f"ip:{_client_ip(request)}", f"email:{form.username.strip().lower()}")
    user = await service.authenticate(session, form.username, form.password)
    return service.issue_tokens(request.app.state.settings, user)


@router.post("/auth/refresh", response_model=TokenOut, responses=error_responses(401, 422))
async def refresh(data: RefreshIn, request: Request, session: SessionDep) -> TokenOut:
    return await service.refresh(session, request.app.state.settings, data.refresh_token)


async def _me(session: SessionDep, principal: CurrentUser) -> MeOut:
    user = await _current_user(session, principal)
    memberships = await OrgRepository(session).memberships_of(user.id)
    return MeOut(
        user=UserPublic.model_validate(user),
        memberships=[MembershipOut(org=OrgPublic.model_validate(o), role=r) for o, r in memberships],
    )


async def _current_user(session: SessionDep, principal: CurrentUser) -> User:
    """The signed-in user's row (``CurrentUser`` admits users only, so both checks are defensive)."""
    if principal.user_id is None:
        raise NotAuthenticated()
    user = await UserRepository(session).get(principal.user_id)
    if user is None:  # pragma: no cover - the principal was just loaded
        raise NotFound()
    return user


@router.get("/me", response_model=MeOut, responses=error_responses(401, 403))
async def me(session: SessionDep, principal: CurrentUser) -> MeOut:
    return await _me(session, principal)


@router.patch("/me", response_model=MeOut, responses=error_responses(401, 403, 422))
async def update_me(data: MePatch, session: SessionDep, principal: CurrentUser) -> MeOut:
    user = await _current_user(session, principal)
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(user, field, value)
    await session.flush()
    return await _me(session, principal)
