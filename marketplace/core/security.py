"""Password hashing (argon2 via pwdlib), JWTs, API-key and refresh-token secrets, and one key per purpose."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from marketplace.core.settings import Settings

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


# -- one key per purpose ---------------------------------------------------------------------------
# Every signing key is derived from the server secret (MARKETPLACE_JWT_SECRET) with HKDF-SHA256 (RFC 5869),
# with the purpose as HKDF's "info": the keys are independent, so a token made for one purpose (an access
# token, the web session cookie, an iCal link, an e-mail link) is never accepted for another. A purpose's
# optional override setting replaces the input secret for that purpose alone, so one can be rotated
# without the others.
PURPOSES = ("access-tokens", "web-session", "ical", "email-links", "document-links")
_HKDF_SALT = b"marketplace-purpose-keys-v1"


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """RFC 5869 extract-and-expand with HMAC-SHA256."""
    if length > 255 * 32:
        raise ValueError("HKDF-SHA256 output is at most 8160 bytes")
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def purpose_key(settings: Settings, purpose: str) -> bytes:
    """The 32-byte key for ``purpose`` (one of :data:`PURPOSES`)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    override = settings.purpose_secret_overrides().get(purpose)
    return _derived_key((override or settings.jwt_secret).encode(), purpose)


@lru_cache(maxsize=64)
def _derived_key(ikm: bytes, purpose: str) -> bytes:
    # Every authenticated request derives its key (two HMACs); a rotated secret is another cache entry.
    return hkdf_sha256(ikm, salt=_HKDF_SALT, info=purpose.encode())


class TokenError(Exception):
    pass


def _encode(settings: Settings, claims: dict[str, Any], lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    payload = {**claims, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(payload, purpose_key(settings, "access-tokens"), algorithm=settings.jwt_algorithm)


def create_access_token(settings: Settings, user_id: uuid.UUID) -> str:
    return _encode(settings, {"sub": str(user_id), "typ": "access"}, timedelta(minutes=settings.access_token_minutes))


REFRESH_TOKEN_PREFIX = "mkr_"


def new_refresh_token() -> tuple[str, str]:
    """Return ``(token, sha256)``: an opaque 256-bit random refresh token; only its hash is stored."""
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def decode_token(settings: Settings, token: str, expected_type: str) -> uuid.UUID:
    try:
        payload = jwt.decode(token, purpose_key(settings, "access-tokens"), algorithms=[settings.jwt_algorithm])
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
