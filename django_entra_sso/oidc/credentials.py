"""Certificate credentials: ``private_key_jwt`` client authentication (RFC 7523).

Microsoft recommends a certificate over a client secret for production apps, and
many tenants forbid secrets. The connector makes its own key pair (the private key
encrypted at rest like secrets, ``ClientKey``); the site owner uploads the
certificate to the IdP (Entra ID: Certificates & secrets → Certificates), or the
IdP fetches the public keys from ``jwks/<slug>/``.

The client assertion follows RFC 7523 §3 and Microsoft's certificate-credentials
page: ``iss`` = ``sub`` = the client ID, ``aud`` = the token endpoint, a unique
``jti``, ``iat``/``nbf`` now and ``exp`` five minutes on; the header names the
key by ``kid`` and by the certificate's thumbprints ``x5t#S256`` and ``x5t``
(older Entra tenants match on the SHA-1 one). PS256 for Entra ID (what its
documentation shows), RS256 elsewhere, unless the connector says otherwise.

Rotation without downtime: ``start_rotation`` makes a ``next`` key, published
beside the active one (JWKS, admin, ``sso_connector certificate``); once the
site owner has uploaded it, ``finish_rotation`` makes it the one that signs and
drops the old one.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from .. import providers
from ..crypto import decrypt_secret, encrypt_secret
from ..keypairs import b64url, load_certificate, make_key_pair, thumbprint
from ..models import ClientKey, Connector

#: Two years, like the certificates Entra ID's portal suggests; the admin and check
#: W005 warn 30 days before the end.
CERTIFICATE_DAYS = 730
ASSERTION_LIFETIME = 300
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: ``ClientKey.state`` values.
ACTIVE, NEXT = "active", "next"

_loaded: dict[str, rsa.RSAPrivateKey] = {}


@sensitive_variables("private_pem")
def _new_key(connector: Connector, state: str) -> ClientKey:
    private_pem, certificate_pem = make_key_pair(
        f"{connector.slug} sign-in client", days=CERTIFICATE_DAYS
    )
    certificate = load_certificate(certificate_pem)
    return ClientKey.objects.create(
        connector=connector,
        kid=thumbprint(certificate, hashes.SHA256()),
        certificate=certificate_pem,
        private_key_encrypted=encrypt_secret(private_pem),
        state=state,
        not_after=certificate.not_valid_after_utc,
    )


def active_key(connector: Connector) -> ClientKey:
    """The key that signs client assertions; made when the connector has none yet."""
    key = connector.client_keys.filter(state=ACTIVE).first()
    if key is None:
        with transaction.atomic():
            locked = Connector.objects.select_for_update().get(pk=connector.pk)
            key = locked.client_keys.filter(state=ACTIVE).first()
            if key is None:
                key = _new_key(locked, ACTIVE)
    return key


def published_keys(connector: Connector) -> list[ClientKey]:
    """The active key first, then the next one during a rotation."""
    keys = list(connector.client_keys.all())
    return sorted(keys, key=lambda k: k.state != ACTIVE)


def waiting_key(connector: Connector) -> ClientKey | None:
    """The ``next`` key of a rotation under way, or ``None``."""
    return connector.client_keys.filter(state=NEXT).first()


def start_rotation(connector: Connector, *, replace: bool = False) -> ClientKey:
    """A ``next`` key, published beside the active one.

    A rotation already under way keeps its key (the site owner may have uploaded it
    already: asking twice must not pull it from under them) unless ``replace``.
    """
    active_key(connector)
    with transaction.atomic():
        locked = Connector.objects.select_for_update().get(pk=connector.pk)
        waiting = waiting_key(locked)
        if waiting is not None and not replace:
            return waiting
        locked.client_keys.filter(state=NEXT).delete()
        return _new_key(locked, NEXT)


def finish_rotation(connector: Connector, kid: str = "") -> ClientKey:
    """The ``next`` key signs from now on; the old one is dropped.

    ``kid`` names the certificate the site owner uploaded (its thumbprint, or the
    start of it): when another one is waiting by now, nothing changes. ``ValueError``
    without a waiting key, or for another one.
    """
    with transaction.atomic():
        upcoming = connector.client_keys.select_for_update().filter(state=NEXT).first()
        if upcoming is None:
            raise ValueError(f"{connector.slug} has no new certificate waiting to be used.")
        if kid and not upcoming.kid.startswith(kid):
            raise ValueError(
                f"The certificate waiting for {connector.slug} is {upcoming.kid}, not {kid}: "
                "upload that one to the identity provider, then confirm it."
            )
        connector.client_keys.filter(state=ACTIVE).delete()
        upcoming.state = ACTIVE
        upcoming.save(update_fields=["state"])
        return upcoming


@sensitive_variables("private_pem", "loaded")
def _private_key(key: ClientKey) -> rsa.RSAPrivateKey:
    cached = _loaded.get(key.private_key_encrypted)
    if cached is not None:
        return cached
    private_pem = decrypt_secret(key.private_key_encrypted)
    loaded = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError("A client key is not an RSA key.")
    if len(_loaded) >= 256:
        _loaded.clear()
    _loaded[key.private_key_encrypted] = loaded
    return loaded


def assertion_algorithm(connector: Connector) -> str:
    if connector.client_assertion_alg:
        return connector.client_assertion_alg
    return "PS256" if connector.provider == providers.ENTRA_ID else "RS256"


def client_assertion(connector: Connector, token_endpoint: str) -> str:
    """A signed JWT proving this site is ``connector``'s client, for ``token_endpoint``."""
    key = active_key(connector)
    certificate = load_certificate(key.certificate)
    now = int(time.time())
    claims = {
        "iss": connector.client_id,
        "sub": connector.client_id,
        "aud": token_endpoint,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    headers = {
        "kid": key.kid,
        "x5t#S256": key.kid,
        "x5t": thumbprint(certificate, hashes.SHA1()),  # noqa: S303 - a name, not security
    }
    return jwt.encode(
        claims, _private_key(key), algorithm=assertion_algorithm(connector), headers=headers
    )


def public_jwk(key: ClientKey, algorithm: str) -> dict[str, Any]:
    certificate = load_certificate(key.certificate)
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    numbers = public.public_numbers()
    der = certificate.public_bytes(serialization.Encoding.DER)
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": algorithm,
        "kid": key.kid,
        "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "x5c": [base64.b64encode(der).decode("ascii")],
        "x5t#S256": key.kid,
    }


def jwks(connector: Connector) -> dict[str, Any]:
    """The connector's public client keys (active and, during a rotation, next).

    None while it authenticates with a secret: its keys are kept (switching back
    needs no new upload), but an IdP must not accept assertions signed by them.
    """
    if connector.client_auth != Connector.ClientAuth.PRIVATE_KEY_JWT:
        return {"keys": []}
    algorithm = assertion_algorithm(connector)
    return {"keys": [public_jwk(key, algorithm) for key in published_keys(connector)]}
