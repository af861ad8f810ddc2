"""Encrypting connector client secrets at rest.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) with one Fernet key
derived per configured secret through HKDF. ``MultiFernet`` encrypts with the
first key and decrypts with any, which is what makes the keys rotatable: add the
new key in front, run ``manage.py sso_connector rotate-secrets``, drop the old one.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .conf import app_settings

_INFO = b"django-entra-sso client secret v1"


class SecretDecryptionError(Exception):
    """No configured key could decrypt a stored secret."""


def _derive(secret: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(raw))


def _fernet() -> MultiFernet:
    keys = [key for key in app_settings.SECRET_KEYS if key]
    if not keys:
        raise SecretDecryptionError("ENTRA_SSO_SECRET_KEYS holds no usable key.")
    return MultiFernet([_derive(key) for key in keys])


def encrypt_secret(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as exc:
        raise SecretDecryptionError(
            "The client secret cannot be decrypted with ENTRA_SSO_SECRET_KEYS; "
            "was the key rotated without keeping the old one?"
        ) from exc


def reencrypt_secret(ciphertext: str) -> str:
    """Re-encrypt with the first key (after a key rotation)."""
    if not ciphertext:
        return ""
    try:
        return _fernet().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError) as exc:
        raise SecretDecryptionError("The client secret cannot be decrypted.") from exc


def keys_usable() -> str | None:
    """A reason the configured keys cannot encrypt, or ``None`` when they can."""
    try:
        decrypt_secret(encrypt_secret("check"))
    except Exception as exc:  # noqa: BLE001 - any failure is what the check reports
        return str(exc) or exc.__class__.__name__
    return None
