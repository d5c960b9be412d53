"""Credentials: argon2id password hashes, HS256 JSON Web Tokens, API keys.

- Passwords: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile); only the PHC string is stored.
- Tokens (RFC 7519, HS256 signed with ``SECRET_KEY``, also accepted when signed with ``SECRET_KEY_PREVIOUS``):
  ``sub`` = user id, ``typ`` = ``access`` or ``refresh``, ``sid`` = session, ``iat``/``exp`` in seconds since the
  epoch (UTC), ``jti`` unique.
- API keys: ``st_`` + 40 random URL-safe characters (``secrets.token_urlsafe``); stored as SHA-256 hex
  (a key has 240 bits of entropy, so a fast hash is enough, as GitHub and Stripe do).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access and a refresh token of one session; ``expires_in`` is the access token's lifetime in seconds,
    ``refresh_jti`` the refresh token's id (the session row keeps it: only that refresh token may be used next)."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_jti: str
    refresh_expires_s: int


@dataclass(frozen=True, slots=True)
class Claims:
    """The checked claims of a token: ``sub`` user id, ``typ`` access or refresh, ``sid`` session id, ``jti`` token
    id, ``iat``/``exp`` seconds since the epoch (UTC)."""

    sub: str
    typ: str
    sid: str
    jti: str
    iat: int
    exp: int


class TokenCodec:
    """Issues and checks the platform's JWTs (RFC 7519, HS256).

    Claims: ``sub`` (user id), ``typ`` (``access`` | ``refresh``), ``sid`` (the session: one refresh-token family,
    a row of the ``sessions`` table), ``jti`` (unique), ``iat``/``exp`` (seconds since the epoch, UTC).

    Args:
        secret_key: HMAC key signing new tokens.
        accepted_keys: keys a token may be signed with (the current one first, then the previous key during a
            rotation's grace period: ``SECRET_KEY_PREVIOUS``).
        access_seconds / refresh_seconds: lifetimes in seconds.
    """

    def __init__(
        self, secret_key: str, accepted_keys: tuple[str, ...], access_seconds: int, refresh_seconds: int
    ) -> None:
        self._key = secret_key
        self._accepted = accepted_keys or (secret_key,)
        self.access_seconds = access_seconds
        self.refresh_seconds = refresh_seconds
        self._verified: dict[str, Claims] = {}  # token → claims: the signature is verified once

    def _token(self, user_id: str, typ: TokenType, session_id: str, jti: str, lifetime: int, now: int) -> str:
        claims = {"sub": user_id, "typ": typ, "sid": session_id, "iat": now, "exp": now + lifetime, "jti": jti}
        return jwt.encode(claims, self._key, algorithm="HS256")

    def issue(self, user_id: str, session_id: str) -> TokenPair:
        """A fresh access + refresh pair for ``user_id`` in session ``session_id``."""
        now = int(time.time())
        refresh_jti = uuid.uuid4().hex
        return TokenPair(
            self._token(user_id, "access", session_id, uuid.uuid4().hex, self.access_seconds, now),
            self._token(user_id, "refresh", session_id, refresh_jti, self.refresh_seconds, now),
            self.access_seconds,
            refresh_jti,
            now + self.refresh_seconds,
        )

    def decode(self, token: str, typ: TokenType) -> Claims | None:
        """The claims of a valid, unexpired token of type ``typ`` signed with an accepted key; ``None`` for anything
        else (bad signature, expired, wrong type, missing claims). Whether its session or user is still valid is
        the caller's check.

        A verified token is remembered until it expires (up to 10,000 tokens), so a client sending the same token
        on every request pays for HMAC and JSON decoding once."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if claims is None:
                return None
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[token] = claims
        if claims.typ != typ or time.time() >= claims.exp:
            return None
        return claims

    def _verify(self, token: str) -> Claims | None:
        for key in self._accepted:
            try:
                raw = jwt.decode(
                    token, key, algorithms=["HS256"], options={"require": ["exp", "iat", "sub", "typ", "sid", "jti"]}
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                return None
            values = (raw.get("sub"), raw.get("typ"), raw.get("sid"), raw.get("jti"))
            if not all(isinstance(v, str) for v in values) or not all(
                isinstance(raw.get(k), int) for k in ("iat", "exp")
            ):
                return None
            return Claims(raw["sub"], raw["typ"], raw["sid"], raw["jti"], raw["iat"], raw["exp"])
        return None


def new_api_key() -> str:
    """A new random API key (``st_`` + 40 URL-safe characters)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(30)


def api_key_hash(key: str) -> str:
    """SHA-256 hex digest of an API key (what the database stores and looks up)."""
    return hashlib.sha256(key.encode()).hexdigest()
