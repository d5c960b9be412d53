"""Signed outgoing webhooks: the endpoint URL rules (SSRF), the signature, the secret kept encrypted, one POST.

**Signature** (the scheme of Stripe's webhooks, https://docs.stripe.com/webhooks#verify-manually): every request
carries ``Smart-Trader-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is HMAC-SHA256 keyed with the endpoint's
signing secret (the whole ``whsec_...`` text, UTF-8) over ``f"{t}.{body}"`` — the timestamp, a dot, and the raw
request body exactly as sent. A receiver recomputes it, compares in constant time, and refuses a timestamp older
than its tolerance (replays): :func:`verify` does all three. ``Smart-Trader-Event-Id`` is the notification's id (the
same on every attempt: delivery is at least once, so a receiver dedupes on it); ``Smart-Trader-Delivery-Id`` names
the delivery (one notification, one endpoint).

**Secrets at rest** (:class:`SecretBox`): the signing secret is shown once when the endpoint is registered and
stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256, from the ``cryptography`` library) under a key derived from
``SECRET_KEY`` with HKDF-SHA256; it has to be recoverable to sign. During a key rotation the key derived from
``SECRET_KEY_PREVIOUS`` still decrypts. Losing ``SECRET_KEY`` loses the secrets (endpoints must be registered again).

**URLs** (:func:`check_url` at registration, :func:`resolve_checked` before every request): ``https`` only; no user
name or password in the URL, no fragment; the host is not an IP literal outside the public Internet (loopback,
private RFC 1918, carrier-grade NAT 100.64/10, link-local 169.254/16 and fe80::/10 — cloud metadata —, unique local
fc00::/7, multicast, reserved, unspecified, documentation ranges; IPv4-mapped/6to4/Teredo IPv6 forms are checked as
the IPv4 address they carry), not a numeric IPv4 spelling (``2130706433``, ``0x7f.1``, ``127.1``), not ``localhost``
nor a name under ``.localhost``, ``.local``, ``.internal``, ``.lan``, ``.home.arpa``, nor a single-label intranet
name. At delivery the host is resolved, EVERY address it resolves to must pass the same address rule, and the
request is sent to the checked address itself (the TLS name still the host's: ``sni_hostname``), so a DNS answer that
changes between the check and the connection (rebinding) cannot reach an internal address. Redirects are not
followed (a 3xx is a failed attempt), proxies from the environment are not used, the response body is never read.
With ``WEBHOOK_ALLOW_LOOPBACK`` (tests and local development only) ``http://`` and ``https://`` to ``127.0.0.1``,
``[::1]`` and ``localhost`` are allowed; nothing else changes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from smart_trader.core.errors import InvalidInputError

SIGNATURE_HEADER = "Smart-Trader-Signature"
EVENT_ID_HEADER = "Smart-Trader-Event-Id"
DELIVERY_ID_HEADER = "Smart-Trader-Delivery-Id"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
"""Seconds a receiver should accept a signature's timestamp (Stripe's default tolerance)."""
MAX_URL_LENGTH = 2048
SECRET_PREFIX = "whsec_"
USER_AGENT = "Smart-Trader-Webhooks/1"
_HKDF_INFO = b"smart-trader/webhook-endpoint-secrets/v1"
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet", ".corp")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SignatureError(Exception):
    """A signature header that does not verify (the message says why)."""


class UnsafeAddressError(Exception):
    """The endpoint's host resolves to an address webhooks may not reach (or does not resolve)."""


# -- signing --------------------------------------------------------------------------------------------------------


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp_s}.{body}"`` keyed with ``secret`` (UTF-8)."""
    signed = str(timestamp_s).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp_s: int, body: bytes) -> str:
    """The ``Smart-Trader-Signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    return f"t={timestamp_s},{SIGNATURE_SCHEME}={signature(secret, timestamp_s, body)}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_s: int = DEFAULT_TOLERANCE_S, now_s: int | None = None
) -> int:
    """Check a ``Smart-Trader-Signature`` header as a receiver does; returns its timestamp (unix seconds).

    Any ``v1`` entry may match (room for several during a secret change); comparison is constant-time.

    Raises:
        SignatureError: a malformed header, no matching ``v1`` signature, or a timestamp more than ``tolerance_s``
            seconds away from ``now_s`` (default: the wall clock).
    """
    t: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == SIGNATURE_SCHEME and value:
            candidates.append(value)
    if t is None or not candidates:
        raise SignatureError("malformed signature header: expected t=<unix seconds>,v1=<hex>")
    expected = signature(secret, t, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches the body")
    now = int(time.time()) if now_s is None else now_s
    if abs(now - t) > tolerance_s:
        raise SignatureError(f"timestamp {t} is more than {tolerance_s} s from now ({now})")
    return t


# -- secrets at rest ------------------------------------------------------------------------------------------------


class SecretBox:
    """Encrypts signing secrets for storage under keys derived from the platform's signing keys.

    Args:
        keys: ``SECRET_KEY`` first (encrypts), then older keys still accepted to decrypt (``SECRET_KEY_PREVIOUS``);
            as :meth:`~smart_trader.settings.Settings.signing_keys` gives them.

    Raises:
        InvalidInputError: no key given.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise InvalidInputError("SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(_derive(k)) for k in keys])

    def encrypt(self, secret: str) -> str:
        """The Fernet token of ``secret`` (text, safe to store)."""
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The secret of a stored token.

        Raises:
            InvalidInputError: the token was made under a key that is no longer configured (or was altered).
        """
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise InvalidInputError(
                "cannot decrypt the endpoint's signing secret: SECRET_KEY changed (register the endpoint again)"
            ) from None


def _derive(key: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key.encode())
    return base64.urlsafe_b64encode(raw)


# -- URL and address rules ------------------------------------------------------------------------------------------


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 transition form carries (IPv4-mapped, 6to4, Teredo server), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour):
            if inner is not None:
                return inner
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def address_allowed(ip: IPAddress, *, allow_loopback: bool = False) -> bool:
    """True when webhooks may connect to ``ip``: a public unicast address (``is_global``, not multicast), or a
    loopback address when ``allow_loopback``."""
    inner = _unwrap(ip)
    if inner.is_loopback or ip.is_loopback:
        return allow_loopback
    return bool(ip.is_global and inner.is_global and not inner.is_multicast and not ip.is_multicast)


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def check_url(url: str, *, allow_loopback: bool = False) -> str:
    """Validate a webhook URL at registration (module docstring: what is checked); returns it stripped.

    Raises:
        InvalidInputError: naming the rule the URL breaks.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInputError(f"the URL must have 1 to {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise InvalidInputError("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"not a valid URL: {exc}") from None
    del port  # parsed only to refuse an invalid one
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("https", "http"):
        raise InvalidInputError("the URL must start with https://")
    if not host:
        raise InvalidInputError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("the URL must not contain a user name or password")
    if parts.fragment:
        raise InvalidInputError("the URL must not have a #fragment")
    loopback = _is_loopback_name(host)
    try:
        ip: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        loopback = _unwrap(ip).is_loopback or ip.is_loopback
        if not address_allowed(ip, allow_loopback=allow_loopback):
            raise InvalidInputError(f"the URL's address {ip} is not a public Internet address")
    elif loopback:
        if not allow_loopback:
            raise InvalidInputError("the URL must not name localhost")
    elif _NUMERIC_HOST.match(host):
        raise InvalidInputError("write the host as a name or a dotted-quad IPv4 address")
    elif host.endswith(_LOCAL_SUFFIXES) or "." not in host:
        raise InvalidInputError(f"the URL's host {host!r} is a local or intranet name, not a public one")
    if scheme == "http" and not (allow_loopback and loopback):
        raise InvalidInputError("the URL must start with https://")
    return url


async def resolve_checked(host: str, port: int, *, allow_loopback: bool = False) -> str:
    """The address to connect to for ``host``: every address it resolves to must pass :func:`address_allowed`;
    returns the first.

    Raises:
        UnsafeAddressError: it does not resolve, or one of its addresses is not allowed (named in the message).
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeAddressError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeAddressError(f"{host} resolves to no address")
    for ip in addresses:
        if not address_allowed(ip, allow_loopback=allow_loopback):
            raise UnsafeAddressError(f"{host} resolves to {ip}, which webhooks may not reach")
    return str(addresses[0])


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_loopback: bool = False,
) -> int:
    """POST ``body`` to ``url`` at the address :func:`resolve_checked` vetted (``Host`` and the TLS server name stay
    the URL's host); returns the HTTP status without reading the response body.

    Raises:
        UnsafeAddressError: see :func:`resolve_checked`.
        InvalidInputError: the stored URL no longer passes :func:`check_url`.
        httpx.HTTPError: the request failed (connection, TLS, timeout).
    """
    check_url(url, allow_loopback=allow_loopback)
    target = httpx.URL(url)
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    ip = await resolve_checked(host, port, allow_loopback=allow_loopback)
    pinned = target.copy_with(host=ip)
    sent = {**headers, "Host": target.netloc.decode("ascii"), "User-Agent": USER_AGENT}
    request = client.build_request("POST", pinned, content=body, headers=sent, extensions={"sni_hostname": host})
    response = await client.send(request, stream=True, follow_redirects=False)
    await response.aclose()
    return int(response.status_code)
