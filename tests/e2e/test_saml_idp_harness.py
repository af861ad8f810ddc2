"""Tests of the e2e SAML IdP harness itself (no Django views needed).

Run: python -m pytest tests/e2e/test_saml_idp_harness.py -q

Needs node and ``npm ci`` in tests/e2e/saml_idp, pysaml2 and xmlsec1. When those are missing
the tests skip, or fail when CI=true.

pysaml2 plays the service provider here, only to make and read SAML messages: its
``Saml2Client`` makes the AuthnRequests and LogoutRequests and checks the IdP's Responses
(signatures against the IdP's metadata, InResponseTo, Destination, audience, times) the way an
SP library does. The browser is a ``requests.Session`` (it keeps the IdP's session cookie); no
SP is ever contacted: the tests read the IdP's forms and ``Location`` headers.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urljoin, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.saml_idp import (
    IDP_DIR,
    NodeSAMLIdP,
    SAMLIdPAdminError,
    make_key_pair,
    saml_idp_available,
)
from tests.helpers import require

pytestmark = pytest.mark.e2e

XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
SP_SITE = "http://127.0.0.1:9"  # never contacted: the tests read forms and Location headers
TIMEOUT = 10
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}


def _pysaml2_missing() -> str | None:
    try:
        import saml2  # noqa: F401
    except ImportError:
        return "pysaml2 is not installed (the SP side of the SAML IdP harness tests)"
    if not Path(XMLSEC1).is_file():
        return "xmlsec1 is not installed (apt-get install xmlsec1; pysaml2 needs it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _need_saml_idp() -> None:
    require(saml_idp_available())  # skips locally, fails under CI=true
    require(_pysaml2_missing())


@pytest.fixture(scope="module")
def _shared_idp(_need_saml_idp: None, tmp_path_factory: pytest.TempPathFactory):
    """One IdP for the module (it takes seconds to start): it wants signed AuthnRequests, so
    the signature checks run."""
    workdir = tmp_path_factory.mktemp("saml-idp")
    with NodeSAMLIdP(workdir, want_authn_requests_signed=True) as provider:
        yield provider


@pytest.fixture
def idp(_shared_idp: NodeSAMLIdP) -> NodeSAMLIdP:
    """The shared IdP, with no session left from an earlier test (its SPs stay registered)."""
    _shared_idp.end_sessions()
    return _shared_idp


# --------------------------------------------------------------------------------------------
# The SP side: pysaml2, configured from the IdP's metadata.
# --------------------------------------------------------------------------------------------
@dataclass
class SP:
    client: Any  # saml2.client.Saml2Client
    entity_id: str
    acs_url: str
    slo_url: str
    metadata_xml: str
    cert_path: Path


def make_sp(
    tmp_path: Path,
    idp: NodeSAMLIdP,
    name: str = "sp-a",
    *,
    sign_requests: bool = True,
    with_slo: bool = True,
) -> SP:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    base = f"{SP_SITE}/{name}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = tmp_path / f"{name}-key.pem", tmp_path / f"{name}-cert.pem"
    make_key_pair(key_path, cert_path, name)
    endpoints: dict[str, Any] = {
        "assertion_consumer_service": [(f"{base}/acs/", BINDING_HTTP_POST)],
    }
    if with_slo:
        endpoints["single_logout_service"] = [
            (f"{base}/slo/", BINDING_HTTP_REDIRECT),
            (f"{base}/slo/", BINDING_HTTP_POST),
        ]
    config = SPConfig()
    config.load(
        {
            "entityid": f"{base}/metadata/",
            "xmlsec_binary": XMLSEC1,
            "key_file": str(key_path),
            "cert_file": str(cert_path),
            "encryption_keypairs": [{"key_file": str(key_path), "cert_file": str(cert_path)}],
            "metadata": {"inline": [idp.metadata_xml(timeout=TIMEOUT)]},
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": endpoints,
                    "authn_requests_signed": sign_requests,
                    "logout_requests_signed": True,
                    "want_assertions_signed": True,
                    "want_response_signed": True,
                    "allow_unsolicited": True,
                    "name_id_format": PERSISTENT,
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                }
            },
        }
    )
    return SP(
        client=Saml2Client(config),
        entity_id=f"{base}/metadata/",
        acs_url=f"{base}/acs/",
        slo_url=f"{base}/slo/",
        metadata_xml=str(entity_descriptor(config)),
        cert_path=cert_path,
    )


@pytest.fixture
def sp(tmp_path: Path, idp: NodeSAMLIdP) -> SP:
    made = make_sp(tmp_path, idp)
    idp.register_sp(made.metadata_xml)
    return made


# --------------------------------------------------------------------------------------------
# Reading the IdP's pages.
# --------------------------------------------------------------------------------------------
class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "names": []})
        elif tag == "input" and self.forms and "name" in a:
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
            self.forms[-1]["names"].append(a["name"])
        elif tag == "button":
            self._in_button = True
            self.buttons.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._in_button = False

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.buttons[-1] += data


def _forms(page: str) -> _Forms:
    parser = _Forms()
    parser.feed(page)
    return parser


def _is_login_form(resp: requests.Response) -> bool:
    parsed = _forms(resp.text)
    return (
        resp.status_code == 200
        and len(parsed.forms) == 1
        and {"username", "password"} <= set(parsed.forms[0]["names"])
        and "Sign in" in [b.strip() for b in parsed.buttons]
    )


def _submit_login(
    s: requests.Session, page: requests.Response, username: str = "alice"
) -> requests.Response:
    assert _is_login_form(page), page.text[:2000]
    form = _forms(page.text).forms[0]
    return s.post(
        urljoin(page.url, form["action"]),
        data={**form["fields"], "username": username, "password": "any password at all"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def _saml_post(resp: requests.Response) -> tuple[str, dict[str, str]]:
    """(action, fields) of an auto-posting SAML form page."""
    assert resp.status_code == 200, resp.text[:2000]
    forms = _forms(resp.text).forms
    assert len(forms) == 1 and "SAMLResponse" in forms[0]["fields"], resp.text[:2000]
    assert "document.getElementById('saml-post').submit()" in resp.text
    return forms[0]["action"], forms[0]["fields"]


def _response_xml(saml_response: str) -> Any:
    from xml.etree import ElementTree

    return ElementTree.fromstring(base64.b64decode(saml_response))


def _redirect_query(location: str) -> tuple[str, dict[str, str]]:
    """(URL without query, decoded single-valued query) of a redirect."""
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def _inflate(value: str) -> bytes:
    return zlib.decompress(base64.b64decode(value), -15)


def _verify_redirect_signature(location: str, cert_pem: str) -> None:
    """Check an HTTP-Redirect signature over the raw (as sent) query values (SAML bindings
    3.4.4.1), with the signer's certificate."""
    raw = dict(p.split("=", 1) for p in urlsplit(location).query.split("&"))
    message = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    signed = "&".join(f"{k}={raw[k]}" for k in (message, "RelayState", "SigAlg") if k in raw)
    assert unquote_plus(raw["SigAlg"]) == RSA_SHA256
    key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    signature = base64.b64decode(unquote_plus(raw["Signature"]))
    key.verify(signature, signed.encode(), padding.PKCS1v15(), hashes.SHA256())


# --------------------------------------------------------------------------------------------
# Driving sign-ins.
# --------------------------------------------------------------------------------------------
def _authn_request_url(sp: SP, idp: NodeSAMLIdP, relay_state: str = "/next/", **kw: Any):
    from saml2 import BINDING_HTTP_REDIRECT

    request_id, info = sp.client.prepare_for_authenticate(
        entityid=idp.entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT, **kw
    )
    return request_id, dict(info["headers"])["Location"]


def _sign_in(
    s: requests.Session, sp: SP, idp: NodeSAMLIdP, username: str | None = "alice"
) -> tuple[str, Any, dict[str, str]]:
    """SP-initiated sign-in (Redirect binding); ``username=None``: the IdP session is expected
    to answer without the form. Returns (request id, pysaml2 AuthnResponse, posted fields)."""
    from saml2 import BINDING_HTTP_POST

    request_id, url = _authn_request_url(sp, idp)
    assert url.startswith(f"{idp.sso_url}?SAMLRequest=")
    page = s.get(url, allow_redirects=False, timeout=TIMEOUT)
    if username is not None:
        page = _submit_login(s, page, username)
    action, fields = _saml_post(page)
    assert action == sp.acs_url
    assert fields["RelayState"] == "/next/"
    response = sp.client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/next/"}
    )
    assert response is not None
    return request_id, response, fields


def _attributes(response: Any) -> dict[str, list[str]]:
    """Attribute name -> values, as the assertion states them."""
    statements = response.assertion.attribute_statement
    return {a.name: [v.text for v in a.attribute_value] for st in statements for a in st.attribute}


# --------------------------------------------------------------------------------------------
# Metadata and SP registration.
# --------------------------------------------------------------------------------------------
def test_metadata_is_served_with_the_signing_certificate_and_endpoints(
    idp: NodeSAMLIdP, tmp_path: Path
) -> None:
    from saml2.mdstore import MetadataStore

    r = requests.get(idp.metadata_url, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert idp.entity_id == idp.metadata_url == f"{idp.base_url}/metadata"

    # pysaml2 reads it, and finds the certificate the wrapper generated
    sp = make_sp(tmp_path, idp)
    store: MetadataStore = sp.client.metadata
    certs = store.certs(idp.entity_id, "idpsso", "signing")
    expected = "".join(idp.cert_pem.strip().splitlines()[1:-1])
    assert ["".join(c[1].split()) for c in certs] == [expected]

    from xml.etree import ElementTree

    root = ElementTree.fromstring(r.content)
    assert root.get("entityID") == idp.entity_id
    descriptor = root.find("md:IDPSSODescriptor", NS)
    assert descriptor is not None
    assert descriptor.get("WantAuthnRequestsSigned") == "true"
    assert [e.text for e in descriptor.findall("md:NameIDFormat", NS)] == [PERSISTENT]
    services = {
        (e.tag.split("}")[1], e.get("Binding", "").rsplit(":", 1)[1], e.get("Location"))
        for e in descriptor
        if e.tag.endswith("Service")
    }
    assert services == {
        ("SingleSignOnService", "HTTP-Redirect", idp.sso_url),
        ("SingleSignOnService", "HTTP-POST", idp.sso_url),
        ("SingleLogoutService", "HTTP-Redirect", idp.slo_url),
        ("SingleLogoutService", "HTTP-POST", idp.slo_url),
    }


def test_metadata_says_unsigned_requests_are_fine_when_configured(tmp_path: Path) -> None:
    with NodeSAMLIdP(tmp_path, want_authn_requests_signed=False) as idp:
        assert 'WantAuthnRequestsSigned="false"' in idp.metadata_xml(timeout=TIMEOUT)
        cfg = json.loads(idp.config_path.read_text())
        assert cfg["host"] == "127.0.0.1" and cfg["port"] == 0
        assert cfg["email_domain"] == "saml.test"
        assert cfg["want_authn_requests_signed"] is False and cfg["encrypt_assertions"] is False
        assert Path(cfg["key_path"]) == idp.key_path and Path(cfg["cert_path"]) == idp.cert_path
        assert cfg["admin_token"]


def test_sp_registration_by_metadata_several_at_once(idp: NodeSAMLIdP, tmp_path: Path) -> None:
    sp_a, sp_b = make_sp(tmp_path, idp, "sp-a"), make_sp(tmp_path, idp, "sp-b", with_slo=False)
    a = idp.register_sp(sp_a.metadata_xml)
    assert a["entity_id"] == sp_a.entity_id and a["replaced"] is False
    assert a["signing_certificate"] is True and a["encryption_certificate"] is True
    assert [s["location"] for s in a["assertion_consumer_services"]] == [sp_a.acs_url]
    assert {s["location"] for s in a["single_logout_services"]} == {sp_a.slo_url}
    b = idp.register_sp(sp_b.metadata_xml)
    assert b["single_logout_services"] == []
    assert idp.register_sp(sp_a.metadata_xml)["replaced"] is True
    registered = {s["entity_id"]: s for s in idp.service_providers()}
    assert {sp_a.entity_id, sp_b.entity_id} <= set(registered)
    assert registered[sp_b.entity_id]["single_logout_services"] == []


def test_admin_routes_need_the_token_and_refuse_bad_metadata(idp: NodeSAMLIdP, sp: SP) -> None:
    _sign_in(requests.Session(), sp, idp, "alice")
    routes = (
        ("POST", "/admin/sp"),
        ("GET", "/admin/sp"),
        ("GET", "/admin/sessions"),
        ("DELETE", "/admin/sessions"),
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        for method, path in routes:
            r = requests.request(
                method,
                f"{idp.base_url}{path}",
                data=sp.metadata_xml,
                headers=headers,
                timeout=TIMEOUT,
            )
            assert r.status_code == 401, (method, path, r.text)
    for bad in (
        "",
        "not xml at all",
        "<EntityDescriptor xmlns='urn:oasis:names:tc:SAML:2.0:metadata'/>",
    ):
        with pytest.raises(SAMLIdPAdminError, match="400"):
            idp.register_sp(bad)
    no_acs = sp.metadata_xml.replace("AssertionConsumerService", "ArtifactResolutionService")
    with pytest.raises(SAMLIdPAdminError, match="no AssertionConsumerService"):
        idp.register_sp(no_acs)
    (kept,) = [s for s in idp.service_providers() if s["entity_id"] == sp.entity_id]
    assert [a["location"] for a in kept["assertion_consumer_services"]] == [sp.acs_url]
    assert len(idp.sessions()) == 1  # none of the refused calls touched it
    assert idp.end_sessions() == 1
    assert idp.sessions() == []


# --------------------------------------------------------------------------------------------
# SP-initiated sign-in.
# --------------------------------------------------------------------------------------------
def test_sp_initiated_sign_in_gives_a_signed_response_pysaml2_accepts(
    idp: NodeSAMLIdP, sp: SP
) -> None:
    s = requests.Session()
    request_id, response, fields = _sign_in(s, sp, idp, "alice")

    # pysaml2 checked both signatures against the IdP metadata, InResponseTo, Destination,
    # audience and times; what it says:
    assert response.in_response_to == request_id
    assert response.issuer() == idp.entity_id
    assert response.name_id.format == PERSISTENT
    assert response.name_id.text and response.name_id.text != "alice"
    assert response.session_info()["session_index"]
    assert _attributes(response) == {
        f"{CLAIMS}/emailaddress": ["alice@saml.test"],
        f"{CLAIMS}/givenname": ["Alice"],
        f"{CLAIMS}/surname": ["Liddell"],
        f"{CLAIMS}/name": ["alice@saml.test"],
        "http://schemas.microsoft.com/identity/claims/displayname": ["Alice Liddell"],
        "http://schemas.microsoft.com/identity/claims/objectidentifier": [
            _attributes(response)["http://schemas.microsoft.com/identity/claims/objectidentifier"][
                0
            ]
        ],
        GROUPS: ["readers"],
    }

    # the XML itself: both Response and Assertion carry an RSA-SHA256 signature
    root = _response_xml(fields["SAMLResponse"])
    assert root.get("Destination") == sp.acs_url and root.get("InResponseTo") == request_id
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    for signed in (root, assertion):
        method = signed.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
        assert method is not None and method.get("Algorithm") == RSA_SHA256
        reference = signed.find("ds:Signature/ds:SignedInfo/ds:Reference", NS)
        assert reference is not None and reference.get("URI") == f"#{signed.get('ID')}"
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    assert data is not None
    assert data.get("Recipient") == sp.acs_url and data.get("InResponseTo") == request_id
    assert data.get("NotOnOrAfter")
    audience = assertion.find("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS)
    assert audience is not None and audience.text == sp.entity_id

    # the IdP session remembers the SP, with the NameID and SessionIndex it sent
    (session,) = idp.sessions()
    assert session["login"] == "alice" and session["email"] == "alice@saml.test"
    assert session["service_providers"] == [
        {
            "entity_id": sp.entity_id,
            "name_id": response.name_id.text,
            "session_index": response.session_info()["session_index"],
            "signed_in_at": session["service_providers"][0]["signed_in_at"],
        }
    ]


def test_second_sign_in_uses_the_idp_session_at_any_sp(
    idp: NodeSAMLIdP, sp: SP, tmp_path: Path
) -> None:
    s = requests.Session()
    _, first, _ = _sign_in(s, sp, idp, "bob")
    _, again, _ = _sign_in(s, sp, idp, username=None)  # no login form this time
    other = make_sp(tmp_path, idp, "sp-b")
    idp.register_sp(other.metadata_xml)
    _, at_other, _ = _sign_in(s, other, idp, username=None)

    index = first.session_info()["session_index"]
    for response in (again, at_other):
        assert response.name_id.text == first.name_id.text  # stable per person
        assert response.session_info()["session_index"] == index  # one per IdP session
    assert _attributes(at_other)[GROUPS] == ["readers", "editors"]
    (session,) = idp.sessions()
    assert {p["entity_id"] for p in session["service_providers"]} == {
        sp.entity_id,
        other.entity_id,
    }
    # another browser has no session: the form again, and a new SessionIndex
    _, carol, _ = _sign_in(requests.Session(), sp, idp, "bob")
    assert carol.name_id.text == first.name_id.text
    assert carol.session_info()["session_index"] != index
    assert len(idp.sessions()) == 2


def test_other_logins_get_synthesised_attributes(idp: NodeSAMLIdP, sp: SP) -> None:
    _, zed, _ = _sign_in(requests.Session(), sp, idp, "zed")
    attributes = _attributes(zed)
    assert attributes[f"{CLAIMS}/emailaddress"] == ["zed@saml.test"]
    assert attributes[f"{CLAIMS}/givenname"] == ["Zed"]
    assert attributes[f"{CLAIMS}/surname"] == ["Tester"]
    assert GROUPS not in attributes  # no groups: no attribute, as Entra ID does
    _, mail, _ = _sign_in(requests.Session(), sp, idp, "dana@example.org")
    assert _attributes(mail)[f"{CLAIMS}/emailaddress"] == ["dana@example.org"]
    assert mail.name_id.text != zed.name_id.text


def test_post_binding_signed_authn_request(idp: NodeSAMLIdP, sp: SP) -> None:
    from saml2 import BINDING_HTTP_POST

    request_id, info = sp.client.prepare_for_authenticate(
        entityid=idp.entity_id, relay_state="/post/", binding=BINDING_HTTP_POST
    )
    form = _forms(info["data"]).forms[0]
    assert form["action"] == idp.sso_url
    signed = _response_xml(form["fields"]["SAMLRequest"])
    assert signed.find("ds:Signature", NS) is not None  # enveloped XML signature
    s = requests.Session()
    # no IdP cookie on this (cross-site) POST: re-posted to /sso from the IdP's own page
    bounce = s.post(idp.sso_url, data=form["fields"], allow_redirects=False, timeout=TIMEOUT)
    again = _forms(bounce.text).forms[0]
    assert again["action"] == "/sso" and again["fields"]["_idp_bounce"] == "1"
    page = s.post(
        urljoin(idp.sso_url, again["action"]),
        data=again["fields"],
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    action, fields = _saml_post(_submit_login(s, page, "alice"))
    assert action == sp.acs_url and fields["RelayState"] == "/post/"
    response = sp.client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/post/"}
    )
    assert response.in_response_to == request_id
    # with the cookie, a second POST-binding request is answered straight away
    request_id, info = sp.client.prepare_for_authenticate(
        entityid=idp.entity_id, relay_state="/post/", binding=BINDING_HTTP_POST
    )
    direct = s.post(idp.sso_url, data=_forms(info["data"]).forms[0]["fields"], timeout=TIMEOUT)
    _, fields = _saml_post(direct)
    response = sp.client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/post/"}
    )
    assert response.in_response_to == request_id


def test_unsigned_or_tampered_authn_requests_are_refused(
    idp: NodeSAMLIdP, sp: SP, tmp_path: Path
) -> None:
    s = requests.Session()
    _, url = _authn_request_url(sp, idp, sign=False)
    assert "Signature=" not in url
    r = s.get(url, timeout=TIMEOUT)
    assert r.status_code == 400 and "AuthnRequest refused" in r.text, r.text

    _, url = _authn_request_url(sp, idp)
    tampered = url.replace("RelayState=%2Fnext%2F", "RelayState=%2Fevil%2F")
    assert tampered != url
    r = s.get(tampered, timeout=TIMEOUT)
    assert r.status_code == 400 and "AuthnRequest refused" in r.text, r.text

    # signed, but with a key the SP's metadata does not hold
    impostor = make_sp(tmp_path / "impostor", idp, "sp-a")
    _, url = _authn_request_url(impostor, idp)
    r = s.get(url, timeout=TIMEOUT)
    assert r.status_code == 400 and "AuthnRequest refused" in r.text, r.text
    assert idp.sessions() == []


def test_force_authn_asks_for_the_password_again(idp: NodeSAMLIdP, sp: SP) -> None:
    s = requests.Session()
    _, first, _ = _sign_in(s, sp, idp, "alice")
    _, url = _authn_request_url(sp, idp, force_authn="true")
    page = s.get(url, timeout=TIMEOUT)
    assert _is_login_form(page)
    _, fields = _saml_post(_submit_login(s, page, "alice"))
    root = _response_xml(fields["SAMLResponse"])
    index = root.find("saml:Assertion/saml:AuthnStatement", NS)
    assert index is not None
    assert index.get("SessionIndex") == first.session_info()["session_index"]
    assert len(idp.sessions()) == 1


# --------------------------------------------------------------------------------------------
# IdP-initiated sign-in.
# --------------------------------------------------------------------------------------------
def test_idp_initiated_launch_posts_an_unsolicited_response(idp: NodeSAMLIdP, sp: SP) -> None:
    from saml2 import BINDING_HTTP_POST

    s = requests.Session()
    page = s.get(idp.launch_url(sp.entity_id, relay_state="/dashboard/"), timeout=TIMEOUT)
    action, fields = _saml_post(_submit_login(s, page, "alice"))
    assert action == sp.acs_url and fields["RelayState"] == "/dashboard/"
    root = _response_xml(fields["SAMLResponse"])
    assert "InResponseTo" not in root.attrib
    response = sp.client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={}
    )
    assert response.in_response_to is None
    assert _attributes(response)[f"{CLAIMS}/emailaddress"] == ["alice@saml.test"]
    # with the IdP session: no form
    again = s.get(idp.launch_url(sp.entity_id), timeout=TIMEOUT)
    _, fields = _saml_post(again)
    assert "RelayState" not in fields
    assert (
        sp.client.parse_authn_request_response(
            fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={}
        ).name_id.text
        == response.name_id.text
    )


# --------------------------------------------------------------------------------------------
# Single logout.
# --------------------------------------------------------------------------------------------
def _logout_request_url(sp: SP, idp: NodeSAMLIdP, response: Any, *, sign: bool = True):
    from saml2 import BINDING_HTTP_REDIRECT

    request_id, request = sp.client.create_logout_request(
        destination=idp.slo_url,
        issuer_entity_id=idp.entity_id,
        name_id=response.name_id,
        session_indexes=[response.session_info()["session_index"]],
        sign=False,  # HTTP-Redirect: the signature goes in the query string
    )
    info = sp.client.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), idp.slo_url, relay_state="bye", sign=sign
    )
    return request_id, dict(info["headers"])["Location"]


def test_sp_initiated_logout_ends_the_idp_session_and_answers_signed(
    idp: NodeSAMLIdP, sp: SP
) -> None:
    from saml2 import BINDING_HTTP_REDIRECT

    s = requests.Session()
    _, response, _ = _sign_in(s, sp, idp, "alice")
    request_id, url = _logout_request_url(sp, idp, response)
    r = s.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303, r.text
    location = r.headers["Location"]
    target, query = _redirect_query(location)
    assert target == sp.slo_url and query["RelayState"] == "bye"
    _verify_redirect_signature(location, idp.cert_pem)
    logout_response = sp.client.parse_logout_request_response(
        query["SAMLResponse"], BINDING_HTTP_REDIRECT
    )
    assert logout_response.in_response_to == request_id
    assert logout_response.status_ok()
    assert b'Destination="' + sp.slo_url.encode() in _inflate(query["SAMLResponse"])
    assert idp.sessions() == []
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    # the next sign-in needs the password again
    _, url = _authn_request_url(sp, idp)
    assert _is_login_form(s.get(url, timeout=TIMEOUT))


def test_unsigned_or_badly_signed_logout_requests_are_refused(
    idp: NodeSAMLIdP, sp: SP, tmp_path: Path
) -> None:
    s = requests.Session()
    _, response, _ = _sign_in(s, sp, idp, "alice")
    _, unsigned = _logout_request_url(sp, idp, response, sign=False)
    assert "Signature=" not in unsigned
    _, signed = _logout_request_url(sp, idp, response)
    tampered = signed.replace("RelayState=bye", "RelayState=eyb")
    impostor = make_sp(tmp_path / "impostor", idp, "sp-a")
    _, wrong_key = _logout_request_url(impostor, idp, response)
    for url in (unsigned, tampered, wrong_key):
        r = s.get(url, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 400 and "LogoutRequest refused" in r.text, r.text
    # an unsigned POST-binding LogoutRequest too
    from saml2 import BINDING_HTTP_POST

    _, request = sp.client.create_logout_request(
        destination=idp.slo_url,
        issuer_entity_id=idp.entity_id,
        name_id=response.name_id,
        sign=False,
    )
    info = sp.client.apply_binding(BINDING_HTTP_POST, str(request), idp.slo_url, "bye", sign=False)
    fields = _forms(info["data"]).forms[0]["fields"]
    r = s.post(idp.slo_url, data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "LogoutRequest refused" in r.text, r.text
    assert len(idp.sessions()) == 1  # nothing ended


def test_signed_post_binding_logout_request_is_accepted(idp: NodeSAMLIdP, sp: SP) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

    s = requests.Session()
    _, response, _ = _sign_in(s, sp, idp, "alice")
    request_id, request = sp.client.create_logout_request(
        destination=idp.slo_url,
        issuer_entity_id=idp.entity_id,
        name_id=response.name_id,
        session_indexes=[response.session_info()["session_index"]],
        sign=True,  # enveloped XML signature
    )
    info = sp.client.apply_binding(BINDING_HTTP_POST, str(request), idp.slo_url, "bye", sign=False)
    fields = _forms(info["data"]).forms[0]["fields"]
    r = s.post(idp.slo_url, data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 303, r.text
    _, query = _redirect_query(r.headers["Location"])
    answer = sp.client.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
    assert answer.in_response_to == request_id and answer.status_ok()
    assert idp.sessions() == []


def test_idp_initiated_logout_visits_each_sp_then_signs_out(
    idp: NodeSAMLIdP, sp: SP, tmp_path: Path
) -> None:
    from saml2 import BINDING_HTTP_REDIRECT

    other = make_sp(tmp_path, idp, "sp-b")
    no_slo = make_sp(tmp_path, idp, "sp-c", with_slo=False)
    for each in (other, no_slo):
        idp.register_sp(each.metadata_xml)
    s = requests.Session()
    signed_in = {
        sp.entity_id: _sign_in(s, sp, idp, "alice")[1],
        other.entity_id: _sign_in(s, other, idp, None)[1],
        no_slo.entity_id: _sign_in(s, no_slo, idp, None)[1],
    }
    by_slo = {sp.slo_url: sp, other.slo_url: other}

    r = s.get(idp.logout_url, allow_redirects=False, timeout=TIMEOUT)
    visited = []
    for _ in range(2):
        assert r.status_code == 303, r.text
        location = r.headers["Location"]
        target, query = _redirect_query(location)
        at = by_slo[target]
        visited.append(at.entity_id)
        _verify_redirect_signature(location, idp.cert_pem)
        request = at.client.parse_logout_request(
            query["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=query["RelayState"],
            sigalg=query["SigAlg"],
            signature=query["Signature"],
        )
        message = request.message
        assert message.issuer.text == idp.entity_id and message.destination == at.slo_url
        assert message.name_id.text == signed_in[at.entity_id].name_id.text
        assert message.name_id.format == PERSISTENT
        assert [i.text for i in message.session_index] == [
            signed_in[at.entity_id].session_info()["session_index"]
        ]
        answer = at.client.create_logout_response(
            message, bindings=[BINDING_HTTP_REDIRECT], sign=False
        )
        info = at.client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(answer),
            idp.slo_url,
            relay_state=query["RelayState"],
            response=True,
            sign=True,
        )
        r = s.get(dict(info["headers"])["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert sorted(visited) == sorted([sp.entity_id, other.entity_id])
    assert r.status_code == 200 and "You are signed out" in r.text, r.text
    assert f'data-sp="{no_slo.entity_id}"' in r.text  # listed as skipped
    assert idp.sessions() == []
    _, url = _authn_request_url(sp, idp)
    assert _is_login_form(s.get(url, timeout=TIMEOUT))


def test_logout_response_must_be_signed_and_expected(idp: NodeSAMLIdP, sp: SP) -> None:
    from saml2 import BINDING_HTTP_REDIRECT

    s = requests.Session()
    _sign_in(s, sp, idp, "alice")
    r = s.get(idp.logout_url, allow_redirects=False, timeout=TIMEOUT)
    _, query = _redirect_query(r.headers["Location"])
    request = sp.client.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
    answer = sp.client.create_logout_response(
        request.message, bindings=[BINDING_HTTP_REDIRECT], sign=False
    )
    unsigned = sp.client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(answer),
        idp.slo_url,
        query["RelayState"],
        response=True,
        sign=False,
    )
    r = s.get(dict(unsigned["headers"])["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "LogoutResponse refused" in r.text, r.text
    assert len(idp.sessions()) == 1  # the logout waits for a proper answer
    signed = sp.client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(answer),
        idp.slo_url,
        query["RelayState"],
        response=True,
        sign=True,
    )
    location = dict(signed["headers"])["Location"]
    assert "You are signed out" in s.get(location, timeout=TIMEOUT).text
    # the same answer again answers nothing
    r = s.get(location, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "answers no LogoutRequest" in r.text, r.text


# --------------------------------------------------------------------------------------------
# Encrypted assertions.
# --------------------------------------------------------------------------------------------
def test_encrypted_assertion_is_decrypted_by_the_sp(tmp_path: Path) -> None:
    with NodeSAMLIdP(tmp_path, encrypt_assertions=True) as idp:
        sp = make_sp(tmp_path, idp, sign_requests=False)
        idp.register_sp(sp.metadata_xml)
        request_id, response, fields = _sign_in(requests.Session(), sp, idp, "bob")
        root = _response_xml(fields["SAMLResponse"])
        assert root.find("saml:Assertion", NS) is None
        assert root.find("saml:EncryptedAssertion", NS) is not None
        assert root.find("ds:Signature", NS) is not None
        assert response.in_response_to == request_id
        assert _attributes(response)[f"{CLAIMS}/emailaddress"] == ["bob@saml.test"]
        assert _attributes(response)[GROUPS] == ["readers", "editors"]


# --------------------------------------------------------------------------------------------
# Bad input: a 400 page, and the IdP keeps running.
# --------------------------------------------------------------------------------------------
def test_bad_input_gets_a_400_and_the_idp_keeps_running(
    idp: NodeSAMLIdP, sp: SP, tmp_path: Path
) -> None:
    stranger = make_sp(tmp_path, idp, "stranger")  # never registered
    _, stranger_url = _authn_request_url(stranger, idp)
    garbage_xml = base64.b64encode(zlib.compress(b"<not-saml/>")[2:-4]).decode()
    schema_invalid = (  # from a registered SP, but no valid AuthnRequest (ID is no NCName)
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="1-bad" Version="2.0" '
        f'IssueInstant="2020-01-01T00:00:00Z"><saml:Issuer>{sp.entity_id}</saml:Issuer>'
        "<bogus/></samlp:AuthnRequest>"
    )
    invalid_xml = base64.b64encode(zlib.compress(schema_invalid.encode())[2:-4]).decode()
    cases = [
        ("GET", "/sso", {}),
        ("GET", "/sso", {"SAMLRequest": "%%%"}),
        ("GET", "/sso", {"SAMLRequest": "bm90IGRlZmxhdGVk"}),
        ("GET", "/sso", {"SAMLRequest": garbage_xml}),
        ("GET", "/sso", {"SAMLRequest": invalid_xml}),
        ("GET", stranger_url, None),
        ("GET", "/launch", {}),
        ("GET", "/launch", {"sp": "urn:nobody"}),
        ("GET", "/slo", {}),
        ("GET", "/slo", {"SAMLResponse": garbage_xml}),
        ("POST", "/slo", {"SAMLRequest": "!!!"}),
        ("POST", "/login", {"pending": "no-such-request", "username": "alice"}),
    ]
    for method, path, params in cases:
        url = path if path.startswith("http") else f"{idp.base_url}{path}"
        if method == "GET":
            r = requests.get(url, params=params, allow_redirects=False, timeout=TIMEOUT)
        else:
            r = requests.post(url, data=params, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 400, (method, path, params, r.status_code, r.text[:500])
        assert "Bad request" in r.text
    # an empty username shows the form again
    page = requests.get(idp.launch_url(sp.entity_id), timeout=TIMEOUT)
    form = _forms(page.text).forms[0]
    r = requests.post(
        urljoin(page.url, form["action"]), data={**form["fields"], "username": " "}, timeout=TIMEOUT
    )
    assert r.status_code == 400 and 'name="username"' in r.text
    # /logout without an IdP session: nothing to do, signed out all the same
    r = requests.get(idp.logout_url, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 200 and "You are signed out" in r.text
    assert requests.get(f"{idp.base_url}/nowhere", timeout=TIMEOUT).status_code == 404
    assert requests.delete(idp.sso_url, timeout=TIMEOUT).status_code == 405
    assert idp.running
    assert requests.get(idp.metadata_url, timeout=TIMEOUT).status_code == 200


def test_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    idp = NodeSAMLIdP(tmp_path)
    idp._ensure_key_pair()
    config = {**idp.config(), "host": "0.0.0.0", "admin_token": "x"}
    path = tmp_path / "public.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        ["node", "server.mjs", "--config", str(path)],
        cwd=IDP_DIR,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert b"non-loopback" in done.stderr
    assert done.stdout == b""
