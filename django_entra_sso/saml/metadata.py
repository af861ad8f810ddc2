"""A SAML identity provider's metadata: fetched or pasted, parsed safely, cached.

What a connector needs from the IdP's ``EntityDescriptor``: its entity ID, its
single sign-on and single logout endpoints, its signing certificates (several
during a rollover) and whether it wants signed requests. Metadata by URL is
fetched through ``provider_http`` (timeouts, size cap) and kept in the app's
cache like OIDC discovery: refreshed after ``METADATA_CACHE_TTL``, and served
stale for up to ``METADATA_STALE_TTL`` while the IdP cannot be reached.

The XML is parsed with ``defusedxml``: no DTDs, no entities, no network.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, tostring

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..cache import cache_key, tolerant_get, tolerant_set
from ..conf import app_settings
from ..provider_http import ProviderHTTPError, get_bytes
from .xmlsec import XmlsecMissing, xmlsec_binary

if TYPE_CHECKING:
    from ..models import Connector

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#: Federation metadata of one IdP is a few kilobytes (Entra's: about 10 KB).
MAX_METADATA_BYTES = 1024 * 1024


class SAMLMetadataError(Exception):
    """The IdP's metadata could not be had or is not usable; the message says why."""


class MetadataUnreachable(SAMLMetadataError):
    """The metadata URL could not be fetched, and no earlier copy is kept."""


@dataclass(frozen=True)
class Certificate:
    """One of the IdP's signing certificates, as the admin shows it."""

    pem: str
    subject: str
    not_after: datetime
    sha256: str

    @property
    def expired(self) -> bool:
        return self.not_after <= datetime.now(timezone.utc)


@dataclass(frozen=True)
class Endpoint:
    url: str
    binding: str
    response_url: str = ""


@dataclass(frozen=True)
class IdPMetadata:
    entity_id: str
    sso: Endpoint
    slo: Endpoint | None
    certificates: tuple[Certificate, ...]
    want_authn_requests_signed: bool
    #: The ``EntityDescriptor`` alone, as text: what pysaml2 is given.
    xml: str = field(repr=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.xml.encode()).hexdigest()


def _text(element: Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _endpoint(descriptor: Element, tag: str) -> Endpoint | None:
    found = {}
    for element in descriptor.findall(f"{{{MD}}}{tag}"):
        binding, location = element.get("Binding", ""), element.get("Location", "")
        if location.startswith(("https://", "http://")) and binding not in found:
            found[binding] = Endpoint(location, binding, element.get("ResponseLocation", ""))
    return found.get(BINDING_REDIRECT) or found.get(BINDING_POST)


def _certificate(b64: str) -> Certificate:
    try:
        der = base64.b64decode("".join(b64.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise SAMLMetadataError(
            f"A signing certificate in the metadata is unreadable: {exc}"
        ) from None
    body = base64.encodebytes(der).decode("ascii")
    return Certificate(
        pem=f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n",
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )


def _idp_descriptors(root: Element) -> list[Element]:
    if root.tag == f"{{{MD}}}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{{{MD}}}EntitiesDescriptor":
        entities = list(root.iter(f"{{{MD}}}EntityDescriptor"))
    else:
        raise SAMLMetadataError("This is not SAML metadata (no EntityDescriptor).")
    return [e for e in entities if e.find(f"{{{MD}}}IDPSSODescriptor") is not None]


def _refuse_expired(*elements: Element) -> None:
    """``validUntil`` in the past: its publisher says the document is not to be used."""
    for element in elements:
        valid_until = element.get("validUntil", "")
        if not valid_until:
            continue
        try:
            moment = datetime.fromisoformat(valid_until.replace("Z", "+00:00"))
        except ValueError:
            raise SAMLMetadataError(
                f"The metadata's validUntil {valid_until!r} is not a time."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        if moment <= datetime.now(timezone.utc):
            raise SAMLMetadataError(
                f"The metadata expired on {valid_until} (validUntil): get a current copy "
                "from the identity provider."
            )


def parse_metadata(xml: str | bytes) -> IdPMetadata:
    """The identity provider ``xml`` describes; ``SAMLMetadataError`` when it is not usable."""
    if len(xml) > MAX_METADATA_BYTES:
        raise SAMLMetadataError(f"The metadata is larger than {MAX_METADATA_BYTES} bytes.")
    try:
        root = fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise SAMLMetadataError(f"The metadata declares a DTD or entities: {exc!r}") from None
    except Exception as exc:  # noqa: BLE001 - ParseError and friends: not XML
        raise SAMLMetadataError(f"The metadata is not well-formed XML ({exc}).") from None
    entities = _idp_descriptors(root)
    if len(entities) != 1:
        raise SAMLMetadataError(
            f"The metadata describes {len(entities)} identity providers; a connector needs "
            "the metadata of exactly one."
        )
    entity = entities[0]
    descriptor = entity.find(f"{{{MD}}}IDPSSODescriptor")
    assert descriptor is not None
    entity_id = entity.get("entityID", "").strip()
    if not entity_id:
        raise SAMLMetadataError("The metadata's EntityDescriptor has no entityID.")
    _refuse_expired(root, entity)
    sso = _endpoint(descriptor, "SingleSignOnService")
    if sso is None:
        raise SAMLMetadataError(
            "The metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding."
        )
    certificates = []
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use", "signing") != "signing":
            continue
        for cert in key.iter(f"{{{DS}}}X509Certificate"):
            certificates.append(_certificate(_text(cert)))
    if not certificates:
        raise SAMLMetadataError("The metadata holds no signing certificate.")
    return IdPMetadata(
        entity_id=entity_id,
        sso=sso,
        slo=_endpoint(descriptor, "SingleLogoutService"),
        certificates=tuple(certificates),
        want_authn_requests_signed=descriptor.get("WantAuthnRequestsSigned") in ("true", "1"),
        xml=tostring(entity, encoding="unicode"),
    )


def _fetch(url: str, *, force: bool) -> tuple[str, float]:
    """``(xml, fetched_at)`` of the metadata at ``url``, from the cache when fresh enough."""
    key = cache_key("saml-metadata", url)
    entry = tolerant_get(key)
    if not (isinstance(entry, dict) and {"xml", "fetched_at"} <= entry.keys()):
        entry = None
    now = time.time()
    if entry and not force and now - entry["fetched_at"] < app_settings.METADATA_CACHE_TTL:
        return entry["xml"], entry["fetched_at"]
    try:
        raw = get_bytes(url)
        parse_metadata(raw)  # a broken document must not replace a good copy
    except (ProviderHTTPError, SAMLMetadataError) as exc:
        if entry:
            return entry["xml"], entry["fetched_at"]
        kind = MetadataUnreachable if isinstance(exc, ProviderHTTPError) else SAMLMetadataError
        raise kind(f"{url}: {exc}") from exc
    xml = raw.decode("utf-8", "replace")
    tolerant_set(key, {"xml": xml, "fetched_at": now}, app_settings.METADATA_STALE_TTL)
    return xml, now


def get_idp_metadata(connector: Connector, *, force: bool = False) -> IdPMetadata:
    """The connector's IdP metadata: pasted, or fetched from its URL (cached)."""
    if connector.saml_metadata_xml:
        return parse_metadata(connector.saml_metadata_xml)
    if not connector.saml_metadata_url:
        raise SAMLMetadataError(f"Connector {connector.slug} has no SAML metadata.")
    xml, _fetched = _fetch(connector.saml_metadata_url, force=force)
    return parse_metadata(xml)


#: A signing certificate this close to its end is worth a warning in "Test connection".
EXPIRY_WARNING_DAYS = 30


@dataclass
class SAMLConnectionReport:
    """What "Test connection" found for a SAML connector."""

    ok: bool
    source: str
    error: str = ""
    entity_id: str = ""
    sso_url: str = ""
    slo_url: str = ""
    want_authn_requests_signed: bool = False
    certificates: list[Certificate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_saml_connection(connector: Connector) -> SAMLConnectionReport:
    """Fetch (afresh) and parse the IdP's metadata, and say what was found, or why not."""
    report = SAMLConnectionReport(
        ok=False, source=connector.saml_metadata_url or "pasted metadata XML"
    )
    try:
        metadata = get_idp_metadata(connector, force=True)
    except SAMLMetadataError as exc:
        report.error = str(exc)
        return report
    report.entity_id = metadata.entity_id
    report.sso_url = metadata.sso.url
    report.slo_url = metadata.slo.url if metadata.slo else ""
    report.want_authn_requests_signed = metadata.want_authn_requests_signed
    report.certificates = list(metadata.certificates)
    now = datetime.now(timezone.utc)
    usable = [cert for cert in metadata.certificates if not cert.expired]
    if not usable:
        report.problems.append("Every signing certificate in the metadata has expired.")
    for cert in metadata.certificates:
        days = (cert.not_after - now).days
        if 0 <= days < EXPIRY_WARNING_DAYS:
            report.warnings.append(
                f"The signing certificate {cert.subject} expires in {days} day(s): ask for "
                "the IdP's new certificate (metadata by URL picks it up by itself)."
            )
    if not metadata.slo:
        report.warnings.append(
            "The IdP has no single logout endpoint: signing out here will not sign out there."
        )
    try:
        xmlsec_binary()
    except XmlsecMissing as exc:
        report.problems.append(str(exc))
    report.ok = not report.problems
    report.error = " ".join(report.problems)
    return report
