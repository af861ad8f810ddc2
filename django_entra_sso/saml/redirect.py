"""The HTTP-Redirect binding: messages in the query string, and their detached signatures.

SAML bindings §3.4.4.1 signs the query's octets *as sent*:
``SAMLRequest=…&RelayState=…&SigAlg=…``. Re-encoding decoded values (what
pysaml2 does) fails for IdPs that percent-encode differently (ADFS writes
lower-case hex), so the signature is checked here over the raw query string.
The XML inside is inflated with a bound: a few kilobytes of DEFLATE can unpack
to gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Sequence
from urllib.parse import quote_plus, unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..conf import app_settings
from .messages import MessageRefused
from .metadata import Certificate

RSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


#: The binding's parameters: each may appear once. With two, the signature could be
#: checked over one copy while Django hands the view the other.
BINDING_PARAMS = frozenset({"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"})


def raw_params(query_string: str) -> dict[str, str]:
    """``name -> raw (still encoded) value`` of a query string; ``MessageRefused`` when a
    binding parameter is repeated."""
    found: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _, value = part.partition("=")
        name = unquote_plus(name)
        if name in found and name in BINDING_PARAMS:
            raise MessageRefused(f"The query repeats {name}.")
        found.setdefault(name, value)
    return found


def inflate(value: str) -> str:
    """The XML of a Redirect-binding message: base64, raw DEFLATE, size-capped."""
    limit = app_settings.SAML_MAX_RESPONSE_BYTES
    if not value or len(value) > limit:
        raise MessageRefused("The SAML message is missing or too large.")
    try:
        compressed = base64.b64decode("".join(value.split()), validate=True)
        inflater = zlib.decompressobj(-15)
        xml = inflater.decompress(compressed, limit)
        if inflater.unconsumed_tail:
            raise MessageRefused(f"The SAML message inflates to more than {limit} bytes.")
        return xml.decode("utf-8")
    except (binascii.Error, zlib.error, ValueError):
        raise MessageRefused("The SAML message is not base64-encoded DEFLATE.") from None


def deflate(xml: str) -> str:
    """A message as the Redirect binding carries it: raw DEFLATE, then base64."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(xml.encode("utf-8")) + compressor.flush()
    return base64.b64encode(data).decode("ascii")


def signed_url(
    destination: str, kind: str, xml: str, relay_state: str, key: rsa.RSAPrivateKey
) -> str:
    """``destination`` with the message, its ``RelayState`` and an RSA-SHA256 signature.

    The signature covers the query's octets exactly as sent (SAML bindings §3.4.4.1).
    """
    parts = [(kind, deflate(xml))]
    if relay_state:
        parts.append(("RelayState", relay_state))
    parts.append(("SigAlg", RSA_SHA256))
    octets = "&".join(f"{name}={quote_plus(value)}" for name, value in parts)
    signature = key.sign(octets.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    query = f"{octets}&Signature={quote_plus(base64.b64encode(signature).decode('ascii'))}"
    return f"{destination}{'&' if '?' in destination else '?'}{query}"


def verify_signature(
    query_string: str,
    kind: str,
    certificates: Sequence[Certificate],
    *,
    allow_sha1: bool = False,
) -> None:
    """The query's ``Signature`` is by one of ``certificates``; ``MessageRefused`` if not.

    ``kind`` is ``"SAMLRequest"`` or ``"SAMLResponse"``.
    """
    raw = raw_params(query_string)
    if kind not in raw or "SigAlg" not in raw or "Signature" not in raw:
        raise MessageRefused(f"The {kind} is not signed (no SigAlg and Signature).")
    algorithm = unquote_plus(raw["SigAlg"])
    hash_class = RSA_HASHES.get(algorithm)
    if algorithm == RSA_SHA1 and allow_sha1:
        hash_class = hashes.SHA1
    if hash_class is None:
        raise MessageRefused(f"The {kind}'s signature algorithm {algorithm!r} is not accepted.")
    names = [kind, "RelayState", "SigAlg"] if "RelayState" in raw else [kind, "SigAlg"]
    octets = "&".join(f"{name}={raw[name]}" for name in names).encode("ascii", "replace")
    try:
        signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise MessageRefused(f"The {kind}'s Signature is not base64.") from None
    for certificate in certificates:
        public_key = x509.load_pem_x509_certificate(certificate.pem.encode()).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            continue
        try:
            public_key.verify(signature, octets, padding.PKCS1v15(), hash_class())
            return
        except InvalidSignature:
            continue
    raise MessageRefused(f"The {kind}'s signature is not by the identity provider's certificates.")
