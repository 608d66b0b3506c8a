from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from marketplace.auth import service, sessions, two_factor
from marketplace.auth.deps import CurrentUser
from marketplace.auth.models import User
from marketplace.auth.repository import UserRepository
from marketplace.auth.schemas import (
    AcceptedOut,
    ChangePasswordIn,
    MembershipOut,
    MeOut,
    MePatch,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    SessionOut,
    TokenOut,
    TwoFactorConfirmIn,
    TwoFactorConfirmOut,
    TwoFactorDisableIn,
    TwoFactorSetupOut,
    TwoFactorStatusOut,
    UserPublic,
    VerifyEmailIn,
)
from marketplace.core.db import SessionDep
from marketplace.core.errors import NotAuthenticated, NotFound, error_responses
from marketplace.core.ratelimit import LoginLimiter, RateLimiter
from marketplace.core.settings import Settings
from marketplace.core.text import Line
from marketplace.orgs.repository import OrgRepository
from marketplace.orgs.schemas import OrgPublic

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
        otp: Annotated[
            Line | None,
            Form(max_length=40, description="With two-factor sign-in: a TOTP code or a recovery code"),
        ] = None,
    ) -> None:
        self.grant_type = grant_type
        self.username = username
        self.password = password
        self.otp = otp


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisterOut,
    responses=error_responses(409, 422, 429),
    summary="Create a user and (optionally) their organisation",
)
async def register(data: RegisterIn, request: Request, session: SessionDep, limiter: Limiter) -> RegisterOut:
    await limiter.hit("register", f"ip:{_client_ip(request)}")
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
) -> TokenOut:
    login_limiter: LoginLimiter = request.app.state.login_limiter
    attempt = await login_limiter.begin(ip=_client_ip(request), account=form.username)
    user = await service.authenticate(session, form.username, form.password)
    # Until the second factor passes, the attempt stays counted as a failure (a wrong code is a failure).
    await two_factor.check_sign_in(session, user_id=user.id, otp=form.otp)
    await login_limiter.succeeded(attempt)
    return await service.issue_tokens(
        session,
        settings=request.app.state.settings,
        user=user,
        user_agent=request.headers.get("user-agent"),
        ip=_client_ip(request),
    )


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    responses=error_responses(401, 422, 429),
    summary="Exchange a refresh token for new tokens (rotation: the old refresh token stops working)",
)
async def refresh(data: RefreshIn, request: Request, session: SessionDep, limiter: Limiter) -> TokenOut:
    settings: Settings = request.app.state.settings
    ip = _client_ip(request)
    # Per client IP, high enough for an office behind one NAT (each client refreshes every few minutes).
    await RateLimiter(
        limiter.redis,
        limit=settings.refresh_rate_limit,
        window_seconds=settings.auth_rate_window_seconds,
        namespace=limiter.namespace,
    ).hit("refresh", f"ip:{ip}")
    try:
        return await service.refresh(
            session,
            settings=settings,
            refresh_token=data.refresh_token,
            user_agent=request.headers.get("user-agent"),
            ip=ip,
            lock=settings.refresh_token_lock,
        )
    except sessions.RefreshTokenReused:
        await session.commit()  # keep the family's revocation although the request fails
        raise


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(422),
    summary="Sign out the session this refresh token belongs to",
)
async def logout(data: RefreshIn, session: SessionDep) -> None:
    """Holding the refresh token is the credential; the answer is the same for an unknown token."""
    await sessions.revoke_by_token(session, token=data.refresh_token)


@router.post(
    "/auth/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403),
    summary="Sign out every session of the signed-in user (API and web)",
)
async def logout_all(session: SessionDep, principal: CurrentUser) -> None:
    user = await _current_user(session, principal)
    await sessions.revoke_all(session, user_id=user.id)


@router.get(
    "/auth/sessions",
    response_model=list[SessionOut],
    responses=error_responses(401, 403),
    summary="The signed-in user's active sessions",
)
async def list_sessions(session: SessionDep, principal: CurrentUser) -> list[SessionOut]:
    user = await _current_user(session, principal)
    return [SessionOut.model_validate(row) for row in await sessions.active_sessions(session, user_id=user.id)]


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
    summary="Sign out one of the signed-in user's sessions",
)
async def revoke_session(session_id: uuid.UUID, session: SessionDep, principal: CurrentUser) -> None:
    user = await _current_user(session, principal)
    await sessions.revoke_family(session, user_id=user.id, family_id=session_id)


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
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if (locale := changes.pop("locale", None)) is not None:
        await service.set_locale(session, user_id=user.id, locale=locale)
    for field, value in changes.items():
        setattr(user, field, value)
    await session.flush()
    return await _me(session, principal)


# -- e-mail verification and passwords -------------------------------------------------------------

_SENT = "If the address belongs to an account that needs it, an e-mail with a link is on its way."


@router.post(
    "/auth/verify-email",
    response_model=UserPublic,
    responses=error_responses(400, 422),
    summary="Verify the e-mail address with the token from the verification e-mail",
)
async def verify_email(data: VerifyEmailIn, session: SessionDep) -> UserPublic:
    return UserPublic.model_validate(await service.verify_email(session, token=data.token))


@router.post(
    "/auth/verify-email/resend",
    response_model=AcceptedOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 429),
    summary="Send a new verification link to the signed-in user (the same answer whether or not one was sent)",
)
async def resend_verification(
    request: Request, session: SessionDep, principal: CurrentUser, limiter: Limiter
) -> AcceptedOut:
    await limiter.hit("verify_resend", f"user:{principal.user_id}", f"ip:{_client_ip(request)}")
    if principal.user_id is not None:
        await service.send_verification(session, user_id=principal.user_id)
    return AcceptedOut(detail=_SENT)


@router.post(
    "/auth/password-reset",
    response_model=AcceptedOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(422, 429),
    summary="E-mail a password-reset link (the same answer whether or not the account exists)",
)
async def password_reset(data: PasswordResetIn, request: Request, session: SessionDep, limiter: Limiter) -> AcceptedOut:
    await limiter.hit("password_reset", f"ip:{_client_ip(request)}", f"email:{data.email.lower()}")
    await service.request_password_reset(session, email=data.email)
    return AcceptedOut(detail=_SENT)


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 422, 429),
    summary="Set a new password with the token from the reset e-mail; signs out every session",
)
async def password_reset_confirm(
    data: PasswordResetConfirmIn, request: Request, session: SessionDep, limiter: Limiter
) -> Response:
    await limiter.hit("password_reset_confirm", f"ip:{_client_ip(request)}")
    await service.reset_password(session, token=data.token, new_password=data.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 422, 429),
    summary="Change the signed-in user's password (needs the current one); signs out every other session",
)
async def change_password(
    data: ChangePasswordIn, request: Request, session: SessionDep, principal: CurrentUser, limiter: Limiter
) -> Response:
    await limiter.hit("change_password", f"user:{principal.user_id}")
    if principal.user_id is None:
        raise NotAuthenticated()
    await service.change_password(
        session, user_id=principal.user_id, current_password=data.current_password, new_password=data.new_password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- two-factor sign-in ----------------------------------------------------------------------------


@router.get(
    "/auth/2fa",
    response_model=TwoFactorStatusOut,
    responses=error_responses(401, 403),
    summary="Whether the signed-in user has two-factor sign-in enabled",
)
async def two_factor_status(session: SessionDep, principal: CurrentUser) -> TwoFactorStatusOut:
    user = await _current_user(session, principal)
    return TwoFactorStatusOut(enabled=await two_factor.is_enabled(session, user_id=user.id))


@router.post(
    "/auth/2fa/setup",
    response_model=TwoFactorSetupOut,
    responses=error_responses(401, 403, 409),
    summary="Start two-factor setup: a new TOTP secret as an otpauth URI and an SVG QR code",
)
async def two_factor_setup(session: SessionDep, principal: CurrentUser) -> TwoFactorSetupOut:
    user = await _current_user(session, principal)
    setup = await two_factor.start_setup(session, user=user)
    return TwoFactorSetupOut(otpauth_uri=setup.otpauth_uri, qr_svg=setup.qr_svg)


@router.post(
    "/auth/2fa/confirm",
    response_model=TwoFactorConfirmOut,
    responses=error_responses(400, 401, 403, 409, 422, 429),
    summary="Enable two-factor sign-in with a first code; returns 10 one-time recovery codes (shown once)",
)
async def two_factor_confirm(
    data: TwoFactorConfirmIn, session: SessionDep, principal: CurrentUser, limiter: Limiter
) -> TwoFactorConfirmOut:
    await limiter.hit("2fa", f"user:{principal.user_id}")
    user = await _current_user(session, principal)
    return TwoFactorConfirmOut(recovery_codes=await two_factor.confirm(session, user_id=user.id, code=data.code))


@router.post(
    "/auth/2fa/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 422, 429),
    summary="Disable two-factor sign-in (needs the password and a code or a recovery code)",
)
async def two_factor_disable(
    data: TwoFactorDisableIn, session: SessionDep, principal: CurrentUser, limiter: Limiter
) -> Response:
    await limiter.hit("2fa", f"user:{principal.user_id}")
    user = await _current_user(session, principal)
    await two_factor.disable(session, user_id=user.id, password=data.password, code=data.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
