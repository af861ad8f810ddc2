"""What is checked of a SAML message before pysaml2 sees it, and of its signatures after.

Before: the posted value is bounded, decodes, and is XML without a DTD or
entities (no XXE, no billion laughs; ``defusedxml``); a Response holds exactly
one assertion (plain or encrypted), as a direct child. One assertion is what
every IdP sends, and refusing more closes the door of signature-wrapping
attacks that hide a second assertion beside or inside the signed one.

After pysaml2 verified a signature: it is not SHA-1 unless the connector says
the IdP can do nothing better.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..conf import app_settings

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
SHA1_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    }
)


class MessageRefused(Exception):
    """A SAML message refused before or after pysaml2; the message says why, for a log."""


STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


@dataclass(frozen=True)
class PostedResponse:
    xml: str
    in_response_to: str
    issuer: str
    destination: str
    #: The top-level status code, and the second-level one when given.
    status: str = STATUS_SUCCESS
    sub_status: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == STATUS_SUCCESS


def decode_posted(value: str) -> str:
    """The XML of an HTTP-POST binding value (base64), within the size cap."""
    if not value:
        raise MessageRefused("No SAMLResponse was posted.")
    if len(value) > app_settings.SAML_MAX_RESPONSE_BYTES:
        raise MessageRefused(
            f"The SAML message is larger than {app_settings.SAML_MAX_RESPONSE_BYTES} bytes."
        )
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise MessageRefused("The SAML message is not base64-encoded UTF-8.") from None


def _parse(xml: str) -> Any:
    try:
        return fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MessageRefused(f"The SAML message declares a DTD or entities ({exc!r}).") from None
    except Exception as exc:  # noqa: BLE001 - ParseError and friends
        raise MessageRefused(f"The SAML message is not well-formed XML ({exc}).") from None


def inspect_response(xml: str) -> PostedResponse:
    """Refuse a Response of an unexpected shape; return what routing it needs."""
    root = _parse(xml)
    if root.tag != f"{{{SAMLP}}}Response":
        raise MessageRefused(f"Expected a SAML Response, got {root.tag!r}.")
    issuer = root.find(f"{{{SAML}}}Issuer")
    code = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    sub_code = code.find(f"{{{SAMLP}}}StatusCode") if code is not None else None
    posted = PostedResponse(
        xml=xml,
        in_response_to=root.get("InResponseTo", ""),
        issuer=(issuer.text or "").strip() if issuer is not None else "",
        destination=root.get("Destination", ""),
        status=code.get("Value", "") if code is not None else "",
        sub_status=sub_code.get("Value", "") if sub_code is not None else "",
    )
    if not posted.succeeded:
        return posted  # a refusal by the IdP: nothing in it will be used
    plain = list(root.iter(f"{{{SAML}}}Assertion"))
    encrypted = list(root.iter(f"{{{SAML}}}EncryptedAssertion"))
    if len(plain) + len(encrypted) != 1:
        raise MessageRefused(
            f"The Response holds {len(plain) + len(encrypted)} assertions; exactly one is accepted."
        )
    only = (plain or encrypted)[0]
    if only not in list(root):
        raise MessageRefused("The assertion is not a direct child of the Response.")
    return posted


def refuse_weak_signature(signature: Any, *, allow_sha1: bool, what: str) -> None:
    """``signature`` (a pysaml2 ``ds:Signature``, or ``None``) uses no SHA-1, unless allowed."""
    if signature is None or allow_sha1:
        return
    signed_info = signature.signed_info
    algorithms = [signed_info.signature_method.algorithm]
    algorithms += [ref.digest_method.algorithm for ref in signed_info.reference]
    weak = [alg for alg in algorithms if alg in SHA1_ALGORITHMS]
    if weak:
        raise MessageRefused(
            f"The {what} is signed with SHA-1 ({weak[0]}); SHA-1 signatures are refused "
            "unless the connector accepts them."
        )
