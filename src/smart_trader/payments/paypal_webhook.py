"""PayPal webhooks: the signature checked offline with PayPal's certificate, the event turned into what it asks.

Verification, as PayPal documents it (https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverifymethod)
and its SDK did it (``paypalrestsdk/notifications.py``, ``WebhookEvent.verify``): the headers
``PAYPAL-TRANSMISSION-ID``, ``PAYPAL-TRANSMISSION-TIME``, ``PAYPAL-TRANSMISSION-SIG`` (base64),
``PAYPAL-CERT-URL`` and ``PAYPAL-AUTH-ALGO`` (``SHA256withRSA``); the signed message is
``<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body, unsigned decimal>``; the signature
is RSASSA-PKCS1-v1_5 with SHA-256 by the key of the certificate at ``PAYPAL-CERT-URL``. Here:

- the certificate URL must be ``https`` on a ``paypal.com`` host (never fetched otherwise: anyone can sign with a
  certificate of their own);
- the certificate (the first of the PEM file; the others are its intermediates) must chain to a trusted root
  (``PAYPAL_CERT_CA_FILE``, default the Mozilla roots of ``certifi``), be valid now, name a ``*.paypal.com`` host
  in its subject CN and hold that name in its subject alternative names (``cryptography``'s X.509 path validation,
  server-certificate policy);
- the transmission time must be within ``PAYPAL_WEBHOOK_TOLERANCE_SECONDS`` of now (replays);
- the webhook id is ours (``PAYPAL_WEBHOOK_ID``): it is part of the signed message, so an event sent to another
  merchant's webhook does not verify here.

Certificates are fetched once per URL and process (:func:`fetch_certificate`; a test replaces the fetch).

What each event type asks (:func:`action_of`), for orders whose purchase unit carries
``custom_id = "<user id>|<program>|<account size>"`` (PayPal copies it onto the capture):

- ``PAYMENT.CAPTURE.COMPLETED``: a purchase, the payment being the capture (``resource.id``), the amount
  ``resource.amount`` (``value`` a decimal string, ``currency_code``);
- ``PAYMENT.CAPTURE.REFUNDED``: a refund of the capture its ``up`` link names (whole when
  ``seller_payable_breakdown.total_refunded_amount`` reaches the recorded payment);
- ``PAYMENT.CAPTURE.REVERSED``: the capture taken back (a reversal: revokes);
- ``CUSTOMER.DISPUTE.CREATED``: a dispute of ``disputed_transactions[0].seller_transaction_id``;
- any other type: ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from smart_trader.core.errors import InvalidInputError, TemporaryError
from smart_trader.payments.grants import (
    Action,
    Delivery,
    Ignore,
    Purchase,
    Reversal,
    VerifiedEvent,
    WebhookRejectedError,
)
from smart_trader.payments.money import currency_code, from_paypal_value
from smart_trader.settings import Settings

PROVIDER = "paypal"
ALGORITHM = "SHA256withRSA"
CERT_HOST_SUFFIX = ".paypal.com"
MAX_CERT_BYTES = 64 * 1024
_CACHED_CERTS = 64


def fetch_certificate(url: str) -> bytes:
    """GET the PEM at ``url`` (already checked to be ``https`` on a ``paypal.com`` host), at most 64 KiB, 10 s.

    Raises:
        TemporaryError: the certificate could not be fetched (PayPal retries the delivery: answered 503).
    """
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            data: bytes = response.read(MAX_CERT_BYTES + 1)
    except OSError as exc:
        raise TemporaryError(f"could not fetch PayPal's certificate {url}: {exc}") from None
    if len(data) > MAX_CERT_BYTES:
        raise TemporaryError(f"PayPal's certificate {url} is larger than {MAX_CERT_BYTES} bytes")
    return data


class PayPalVerifier:
    """Offline verification of PayPal webhook deliveries (see the module docstring).

    Args:
        webhook_id: our webhook's id in PayPal (``PAYPAL_WEBHOOK_ID``).
        roots: the trusted root certificates.
        tolerance_s: how far the transmission time may be from now, seconds.
        clock: seconds since the epoch, UTC (tests pass their own).
    """

    def __init__(
        self,
        webhook_id: str,
        roots: list[x509.Certificate],
        tolerance_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhook_id = webhook_id
        self.store = Store(roots)
        self.tolerance_s = tolerance_s
        self.clock = clock
        self._certs: dict[str, list[x509.Certificate]] = {}

    def verify(self, payload: bytes, headers: Mapping[str, str], fetch: Callable[[str], bytes]) -> VerifiedEvent:
        """Check a delivery (``payload`` the raw body, ``headers`` the request's, case-insensitive) and read it;
        ``fetch`` gets a certificate URL's PEM.

        Raises:
            WebhookRejectedError: 400 ``signature`` (a header missing, another algorithm, a certificate URL off
                paypal.com, a certificate that does not chain, has expired or is not PayPal's, a signature that does
                not verify), ``stale`` (transmission time out of tolerance) or ``malformed`` (not a PayPal event);
                503 ``certificate`` when the certificate cannot be fetched.
        """
        names = ("transmission-id", "transmission-time", "transmission-sig", "cert-url", "auth-algo")
        values = {n: headers.get(f"paypal-{n}") for n in names}
        missing = [f"PAYPAL-{n.upper()}" for n, v in values.items() if not v]
        if missing:
            raise WebhookRejectedError(400, "signature", f"missing header(s): {', '.join(missing)}")
        tid, ttime, sig, cert_url, algo = (str(values[n]) for n in names)
        if algo != ALGORITHM:
            raise WebhookRejectedError(400, "signature", f"PAYPAL-AUTH-ALGO {algo!r} is not {ALGORITHM}")
        try:
            sent = datetime.fromisoformat(ttime)
        except ValueError:
            raise WebhookRejectedError(400, "signature", f"PAYPAL-TRANSMISSION-TIME {ttime!r} is not a time") from None
        if sent.tzinfo is None or abs(self.clock() - sent.timestamp()) > self.tolerance_s:
            raise WebhookRejectedError(
                400, "stale", f"PAYPAL-TRANSMISSION-TIME {ttime} is more than {self.tolerance_s} s from now"
            )
        leaf = self._certificate(cert_url, fetch)
        message = f"{tid}|{ttime}|{self.webhook_id}|{zlib.crc32(payload)}".encode()
        try:
            signature = base64.b64decode(sig, validate=True)
            key = leaf.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidSignature
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            raise WebhookRejectedError(400, "signature", "PAYPAL-TRANSMISSION-SIG does not verify") from None
        try:
            return read_event(payload)
        except InvalidInputError as exc:
            raise WebhookRejectedError(400, "malformed", f"the body is not a PayPal event: {exc}") from None

    def _certificate(self, url: str, fetch: Callable[[str], bytes]) -> x509.Certificate:
        """The signing certificate at ``url``, checked (chain, validity, PayPal's name)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host.endswith(CERT_HOST_SUFFIX) or parts.username or parts.port:
            raise WebhookRejectedError(400, "signature", f"PAYPAL-CERT-URL {url!r} is not an https URL on paypal.com")
        chain = self._certs.get(url)
        if chain is None:
            try:
                chain = x509.load_pem_x509_certificates(fetch(url))
            except TemporaryError as exc:
                raise WebhookRejectedError(503, "certificate", str(exc)) from None
            except ValueError:
                raise WebhookRejectedError(
                    400, "signature", f"PAYPAL-CERT-URL {url} holds no PEM certificate"
                ) from None
            if len(self._certs) >= _CACHED_CERTS:
                self._certs.clear()
            self._certs[url] = chain
        leaf = chain[0]
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value).lower() if names else ""
        if not name.endswith(CERT_HOST_SUFFIX):
            raise WebhookRejectedError(400, "signature", f"the certificate is not PayPal's (CN {name!r})")
        now = datetime.fromtimestamp(self.clock(), UTC)
        verifier = PolicyBuilder().store(self.store).time(now).build_server_verifier(x509.DNSName(name))
        try:
            verifier.verify(leaf, chain[1:])
        except VerificationError as exc:
            raise WebhookRejectedError(400, "signature", f"the certificate does not verify: {exc}") from None
        return leaf


def read_event(payload: bytes) -> VerifiedEvent:
    """The delivery and action of a (verified) PayPal event body.

    Raises:
        InvalidInputError: the body lacks what a PayPal event has (``id``, ``event_type``, ``create_time``,
            ``resource``) or a field used has the wrong type.
    """
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"not JSON ({exc})") from None
    if not isinstance(event, dict):
        raise InvalidInputError("not an event object")
    event_id, event_type, created = event.get("id"), event.get("event_type"), event.get("create_time")
    resource = event.get("resource")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidInputError("id must be the event's id")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidInputError("event_type must be the event type")
    if not isinstance(resource, dict):
        raise InvalidInputError("resource must be the event's resource")
    try:
        when = datetime.fromisoformat(str(created))
    except ValueError:
        raise InvalidInputError("create_time must be the event's time") from None
    if when.tzinfo is None:
        raise InvalidInputError("create_time must say its UTC offset")
    ts = int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    digest = hashlib.sha256(payload).hexdigest()
    return VerifiedEvent(Delivery(PROVIDER, event_id, event_type, digest, ts), action_of(event_type, resource))


def _money(obj: object) -> tuple[Decimal | None, str | None]:
    if not isinstance(obj, dict):
        return None, None
    return from_paypal_value(obj.get("value")), currency_code(obj.get("currency_code"))


def _link(resource: dict[str, Any], rel: str) -> str | None:
    for link in resource.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return None


def action_of(event_type: str, resource: dict[str, Any]) -> Action:
    """What a PayPal event of ``event_type`` about ``resource`` asks (see the module docstring).

    Raises:
        InvalidInputError: a field used has the wrong type.
    """
    if event_type == "PAYMENT.CAPTURE.COMPLETED":
        capture = resource.get("id")
        if not isinstance(capture, str) or not capture:
            raise InvalidInputError("resource.id must be the capture id")
        custom = resource.get("custom_id")
        parts = custom.split("|") if isinstance(custom, str) else []
        user_id, program, size = parts if len(parts) == 3 else (None, None, None)
        amount, currency = _money(resource.get("amount"))
        return Purchase(user_id or None, program or None, size or None, amount, currency, capture)
    if event_type in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"):
        capture = _link(resource, "up")
        if capture is None:
            return Ignore(f"{event_type} without the capture it refunds (no 'up' link)")
        breakdown = resource.get("seller_payable_breakdown")
        total = breakdown.get("total_refunded_amount") if isinstance(breakdown, dict) else None
        amount, currency = _money(total if total is not None else resource.get("amount"))
        reversed_ = event_type == "PAYMENT.CAPTURE.REVERSED"
        return Reversal("refund", capture, True if reversed_ else None, amount, currency)
    if event_type == "CUSTOMER.DISPUTE.CREATED":
        transactions = resource.get("disputed_transactions") or []
        first = transactions[0] if isinstance(transactions, list) and transactions else {}
        capture = first.get("seller_transaction_id") if isinstance(first, dict) else None
        if not isinstance(capture, str) or not capture:
            return Ignore("dispute without a seller transaction id")
        amount, currency = _money(resource.get("dispute_amount"))
        return Reversal("dispute", capture, True, amount, currency)
    return Ignore(f"event type {event_type} is not acted on")


@lru_cache(maxsize=4)
def _roots(ca_file: str) -> tuple[x509.Certificate, ...]:
    if not ca_file:
        import certifi

        ca_file = certifi.where()
    return tuple(x509.load_pem_x509_certificates(Path(ca_file).read_bytes()))


@lru_cache(maxsize=4)
def _verifier(webhook_id: str, tolerance_s: int, ca_file: str) -> PayPalVerifier:
    return PayPalVerifier(webhook_id, list(_roots(ca_file)), tolerance_s)


def verifier_of(settings: Settings) -> PayPalVerifier:
    """The verifier of ``settings`` (one per configuration and process: it keeps the certificates fetched).

    Raises:
        WebhookRejectedError: 503 ``not-configured`` while ``PAYPAL_WEBHOOK_ID`` is unset, or when the trusted roots
            (``PAYPAL_CERT_CA_FILE``) cannot be read.
    """
    if not settings.paypal_webhook_id:
        raise WebhookRejectedError(503, "not-configured", "PayPal webhooks are not configured (PAYPAL_WEBHOOK_ID)")
    try:
        return _verifier(
            settings.paypal_webhook_id, settings.paypal_webhook_tolerance_seconds, settings.paypal_cert_ca_file
        )
    except (OSError, ValueError) as exc:
        raise WebhookRejectedError(503, "not-configured", f"PAYPAL_CERT_CA_FILE cannot be read: {exc}") from None
