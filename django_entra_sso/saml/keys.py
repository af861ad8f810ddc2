"""Each SAML connector's own key pair: it decrypts encrypted assertions and signs requests.

The private key is kept encrypted like client secrets (``crypto``); the
self-signed certificate goes into the SP metadata, where the IdP picks it up.
pysaml2 hands keys to the ``xmlsec1`` program as files, so ``key_files`` writes
them to a private temporary directory for the length of one operation.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.views.decorators.debug import sensitive_variables

from ..crypto import decrypt_secret, encrypt_secret
from ..keypairs import make_key_pair

if TYPE_CHECKING:
    from ..models import Connector

#: Long-lived: IdPs (Entra included) pin the SP certificate they were given, and a
#: self-signed certificate's expiry protects nothing; a rotation is a new key pair.
CERTIFICATE_DAYS = 10 * 365


@sensitive_variables("private_pem")
def ensure_key_pair(connector: Connector, *, rotate: bool = False) -> None:
    """Give ``connector`` a key pair if it has none (or a new one), and save it."""
    if connector.sp_certificate and connector.sp_private_key_encrypted and not rotate:
        return
    private_pem, certificate_pem = make_key_pair(f"{connector.slug} SAML SP", days=CERTIFICATE_DAYS)
    connector.sp_private_key_encrypted = encrypt_secret(private_pem)
    connector.sp_certificate = certificate_pem
    if connector.pk is not None:
        connector.save(update_fields=["sp_private_key_encrypted", "sp_certificate", "updated_at"])


#: Loaded keys by their encrypted form: loading validates the RSA key, which costs
#: tens of milliseconds, and the same key signs every request of its connector.
_loaded: dict[str, rsa.RSAPrivateKey] = {}


@sensitive_variables("private_pem", "key")
def signing_key(connector: Connector) -> rsa.RSAPrivateKey:
    """The connector's private key, to sign Redirect-binding messages with."""
    ensure_key_pair(connector)
    cached = _loaded.get(connector.sp_private_key_encrypted)
    if cached is not None:
        return cached
    private_pem = decrypt_secret(connector.sp_private_key_encrypted)
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("The connector's SAML key is not an RSA key.")
    if len(_loaded) >= 256:
        _loaded.clear()
    _loaded[connector.sp_private_key_encrypted] = key
    return key


@contextmanager
@sensitive_variables("private_pem")
def key_files(connector: Connector) -> Iterator[tuple[str, str]]:
    """``(key_path, cert_path)`` of the connector's key pair, deleted afterwards."""
    ensure_key_pair(connector)
    private_pem = decrypt_secret(connector.sp_private_key_encrypted)
    with tempfile.TemporaryDirectory(prefix="entra-sso-saml-") as directory:
        key_path = os.path.join(directory, "sp.key")
        cert_path = os.path.join(directory, "sp.crt")
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(private_pem)
        with open(cert_path, "w") as handle:
            handle.write(connector.sp_certificate)
        yield key_path, cert_path
