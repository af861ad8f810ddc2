"""The SAML fake IdP (tests/saml_fake_idp.py) is right on its own.

Its signatures are checked with the ``xmlsec1`` command line and, for the
signature-wrapping documents (which hold two elements with one ID, something
xmlsec1 refuses), with a small verifier of our own (lxml's exclusive
canonicalisation and ``cryptography``), itself checked against xmlsec1 first.
No Django and no database here.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from tests.helpers import require
from tests.saml_fake_idp import (
    DS_NS,
    MD_NS,
    NS,
    SAML_NS,
    SAMLP_NS,
    SIG_RSA_SHA1,
    SIG_RSA_SHA256,
    STATUS_PARTIAL_LOGOUT,
    XENC_NS,
    FakeSAMLIdP,
    KeyPair,
    billion_laughs,
    deflate_b64,
    make_key_pair,
    parse_xml,
    post_form_value,
    read_redirect_request,
    redirect_query,
    redirect_url,
    request_id,
    strip_signatures,
    tamper_name_id,
    verify_redirect_signature,
    wrap_evil_assertion_beside,
    wrap_signed_assertion_moved,
    wrap_signed_response_moved,
    xxe_response,
)


@pytest.fixture(autouse=True)
def _xmlsec1_installed() -> None:
    # Skipped locally without xmlsec1; under CI=true a missing xmlsec1 fails the tests.
    require(None if shutil.which("xmlsec1") else "xmlsec1 is not installed")


ACS = "https://sp.example.test/saml/acs/"
SP_ENTITY = "https://sp.example.test/saml/metadata/"
ID_ATTRS = [
    f"{SAML_NS}:Assertion",
    f"{SAMLP_NS}:Response",
    f"{SAMLP_NS}:LogoutRequest",
    f"{SAMLP_NS}:LogoutResponse",
    f"{MD_NS}:EntityDescriptor",
    f"{MD_NS}:EntitiesDescriptor",
]


# --- Keys are slow to make: a few, shared by the module ----------------------------------


@pytest.fixture(scope="module")
def idp_key() -> KeyPair:
    return make_key_pair("Fake IdP")


@pytest.fixture(scope="module")
def other_key() -> KeyPair:
    return make_key_pair("Attacker")


@pytest.fixture(scope="module")
def sp_key() -> KeyPair:
    return make_key_pair("Fake SP")


@pytest.fixture
def idp(idp_key: KeyPair) -> FakeSAMLIdP:
    return FakeSAMLIdP(key=idp_key)


# --- Checkers ----------------------------------------------------------------------------


def _xmlsec(args: list[str], files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="test-saml-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        id_args: list[str] = []
        for node in ID_ATTRS:
            id_args += ["--id-attr:ID", node]
        return subprocess.run(
            ["xmlsec1", *args, *id_args, "doc.xml"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


def xmlsec_verify(xml: str, cert: KeyPair, node_id: str | None = None) -> bool:
    """xmlsec1 --verify of the first signature (under the element ``node_id``)."""
    args = ["--verify", "--pubkey-cert-pem", "cert.pem", "--enabled-key-data", "raw-x509-cert"]
    if node_id is not None:
        args += ["--node-id", node_id]
    proc = _xmlsec(args, {"doc.xml": xml, "cert.pem": cert.certificate_pem})
    return proc.returncode == 0


def xmlsec_decrypt(xml: str, key: KeyPair) -> str:
    proc = _xmlsec(
        ["--decrypt", "--privkey-pem", "key.pem"],
        {"doc.xml": xml, "key.pem": key.private_key_pem},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


_HASHES: dict[str, Any] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashlib.sha1,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashlib.sha256,
}
_SIG_HASHES: dict[str, hashes.HashAlgorithm] = {
    SIG_RSA_SHA1: hashes.SHA1(),
    SIG_RSA_SHA256: hashes.SHA256(),
}


def signature_covers(signature: Any, target: Any, cert: KeyPair) -> bool:
    """Does ``signature`` verify over ``target`` (both elements of one parsed document)?

    The reference must name ``target``'s ID; the digest is over ``target`` less
    the signature itself when enveloped (the enveloped-signature transform),
    in exclusive canonical form, as are the SignedInfo octets that are signed.
    """
    reference = signature.find("ds:SignedInfo/ds:Reference", NS)
    if reference.get("URI") != "#" + target.get("ID"):
        return False
    content = copy.deepcopy(target)
    for node, node_copy in zip(target.iter(), content.iter(), strict=True):
        if node is signature:  # enveloped: the transform takes it out
            node_copy.getparent().remove(node_copy)
            break
    digest_alg = reference.find("ds:DigestMethod", NS).get("Algorithm")
    digest = _HASHES[digest_alg](etree.tostring(content, method="c14n", exclusive=True)).digest()
    if base64.b64encode(digest).decode() != reference.findtext("ds:DigestValue", namespaces=NS):
        return False
    signed_info = signature.find("ds:SignedInfo", NS)
    octets = etree.tostring(signed_info, method="c14n", exclusive=True)
    method = signed_info.find("ds:SignatureMethod", NS).get("Algorithm")
    value = base64.b64decode(
        "".join(signature.findtext("ds:SignatureValue", namespaces=NS).split())
    )
    public_key = cert.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(value, octets, padding.PKCS1v15(), _SIG_HASHES[method])
    except InvalidSignature:
        return False
    return True


def _assertions(xml: str) -> list[Any]:
    return list(parse_xml(xml).iter(f"{{{SAML_NS}}}Assertion"))


def _name_id(assertion: Any) -> str:
    return str(assertion.findtext("saml:Subject/saml:NameID", namespaces=NS))


def _signed(idp: FakeSAMLIdP, **kwargs: Any) -> str:
    kwargs.setdefault("destination", ACS)
    kwargs.setdefault("audience", SP_ENTITY)
    return idp.response(**kwargs)


# --- Keys --------------------------------------------------------------------------------


def test_key_pair_is_a_self_signed_certificate_of_the_key(idp_key: KeyPair) -> None:
    cert = idp_key.certificate
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.public_numbers() == idp_key.private_key.public_key().public_numbers()
    assert cert.subject == cert.issuer
    der = x509.load_pem_x509_certificate(idp_key.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert base64.b64decode(idp_key.cert_b64) == der
    assert "\n" not in idp_key.cert_b64


def test_key_pair_validity_can_be_set() -> None:
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    pair = make_key_pair("Old", days_valid=10, not_before=start, key_size=1024)
    assert pair.certificate.not_valid_before_utc == start
    assert pair.certificate.not_valid_after_utc == start + dt.timedelta(days=10)
    assert pair.private_key.key_size == 1024


# --- Responses -----------------------------------------------------------------------------


def test_signed_assertion_verifies_and_not_with_another_cert(
    idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair
) -> None:
    xml = _signed(idp, attributes={"email": ["alice@contoso.com"]}, in_response_to="_req1")
    (assertion,) = _assertions(xml)
    root = parse_xml(xml)
    assert root.find("ds:Signature", NS) is None  # only the assertion is signed by default
    # The signature sits right after the assertion's Issuer.
    assert [etree.QName(c).localname for c in assertion][:3] == ["Issuer", "Signature", "Subject"]
    assert xmlsec_verify(xml, idp_key)
    assert not xmlsec_verify(xml, other_key)
    sig = assertion.find("ds:Signature", NS)
    assert signature_covers(sig, assertion, idp_key)  # our checker agrees with xmlsec1
    assert not signature_covers(sig, assertion, other_key)
    assert sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == SIG_RSA_SHA256
    assert (
        "".join(sig.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS).split())
        == idp_key.cert_b64
    )


def test_response_content(idp: FakeSAMLIdP) -> None:
    xml = _signed(
        idp,
        in_response_to="_req1",
        name_id="alice-pid",
        attributes={"email": ["alice@contoso.com"], "groups": ["a", "b"]},
        session_index="_s42",
    )
    root = parse_xml(xml)
    assert root.get("Destination") == ACS
    assert root.get("InResponseTo") == "_req1"
    assert root.findtext("saml:Issuer", namespaces=NS) == idp.entity_id
    (assertion,) = _assertions(xml)
    assert _name_id(assertion) == "alice-pid"
    data = assertion.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
    assert data.get("Recipient") == ACS
    assert data.get("InResponseTo") == "_req1"
    assert (
        assertion.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS)
        == SP_ENTITY
    )
    assert assertion.find("saml:AuthnStatement", NS).get("SessionIndex") == "_s42"
    values = {
        a.get("Name"): [v.text for v in a.findall("saml:AttributeValue", NS)]
        for a in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS)
    }
    assert values == {"email": ["alice@contoso.com"], "groups": ["a", "b"]}
    status = root.find("samlp:Status/samlp:StatusCode", NS).get("Value")
    assert status == "urn:oasis:names:tc:SAML:2.0:status:Success"


def test_sha1_variant_carries_rsa_sha1(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp, algorithm="rsa-sha1", digest="sha1")
    (assertion,) = _assertions(xml)
    sig = assertion.find("ds:Signature", NS)
    assert sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == SIG_RSA_SHA1
    digest = sig.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS).get("Algorithm")
    assert digest == "http://www.w3.org/2000/09/xmldsig#sha1"
    assert xmlsec_verify(xml, idp_key)


def test_signed_response_and_assertion(
    idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair
) -> None:
    xml = _signed(idp, sign_response=True, response_id="_resp1", assertion_id="_ass1")
    root = parse_xml(xml)
    assert [etree.QName(c).localname for c in root] == [
        "Issuer",
        "Signature",
        "Status",
        "Assertion",
    ]
    assert xmlsec_verify(xml, idp_key, node_id="_resp1")
    assert xmlsec_verify(xml, idp_key, node_id="_ass1")
    assert not xmlsec_verify(xml, other_key, node_id="_resp1")
    # Response only, assertion unsigned.
    only = _signed(idp, sign_response=True, sign_assertion=False, response_id="_resp2")
    assert _assertions(only)[0].find("ds:Signature", NS) is None
    assert xmlsec_verify(only, idp_key, node_id="_resp2")


def test_response_and_assertion_signed_by_different_keys(
    idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair
) -> None:
    xml = _signed(
        idp,
        sign_response=True,
        response_id="_r",
        assertion_id="_a",
        signing_key=other_key,
        response_signing_key=idp_key,
    )
    assert xmlsec_verify(xml, idp_key, node_id="_r")
    assert xmlsec_verify(xml, other_key, node_id="_a")
    assert not xmlsec_verify(xml, idp_key, node_id="_a")


def test_unsigned_response_has_no_signature(idp: FakeSAMLIdP) -> None:
    xml = _signed(idp, sign_assertion=False)
    assert "Signature" not in xml


def test_failed_status_without_assertion(idp: FakeSAMLIdP) -> None:
    xml = _signed(
        idp,
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        sub_status="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
        status_message="no",
        include_assertion=False,
    )
    root = parse_xml(xml)
    assert _assertions(xml) == []
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    assert code.get("Value").endswith(":Responder")
    assert code.find("samlp:StatusCode", NS).get("Value").endswith(":AuthnFailed")
    assert root.findtext("samlp:Status/samlp:StatusMessage", namespaces=NS) == "no"


@pytest.mark.parametrize("algorithm", ["aes256-cbc", "aes128-gcm"])
def test_encrypted_assertion_decrypts_to_the_signed_assertion(
    idp: FakeSAMLIdP, idp_key: KeyPair, sp_key: KeyPair, other_key: KeyPair, algorithm: Any
) -> None:
    xml = _signed(
        idp,
        encrypt_to=sp_key,
        encryption_algorithm=algorithm,
        sign_response=True,
        response_id="_r",
        assertion_id="_a",
        name_id="secret-pid",
    )
    root = parse_xml(xml)
    assert _assertions(xml) == []
    assert "secret-pid" not in xml
    data = root.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    assert data is not None
    method = data.find("xenc:EncryptionMethod", NS).get("Algorithm")
    assert method.endswith(algorithm)
    transport = data.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS)
    assert transport.get("Algorithm") == XENC_NS + "rsa-oaep-mgf1p"
    # The response signature covers the encrypted assertion.
    assert xmlsec_verify(xml, idp_key, node_id="_r")
    # Decrypted, it is the assertion, signed by the IdP.
    clear = xmlsec_decrypt(xml, sp_key)
    (assertion,) = _assertions(clear)
    assert assertion.get("ID") == "_a"
    assert _name_id(assertion) == "secret-pid"
    assert xmlsec_verify(clear, idp_key, node_id="_a")
    # Not with the wrong private key.
    proc = _xmlsec(
        ["--decrypt", "--privkey-pem", "key.pem"],
        {"doc.xml": xml, "key.pem": other_key.private_key_pem},
    )
    assert proc.returncode != 0


# --- Metadata --------------------------------------------------------------------------


def test_metadata_lists_each_cert(idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair) -> None:
    xml = idp.metadata_xml(certs=[idp_key, other_key], want_authn_requests_signed=True)
    root = etree.fromstring(xml.encode())
    assert root.tag == f"{{{MD_NS}}}EntityDescriptor"
    assert root.get("entityID") == idp.entity_id
    idpsso = root.find("md:IDPSSODescriptor", NS)
    assert idpsso.get("WantAuthnRequestsSigned") == "true"
    certs = [
        kd.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
        for kd in idpsso.findall("md:KeyDescriptor", NS)
    ]
    assert certs == [idp_key.cert_b64, other_key.cert_b64]
    assert {kd.get("use") for kd in idpsso.findall("md:KeyDescriptor", NS)} == {"signing"}
    sso = {
        s.get("Binding"): s.get("Location") for s in idpsso.findall("md:SingleSignOnService", NS)
    }
    assert set(sso.values()) == {idp.sso_url}
    assert len(sso) == 2
    assert len(idpsso.findall("md:SingleLogoutService", NS)) == 2
    assert idpsso.findtext("md:NameIDFormat", namespaces=NS).endswith(":persistent")
    # Schema order of the role descriptor's children.
    order = [etree.QName(c).localname for c in idpsso]
    assert order == [
        "KeyDescriptor",
        "KeyDescriptor",
        "SingleLogoutService",
        "SingleLogoutService",
        "NameIDFormat",
        "SingleSignOnService",
        "SingleSignOnService",
    ]


def test_metadata_variants(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    until = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    xml = idp.metadata_xml(entities_descriptor=True, valid_until=until, slo_url=False)
    root = etree.fromstring(xml.encode())
    assert root.tag == f"{{{MD_NS}}}EntitiesDescriptor"
    assert root.get("validUntil") == "2030-01-02T03:04:05Z"
    assert root.find("md:EntityDescriptor/md:IDPSSODescriptor", NS) is not None
    assert root.find(".//md:SingleLogoutService", NS) is None
    # Default: one cert, our own.
    one = etree.fromstring(idp.metadata_xml().encode())
    assert [c.text for c in one.iter(f"{{{DS_NS}}}X509Certificate")] == [idp_key.cert_b64]
    # Signed metadata verifies.
    signed = idp.metadata_xml(signing_key=idp_key)
    assert etree.QName(etree.fromstring(signed.encode())[0]).localname == "Signature"
    assert xmlsec_verify(signed, idp_key)


# --- Logout ------------------------------------------------------------------------------


def test_logout_request_post_is_signed(
    idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair
) -> None:
    xml = idp.logout_request(
        destination="https://sp/slo", name_id="alice-pid", session_index="_s1", request_id="_lr1"
    )
    root = parse_xml(xml)
    assert [etree.QName(c).localname for c in root] == [
        "Issuer",
        "Signature",
        "NameID",
        "SessionIndex",
    ]
    assert request_id(xml) == "_lr1"
    assert root.findtext("saml:NameID", namespaces=NS) == "alice-pid"
    assert xmlsec_verify(xml, idp_key)
    assert not xmlsec_verify(xml, other_key)
    assert "Signature" not in idp.logout_request(destination=None, name_id="x", sign=False)


def test_logout_response_post(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = idp.logout_response(
        destination="https://sp/slo", in_response_to="_sp1", status=STATUS_PARTIAL_LOGOUT
    )
    root = parse_xml(xml)
    assert root.tag == f"{{{SAMLP_NS}}}LogoutResponse"
    assert root.get("InResponseTo") == "_sp1"
    assert root.find("samlp:Status/samlp:StatusCode", NS).get("Value") == STATUS_PARTIAL_LOGOUT
    assert xmlsec_verify(xml, idp_key)


def test_redirect_logout_request_signature_verifies(
    idp: FakeSAMLIdP, idp_key: KeyPair, other_key: KeyPair
) -> None:
    params = idp.redirect_logout_request_query(
        destination="https://sp/slo",
        name_id="alice-pid",
        session_index="_s1",
        relay_state="/after?x=1&y=ü",
        request_id="_lr2",
    )
    assert list(params) == ["SAMLRequest", "RelayState", "SigAlg", "Signature"]
    assert params["SigAlg"] == SIG_RSA_SHA256
    # No enveloped signature in the Redirect binding.
    xml = zlib.decompress(base64.b64decode(params["SAMLRequest"]), -15).decode()
    assert "Signature" not in xml
    assert request_id(xml) == "_lr2"
    # Signature over the exact quote_plus-encoded octets (SAML bindings 3.4.4.1).
    octets = "&".join(
        f"{k}={quote_plus(params[k])}" for k in ("SAMLRequest", "RelayState", "SigAlg")
    )
    public_key = idp_key.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        base64.b64decode(params["Signature"]), octets.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert verify_redirect_signature(params, idp_key.certificate_pem)
    assert not verify_redirect_signature(params, other_key.certificate_pem)
    url = redirect_url("https://sp/slo", params)
    assert verify_redirect_signature(url, idp_key.certificate_pem)
    # Reading it back.
    read_xml, read_params = read_redirect_request(url)
    assert read_xml == xml
    assert read_params == params
    # Tampered RelayState: signature fails.
    bad = dict(params, RelayState="/elsewhere")
    assert not verify_redirect_signature(bad, idp_key.certificate_pem)


def test_redirect_logout_response_sha1_and_unsigned(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    params = idp.redirect_logout_response_query(
        destination="https://sp/slo", in_response_to="_sp2", sigalg=SIG_RSA_SHA1
    )
    assert list(params) == ["SAMLResponse", "SigAlg", "Signature"]
    assert verify_redirect_signature(params, idp_key.certificate_pem)
    xml, _ = read_redirect_request(redirect_url("https://sp/slo?a=b", params))
    assert parse_xml(xml).get("InResponseTo") == "_sp2"
    unsigned = idp.redirect_logout_response_query(destination=None, in_response_to="_x", sign=False)
    assert list(unsigned) == ["SAMLResponse"]
    assert not verify_redirect_signature(unsigned, idp_key.certificate_pem)


def test_read_redirect_request_of_an_sp_authn_request(sp_key: KeyPair) -> None:
    # What an SP would send: built here by hand, signed with the SP key.
    authn = (
        f'<samlp:AuthnRequest xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="_authn1" '
        f'Version="2.0" IssueInstant="2024-01-01T00:00:00Z" AssertionConsumerServiceURL="{ACS}">'
        f"<saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>"
    )
    params = redirect_query("SAMLRequest", authn, relay_state="rs", signing_key=sp_key)
    url = redirect_url("https://idp.example.test/sso", params)
    xml, read = read_redirect_request(url)
    assert request_id(xml) == "_authn1"
    assert read["RelayState"] == "rs"
    assert verify_redirect_signature(read, sp_key.certificate_pem)
    assert verify_redirect_signature(url, sp_key.certificate_pem)
    # The raw octets are used when given the URL: an SP that encodes differently (lower-case
    # hex, %20) still verifies from the URL, as the bindings specification requires.
    query = dict(parse_qsl(urlsplit(url).query))
    assert query == read
    assert deflate_b64(authn) == params["SAMLRequest"]


def test_post_form_value(idp: FakeSAMLIdP) -> None:
    xml = _signed(idp)
    assert base64.b64decode(post_form_value(xml)).decode() == xml


# --- Attacks ---------------------------------------------------------------------------


def test_tamper_name_id_breaks_the_signature(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp)
    bad = tamper_name_id(xml, "admin")
    (assertion,) = _assertions(bad)
    assert _name_id(assertion) == "admin"
    assert xmlsec_verify(xml, idp_key)
    assert not xmlsec_verify(bad, idp_key)
    assert not signature_covers(assertion.find("ds:Signature", NS), assertion, idp_key)


def test_strip_signatures(idp: FakeSAMLIdP) -> None:
    xml = _signed(idp, sign_response=True)
    stripped = strip_signatures(xml)
    assert "Signature" not in stripped
    assert _name_id(_assertions(stripped)[0]) == "00000000-persistent-id"


def test_xsw_evil_assertion_beside(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp, name_id="victim", attributes={"email": ["victim@contoso.com"]})
    attacked = wrap_evil_assertion_beside(
        xml, "attacker", evil_attributes={"email": ["attacker@evil.test"]}
    )
    evil, original = _assertions(attacked)
    assert _name_id(evil) == "attacker"
    assert "attacker@evil.test" in etree.tostring(evil).decode()
    assert evil.find("ds:Signature", NS) is None
    assert _name_id(original) == "victim"
    assert evil.get("ID") != original.get("ID")
    # The original signature still verifies over the original element: a real attack.
    assert signature_covers(original.find("ds:Signature", NS), original, idp_key)
    assert xmlsec_verify(attacked, idp_key)
    # With the same ID, xmlsec1 refuses the document (duplicate ID).
    same = wrap_evil_assertion_beside(xml, "attacker", same_id=True)
    evil, original = _assertions(same)
    assert evil.get("ID") == original.get("ID")
    assert signature_covers(original.find("ds:Signature", NS), original, idp_key)
    assert not xmlsec_verify(same, idp_key)


def test_xsw_signed_assertion_moved_into_extensions(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp, name_id="victim", assertion_id="_orig")
    attacked = wrap_signed_assertion_moved(xml, "attacker")
    root = parse_xml(attacked)
    assert [etree.QName(c).localname for c in root] == [
        "Issuer",
        "Extensions",
        "Status",
        "Assertion",
    ]
    evil = root.find("saml:Assertion", NS)
    original = root.find("samlp:Extensions/saml:Assertion", NS)
    assert evil.get("ID") == original.get("ID") == "_orig"
    assert _name_id(evil) == "attacker"
    assert evil.find("ds:Signature", NS) is None
    assert _name_id(original) == "victim"
    sig = original.find("ds:Signature", NS)
    assert signature_covers(sig, original, idp_key)
    assert not signature_covers(sig, evil, idp_key)
    # xmlsec1 agrees over the original element on its own, and refuses the whole
    # document (two elements with one ID).
    assert xmlsec_verify(etree.tostring(original).decode(), idp_key)
    assert not xmlsec_verify(attacked, idp_key)


def test_xsw_signed_assertion_moved_into_signature_object(
    idp: FakeSAMLIdP, idp_key: KeyPair
) -> None:
    xml = _signed(idp, name_id="victim", assertion_id="_orig", algorithm="rsa-sha1", digest="sha1")
    attacked = wrap_signed_assertion_moved(xml, "attacker", into="signature_object")
    root = parse_xml(attacked)
    evil = root.find("saml:Assertion", NS)
    assert [etree.QName(c).localname for c in root] == ["Issuer", "Status", "Assertion"]
    sig = evil.find("ds:Signature", NS)
    original = sig.find("ds:Object/saml:Assertion", NS)
    assert evil.get("ID") == original.get("ID") == "_orig"
    assert _name_id(evil) == "attacker"
    assert _name_id(original) == "victim"
    assert original.find("ds:Signature", NS) is None
    assert signature_covers(sig, original, idp_key)
    assert not signature_covers(sig, evil, idp_key)


def test_xsw_signed_response_moved(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp, name_id="victim", sign_response=True, response_id="_resp")
    attacked = wrap_signed_response_moved(xml, "attacker")
    root = parse_xml(attacked)
    sig = root.find("ds:Signature", NS)
    original = sig.find("ds:Object/samlp:Response", NS)
    assert root.get("ID") == original.get("ID") == "_resp"
    assert _name_id(root.find("saml:Assertion", NS)) == "attacker"
    assert _name_id(original.find("saml:Assertion", NS)) == "victim"
    assert signature_covers(sig, original, idp_key)
    assert not signature_covers(sig, root, idp_key)


def test_xxe_response_declares_an_external_entity(idp: FakeSAMLIdP, tmp_path: Path) -> None:
    xml = xxe_response(idp=idp, destination=ACS, audience=SP_ENTITY)
    assert xml.startswith("<!DOCTYPE samlp:Response [")
    assert '<!ENTITY xxe SYSTEM "file:///etc/passwd">' in xml
    assert ">&xxe;</saml:AttributeValue>" in xml
    # A parser that expands external entities reads the file: the document is a real
    # attack (shown with a file of our own rather than /etc/passwd).
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xml = idp.xxe_response(entity_url=secret.as_uri(), destination=ACS, audience=SP_ENTITY)
    assert "TOP-SECRET-CONTENT" not in etree.tostring(parse_xml(xml)).decode()
    unsafe = etree.XMLParser(resolve_entities=True, no_network=True, load_dtd=True)
    expanded = etree.tostring(etree.fromstring(xml.encode(), unsafe)).decode()
    assert "TOP-SECRET-CONTENT" in expanded


def test_billion_laughs(idp: FakeSAMLIdP) -> None:
    xml = billion_laughs(idp=idp, destination=ACS, audience=SP_ENTITY)
    assert '<!ENTITY lol9 "' + "&lol8;" * 10 + '">' in xml
    assert ">&lol9;</saml:AttributeValue>" in xml
    small = idp.billion_laughs(levels=3, destination=ACS, audience=SP_ENTITY, sign_assertion=False)
    parser = etree.XMLParser(resolve_entities=True, no_network=True)
    expanded = etree.tostring(etree.fromstring(small.encode(), parser)).decode()
    assert "lol" * 100 in expanded


def test_issuers_can_differ_or_be_left_out(idp: FakeSAMLIdP, idp_key: KeyPair) -> None:
    xml = _signed(idp, issuer="https://other.test/", assertion_issuer="https://third.test/")
    root = parse_xml(xml)
    assert root.findtext("saml:Issuer", namespaces=NS) == "https://other.test/"
    assert _assertions(xml)[0].findtext("saml:Issuer", namespaces=NS) == "https://third.test/"
    bare = _signed(idp, issuer="", audience=None, name_id=None)
    (assertion,) = _assertions(bare)
    assert parse_xml(bare).find("saml:Issuer", NS) is None
    assert assertion.find("saml:Issuer", NS) is None
    assert etree.QName(assertion[0]).localname == "Signature"
    assert assertion.find("saml:Conditions/saml:AudienceRestriction", NS) is None
    assert assertion.find("saml:Subject/saml:NameID", NS) is None
    assert xmlsec_verify(bare, idp_key)
