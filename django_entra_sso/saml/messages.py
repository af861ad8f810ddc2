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
import zlib
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
        xml = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise MessageRefused("The SAML message is not base64-encoded UTF-8.") from None
    _refuse_deflated(raw)
    return xml


def _refuse_deflated(raw: bytes) -> None:
    """Refuse a POSTed value that is also a whole DEFLATE stream.

    pysaml2 tries to inflate POSTed values before reading them as plain base64: for
    such a value it would verify and read another document than the one checked here.
    Inflated with a bound, so a bomb costs nothing.
    """
    inflater = zlib.decompressobj(-15)
    try:
        inflater.decompress(raw, app_settings.SAML_MAX_RESPONSE_BYTES)
    except zlib.error:
        return  # not DEFLATE: pysaml2 falls back to the plain base64, as read here
    if inflater.eof or inflater.unconsumed_tail:
        raise MessageRefused("The POSTed SAML message is DEFLATE-compressed.")


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
    if encrypted:
        refuse_outside_references(only)
    check_signature_placement(xml, root_tag=f"{{{SAMLP}}}Response")
    return posted


XENC = "http://www.w3.org/2001/04/xmlenc#"


def refuse_outside_references(encrypted: Any) -> None:
    """Refuse an encrypted assertion that points xmlsec1 anywhere but inside itself.

    Decryption follows ``CipherReference`` and ``RetrievalMethod`` URIs (and runs their
    transforms): anyone could post one, since the SP certificate that wraps the key
    is public, and make this server fetch a URL or read ``file:///dev/zero``. The IdPs
    put the cipher text inline (``CipherValue``) and refer to keys by ``#id``.
    """
    for element in encrypted.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in (f"{{{XENC}}}CipherReference", f"{{{DS}}}Transforms"):
            raise MessageRefused(f"The encrypted assertion holds a {tag.split('}')[-1]}.")
        uri = element.get("URI")
        if uri is not None and not uri.startswith("#"):
            raise MessageRefused("The encrypted assertion refers to something outside itself.")


#: Protocol messages that never nest inside another (a borrowed, IdP-signed one would).
MESSAGES = frozenset(
    f"{{{SAMLP}}}{name}"
    for name in (
        "Response",
        "LogoutRequest",
        "LogoutResponse",
        "AuthnRequest",
        "ArtifactResponse",
        "AttributeQuery",
    )
)


#: Children a message or an assertion has at most once (SAML core schema).
SINGLE_CHILDREN = (
    f"{{{SAML}}}Issuer",
    f"{{{DS}}}Signature",
    f"{{{SAMLP}}}Status",
    f"{{{SAML}}}Subject",
    f"{{{SAML}}}Conditions",
    f"{{{SAML}}}NameID",
)


def check_signature_placement(xml: str, *, root_tag: str) -> None:
    """Refuse signature wrapping: a signature anywhere but where the profile puts it.

    xmlsec1, which pysaml2 calls with the signed element's ID, verifies the first
    ``ds:Signature`` it meets inside that element, in document order. So an element
    the IdP signed for anything else (an old assertion of the attacker's, an error
    Response) placed before a made-up signature gets the made-up element accepted.
    Here every ``ds:Signature`` must be a direct child of the message or of its one
    assertion, right after that element's ``Issuer``; no message nests in another
    and no assertion hides anywhere (``Advice`` included). Run on what pysaml2
    verified: after decryption, for a Response.
    """
    root = _parse(xml)
    if root.tag != root_tag:
        raise MessageRefused(f"Expected {root_tag!r}, got {root.tag!r}.")
    parents = {child: parent for parent in root.iter() for child in parent}
    signed = [root]
    assertions = list(root.iter(f"{{{SAML}}}Assertion"))
    if root_tag == f"{{{SAMLP}}}Response":
        # Its one assertion: a child of the Response, or (decrypted) of its child
        # EncryptedAssertion, where xmlsec1 leaves it.
        if len(assertions) > 1 or (assertions and not _own_assertion(root, assertions[0], parents)):
            raise MessageRefused("The Response holds an assertion besides its own.")
        signed += assertions
    elif assertions:
        raise MessageRefused(f"The {root_tag} holds an assertion.")
    if any(element.tag in MESSAGES for element in root.iter() if element is not root):
        raise MessageRefused("A SAML message is nested inside the message.")
    allowed = set()
    for element in signed:
        children = list(element)
        tags = [child.tag for child in children]
        for single in SINGLE_CHILDREN:
            if tags.count(single) > 1:
                # pysaml2 keeps the last of a repeated one, xmlsec1 and this check see all.
                raise MessageRefused(f"The message repeats {single}.")
        for position, child in enumerate(children):
            if child.tag == f"{{{DS}}}Signature":
                first = position == 0 or (position == 1 and children[0].tag == f"{{{SAML}}}Issuer")
                if not first:
                    raise MessageRefused("A signature is not first, or right after the Issuer.")
                allowed.add(id(child))
    for signature in root.iter(f"{{{DS}}}Signature"):
        if id(signature) not in allowed:
            raise MessageRefused("A signature is out of place (signature wrapping).")


def _own_assertion(root: Any, assertion: Any, parents: dict[Any, Any]) -> bool:
    parent = parents.get(assertion)
    if parent is root:
        return True
    return bool(
        parent is not None
        and parent.tag == f"{{{SAML}}}EncryptedAssertion"
        and parents.get(parent) is root
    )


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
