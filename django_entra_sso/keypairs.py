"""RSA key pairs with self-signed certificates, for what this site signs with.

A SAML connector's SP key (``saml.keys``) and an OIDC connector's client keys for
``private_key_jwt`` (``oidc.credentials``) are made here. The certificate is only
a way to hand the public key to an identity provider (Entra ID takes keys as
certificates), so it is self-signed.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.views.decorators.debug import sensitive_variables


@sensitive_variables("key", "private_pem")
def make_key_pair(common_name: str, *, days: int) -> tuple[str, str]:
    """A new RSA 2048 key and its self-signed certificate (valid ``days``), both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "SSO")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    """The certificate's thumbprint, base64url: ``x5t#S256`` (SHA-256) or ``x5t`` (SHA-1)."""
    return b64url(certificate.fingerprint(algorithm))


def sha1_thumbprint(certificate_pem: str) -> str:
    """The certificate's thumbprint as Entra's portal lists it: SHA-1, upper-case hex.

    A name to compare by eye after the upload, not a security check.
    """
    fingerprint = load_certificate(certificate_pem).fingerprint(hashes.SHA1())  # noqa: S303
    return fingerprint.hex().upper()
