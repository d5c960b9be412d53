"""Credentials: argon2id password hashes, HS256 JSON Web Tokens, API keys.

- Passwords: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile); only the PHC string is stored.
- Tokens (RFC 7519, HS256 signed with ``SECRET_KEY``): ``sub`` = user id, ``typ`` = ``access`` or
  ``refresh``, ``iat``/``exp`` in seconds since the epoch (UTC), ``jti`` unique.
- API keys: ``st_`` + 40 random URL-safe characters (``secrets.token_urlsafe``); stored as SHA-256 hex
  (a key has 240 bits of entropy, so a fast hash is enough, as GitHub and Stripe do).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TokenType = Literal["access", "refresh"]
API_KEY_PREFIX = "st_"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id PHC string of ``password`` (takes tens of milliseconds on purpose)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` (never raises for a wrong password or bad hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A real hash to verify against when the user does not exist, so timing does not tell which emails exist
    (made on first use, not at import: hashing takes tens of milliseconds)."""
    return hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access and a refresh token; ``expires_in`` is the access token's lifetime in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int


class TokenCodec:
    """Issues and checks the platform's JWTs.

    Args:
        secret_key: HMAC key (HS256).
        access_seconds / refresh_seconds: lifetimes in seconds.
    """

    def __init__(self, secret_key: str, access_seconds: int, refresh_seconds: int) -> None:
        self._key = secret_key
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds
        self._verified: dict[str, tuple[str, str, int]] = {}  # token → (sub, typ, exp): verified once

    def _token(self, user_id: str, typ: TokenType, lifetime: int, now: int) -> str:
        claims = {"sub": user_id, "typ": typ, "iat": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def issue(self, user_id: str) -> TokenPair:
        """A fresh access + refresh pair for ``user_id``."""
        now = int(time.time())
        return TokenPair(
            self._token(user_id, "access", self.access_seconds, now),
            self._token(user_id, "refresh", self.refresh_seconds, now),
            self.access_seconds,
        )

    def subject(self, token: str, typ: TokenType) -> str | None:
        """The user id of a valid, unexpired token of type ``typ``; ``None`` for anything else.

        A token whose signature was verified is remembered until it expires (up to 10,000 tokens), so a client
        sending the same token on every request pays for HMAC and JSON decoding once."""
        hit = self._verified.get(token)
        if hit is not None:
            sub_, typ_, exp_ = hit
            return sub_ if typ_ == typ and time.time() < exp_ else None
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub", "typ"]})
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not isinstance(claims.get("exp"), int):
            return None
        if len(self._verified) >= 10_000:
            self._verified.clear()
        self._verified[token] = (sub, str(claims.get("typ")), claims["exp"])
        return sub if claims.get("typ") == typ else None


def new_api_key() -> str:
    """A new random API key (``st_`` + 40 URL-safe characters)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(30)


def api_key_hash(key: str) -> str:
    """SHA-256 hex digest of an API key (what the database stores and looks up)."""
    return hashlib.sha256(key.encode()).hexdigest()
