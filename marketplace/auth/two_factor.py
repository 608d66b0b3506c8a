"""Two-factor sign-in: TOTP (RFC 6238, 30-second steps, 6 digits) with one-time recovery codes.

Takes a session; never commits. A code is accepted for the current step and the one before or after (clock
drift), and only if its step is later than the last accepted one, so a code seen over a shoulder or in a log
cannot be replayed. Recovery codes are 80-bit random, stored as SHA-256 hashes, each usable once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.auth.models import User
from marketplace.auth.repository import TotpRepository, UserRepository
from marketplace.core.errors import BadRequest, Conflict, InvalidCredentials, NotAuthenticated
from marketplace.core.security import verify_password

ISSUER = "Shared manufacturing marketplace"
RECOVERY_CODES = 10
_VALID_WINDOW = 1


class OtpRequired(NotAuthenticated):
    """The password was right; the account has two-factor sign-in, so a code (``otp``) is needed too."""

    code = "otp_required"


class InvalidOtp(InvalidCredentials):
    """The second factor was wrong, already used, or expired."""

    code = "invalid_otp"


class TwoFactorAlreadyEnabled(Conflict):
    code = "two_factor_enabled"


class TwoFactorNotStarted(BadRequest):
    code = "two_factor_not_started"


class TwoFactorNotEnabled(BadRequest):
    code = "two_factor_not_enabled"


@dataclass(frozen=True)
class Setup:
    otpauth_uri: str
    qr_svg: str


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _new_recovery_code() -> str:
    raw = secrets.token_hex(10)  # 80 bits
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


async def is_enabled(session: AsyncSession, *, user_id: uuid.UUID) -> bool:
    return await TotpRepository(session).is_enabled(user_id)


async def start_setup(session: AsyncSession, *, user: User) -> Setup:
    """A new secret for the user to scan; replaces an unconfirmed one. Refused while 2FA is enabled."""
    repo = TotpRepository(session)
    if await repo.is_enabled(user.id):
        raise TwoFactorAlreadyEnabled("Two-factor sign-in is already enabled; disable it first.")
    secret = pyotp.random_base32()
    await repo.start(user.id, secret)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    # Generated here, never by a third-party service: the secret never leaves the platform.
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    return Setup(otpauth_uri=uri, qr_svg=svg)


async def _accept_totp(repo: TotpRepository, *, user_id: uuid.UUID, secret: str, code: str) -> bool:
    if not (len(code) == 6 and code.isdigit()):
        return False
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(time.time())
    for step in (now_step - _VALID_WINDOW, now_step, now_step + _VALID_WINDOW):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return await repo.accept_step(user_id, step)
    return False


async def confirm(session: AsyncSession, *, user_id: uuid.UUID, code: str) -> list[str]:
    """Enable 2FA with a first code from the app; return the recovery codes (shown once, stored hashed)."""
    repo = TotpRepository(session)
    row = await repo.get(user_id)
    if row is None:
        raise TwoFactorNotStarted("Start the two-factor setup first.")
    if row.confirmed_at is not None:
        raise TwoFactorAlreadyEnabled("Two-factor sign-in is already enabled.")
    if not await _accept_totp(repo, user_id=user_id, secret=row.secret, code=_normalise(code)):
        raise InvalidOtp("The code is wrong or expired.")
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    await repo.confirm(user_id, [_hash_recovery_code(c) for c in codes])
    return codes


async def _check(repo: TotpRepository, *, user_id: uuid.UUID, secret: str, code: str) -> bool:
    code = _normalise(code)
    if await _accept_totp(repo, user_id=user_id, secret=secret, code=code):
        return True
    return len(code) == 20 and await repo.use_recovery_code(user_id, _hash_recovery_code(code))


async def check_sign_in(session: AsyncSession, *, user_id: uuid.UUID, otp: str | None) -> None:
    """The second step of a sign-in: nothing to do without 2FA; otherwise a TOTP code or a recovery code
    (used up) is required."""
    repo = TotpRepository(session)
    row = await repo.get(user_id)
    if row is None or row.confirmed_at is None:
        return
    if not otp:
        raise OtpRequired("Enter the code from your authenticator app (or a recovery code).")
    if not await _check(repo, user_id=user_id, secret=row.secret, code=otp):
        raise InvalidOtp("The code is wrong, expired or already used.")


async def disable(session: AsyncSession, *, user_id: uuid.UUID, password: str, code: str) -> None:
    """Turn 2FA off: needs the password and a current code (or a recovery code)."""
    user = await UserRepository(session).get(user_id)
    if user is None or not verify_password(password, user.password_hash):
        raise InvalidCredentials("The password is wrong.")
    repo = TotpRepository(session)
    row = await repo.get(user_id)
    if row is None or row.confirmed_at is None:
        raise TwoFactorNotEnabled("Two-factor sign-in is not enabled.")
    if not await _check(repo, user_id=user_id, secret=row.secret, code=code):
        raise InvalidOtp("The code is wrong, expired or already used.")
    await repo.delete(user_id)
