"""A SAML 2.0 identity provider beside the OIDC one, for the bookstore's SAML connector.

Like the OIDC side (django-oauth-toolkit), it is off-the-shelf software that is
only configured: pysaml2's IdP (``saml2.server.Server``) reads the requests and
makes, signs and checks the XML (with the ``xmlsec1`` program). Its URLs:

``/saml/metadata/``
    The IdP's metadata; this absolute URL is the IdP's entity ID.
``/saml/sso/``
    Single sign-on, HTTP-Redirect binding. An AuthnRequest from a trusted SP
    (its signature checked when it has one, and required when the SP's
    metadata says it signs them), then the person signs in with the IdP's
    login page and session (an anonymous browser goes to
    ``/accounts/login/?next=...`` and comes back). The Response (signed, the
    assertion and the Response both, RSA-SHA256) is posted to the SP's
    assertion consumer service by the browser (HTTP-POST binding), with the
    RelayState it came with.
``/saml/slo/``
    Single logout, HTTP-Redirect and HTTP-POST bindings: an SP's signed
    LogoutRequest signs the person out of the IdP, and a signed LogoutResponse
    goes back to the SP's single logout service (HTTP-Redirect).

Which SPs: those whose entity IDs are listed in ``settings.SAML_IDP_TRUSTED_SPS``
(``IDP_SAML_SP_METADATA_URLS``). django-entra-sso makes an SP's entity ID the
URL of its metadata, so the IdP fetches the metadata from there on the SP's
first request (the SP may well start after the IdP) and keeps it in memory; a
request whose signature does not verify drops the kept copy, so that an SP with
a new key pair is read again on its next request. Any other SP gets a 400 page
that says why.

The assertion: a persistent NameID (an HMAC of the user's pk and the SP's entity
ID: stable, opaque, and different at each SP), a SessionIndex, and Entra ID's
claim URIs for the email address (``<username>@settings.SAML_IDP_EMAIL_DOMAIN``),
given name, surname and groups (the group names the OIDC ``groups`` claim
carries).

Redirect-binding signatures are checked here, over the query string as sent
(SAML bindings 3.4.4.1 signs those octets; pysaml2 re-encodes decoded values),
with ``cryptography``; XML signatures are pysaml2's.

Loopback only, like the rest of this IdP: the SP metadata is fetched without
proxies, and nothing here is hardened for a network.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.request import LogoutRequest
from saml2.saml import AUTHN_PASSWORD, NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.time_util import str_to_time
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

logger = logging.getLogger(__name__)

# Entra ID's claim URIs, which django-entra-sso reads first.
_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
EMAIL = _CLAIMS + "emailaddress"
GIVEN_NAME = _CLAIMS + "givenname"
SURNAME = _CLAIMS + "surname"
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
DS = "http://www.w3.org/2000/09/xmldsig#"

#: A request is a few kilobytes; a few kilobytes of DEFLATE can unpack to gigabytes.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_METADATA_BYTES = 1024 * 1024
FETCH_TIMEOUT = 10
#: Seconds of clock difference allowed between the SP and the IdP.
CLOCK_LEEWAY = 120
#: How long an assertion may be used after it is made.
ASSERTION_MINUTES = 5

#: Redirect-binding signature algorithms accepted (no SHA-1).
RSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}


class Refused(Exception):
    """A SAML message this IdP does not act on; the text says why, on the error page."""

    status = 400


class SPUnreachable(Refused):
    """A trusted SP's metadata could not be fetched."""

    status = 502


class XmlsecMissing(Refused):
    status = 503


def xmlsec_binary() -> str:
    if not settings.SAML_IDP_XMLSEC_BINARY:
        raise XmlsecMissing(
            "The demo IdP's SAML side needs the xmlsec1 program: install it "
            "(Debian/Ubuntu: apt-get install xmlsec1; macOS: brew install libxmlsec1) "
            "or set IDP_XMLSEC_BINARY, then restart the IdP."
        )
    return settings.SAML_IDP_XMLSEC_BINARY


# -- the IdP's own addresses ----------------------------------------------------------------


@dataclass(frozen=True)
class IdPEndpoints:
    entity_id: str
    sso: str
    slo: str

    @classmethod
    def at(cls, base_url: str) -> IdPEndpoints:
        base = base_url.rstrip("/")
        return cls(
            entity_id=base + reverse("saml_metadata"),
            sso=base + reverse("saml_sso"),
            slo=base + reverse("saml_slo"),
        )


def endpoints() -> IdPEndpoints:
    return IdPEndpoints.at(settings.SAML_IDP_BASE_URL)


# -- the service providers it trusts -----------------------------------------------------------


@dataclass(frozen=True)
class TrustedSP:
    entity_id: str
    #: Its EntityDescriptor, as fetched: what pysaml2 is given.
    xml: str
    #: Its signing certificates, PEM.
    certificates: tuple[str, ...]
    authn_requests_signed: bool


_sp_cache: dict[str, TrustedSP] = {}
_sp_lock = threading.Lock()


def _pem(b64: str) -> str:
    try:
        der = base64.b64decode("".join(b64.split()), validate=True)
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise Refused("A certificate in the SP's metadata is unreadable.") from None
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def parse_sp_metadata(entity_id: str, raw: bytes) -> TrustedSP:
    """The SP described by ``raw``, which must be the metadata of ``entity_id``."""
    try:
        root = fromstring(raw, forbid_dtd=True)
    except DefusedXmlException:
        raise Refused(f"The metadata at {entity_id} declares a DTD or entities.") from None
    except Exception:  # noqa: BLE001 - ParseError and friends
        raise Refused(f"What {entity_id} serves is not XML metadata.") from None
    if root.tag != f"{{{MD}}}EntityDescriptor" or root.get("entityID") != entity_id:
        raise Refused(
            f"The metadata at {entity_id} is not an EntityDescriptor with that entityID "
            f"(entityID {root.get('entityID')!r})."
        )
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    if descriptor is None:
        raise Refused(f"The metadata at {entity_id} describes no service provider.")
    certificates = []
    for key in descriptor.findall(f"{{{MD}}}KeyDescriptor"):
        if key.get("use", "signing") == "signing":
            for cert in key.iter(f"{{{DS}}}X509Certificate"):
                certificates.append(_pem(cert.text or ""))
    try:
        xml = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"The metadata at {entity_id} is not UTF-8.") from None
    return TrustedSP(
        entity_id=entity_id,
        xml=xml,
        certificates=tuple(certificates),
        authn_requests_signed=descriptor.get("AuthnRequestsSigned") in ("true", "1"),
    )


def _fetch(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise Refused(f"{url!r} is not an http(s) URL: no metadata can be fetched from it.")
    # Straight to the SP: it runs beside this IdP, on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=FETCH_TIMEOUT) as answer:
            raw = answer.read(MAX_METADATA_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SPUnreachable(f"The SP's metadata at {url} answered HTTP {exc.code}.") from None
    except (OSError, ValueError) as exc:
        raise SPUnreachable(
            f"The SP's metadata at {url} could not be fetched ({exc}); is the SP running?"
        ) from None
    if len(raw) > MAX_METADATA_BYTES:
        raise Refused(f"The SP's metadata at {url} is larger than {MAX_METADATA_BYTES} bytes.")
    return raw


def trusted_sp(entity_id: str) -> TrustedSP:
    """The SP ``entity_id``, when this IdP trusts it; its metadata fetched on first use."""
    if entity_id not in settings.SAML_IDP_TRUSTED_SPS:
        trusted = ", ".join(settings.SAML_IDP_TRUSTED_SPS) or "none"
        raise Refused(
            f"The service provider {entity_id!r} is not one this IdP trusts "
            f"(IDP_SAML_SP_METADATA_URLS lists: {trusted})."
        )
    with _sp_lock:
        known = _sp_cache.get(entity_id)
    if known is not None:
        return known
    sp = parse_sp_metadata(entity_id, _fetch(entity_id))
    with _sp_lock:
        _sp_cache[entity_id] = sp
    logger.info("SAML: read the metadata of %s", entity_id)
    return sp


def forget_sp(entity_id: str) -> None:
    with _sp_lock:
        _sp_cache.pop(entity_id, None)


# -- pysaml2 --------------------------------------------------------------------------------


def idp_config(
    where: IdPEndpoints, sps: Sequence[TrustedSP] = (), *, for_metadata: bool = False
) -> IdPConfig:
    conf: dict = {
        "entityid": where.entity_id,
        "key_file": str(settings.SAML_IDP_KEY_FILE),
        "cert_file": str(settings.SAML_IDP_CERT_FILE),
        "accepted_time_diff": CLOCK_LEEWAY,
        "service": {
            "idp": {
                "name": "Demo IdP",
                "endpoints": {
                    "single_sign_on_service": [(where.sso, BINDING_HTTP_REDIRECT)],
                    "single_logout_service": [
                        (where.slo, BINDING_HTTP_REDIRECT),
                        (where.slo, BINDING_HTTP_POST),
                    ],
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                # Checked in this module, over the query string as sent.
                "want_authn_requests_signed": False,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "policy": {
                    "default": {
                        "lifetime": {"minutes": ASSERTION_MINUTES},
                        "attribute_restrictions": None,
                        # Attribute names are the claim URIs, as Entra ID sends them.
                        "name_form": NAME_FORMAT_URI,
                    }
                },
            }
        },
    }
    if sps:
        conf["metadata"] = {"inline": [sp.xml for sp in sps]}
    if not for_metadata:
        # Given xmlsec1, pysaml2 lists every algorithm it knows (MD5 and SHA-1 too)
        # in the metadata; without, only what is configured here.
        conf["xmlsec_binary"] = xmlsec_binary()
    config = IdPConfig()
    config.load(conf)
    return config


def metadata_xml(base_url: str | None = None) -> str:
    """The IdP's metadata (entity ID, SSO and SLO endpoints, signing certificate)."""
    where = IdPEndpoints.at(base_url) if base_url else endpoints()
    return str(entity_descriptor(idp_config(where, for_metadata=True)))


def server_for(sp: TrustedSP) -> Server:
    """A pysaml2 IdP that knows this one SP, for the length of one request."""
    try:
        return Server(config=idp_config(endpoints(), [sp]))
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - metadata pysaml2 cannot use
        forget_sp(sp.entity_id)
        raise Refused(f"pysaml2 could not use the metadata of {sp.entity_id}: {exc!r}") from None


# -- messages -----------------------------------------------------------------------------


def inflate(value: str) -> str:
    """The XML of a Redirect-binding message: base64, raw DEFLATE, bounded."""
    if not value or len(value) > MAX_MESSAGE_BYTES:
        raise Refused("The SAML message is missing or too large.")
    try:
        inflater = zlib.decompressobj(-15)
        xml = inflater.decompress(base64.b64decode(value, validate=True), MAX_MESSAGE_BYTES)
        if inflater.unconsumed_tail:
            raise Refused("The SAML message inflates to too much.")
        return xml.decode("utf-8")
    except (binascii.Error, zlib.error, ValueError):
        raise Refused("The SAML message is not base64-encoded DEFLATE.") from None


def decode_posted(value: str) -> str:
    """The XML of a POST-binding message: base64, bounded."""
    if not value or len(value) > MAX_MESSAGE_BYTES:
        raise Refused("The SAML message is missing or too large.")
    try:
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Refused("The SAML message is not base64.") from None


def issuer_of(xml: str, kind: str) -> str:
    """The Issuer of a ``samlp:<kind>`` message: who sent it (before anything is trusted)."""
    try:
        root = fromstring(xml, forbid_dtd=True)
    except DefusedXmlException:
        raise Refused(f"The {kind} declares a DTD or entities.") from None
    except Exception:  # noqa: BLE001
        raise Refused(f"The {kind} is not XML.") from None
    if root.tag != f"{{{SAMLP}}}{kind}":
        raise Refused(f"This is not a {kind}.")
    issuer = root.find(f"{{{SAML}}}Issuer")
    if issuer is None or not (issuer.text or "").strip():
        raise Refused(f"The {kind} has no Issuer: who sent it?")
    return issuer.text.strip()


def _raw_params(query_string: str) -> dict[str, str]:
    """``name -> value as sent (still percent-encoded)``; the first of each name."""
    found: dict[str, str] = {}
    for part in query_string.split("&"):
        name, _, value = part.partition("=")
        found.setdefault(unquote_plus(name), value)
    return found


def verify_redirect_signature(query_string: str, kind: str, sp: TrustedSP) -> None:
    """The query's ``Signature`` is by one of the SP's certificates; ``Refused`` if not.

    ``kind`` is ``"SAMLRequest"`` or ``"SAMLResponse"``.
    """
    raw = _raw_params(query_string)
    if "SigAlg" not in raw or "Signature" not in raw:
        raise Refused(f"The {kind} is not signed, and {sp.entity_id} must sign it.")
    algorithm = unquote_plus(raw["SigAlg"])
    hash_class = RSA_HASHES.get(algorithm)
    if hash_class is None:
        raise Refused(f"The signature algorithm {algorithm!r} is not accepted (RSA-SHA256 is).")
    names = [kind, "RelayState", "SigAlg"] if "RelayState" in raw else [kind, "SigAlg"]
    octets = "&".join(f"{name}={raw[name]}" for name in names).encode("ascii", "replace")
    try:
        signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"The {kind}'s Signature is not base64.") from None
    for pem in sp.certificates:
        public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            continue
        try:
            public_key.verify(signature, octets, padding.PKCS1v15(), hash_class())
            return
        except InvalidSignature:
            continue
    # Perhaps the SP has a new key pair: read its metadata again next time.
    forget_sp(sp.entity_id)
    raise Refused(f"The {kind}'s signature is not by {sp.entity_id}'s certificates.")


def persistent_name_id(user, sp_entity_id: str) -> str:
    """The user's NameID at one SP: the same every time, different at each SP."""
    return salted_hmac(
        "demo-idp.saml.persistent-name-id", f"{sp_entity_id}\n{user.pk}", algorithm="sha256"
    ).hexdigest()


def identity_of(user) -> dict[str, list[str]]:
    """The assertion's attributes: Entra ID's claim URIs, the OIDC side's values."""
    identity = {
        EMAIL: [f"{user.get_username()}@{settings.SAML_IDP_EMAIL_DOMAIN}"],
        GIVEN_NAME: [user.first_name],
        SURNAME: [user.last_name],
        # As the OIDC "groups" claim reports them (accounts.oidc).
        GROUPS: sorted(user.groups.values_list("name", flat=True)),
    }
    return {name: values for name, values in identity.items() if any(values)}


def _refused_page(request: HttpRequest, exc: Refused) -> HttpResponse:
    logger.warning("SAML %s refused: %s", request.path, exc)
    return render(request, "accounts/saml_refused.html", {"reason": str(exc)}, status=exc.status)


def _post_page(request: HttpRequest, url: str, fields: dict[str, str]) -> HttpResponse:
    """The HTTP-POST binding: a page whose form the browser posts to the SP at once."""
    response = render(request, "accounts/saml_post.html", {"url": url, "fields": fields})
    response["Cache-Control"] = "no-store"
    return response


# -- views --------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD"])
def metadata(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(metadata_xml(), content_type="application/samlmetadata+xml")
    response["Content-Disposition"] = 'inline; filename="demo-idp-saml-metadata.xml"'
    return response


def _is_true(value: object) -> bool:
    return str(value).strip().lower() in ("true", "1")


@never_cache
@require_http_methods(["GET"])
def sso(request: HttpRequest) -> HttpResponse:
    """An AuthnRequest (HTTP-Redirect), answered with a signed Response (HTTP-POST)."""
    saml_request = request.GET.get("SAMLRequest", "")
    relay_state = request.GET.get("RelayState", "")
    try:
        if not saml_request:
            raise Refused("No SAMLRequest: this is where a service provider sends an AuthnRequest.")
        sp = trusted_sp(issuer_of(inflate(saml_request), "AuthnRequest"))
        if "Signature" in request.GET or sp.authn_requests_signed:
            verify_redirect_signature(request.META.get("QUERY_STRING", ""), "SAMLRequest", sp)
        server = server_for(sp)
        try:
            parsed = server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
            message = parsed.message
            # The assertion consumer service: the one the request names, if the
            # SP's metadata lists it, else the metadata's; HTTP-POST only.
            args = server.response_args(message, [BINDING_HTTP_POST])
        except Exception as exc:  # noqa: BLE001 - pysaml2 says why in many ways
            raise Refused(f"The AuthnRequest was refused: {exc!r}"[:500]) from None
    except Refused as exc:
        return _refused_page(request, exc)

    fields = {"RelayState": relay_state} if relay_state else {}
    if not request.user.is_authenticated:
        if _is_true(message.is_passive):
            answer = server.create_error_response(
                args["in_response_to"],
                args["destination"],
                (samlp.STATUS_NO_PASSIVE, "Nobody is signed in at the demo IdP."),
                sign=True,
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
            fields["SAMLResponse"] = base64.b64encode(str(answer).encode()).decode("ascii")
            return _post_page(request, args["destination"], fields)
        return redirect_to_login(request.get_full_path())

    user = request.user
    where = endpoints()
    name_id = NameID(
        format=NAMEID_FORMAT_PERSISTENT,
        text=persistent_name_id(user, sp.entity_id),
        name_qualifier=where.entity_id,
        sp_name_qualifier=sp.entity_id,
    )
    signed_in_at = user.last_login.timestamp() if user.last_login else time.time()
    response = server.create_authn_response(
        identity_of(user),
        in_response_to=args["in_response_to"],
        destination=args["destination"],
        sp_entity_id=sp.entity_id,
        name_id=name_id,
        authn={"class_ref": AUTHN_PASSWORD, "authn_instant": int(signed_in_at)},
        sign_response=True,
        sign_assertion=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    logger.info("SAML: signed %s in to %s", user.get_username(), sp.entity_id)
    fields["SAMLResponse"] = base64.b64encode(str(response).encode()).decode("ascii")
    return _post_page(request, args["destination"], fields)


def _parse_logout_request(server: Server, xml: str, binding: str, sp: TrustedSP):
    """pysaml2's reading of a LogoutRequest; the XML signature required when POSTed."""
    parsed = LogoutRequest(
        server.sec,
        [endpoints().slo],
        server.config.attribute_converters,
        timeslack=CLOCK_LEEWAY,
    )
    try:
        # Redirect: the query string's signature was checked already.
        parsed.loads(xml, binding, origdoc=xml, must=binding == BINDING_HTTP_POST)
        valid = parsed.verify()
    except Exception as exc:  # noqa: BLE001
        if binding == BINDING_HTTP_POST:
            forget_sp(sp.entity_id)
        raise Refused(f"The LogoutRequest was refused: {exc!r}"[:500]) from None
    if not valid:
        raise Refused("The LogoutRequest was issued too long ago or too far ahead.")
    message = parsed.message
    if binding == BINDING_HTTP_POST:
        method = message.signature.signed_info.signature_method.algorithm
        if method not in RSA_HASHES:
            raise Refused(f"The LogoutRequest's signature algorithm {method!r} is not accepted.")
    if (
        message.not_on_or_after
        and calendar.timegm(str_to_time(message.not_on_or_after)) < time.time() - CLOCK_LEEWAY
    ):
        raise Refused("The LogoutRequest has expired.")
    return message


@never_cache
@csrf_exempt  # the SP's page posts here (HTTP-POST binding)
@require_http_methods(["GET", "POST"])
def slo(request: HttpRequest) -> HttpResponse:
    """An SP's LogoutRequest: sign out here, and answer with a signed LogoutResponse."""
    data = request.GET if request.method == "GET" else request.POST
    binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
    try:
        if not data.get("SAMLRequest"):
            if data.get("SAMLResponse"):
                raise Refused(
                    "A LogoutResponse, but this IdP sends no LogoutRequests: nothing to answer."
                )
            raise Refused("No SAMLRequest: this is where a service provider sends a LogoutRequest.")
        if binding == BINDING_HTTP_REDIRECT:
            xml = inflate(data["SAMLRequest"])
        else:
            xml = decode_posted(data["SAMLRequest"])
        sp = trusted_sp(issuer_of(xml, "LogoutRequest"))
        if binding == BINDING_HTTP_REDIRECT:
            # Logout messages must be signed (SAML profiles 4.4.4.1).
            verify_redirect_signature(request.META.get("QUERY_STRING", ""), "SAMLRequest", sp)
        server = server_for(sp)
        message = _parse_logout_request(server, xml, binding, sp)
        name_id = message.name_id
        if name_id is None or not (name_id.text or "").strip():
            raise Refused("The LogoutRequest names nobody (no NameID).")
        try:
            args = server.response_args(message, [BINDING_HTTP_REDIRECT])
        except Exception as exc:  # noqa: BLE001
            raise Refused(f"{sp.entity_id} has no HTTP-Redirect logout service: {exc!r}") from None
    except Refused as exc:
        return _refused_page(request, exc)

    user = request.user
    if user.is_authenticated and name_id.text.strip() == persistent_name_id(user, sp.entity_id):
        logout(request)
        logger.info("SAML: signed %s out at the request of %s", user.get_username(), sp.entity_id)
    # Otherwise nobody it names is signed in in this browser: that is a success too.
    response = server.create_logout_response(message, [BINDING_HTTP_REDIRECT], sign=False)
    info = server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(response),
        args["destination"],
        relay_state=data.get("RelayState", ""),
        response=True,
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    answer = HttpResponseRedirect(dict(info["headers"])["Location"])
    answer["Cache-Control"] = "no-store"
    return answer
