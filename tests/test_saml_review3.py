"""Found by a third read-only security review of the SAML service provider (2026-12-01).

Each test failed before its fix. Messages are
built with tests/saml_fake_idp.py (lxml + the xmlsec1 CLI), not with pysaml2.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_entra_sso.models import Connector
from tests.saml_fake_idp import (
    SAML_NS,
    XENC_NS,
    FakeSAMLIdP,
    KeyPair,
    _q,
    _sign_element,
    _sub,
    _to_str,
    parse_xml,
    post_form_value,
    saml_time,
)
from tests.test_saml import (  # noqa: F401 - fixtures
    ACS,
    ALICE,
    SLS,
    SP,
    acme,
    answer,
    idp,
    post,
    sign_in,
    start,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"


def _sp_cert(client: Client, connector: Connector) -> KeyPair:
    """The connector's public encryption certificate, as anyone reads it in the SP metadata."""
    assert client.get("/sso/saml/metadata/acme/").status_code == 200
    connector.refresh_from_db()
    return KeyPair(private_key_pem="", certificate_pem=connector.sp_certificate, cert_b64="")


def _signed_in_as(client: Client) -> bytes:
    return client.get("/private/").content


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"A" * 32)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


# -- 1. xmlsec1 --decrypt follows xenc:CipherReference URIs: unauthenticated SSRF / DoS -----


def _with_cipher_reference(xml: str, uri: str) -> str:
    """The Response with its EncryptedAssertion's CipherValue replaced by a CipherReference."""
    root = parse_xml(xml)
    data = root.find(f"{{{SAML_NS}}}EncryptedAssertion/{{{XENC_NS}}}EncryptedData")
    cipher_data = data.find(_q(XENC_NS, "CipherData"))
    for child in list(cipher_data):
        cipher_data.remove(child)
    _sub(cipher_data, XENC_NS, "CipherReference", URI=uri)
    return _to_str(root)


def test_an_encrypted_assertion_cannot_make_the_server_fetch_a_url(
    client: Client, idp: FakeSAMLIdP, acme: Connector, listener: tuple[str, list[str]]
) -> None:
    """Anyone may start a sign-in and post an unsigned Response. Its EncryptedAssertion
    (the session key wrapped to the SP certificate from the public SP metadata) says
    its cipher text is at a URL: pysaml2 runs ``xmlsec1 --decrypt`` without
    ``--enabled-cipher-reference-uris``, and xmlsec1 fetches it (http://, file://:
    SSRF, and ``file:///dev/zero`` grows the xmlsec1 process without bound)."""
    base, hits = listener
    sp_cert = _sp_cert(client, acme)
    attacker = Client()
    rid, relay_state = start(attacker)
    xml = answer(idp, rid, encrypt_to=sp_cert, sign_assertion=False)
    post(attacker, _with_cipher_reference(xml, f"{base}/internal-only"), relay_state)
    assert hits == [], f"the server fetched {hits} for an unauthenticated POST to the ACS"


# -- 2. SubjectConfirmationData InResponseTo is not checked for encrypted assertions --------


def test_an_encrypted_assertion_answering_another_request_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    """pysaml2 compares SubjectConfirmationData/@InResponseTo with the Response's only
    for plain assertions (``check_subject_confirmation_in_response_to`` runs before
    decryption), and the adapter never compares them. The assertion, signed by the IdP,
    is bound to the victim's request; the unsigned Response around it is the attacker's."""
    sp_cert = _sp_cert(client, acme)
    victim = Client()
    victim_rid, _victim_relay = start(victim)
    # The victim's Response, captured before the victim's browser posted it.
    victims = answer(idp, victim_rid, encrypt_to=sp_cert)
    encrypted = parse_xml(victims).find(f"{{{SAML_NS}}}EncryptedAssertion")
    attacker = Client()
    rid, relay_state = start(attacker)
    outer = parse_xml(answer(idp, rid, include_assertion=False))
    outer.append(encrypted)
    response = post(attacker, _to_str(outer), relay_state)
    assert response.status_code != 302 or b"signed in" not in _signed_in_as(attacker), (
        "an assertion issued for another browser's request signed this browser in"
    )


def test_an_encrypted_idp_initiated_assertion_is_refused_when_idp_initiated_is_off(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    """allow_idp_initiated is off: an unsolicited assertion (no InResponseTo in its
    SubjectConfirmationData), encrypted, rides in an unsigned Response that answers a
    request of the attacker's own browser."""
    assert not acme.allow_idp_initiated
    sp_cert = _sp_cert(client, acme)
    unsolicited = answer(idp, None, encrypt_to=sp_cert)
    encrypted = parse_xml(unsolicited).find(f"{{{SAML_NS}}}EncryptedAssertion")
    rid, relay_state = start(client)
    outer = parse_xml(answer(idp, rid, include_assertion=False))
    outer.append(encrypted)
    response = post(client, _to_str(outer), relay_state)
    assert response.status_code != 302, "an IdP-initiated assertion signed in with it turned off"


# -- 3. Only bearer confirmations belong to Web Browser SSO ---------------------------------


def _assertion_response(idp: FakeSAMLIdP, rid: str, edit: Any) -> str:
    """A Response whose signed assertion was first changed by ``edit`` (before signing)."""
    assertion = idp.assertion_element(
        audience=SP, recipient=ACS, in_response_to=rid, attributes=ALICE
    )
    edit(assertion)
    signed = _sign_element(assertion, idp.key, "rsa-sha256", "sha256")
    outer = parse_xml(answer(idp, rid, include_assertion=False))
    outer.append(signed)
    return _to_str(outer)


def test_an_expired_sender_vouches_assertion_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    """pysaml2 checks the times of bearer confirmations only; the adapter checks that
    NotOnOrAfter is there, not that it is in the future, and accepts any Method. An
    assertion (Conditions without NotOnOrAfter, which SAML allows) whose only
    SubjectConfirmation is sender-vouches and ended an hour ago signs in; and as its
    replay-cache entry lives only 2 x CLOCK_LEEWAY, it signs in again after that."""
    hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)

    def edit(assertion: Any) -> None:
        confirmation = assertion.find(f"{{{SAML_NS}}}Subject/{{{SAML_NS}}}SubjectConfirmation")
        confirmation.set("Method", SENDER_VOUCHES)
        data = confirmation.find(_q(SAML_NS, "SubjectConfirmationData"))
        data.set("NotBefore", saml_time(hour_ago - dt.timedelta(minutes=5)))
        data.set("NotOnOrAfter", saml_time(hour_ago))
        conditions = assertion.find(_q(SAML_NS, "Conditions"))
        del conditions.attrib["NotOnOrAfter"]

    rid, relay_state = start(client)
    response = post(client, _assertion_response(idp, rid, edit), relay_state)
    assert response.status_code != 302, "an assertion that expired an hour ago signed in"


# -- 3b. SessionNotOnOrAfter ----------------------------------------------------------------


def test_the_session_ends_when_the_idp_says_it_does(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    """AuthnStatement/@SessionNotOnOrAfter: the IdP's limit on the session at the SP
    (SAML core 2.7.2). It was ignored: the Django session lived its own full age."""
    ends = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)
    assert sign_in(client, idp, session_not_on_or_after=ends).status_code == 302
    expiry = client.session.get_expiry_date()
    assert expiry <= ends + dt.timedelta(seconds=60), (
        f"the IdP ended the session at {ends:%H:%M:%S}; Django keeps it until {expiry}"
    )
    assert expiry >= ends - dt.timedelta(seconds=60)


# -- 4. A LogoutResponse without Status: a 500 for anyone ------------------------------------


def test_a_posted_logout_response_without_status_is_no_500(
    idp: FakeSAMLIdP, acme: Connector
) -> None:
    """Unsigned, POSTed: pysaml2 takes a LogoutResponse without Status as a success
    (status_ok), and check_logout_response reads response.status.status_code outside
    its try (adapter.py: AttributeError on None)."""
    root = parse_xml(idp.logout_response(destination=SLS, in_response_to="_x", sign=False))
    for status in root.findall("{urn:oasis:names:tc:SAML:2.0:protocol}Status"):
        root.remove(status)
    anyone = Client(raise_request_exception=False)
    response = anyone.post("/sso/saml/sls/acme/", {"SAMLResponse": post_form_value(_to_str(root))})
    assert response.status_code < 500, "an unauthenticated POST made a 500"


# -- 5. Long NameIDs were cut to 255 characters and then compared -------------------------


def test_a_name_id_longer_than_the_column_is_refused_not_cut(
    idp: FakeSAMLIdP, acme: Connector
) -> None:
    """Cut to 255 characters, two NameIDs sharing them (a DN, a URL with a long path;
    only persistent NameIDs are capped by SAML) were one account: now refused, so two
    people can never share one."""
    prefix = "CN=" + "x" * 252
    first, second = Client(), Client()
    assert sign_in(first, idp, name_id=prefix + "alice").status_code == 400
    mallory = {"email": ["mallory@acme.test"], "firstName": ["Mallory"]}
    assert sign_in(second, idp, name_id=prefix + "mallory", attributes=mallory).status_code == 400
    assert not User.objects.exists()
    assert sign_in(first, idp, name_id=prefix[:250] + "alice").status_code == 302
