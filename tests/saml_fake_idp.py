"""A SAML 2.0 identity provider for unit tests, that misbehaves on request.

It builds the messages an IdP sends (metadata, a Response carrying an assertion,
LogoutRequest, LogoutResponse) with every knob a test may want to turn, wrong
values included, and signs and encrypts them with keys of the test's choosing.
It also reads what a service provider sends over the HTTP-Redirect binding.

It is independent of the library under test: it does not import ``saml2``
(pysaml2). XML is built with lxml; enveloped XML signatures and XML encryption
are made by the ``xmlsec1`` command line, from templates in which the
``ds:Signature`` and ``xenc:EncryptedData`` elements are already in place, in a
temporary directory removed afterwards; the Redirect-binding query signatures
are made with ``cryptography``.

Attacks: the signature-wrapping (XSW) helpers take a signed Response and return
an attacked copy in which the original signature still verifies over the
original element, so a service provider that accepts it is really vulnerable;
``tamper_name_id`` breaks the signature; ``xxe_response`` and ``billion_laughs``
carry a DOCTYPE with entity declarations.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import secrets
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

# --- Namespaces and identifiers --------------------------------------------------------

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XENC_NS = "http://www.w3.org/2001/04/xmlenc#"
XS_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

NS = {"saml": SAML_NS, "samlp": SAMLP_NS, "md": MD_NS, "ds": DS_NS, "xenc": XENC_NS}

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"

CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
AUTHN_CONTEXT_PASSWORD_PROTECTED = (
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
SIG_RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"

SignatureAlgorithm = Literal["rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512"]
DigestAlgorithm = Literal["sha1", "sha256", "sha384", "sha512"]
EncryptionAlgorithm = Literal["aes128-cbc", "aes256-cbc", "aes128-gcm", "aes256-gcm"]
KeyTransport = Literal["rsa-oaep-mgf1p", "rsa-1_5"]

SIGNATURE_METHODS: dict[str, str] = {
    "rsa-sha1": SIG_RSA_SHA1,
    "rsa-sha256": SIG_RSA_SHA256,
    "rsa-sha384": SIG_RSA_SHA384,
    "rsa-sha512": SIG_RSA_SHA512,
}
DIGEST_METHODS: dict[str, str] = {
    "sha1": "http://www.w3.org/2000/09/xmldsig#sha1",
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
_ENCRYPTION_METHODS: dict[str, tuple[str, str]] = {
    # name: (Algorithm URI, xmlsec1 --session-key value)
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
}
_KEY_TRANSPORTS: dict[str, str] = {
    "rsa-oaep-mgf1p": "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "rsa-1_5": "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
}
# Redirect-binding SigAlg URI -> hash used with RSASSA-PKCS1-v1_5.
_REDIRECT_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    SIG_RSA_SHA1: hashes.SHA1,
    SIG_RSA_SHA256: hashes.SHA256,
    SIG_RSA_SHA384: hashes.SHA384,
    SIG_RSA_SHA512: hashes.SHA512,
}

XMLSEC1 = "xmlsec1"
XMLSEC_TIMEOUT = 30.0
# Every element a signature of ours may reference by its ID attribute.
_ID_ATTRS = [
    f"{SAML_NS}:Assertion",
    f"{SAMLP_NS}:Response",
    f"{SAMLP_NS}:LogoutRequest",
    f"{SAMLP_NS}:LogoutResponse",
    f"{SAMLP_NS}:AuthnRequest",
    f"{MD_NS}:EntityDescriptor",
    f"{MD_NS}:EntitiesDescriptor",
]


# --- Keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """An RSA private key and its self-signed certificate, as PEM text."""

    private_key_pem: str
    certificate_pem: str
    cert_b64: str  # base64 of the DER certificate, no PEM headers or line breaks

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())


def make_key_pair(
    common_name: str = "Fake IdP",
    days_valid: int = 365,
    not_before: dt.datetime | None = None,
    key_size: int = 2048,
) -> KeyPair:
    """A new RSA key and a self-signed certificate for it.

    The certificate is valid from ``not_before`` (default: a day ago) until
    ``days_valid`` days after ``not_before`` when given, else after now; pass a
    ``not_before`` in the past and a small ``days_valid`` for an expired one.
    """
    now = dt.datetime.now(dt.timezone.utc)
    start = _utc(not_before) if not_before is not None else now - dt.timedelta(days=1)
    end = (start if not_before is not None else now) + dt.timedelta(days=days_valid)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return KeyPair(private_key_pem=key_pem, certificate_pem=cert_pem, cert_b64=cert_b64)


# --- Small helpers ---------------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def saml_time(value: dt.datetime) -> str:
    """``2024-01-02T03:04:05Z``: xs:dateTime in UTC, as IdPs send it."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A SAML ID: an NCName, so it starts with an underscore."""
    return "_" + secrets.token_hex(16)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _sub(parent: Any, ns: str, name: str, text: str | None = None, **attrib: str) -> Any:
    el = etree.SubElement(parent, _q(ns, name), attrib)
    if text is not None:
        el.text = text
    return el


def _parser() -> Any:
    """An lxml parser that loads nothing from outside and expands no entities."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(xml: str | bytes) -> Any:
    """Parse a document (with our safe parser) and return its root element."""
    data = xml.encode() if isinstance(xml, str) else xml
    return etree.fromstring(data, _parser())


def _to_str(root: Any) -> str:
    return str(etree.tostring(root, encoding="unicode"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post_form_value(xml: str) -> str:
    """The value of the SAMLResponse / SAMLRequest field of the HTTP-POST binding."""
    return _b64(xml.encode())


def request_id(xml: str | bytes) -> str:
    """The ID attribute of a SAML message's root element."""
    value = parse_xml(xml).get("ID")
    if value is None:
        raise ValueError("the message has no ID attribute")
    return str(value)


# --- xmlsec1 ---------------------------------------------------------------------------


class XmlSecError(RuntimeError):
    pass


def _run_xmlsec(args: list[str], cwd: Path) -> None:
    if shutil.which(XMLSEC1) is None:
        raise XmlSecError("xmlsec1 is not installed")
    proc = subprocess.run(
        [XMLSEC1, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=XMLSEC_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise XmlSecError(f"xmlsec1 {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def _id_attr_args() -> list[str]:
    args: list[str] = []
    for node in _ID_ATTRS:
        args += ["--id-attr:ID", node]
    return args


def _signature_template(
    reference_id: str, algorithm: str, digest: str, *, key_info: bool = True
) -> Any:
    """An empty enveloped ds:Signature over the element whose ID is ``reference_id``."""
    if algorithm not in SIGNATURE_METHODS:
        raise ValueError(f"unknown signature algorithm {algorithm!r}")
    if digest not in DIGEST_METHODS:
        raise ValueError(f"unknown digest {digest!r}")
    exc_c14n = "http://www.w3.org/2001/10/xml-exc-c14n#"
    sig = etree.Element(_q(DS_NS, "Signature"), nsmap={"ds": DS_NS})
    signed_info = _sub(sig, DS_NS, "SignedInfo")
    _sub(signed_info, DS_NS, "CanonicalizationMethod", Algorithm=exc_c14n)
    _sub(signed_info, DS_NS, "SignatureMethod", Algorithm=SIGNATURE_METHODS[algorithm])
    ref = _sub(signed_info, DS_NS, "Reference", URI="#" + reference_id)
    transforms = _sub(ref, DS_NS, "Transforms")
    _sub(transforms, DS_NS, "Transform", Algorithm=DS_NS + "enveloped-signature")
    _sub(transforms, DS_NS, "Transform", Algorithm=exc_c14n)
    _sub(ref, DS_NS, "DigestMethod", Algorithm=DIGEST_METHODS[digest])
    _sub(ref, DS_NS, "DigestValue")
    _sub(sig, DS_NS, "SignatureValue")
    if key_info:
        # Left empty: xmlsec1 writes the certificate given with the key.
        _sub(_sub(_sub(sig, DS_NS, "KeyInfo"), DS_NS, "X509Data"), DS_NS, "X509Certificate")
    return sig


def _insert_signature_after_issuer(root: Any, sig: Any) -> None:
    """Enveloped signatures go right after the Issuer, as the SAML schema requires."""
    issuer = root.find(_q(SAML_NS, "Issuer"))
    if issuer is None:
        root.insert(0, sig)
    else:
        issuer.addnext(sig)


def xmlsec_sign(xml: bytes, key: KeyPair) -> bytes:
    """Fill in the first empty ds:Signature template of ``xml`` (in document order)."""
    with tempfile.TemporaryDirectory(prefix="fake-saml-idp-") as tmp:
        d = Path(tmp)
        (d / "key.pem").write_text(key.private_key_pem)
        (d / "cert.pem").write_text(key.certificate_pem)
        (d / "in.xml").write_bytes(xml)
        _run_xmlsec(
            [
                "--sign",
                "--privkey-pem",
                "key.pem,cert.pem",
                *_id_attr_args(),
                "--output",
                "out.xml",
                "in.xml",
            ],
            d,
        )
        return (d / "out.xml").read_bytes()


def _sign_element(root: Any, key: KeyPair, algorithm: str, digest: str) -> Any:
    """Sign ``root`` (a whole document) with an enveloped signature after its Issuer."""
    root_id = root.get("ID")
    if not root_id:
        raise ValueError("the element to sign has no ID")
    _insert_signature_after_issuer(root, _signature_template(root_id, algorithm, digest))
    return parse_xml(xmlsec_sign(etree.tostring(root), key))


def xmlsec_encrypt(
    element_xml: bytes,
    recipient: KeyPair,
    *,
    algorithm: EncryptionAlgorithm = "aes256-cbc",
    key_transport: KeyTransport = "rsa-oaep-mgf1p",
    include_recipient_cert: bool = True,
) -> Any:
    """Encrypt a whole document's root element to ``recipient``'s certificate.

    Returns the xenc:EncryptedData element (Type Element) with its session key
    wrapped in an xenc:EncryptedKey inside its ds:KeyInfo.
    """
    if algorithm not in _ENCRYPTION_METHODS:
        raise ValueError(f"unknown encryption algorithm {algorithm!r}")
    if key_transport not in _KEY_TRANSPORTS:
        raise ValueError(f"unknown key transport {key_transport!r}")
    method, session_key = _ENCRYPTION_METHODS[algorithm]
    data = etree.Element(
        _q(XENC_NS, "EncryptedData"),
        {"Type": XENC_NS + "Element"},
        nsmap={"xenc": XENC_NS, "ds": DS_NS},
    )
    _sub(data, XENC_NS, "EncryptionMethod", Algorithm=method)
    key_info = _sub(data, DS_NS, "KeyInfo")
    enc_key = _sub(key_info, XENC_NS, "EncryptedKey")
    transport = _sub(enc_key, XENC_NS, "EncryptionMethod", Algorithm=_KEY_TRANSPORTS[key_transport])
    if key_transport == "rsa-oaep-mgf1p":
        _sub(transport, DS_NS, "DigestMethod", Algorithm=DIGEST_METHODS["sha1"])
    if include_recipient_cert:
        _sub(_sub(_sub(enc_key, DS_NS, "KeyInfo"), DS_NS, "X509Data"), DS_NS, "X509Certificate")
    _sub(_sub(enc_key, XENC_NS, "CipherData"), XENC_NS, "CipherValue")
    _sub(_sub(data, XENC_NS, "CipherData"), XENC_NS, "CipherValue")
    with tempfile.TemporaryDirectory(prefix="fake-saml-idp-") as tmp:
        d = Path(tmp)
        (d / "cert.pem").write_text(recipient.certificate_pem)
        (d / "data.xml").write_bytes(element_xml)
        (d / "template.xml").write_bytes(etree.tostring(data))
        _run_xmlsec(
            [
                "--encrypt",
                "--pubkey-cert-pem",
                "cert.pem",
                "--session-key",
                session_key,
                "--xml-data",
                "data.xml",
                "--node-xpath",
                "/*",
                "--output",
                "out.xml",
                "template.xml",
            ],
            d,
        )
        return parse_xml((d / "out.xml").read_bytes())


# --- The IdP ---------------------------------------------------------------------------


class FakeSAMLIdP:
    """A SAML 2.0 IdP that builds whatever messages a test asks for.

    ``key`` (default: a new key pair) signs everything unless a call names
    another ``signing_key``; ``sso_url`` and ``slo_url`` are what the metadata
    advertises.
    """

    def __init__(
        self,
        entity_id: str = "https://idp.example.test/metadata",
        key: KeyPair | None = None,
        *,
        sso_url: str = "https://idp.example.test/sso",
        slo_url: str | None = "https://idp.example.test/slo",
    ) -> None:
        self.entity_id = entity_id
        self.key = key if key is not None else make_key_pair()
        self.sso_url = sso_url
        self.slo_url = slo_url

    def __repr__(self) -> str:
        return f"FakeSAMLIdP(entity_id={self.entity_id!r})"

    # --- Metadata ----------------------------------------------------------------------

    def metadata_xml(
        self,
        *,
        certs: Sequence[KeyPair] | None = None,
        encryption_certs: Sequence[KeyPair] = (),
        sso_url: str | None = None,
        slo_url: str | Literal[False] | None = None,
        want_authn_requests_signed: bool = False,
        entities_descriptor: bool = False,
        valid_until: dt.datetime | None = None,
        entity_id: str | None = None,
        name_id_formats: Sequence[str] = (NAMEID_PERSISTENT,),
        signing_key: KeyPair | None = None,
        algorithm: SignatureAlgorithm = "rsa-sha256",
        digest: DigestAlgorithm = "sha256",
    ) -> str:
        """An EntityDescriptor with an IDPSSODescriptor.

        ``certs`` (default ``[self.key]``) each become a KeyDescriptor use="signing";
        ``encryption_certs`` a KeyDescriptor use="encryption". ``slo_url``: None
        means ``self.slo_url``, False none at all. ``signing_key`` signs the
        metadata (enveloped, on the root element).
        """
        certs = [self.key] if certs is None else list(certs)
        sso = sso_url if sso_url is not None else self.sso_url
        slo = self.slo_url if slo_url is None else (slo_url or None)
        entity = etree.Element(
            _q(MD_NS, "EntityDescriptor"),
            {"entityID": entity_id or self.entity_id, "ID": new_id()},
            nsmap={"md": MD_NS, "ds": DS_NS},
        )
        if valid_until is not None and not entities_descriptor:
            entity.set("validUntil", saml_time(valid_until))
        idp = _sub(
            entity,
            MD_NS,
            "IDPSSODescriptor",
            protocolSupportEnumeration=SAMLP_NS,
            WantAuthnRequestsSigned="true" if want_authn_requests_signed else "false",
        )
        for use, pairs in (("signing", certs), ("encryption", list(encryption_certs))):
            for pair in pairs:
                kd = _sub(idp, MD_NS, "KeyDescriptor", use=use)
                x509_data = _sub(_sub(kd, DS_NS, "KeyInfo"), DS_NS, "X509Data")
                _sub(x509_data, DS_NS, "X509Certificate", pair.cert_b64)
        if slo:
            for binding in (BINDING_REDIRECT, BINDING_POST):
                _sub(idp, MD_NS, "SingleLogoutService", Binding=binding, Location=slo)
        for fmt in name_id_formats:
            _sub(idp, MD_NS, "NameIDFormat", fmt)
        for binding in (BINDING_REDIRECT, BINDING_POST):
            _sub(idp, MD_NS, "SingleSignOnService", Binding=binding, Location=sso)
        root = entity
        if entities_descriptor:
            root = etree.Element(
                _q(MD_NS, "EntitiesDescriptor"),
                {"ID": new_id()},
                nsmap={"md": MD_NS, "ds": DS_NS},
            )
            if valid_until is not None:
                root.set("validUntil", saml_time(valid_until))
            root.append(entity)
        if signing_key is not None:
            sig = _signature_template(str(root.get("ID")), algorithm, digest)
            root.insert(0, sig)  # md: ds:Signature comes first, before the role descriptors
            root = parse_xml(xmlsec_sign(etree.tostring(root), signing_key))
        return _to_str(root)

    # --- Authentication responses ------------------------------------------------------

    def assertion_element(
        self,
        *,
        audience: str | Sequence[str] | None,
        recipient: str | None,
        in_response_to: str | None = None,
        issuer: str | None = None,
        name_id: str | None = "00000000-persistent-id",
        name_id_format: str | None = NAMEID_PERSISTENT,
        sp_name_qualifier: str | None = None,
        session_index: str | None = "_session-1",
        attributes: Mapping[str, Sequence[str]] | None = None,
        attribute_name_format: str | None = None,
        typed_attribute_values: bool = True,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        subject_not_on_or_after: dt.datetime | None = None,
        session_not_on_or_after: dt.datetime | None = None,
        authn_instant: dt.datetime | None = None,
        issue_instant: dt.datetime | None = None,
        assertion_id: str | None = None,
        authn_context_class_ref: str = AUTHN_CONTEXT_PASSWORD_PROTECTED,
        subject_confirmation_method: str = CM_BEARER,
        include_conditions: bool = True,
        include_authn_statement: bool = True,
    ) -> Any:
        """The unsigned saml:Assertion element (the root of its own document)."""
        now = dt.datetime.now(dt.timezone.utc)
        issue = issue_instant if issue_instant is not None else now
        start = not_before if not_before is not None else now - dt.timedelta(minutes=1)
        end = not_on_or_after if not_on_or_after is not None else now + dt.timedelta(minutes=5)
        subject_end = subject_not_on_or_after if subject_not_on_or_after is not None else end
        assertion = etree.Element(
            _q(SAML_NS, "Assertion"),
            {
                "ID": assertion_id or new_id(),
                "Version": "2.0",
                "IssueInstant": saml_time(issue),
            },
            nsmap={"saml": SAML_NS, "xs": XS_NS, "xsi": XSI_NS},
        )
        issuer = self.entity_id if issuer is None else issuer
        if issuer:
            _sub(assertion, SAML_NS, "Issuer", issuer)
        subject = _sub(assertion, SAML_NS, "Subject")
        if name_id is not None:
            nid = _sub(subject, SAML_NS, "NameID", name_id)
            if name_id_format is not None:
                nid.set("Format", name_id_format)
            if sp_name_qualifier is not None:
                nid.set("SPNameQualifier", sp_name_qualifier)
        confirmation = _sub(
            subject, SAML_NS, "SubjectConfirmation", Method=subject_confirmation_method
        )
        data = _sub(confirmation, SAML_NS, "SubjectConfirmationData")
        data.set("NotOnOrAfter", saml_time(subject_end))
        if recipient is not None:
            data.set("Recipient", recipient)
        if in_response_to is not None:
            data.set("InResponseTo", in_response_to)
        if include_conditions:
            conditions = _sub(
                assertion,
                SAML_NS,
                "Conditions",
                NotBefore=saml_time(start),
                NotOnOrAfter=saml_time(end),
            )
            if audience is not None:
                restriction = _sub(conditions, SAML_NS, "AudienceRestriction")
                for aud in [audience] if isinstance(audience, str) else audience:
                    _sub(restriction, SAML_NS, "Audience", aud)
        if include_authn_statement:
            statement = _sub(
                assertion,
                SAML_NS,
                "AuthnStatement",
                AuthnInstant=saml_time(
                    authn_instant if authn_instant is not None else now - dt.timedelta(minutes=1)
                ),
            )
            if session_index is not None:
                statement.set("SessionIndex", session_index)
            if session_not_on_or_after is not None:
                statement.set("SessionNotOnOrAfter", saml_time(session_not_on_or_after))
            context = _sub(statement, SAML_NS, "AuthnContext")
            _sub(context, SAML_NS, "AuthnContextClassRef", authn_context_class_ref)
        if attributes:
            attr_statement = _sub(assertion, SAML_NS, "AttributeStatement")
            for name, values in attributes.items():
                attr = _sub(attr_statement, SAML_NS, "Attribute", Name=name)
                if attribute_name_format is not None:
                    attr.set("NameFormat", attribute_name_format)
                _set_attribute_values(attr, values, typed=typed_attribute_values)
        return assertion

    def response(
        self,
        *,
        destination: str | None,
        audience: str | Sequence[str] | None,
        recipient: str | None = None,
        in_response_to: str | None = None,
        issuer: str | None = None,
        assertion_issuer: str | None = None,
        name_id: str | None = "00000000-persistent-id",
        name_id_format: str | None = NAMEID_PERSISTENT,
        sp_name_qualifier: str | None = None,
        session_index: str | None = "_session-1",
        attributes: Mapping[str, Sequence[str]] | None = None,
        attribute_name_format: str | None = None,
        typed_attribute_values: bool = True,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        subject_not_on_or_after: dt.datetime | None = None,
        session_not_on_or_after: dt.datetime | None = None,
        authn_instant: dt.datetime | None = None,
        issue_instant: dt.datetime | None = None,
        assertion_issue_instant: dt.datetime | None = None,
        status: str = STATUS_SUCCESS,
        sub_status: str | None = None,
        status_message: str | None = None,
        assertion_id: str | None = None,
        response_id: str | None = None,
        authn_context_class_ref: str = AUTHN_CONTEXT_PASSWORD_PROTECTED,
        subject_confirmation_method: str = CM_BEARER,
        include_conditions: bool = True,
        include_authn_statement: bool = True,
        sign_assertion: bool = True,
        sign_response: bool = False,
        signing_key: KeyPair | None = None,
        response_signing_key: KeyPair | None = None,
        algorithm: SignatureAlgorithm = "rsa-sha256",
        digest: DigestAlgorithm = "sha256",
        encrypt_to: KeyPair | None = None,
        encryption_algorithm: EncryptionAlgorithm = "aes256-cbc",
        key_transport: KeyTransport = "rsa-oaep-mgf1p",
        include_assertion: bool = True,
        assertion_count: int = 1,
    ) -> str:
        """A samlp:Response, as XML text.

        ``destination`` None leaves the Destination attribute out; ``recipient``
        defaults to ``destination``; ``issuer`` (default ``entity_id``) is the
        Response's Issuer and, unless ``assertion_issuer`` is given, the
        assertion's; an empty string leaves the Issuer element out. ``audience``
        None leaves the AudienceRestriction out, ``name_id`` None the NameID.
        Times default to now, with the assertion valid from a minute ago to five
        minutes ahead (``subject_not_on_or_after`` defaults to ``not_on_or_after``).

        Order of work: the assertion is signed (``signing_key``, default
        ``self.key``), then encrypted to ``encrypt_to`` (an EncryptedAssertion),
        then the Response is signed when ``sign_response`` (``response_signing_key``,
        default ``signing_key``). ``assertion_count`` > 1 repeats the assertion (each
        with its own ID, each signed).
        """
        now = dt.datetime.now(dt.timezone.utc)
        key = signing_key or self.key
        response_key = response_signing_key or key
        resp = etree.Element(
            _q(SAMLP_NS, "Response"),
            {
                "ID": response_id or new_id(),
                "Version": "2.0",
                "IssueInstant": saml_time(issue_instant if issue_instant is not None else now),
            },
            nsmap={"samlp": SAMLP_NS, "saml": SAML_NS},
        )
        if destination is not None:
            resp.set("Destination", destination)
        if in_response_to is not None:
            resp.set("InResponseTo", in_response_to)
        response_issuer = self.entity_id if issuer is None else issuer
        if response_issuer:
            _sub(resp, SAML_NS, "Issuer", response_issuer)
        _add_status(resp, status, sub_status, status_message)
        if include_assertion:
            for index in range(assertion_count):
                assertion = self.assertion_element(
                    audience=audience,
                    recipient=recipient if recipient is not None else destination,
                    in_response_to=in_response_to,
                    issuer=assertion_issuer if assertion_issuer is not None else issuer,
                    name_id=name_id,
                    name_id_format=name_id_format,
                    sp_name_qualifier=sp_name_qualifier,
                    session_index=session_index,
                    attributes=attributes,
                    attribute_name_format=attribute_name_format,
                    typed_attribute_values=typed_attribute_values,
                    not_before=not_before,
                    not_on_or_after=not_on_or_after,
                    subject_not_on_or_after=subject_not_on_or_after,
                    session_not_on_or_after=session_not_on_or_after,
                    authn_instant=authn_instant,
                    issue_instant=assertion_issue_instant or issue_instant,
                    assertion_id=assertion_id if index == 0 else None,
                    authn_context_class_ref=authn_context_class_ref,
                    subject_confirmation_method=subject_confirmation_method,
                    include_conditions=include_conditions,
                    include_authn_statement=include_authn_statement,
                )
                if sign_assertion:
                    assertion = _sign_element(assertion, key, algorithm, digest)
                if encrypt_to is not None:
                    encrypted = xmlsec_encrypt(
                        etree.tostring(assertion),
                        encrypt_to,
                        algorithm=encryption_algorithm,
                        key_transport=key_transport,
                    )
                    wrapper = _sub(resp, SAML_NS, "EncryptedAssertion")
                    wrapper.append(encrypted)
                else:
                    resp.append(assertion)
        if sign_response:
            resp = _sign_element(resp, response_key, algorithm, digest)
        return _to_str(resp)

    # --- Single logout -----------------------------------------------------------------

    def _logout_request_element(
        self,
        *,
        destination: str | None,
        name_id: str,
        name_id_format: str | None,
        session_index: str | Sequence[str] | None,
        issuer: str | None,
        request_id: str | None,
        issue_instant: dt.datetime | None,
        not_on_or_after: dt.datetime | None,
        reason: str | None,
    ) -> Any:
        now = dt.datetime.now(dt.timezone.utc)
        root = etree.Element(
            _q(SAMLP_NS, "LogoutRequest"),
            {
                "ID": request_id or new_id(),
                "Version": "2.0",
                "IssueInstant": saml_time(issue_instant if issue_instant is not None else now),
            },
            nsmap={"samlp": SAMLP_NS, "saml": SAML_NS},
        )
        if destination is not None:
            root.set("Destination", destination)
        if not_on_or_after is not None:
            root.set("NotOnOrAfter", saml_time(not_on_or_after))
        if reason is not None:
            root.set("Reason", reason)
        _sub(root, SAML_NS, "Issuer", issuer or self.entity_id)
        nid = _sub(root, SAML_NS, "NameID", name_id)
        if name_id_format is not None:
            nid.set("Format", name_id_format)
        indexes = [session_index] if isinstance(session_index, str) else (session_index or [])
        for index in indexes:
            _sub(root, SAMLP_NS, "SessionIndex", index)
        return root

    def logout_request(
        self,
        *,
        destination: str | None,
        name_id: str,
        name_id_format: str | None = NAMEID_PERSISTENT,
        session_index: str | Sequence[str] | None = None,
        issuer: str | None = None,
        request_id: str | None = None,
        issue_instant: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        reason: str | None = None,
        sign: bool = True,
        signing_key: KeyPair | None = None,
        algorithm: SignatureAlgorithm = "rsa-sha256",
        digest: DigestAlgorithm = "sha256",
    ) -> str:
        """A samlp:LogoutRequest for the HTTP-POST binding (enveloped signature)."""
        root = self._logout_request_element(
            destination=destination,
            name_id=name_id,
            name_id_format=name_id_format,
            session_index=session_index,
            issuer=issuer,
            request_id=request_id,
            issue_instant=issue_instant,
            not_on_or_after=not_on_or_after,
            reason=reason,
        )
        if sign:
            root = _sign_element(root, signing_key or self.key, algorithm, digest)
        return _to_str(root)

    def redirect_logout_request_query(
        self,
        *,
        destination: str | None,
        name_id: str,
        name_id_format: str | None = NAMEID_PERSISTENT,
        session_index: str | Sequence[str] | None = None,
        issuer: str | None = None,
        request_id: str | None = None,
        issue_instant: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        reason: str | None = None,
        relay_state: str | None = None,
        sign: bool = True,
        signing_key: KeyPair | None = None,
        sigalg: str = SIG_RSA_SHA256,
    ) -> dict[str, str]:
        """Query parameters of a LogoutRequest over the HTTP-Redirect binding.

        See ``redirect_query`` for the form of the result.
        """
        root = self._logout_request_element(
            destination=destination,
            name_id=name_id,
            name_id_format=name_id_format,
            session_index=session_index,
            issuer=issuer,
            request_id=request_id,
            issue_instant=issue_instant,
            not_on_or_after=not_on_or_after,
            reason=reason,
        )
        return redirect_query(
            "SAMLRequest",
            _to_str(root),
            relay_state=relay_state,
            signing_key=(signing_key or self.key) if sign else None,
            sigalg=sigalg,
        )

    def _logout_response_element(
        self,
        *,
        destination: str | None,
        in_response_to: str | None,
        status: str,
        sub_status: str | None,
        status_message: str | None,
        issuer: str | None,
        response_id: str | None,
        issue_instant: dt.datetime | None,
    ) -> Any:
        now = dt.datetime.now(dt.timezone.utc)
        root = etree.Element(
            _q(SAMLP_NS, "LogoutResponse"),
            {
                "ID": response_id or new_id(),
                "Version": "2.0",
                "IssueInstant": saml_time(issue_instant if issue_instant is not None else now),
            },
            nsmap={"samlp": SAMLP_NS, "saml": SAML_NS},
        )
        if destination is not None:
            root.set("Destination", destination)
        if in_response_to is not None:
            root.set("InResponseTo", in_response_to)
        _sub(root, SAML_NS, "Issuer", issuer or self.entity_id)
        _add_status(root, status, sub_status, status_message)
        return root

    def logout_response(
        self,
        *,
        destination: str | None,
        in_response_to: str | None,
        status: str = STATUS_SUCCESS,
        sub_status: str | None = None,
        status_message: str | None = None,
        issuer: str | None = None,
        response_id: str | None = None,
        issue_instant: dt.datetime | None = None,
        sign: bool = True,
        signing_key: KeyPair | None = None,
        algorithm: SignatureAlgorithm = "rsa-sha256",
        digest: DigestAlgorithm = "sha256",
    ) -> str:
        """A samlp:LogoutResponse for the HTTP-POST binding (enveloped signature)."""
        root = self._logout_response_element(
            destination=destination,
            in_response_to=in_response_to,
            status=status,
            sub_status=sub_status,
            status_message=status_message,
            issuer=issuer,
            response_id=response_id,
            issue_instant=issue_instant,
        )
        if sign:
            root = _sign_element(root, signing_key or self.key, algorithm, digest)
        return _to_str(root)

    def redirect_logout_response_query(
        self,
        *,
        destination: str | None,
        in_response_to: str | None,
        status: str = STATUS_SUCCESS,
        sub_status: str | None = None,
        status_message: str | None = None,
        issuer: str | None = None,
        response_id: str | None = None,
        issue_instant: dt.datetime | None = None,
        relay_state: str | None = None,
        sign: bool = True,
        signing_key: KeyPair | None = None,
        sigalg: str = SIG_RSA_SHA256,
    ) -> dict[str, str]:
        """Query parameters of a LogoutResponse over the HTTP-Redirect binding."""
        root = self._logout_response_element(
            destination=destination,
            in_response_to=in_response_to,
            status=status,
            sub_status=sub_status,
            status_message=status_message,
            issuer=issuer,
            response_id=response_id,
            issue_instant=issue_instant,
        )
        return redirect_query(
            "SAMLResponse",
            _to_str(root),
            relay_state=relay_state,
            signing_key=(signing_key or self.key) if sign else None,
            sigalg=sigalg,
        )

    # --- Attacks on the parser ---------------------------------------------------------

    def xxe_response(
        self, *, entity_url: str = "file:///etc/passwd", attribute: str = "xxe", **kwargs: Any
    ) -> str:
        """A Response whose DOCTYPE declares an external entity, used in an attribute value.

        ``kwargs`` go to ``response`` (``destination`` and ``audience`` are needed).
        The entity reference replaces a value after signing, so any signature
        made is broken: a service provider must reject the document for its
        DOCTYPE before it reads it further, and never fetch ``entity_url``.
        """
        doctype = f'<!DOCTYPE samlp:Response [\n  <!ENTITY xxe SYSTEM "{entity_url}">\n]>\n'
        return self._with_entity(doctype, "&xxe;", attribute, kwargs)

    def billion_laughs(self, *, levels: int = 10, attribute: str = "lol", **kwargs: Any) -> str:
        """A Response whose DOCTYPE nests entities ten times ten deep (the "billion laughs")."""
        lines = ['  <!ENTITY lol0 "lol">']
        for i in range(1, levels):
            lines.append(f'  <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">')
        doctype = "<!DOCTYPE samlp:Response [\n" + "\n".join(lines) + "\n]>\n"
        return self._with_entity(doctype, f"&lol{levels - 1};", attribute, kwargs)

    def _with_entity(
        self, doctype: str, reference: str, attribute: str, kwargs: dict[str, Any]
    ) -> str:
        placeholder = "ENTITY-PLACEHOLDER-" + secrets.token_hex(8)
        attributes = dict(kwargs.pop("attributes", None) or {})
        attributes[attribute] = [placeholder]
        kwargs.setdefault("typed_attribute_values", False)
        xml = self.response(attributes=attributes, **kwargs)
        if xml.count(placeholder) != 1:
            raise ValueError("the attribute value to replace is not in the document once")
        return doctype + xml.replace(placeholder, reference)


def _add_status(root: Any, status: str, sub_status: str | None, status_message: str | None) -> None:
    status_el = _sub(root, SAMLP_NS, "Status")
    code = _sub(status_el, SAMLP_NS, "StatusCode", Value=status)
    if sub_status is not None:
        _sub(code, SAMLP_NS, "StatusCode", Value=sub_status)
    if status_message is not None:
        _sub(status_el, SAMLP_NS, "StatusMessage", status_message)


def _set_attribute_values(attr: Any, values: Sequence[str], *, typed: bool) -> None:
    for old in attr.findall(_q(SAML_NS, "AttributeValue")):
        attr.remove(old)
    for value in values:
        el = _sub(attr, SAML_NS, "AttributeValue", value)
        if typed:
            el.set(_q(XSI_NS, "type"), "xs:string")


# --- HTTP-Redirect binding -------------------------------------------------------------


def deflate_b64(xml: str) -> str:
    """base64(raw DEFLATE(xml)): the SAMLRequest/SAMLResponse value of the Redirect binding."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return _b64(compressor.compress(xml.encode()) + compressor.flush())


def inflate_b64(value: str) -> str:
    return zlib.decompress(base64.b64decode(value), -15).decode()


def _signed_octets(pairs: Sequence[tuple[str, str]]) -> bytes:
    return "&".join(f"{k}={quote_plus(v)}" for k, v in pairs).encode()


def redirect_query(
    field_name: Literal["SAMLRequest", "SAMLResponse"],
    xml: str,
    *,
    relay_state: str | None = None,
    signing_key: KeyPair | None = None,
    sigalg: str = SIG_RSA_SHA256,
) -> dict[str, str]:
    """Parameters of a message over the HTTP-Redirect binding (SAML bindings §3.4.4.1).

    The dict holds the decoded values, in the order the signature covers them
    (SAMLRequest|SAMLResponse, RelayState, SigAlg, then Signature);
    ``urllib.parse.urlencode`` (or Django's test client) encodes each with
    ``quote_plus``, the encoding the signature was computed over, so the query
    it builds carries the exact signed octets. ``redirect_url`` builds the URL.
    """
    pairs: list[tuple[str, str]] = [(field_name, deflate_b64(xml))]
    if relay_state is not None:
        pairs.append(("RelayState", relay_state))
    if signing_key is not None:
        if sigalg not in _REDIRECT_HASHES:
            raise ValueError(f"unsupported SigAlg {sigalg!r}")
        pairs.append(("SigAlg", sigalg))
        signature = signing_key.private_key.sign(
            _signed_octets(pairs), padding.PKCS1v15(), _REDIRECT_HASHES[sigalg]()
        )
        pairs.append(("Signature", _b64(signature)))
    return dict(pairs)


def redirect_url(location: str, params: Mapping[str, str]) -> str:
    """``location`` with ``params`` appended as a query string (quote_plus, in order)."""
    sep = "&" if "?" in location else "?"
    return location + sep + urlencode(list(params.items()))


def read_redirect_request(url: str) -> tuple[str, dict[str, str]]:
    """The XML and the (decoded) query parameters of a Redirect-binding URL.

    Reads SAMLRequest (an AuthnRequest or a LogoutRequest), or SAMLResponse.
    """
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    value = params.get("SAMLRequest", params.get("SAMLResponse"))
    if value is None:
        raise ValueError("no SAMLRequest or SAMLResponse in the URL")
    return inflate_b64(value), params


def verify_redirect_signature(params: Mapping[str, str] | str, cert_pem: str) -> bool:
    """Check a Redirect-binding query signature against ``cert_pem``'s public key.

    ``params``: the decoded parameters (re-encoded with ``quote_plus`` to rebuild
    the signed octets), or the URL / raw query string itself, whose original
    octets are then used, as the bindings specification requires.
    """
    raw: dict[str, str] = {}
    if isinstance(params, str):
        query = urlsplit(params).query if ("?" in params or "://" in params) else params
        for part in query.split("&"):
            name, _, value = part.partition("=")
            raw.setdefault(name, value)
        decoded = {name: unquote_plus(value) for name, value in raw.items()}
    else:
        decoded = dict(params)
        raw = {name: quote_plus(value) for name, value in decoded.items()}
    field_name = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    if field_name not in raw or "SigAlg" not in raw or "Signature" not in raw:
        return False
    hash_cls = _REDIRECT_HASHES.get(decoded["SigAlg"])
    if hash_cls is None:
        return False
    names = [field_name, "RelayState", "SigAlg"]
    octets = "&".join(f"{n}={raw[n]}" for n in names if n in raw).encode()
    try:
        signature = base64.b64decode(decoded["Signature"], validate=True)
    except ValueError:
        return False
    public_key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(signature, octets, padding.PKCS1v15(), hash_cls())
    except InvalidSignature:
        return False
    return True


# --- Signature wrapping and other tampering --------------------------------------------


def _response_root(xml: str) -> Any:
    root = parse_xml(xml)
    if root.tag != _q(SAMLP_NS, "Response"):
        raise ValueError(f"not a samlp:Response: {root.tag}")
    return root


def _signed_assertion(root: Any) -> Any:
    for assertion in root.findall(_q(SAML_NS, "Assertion")):
        if assertion.find(_q(DS_NS, "Signature")) is not None:
            return assertion
    raise ValueError("the Response has no signed saml:Assertion (encrypted ones cannot be wrapped)")


def _make_evil(
    element: Any,
    evil_name_id: str | None,
    evil_attributes: Mapping[str, Sequence[str]] | None,
    *,
    new_id: str | None,
) -> None:
    """Change the subject (and attributes) of an assertion copy, in place."""
    if new_id is not None:
        element.set("ID", new_id)
    if evil_name_id is not None:
        for nid in element.iter(_q(SAML_NS, "NameID")):
            nid.text = evil_name_id
    if evil_attributes:
        statement = element.find(_q(SAML_NS, "AttributeStatement"))
        if statement is None:
            statement = _sub(element, SAML_NS, "AttributeStatement")
        for name, values in evil_attributes.items():
            attr = next(
                (a for a in statement.findall(_q(SAML_NS, "Attribute")) if a.get("Name") == name),
                None,
            )
            if attr is None:
                attr = _sub(statement, SAML_NS, "Attribute", Name=name)
            _set_attribute_values(attr, values, typed=True)


def _remove_child_signatures(element: Any) -> None:
    for sig in element.findall(_q(DS_NS, "Signature")):
        element.remove(sig)


def wrap_evil_assertion_beside(
    xml: str,
    evil_name_id: str,
    *,
    evil_attributes: Mapping[str, Sequence[str]] | None = None,
    same_id: bool = False,
) -> str:
    """XSW3: an unsigned evil copy of the signed assertion, inserted before it.

    The evil copy gets a new ID (``same_id`` keeps the original's: a document
    with two equal IDs). The signed assertion is untouched: its signature still
    verifies, so a service provider that checks one assertion and reads another
    lets the attacker in.
    """
    root = _response_root(xml)
    signed = _signed_assertion(root)
    evil = copy.deepcopy(signed)
    _remove_child_signatures(evil)
    _make_evil(evil, evil_name_id, evil_attributes, new_id=None if same_id else new_id())
    signed.addprevious(evil)
    return _to_str(root)


def wrap_signed_assertion_moved(
    xml: str,
    evil_name_id: str,
    *,
    into: Literal["extensions", "signature_object"] = "extensions",
    evil_attributes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """XSW7 / XSW8: an evil copy with the same ID takes the signed assertion's place.

    ``into="extensions"`` (XSW7): the signed assertion, signature and all, moves
    into a samlp:Extensions element of the Response (after the Issuer and any
    Response signature); the evil copy, with no signature, stands where it was.

    ``into="signature_object"`` (XSW8): the evil copy keeps the original
    ds:Signature, and a ds:Object appended to that signature holds the original
    assertion without its signature. The enveloped-signature transform removes
    nothing from it, so the digest still matches the original.

    In both the signature verifies over the original element, which is still in
    the document; the first assertion under the Response is the attacker's.
    """
    root = _response_root(xml)
    signed = _signed_assertion(root)
    evil = copy.deepcopy(signed)
    _make_evil(evil, evil_name_id, evil_attributes, new_id=None)
    if into == "extensions":
        _remove_child_signatures(evil)
        signed.addprevious(evil)
        extensions = etree.Element(_q(SAMLP_NS, "Extensions"))
        anchor = root.find(_q(DS_NS, "Signature"))
        if anchor is None:
            anchor = root.find(_q(SAML_NS, "Issuer"))
        if anchor is None:
            root.insert(0, extensions)
        else:
            anchor.addnext(extensions)
        extensions.append(signed)  # moves it
    elif into == "signature_object":
        original = copy.deepcopy(signed)
        _remove_child_signatures(original)
        sig = evil.find(_q(DS_NS, "Signature"))
        obj = _sub(sig, DS_NS, "Object")
        obj.append(original)
        signed.addprevious(evil)
        root.remove(signed)
    else:
        raise ValueError(f"unknown place {into!r}")
    return _to_str(root)


def wrap_signed_response_moved(
    xml: str,
    evil_name_id: str,
    *,
    evil_attributes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """XSW1: for a signed Response, an evil Response (same ID) becomes the root.

    The evil Response carries the original ds:Signature; a ds:Object in that
    signature holds the original Response without its signature, over which the
    signature still verifies. Assertion signatures inside the evil copy are
    dropped (it is unsigned apart from the moved response signature).
    """
    root = _response_root(xml)
    sig = root.find(_q(DS_NS, "Signature"))
    if sig is None:
        raise ValueError("the Response is not signed")
    original = copy.deepcopy(root)
    _remove_child_signatures(original)
    evil = root
    for assertion in evil.findall(_q(SAML_NS, "Assertion")):
        _remove_child_signatures(assertion)
        _make_evil(assertion, evil_name_id, evil_attributes, new_id=new_id())
    _sub(sig, DS_NS, "Object").append(original)
    return _to_str(evil)


def tamper_name_id(xml: str, new: str) -> str:
    """Change the signed assertion's NameID after signing: its signature no longer verifies."""
    root = _response_root(xml)
    assertion = root.find(_q(SAML_NS, "Assertion"))
    if assertion is None:
        raise ValueError("the Response has no saml:Assertion")
    nid = assertion.find(f"{_q(SAML_NS, 'Subject')}/{_q(SAML_NS, 'NameID')}")
    if nid is None:
        raise ValueError("the assertion has no NameID")
    nid.text = new
    return _to_str(root)


def strip_signatures(xml: str) -> str:
    """The document with every ds:Signature removed."""
    root = parse_xml(xml)
    for sig in list(root.iter(_q(DS_NS, "Signature"))):
        parent = sig.getparent()
        if parent is None:
            raise ValueError("the document is a bare signature")
        parent.remove(sig)
    return _to_str(root)


def xxe_response(
    *,
    idp: FakeSAMLIdP | None = None,
    entity_url: str = "file:///etc/passwd",
    attribute: str = "xxe",
    **kwargs: Any,
) -> str:
    """``FakeSAMLIdP.xxe_response`` of ``idp`` (default: a new fake IdP)."""
    return (idp or FakeSAMLIdP()).xxe_response(entity_url=entity_url, attribute=attribute, **kwargs)


def billion_laughs(
    *, idp: FakeSAMLIdP | None = None, levels: int = 10, attribute: str = "lol", **kwargs: Any
) -> str:
    """``FakeSAMLIdP.billion_laughs`` of ``idp`` (default: a new fake IdP)."""
    return (idp or FakeSAMLIdP()).billion_laughs(levels=levels, attribute=attribute, **kwargs)
