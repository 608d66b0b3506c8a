from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from marketplace.auth import service
from marketplace.auth.deps import CurrentUser
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
from marketplace.errors import NotFound, error_responses
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import OrgPublic
from marketplace.ratelimit import RateLimiter

router = APIRouter(tags=["auth"])


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.auth_rate_limiter
    return limiter


Limiter = Annotated[RateLimiter, Depends(_limiter)]


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
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
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
    assert principal.user_id is not None
    user = await UserRepository(session).get(principal.user_id)
    if user is None:  # pragma: no cover - the principal was just loaded
        raise NotFound()
    memberships = await OrgRepository(session).memberships_of(user.id)
    return MeOut(
        user=UserPublic.model_validate(user),
        memberships=[MembershipOut(org=OrgPublic.model_validate(o), role=r) for o, r in memberships],
    )


@router.get("/me", response_model=MeOut, responses=error_responses(401, 403))
async def me(session: SessionDep, principal: CurrentUser) -> MeOut:
    return await _me(session, principal)


@router.patch("/me", response_model=MeOut, responses=error_responses(401, 403, 422))
async def update_me(data: MePatch, session: SessionDep, principal: CurrentUser) -> MeOut:
    assert principal.user_id is not None
    user = await UserRepository(session).get(principal.user_id)
    assert user is not None
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(user, field, value)
    await session.flush()
    return await _me(session, principal)
