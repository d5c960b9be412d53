"""Outgoing webhooks, the parts without a network: the signature is Stripe's scheme (checked with the ``stripe``
library's own verifier), the signing secret round-trips through its encryption at rest (and survives a key rotation),
and endpoint URLs are refused where a request could reach the platform's own network (SSRF)."""

from __future__ import annotations

import asyncio
import ipaddress
import time

import pytest
import stripe

from smart_trader.core.errors import InvalidInputError
from smart_trader.notifications import webhooks
from smart_trader.notifications.webhooks import SecretBox, SignatureError, check_url, resolve_checked, verify

BODY = b'{"id":"n1","kind":"challenge_breached"}'


def test_the_signature_is_stripes_scheme_and_stripes_verifier_accepts_it() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(secret) > 40
    t = int(time.time())
    header = webhooks.signature_header(secret, t, BODY)
    assert header.startswith(f"t={t},v1=") and len(header.split("v1=")[1]) == 64
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, secret, tolerance=300) is True
    assert verify(secret, header, BODY) == t


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s, h, b, t: (s, h, b + b" ", t), "no signature matches"),  # the body changed
        (lambda s, h, b, t: ("whsec_other", h, b, t), "no signature matches"),  # another secret
        (lambda s, h, b, t: (s, h, b, t + 301), "more than 300 s"),  # replayed later
        (lambda s, h, b, t: (s, "v1=abc", b, t), "malformed"),
        (lambda s, h, b, t: (s, h.replace("t=", "t=1"), b, t), "no signature matches"),  # timestamp changed
    ],
)
def test_a_receiver_refuses_what_was_not_signed_as_sent(change: object, reason: str) -> None:
    secret, t = webhooks.new_secret(), 1_767_225_600
    header = webhooks.signature_header(secret, t, BODY)
    s, h, b, now = change(secret, header, BODY, t)  # type: ignore[operator]
    with pytest.raises(SignatureError, match=reason):
        verify(s, h, b, now_s=now)


def test_secrets_are_encrypted_at_rest_and_still_open_after_a_key_rotation() -> None:
    old, new = "o" * 20 + "ld-key-0123456789abcdef", "n" * 20 + "ew-key-0123456789abcdef"
    secret = webhooks.new_secret()
    sealed = SecretBox([old]).encrypt(secret)
    assert secret not in sealed and SecretBox([old]).decrypt(sealed) == secret
    assert SecretBox([new, old]).decrypt(sealed) == secret  # SECRET_KEY rotated, the previous one kept
    with pytest.raises(InvalidInputError, match="SECRET_KEY changed"):
        SecretBox([new]).decrypt(sealed)


ALLOWED = [
    "https://hooks.example.com/smart-trader",
    "https://hooks.example.com:8443/x?y=1",
    "https://93.184.216.34/hook",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
]
REFUSED = {
    "http://hooks.example.com/x": "https://",
    "ftp://hooks.example.com/x": "https://",
    "https://user:pw@hooks.example.com/x": "user name or password",
    "https://hooks.example.com/x#frag": "fragment",
    "https://127.0.0.1/x": "not a public",
    "https://10.0.0.5/x": "not a public",
    "https://172.16.3.4/x": "not a public",
    "https://192.168.1.1/x": "not a public",
    "https://169.254.169.254/latest/meta-data": "not a public",  # cloud metadata
    "https://100.64.0.1/x": "not a public",  # carrier-grade NAT
    "https://0.0.0.0/x": "not a public",
    "https://224.0.0.1/x": "not a public",
    "https://[::1]/x": "not a public",
    "https://[fe80::1]/x": "not a public",
    "https://[fd00::1]/x": "not a public",
    "https://[::ffff:127.0.0.1]/x": "not a public",  # IPv4-mapped loopback
    "https://[::ffff:169.254.169.254]/x": "not a public",
    "https://[2002:a00:1::]/x": "not a public",  # 6to4 of 10.0.0.1
    "https://2130706433/x": "dotted-quad",  # 127.0.0.1 as one number
    "https://0x7f.1/x": "dotted-quad",
    "https://127.1/x": "dotted-quad",
    "https://localhost/x": "localhost",
    "https://api.localhost/x": "localhost",
    "https://printer.local/x": "intranet",
    "https://db.internal/x": "intranet",
    "https://intranet/x": "intranet",
    "https://hooks.example.com:99999/x": "not a valid URL",
    "https:///x": "no host",
    "https://hooks.example.com/a b": "spaces",
    "": "1 to 2048",
    "https://hooks.example.com/" + "a" * 2048: "1 to 2048",
}


@pytest.mark.parametrize("url", ALLOWED)
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(("url", "reason"), REFUSED.items(), ids=list(REFUSED))
def test_urls_that_could_reach_the_platforms_network_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost:9/x", "http://[::1]:9/x"])
def test_loopback_http_only_with_the_setting(url: str) -> None:
    with pytest.raises(InvalidInputError):
        check_url(url)
    assert check_url(url, allow_loopback=True) == url
    with pytest.raises(InvalidInputError, match="https://"):  # the setting opens loopback, not plain http elsewhere
        check_url("http://hooks.example.com/x", allow_loopback=True)
    with pytest.raises(InvalidInputError, match="not a public"):  # nor private networks
        check_url("http://10.0.0.1/x", allow_loopback=True)


def test_at_delivery_every_resolved_address_must_be_public() -> None:
    for host in ("localhost", "127.0.0.1", "2130706433"):  # names and numeric spellings resolve to loopback
        with pytest.raises(webhooks.UnsafeAddressError, match="may not reach"):
            asyncio.run(resolve_checked(host, 443))
    assert asyncio.run(resolve_checked("localhost", 443, allow_loopback=True)) in ("127.0.0.1", "::1")
    with pytest.raises(webhooks.UnsafeAddressError, match="cannot resolve"):
        asyncio.run(resolve_checked("no-such-host.invalid", 443))


def test_the_address_rule() -> None:
    allowed = webhooks.address_allowed
    assert allowed(ipaddress.ip_address("93.184.216.34"))
    assert not allowed(ipaddress.ip_address("127.0.0.2"))
    assert allowed(ipaddress.ip_address("127.0.0.2"), allow_loopback=True)
    assert not allowed(ipaddress.ip_address("10.1.2.3"), allow_loopback=True)
    assert not allowed(ipaddress.ip_address("2001::1"))  # Teredo: checked as the IPv4 it carries
