"""Password hashing (argon2 via pwdlib), JWTs and API-key secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from marketplace.settings import Settings

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the e-mail is unknown, so a missing account costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")

API_KEY_PREFIX = "mk_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


class TokenError(Exception):
    pass


def _encode(settings: Settings, claims: dict[str, Any], lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    payload = {**claims, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(payload, settings.jwt_secret, algorithm=settings.jwt_algorithm)


def create_access_token(settings: Settings, user_id: uuid.UUID) -> str:
    return _encode(settings, {"sub": str(user_id), "typ": "access"}, timedelta(minutes=settings.access_token_minutes))


def create_refresh_token(settings: Settings, user_id: uuid.UUID) -> str:
    return _encode(settings, {"sub": str(user_id), "typ": "refresh"}, timedelta(days=settings.refresh_token_days))


def decode_token(settings: Settings, token: str, expected_type: str) -> uuid.UUID:
    try:
        payload = jwt.decode(token, settings.jwt_secret, algorithms=[settings.jwt_algorithm])
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    if payload.get("typ") != expected_type:
        raise TokenError(f"expected a {expected_type} token")
    try:
        return uuid.UUID(str(payload["sub"]))
    except (KeyError, ValueError) as exc:
        raise TokenError("invalid token subject") from exc


def new_api_key() -> tuple[str, str, str]:
    """Return ``(secret, prefix, sha256)``. The prefix is stored in clear so people can tell keys apart."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[:11], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
