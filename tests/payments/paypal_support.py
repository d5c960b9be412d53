"""PayPal's signing, reproduced for the tests: a root CA and a leaf certificate for
``messageverificationcerts.paypal.com`` made here (PayPal's real certificate cannot be fetched from the test
machines), and deliveries signed as PayPal signs them: base64 RSASSA-PKCS1-v1_5/SHA-256 over
``<transmission id>|<transmission time>|<webhook id>|<CRC32 of the body>``."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-test"
LEAF_NAME = "messageverificationcerts.paypal.com"


@dataclass(frozen=True)
class Issuer:
    """A CA key and certificate, and a leaf key and its certificate chain (PEM: leaf then the CA)."""

    root_pem: bytes
    leaf_key: rsa.RSAPrivateKey
    chain_pem: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(leaf_name: str = LEAF_NAME, days: int = 30) -> Issuer:
    """A root CA and a TLS server certificate for ``leaf_name`` it signed, valid from yesterday for ``days``."""
    now = dt.datetime.now(dt.UTC)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("Smart Trader Test Root CA"))
        .issuer_name(_name("Smart Trader Test Root CA"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(leaf_name))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(leaf_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    return Issuer(root_pem, leaf_key, leaf.public_bytes(serialization.Encoding.PEM) + root_pem)


def write_root(issuer: Issuer, folder: Path) -> Path:
    """The issuer's root as a PEM file (``PAYPAL_CERT_CA_FILE``)."""
    path = folder / "paypal-test-root.pem"
    path.write_bytes(issuer.root_pem)
    return path


def signed_headers(
    body: bytes,
    webhook_id: str,
    key: rsa.RSAPrivateKey,
    *,
    when: dt.datetime | None = None,
    cert_url: str = CERT_URL,
    algo: str = "SHA256withRSA",
) -> dict[str, str]:
    """The headers PayPal sends with ``body`` for our ``webhook_id``, signed with ``key``."""
    transmission_id = str(uuid.uuid1())
    sent = (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{transmission_id}|{sent}|{webhook_id}|{zlib.crc32(body)}".encode()
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": sent,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": algo,
    }
