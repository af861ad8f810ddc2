"""Found by a read-only security review of the SAML service provider.

Each test was written by the reviewer against the code before the fixes and failed
there for the reason it names (signature wrapping, a repeated query parameter, another
connector's IdP, replayed or stale LogoutRequests, ...); they pin the fixes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from tests.saml_fake_idp import FakeSAMLIdP, deflate_b64, make_key_pair, post_form_value
from tests.test_saml import (  # noqa: F401 - fixtures
    ACS,
    ALICE,
    SLS,
    SP,
    _signed_in,
    acme,
    answer,
    idp,
    post,
    sign_in,
    start,
    stranger,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
VICTIM = "00000000-persistent-id"


def _saml_connector(
    slug: str, name: str, fake: FakeSAMLIdP, domain: str, **fields: Any
) -> Connector:
    """A SAML connector trusting ``fake``'s metadata, with one email domain."""
    connector = Connector.objects.create(
        slug=slug, name=name, protocol="saml", saml_metadata_xml=fake.metadata_xml(), **fields
    )
    EmailDomain.objects.create(domain=domain, connector=connector)
    return connector


def _saml_sign_in(client: Client, connector_slug: str, fake: FakeSAMLIdP, **kwargs: Any) -> Any:
    from tests.saml_fake_idp import read_redirect_request, request_id

    response = client.get(f"/sso/login/?connector={connector_slug}")
    xml, params = read_redirect_request(response["Location"])
    forged = fake.response(
        destination=f"http://testserver/sso/saml/acs/{connector_slug}/",
        audience=f"http://testserver/sso/saml/metadata/{connector_slug}/",
        in_response_to=request_id(xml),
        **kwargs,
    )
    posted = client.post(
        f"/sso/saml/acs/{connector_slug}/",
        {"SAMLResponse": post_form_value(forged), "RelayState": params["RelayState"]},
    )
    return client.get(posted["Location"])


# -- 1. Redirect-binding SLO: signature checked over the first SAMLRequest, the last is used ---


def test_logout_request_signature_covers_the_message_that_is_used(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)  # the victim
    # Any LogoutRequest the IdP ever signed for us, e.g. the attacker's own sign-out.
    signed = idp.redirect_logout_request_query(destination=SLS, name_id="attacker-own-id")
    # An unsigned LogoutRequest naming the victim, appended as a second SAMLRequest.
    forged = idp.logout_request(destination=SLS, name_id=VICTIM, sign=False)
    query = urlencode(signed) + "&SAMLRequest=" + quote_plus(deflate_b64(forged))
    Client().get("/sso/saml/sls/acme/?" + query)
    assert SSOSession.objects.count() == 1, "a forged, unsigned LogoutRequest ended the session"
    assert client.get("/private/").status_code == 200


# -- 2. Cross-connector takeover: SAML identities are keyed by the metadata's entityID only ----


def test_another_connectors_idp_cannot_sign_in_as_this_connectors_user(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    victim = User.objects.get()
    # Customer "evil" has its own connector and domain, and its own IdP and key; its
    # metadata (pasted, or fetched from its URL at any later time) claims acme's entityID.
    evil_idp = FakeSAMLIdP(entity_id=idp.entity_id, key=make_key_pair("Evil IdP"))
    _saml_connector("evil", "Evil", evil_idp, "evil.test")
    attacker = Client()
    _saml_sign_in(
        attacker,
        "evil",
        evil_idp,
        name_id=VICTIM,  # the acme user's NameID; no email attribute at all
        attributes={"firstName": ["Mallory"]},
    )
    assert attacker.get("/private/").content != f"signed in as {victim.username}".encode(), (
        "connector evil's IdP signed in as acme's user"
    )
    assert Identity.objects.get(user=victim).connector_id == acme.pk


def test_an_entra_saml_connector_checks_the_tenant_claim_against_its_idp(
    client: Client,
) -> None:
    """provider=entra_id, but the metadata's entityID is not https://sts.windows.net/<tenant>/
    (a customer-hosted metadata URL can say anything): the tenantid claim is then taken
    as is, and the sign-in is keyed like an OIDC sign-in of that tenant."""
    tenant, oid = "72f988bf-86f1-41af-91ab-2d7cd011db47", "4f1c2d3e-0000-4000-8000-00000000a11c"
    oidc = Connector.objects.create(
        slug="contoso",
        name="Contoso",
        provider="entra_id",
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        client_id="app",
    )
    victim = User.objects.create(username="ceo", email="ceo@contoso.com")
    Identity.objects.create(
        connector=oidc,
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        subject=oid,
        tenant_id=tenant,
        user=victim,
    )
    evil_idp = FakeSAMLIdP(entity_id="https://idp.evil.test/saml", key=make_key_pair("Evil"))
    _saml_connector("evil", "Evil", evil_idp, "evil.test", provider="entra_id")
    _saml_sign_in(
        client,
        "evil",
        evil_idp,
        name_id="whatever",
        attributes={
            "http://schemas.microsoft.com/identity/claims/tenantid": [tenant],
            "http://schemas.microsoft.com/identity/claims/objectidentifier": [oid],
        },
    )
    assert client.get("/private/").content != b"signed in as ceo", (
        "a SAML IdP that is not Entra signed in as an Entra tenant's OIDC user"
    )


# -- 3. POST-binding LogoutResponse: pysaml2 inflates what the app only bounded as base64 ------

#: A raw DEFLATE stream whose bytes are valid UTF-8 (so ``decode_posted`` lets it through):
#: one dynamic-Huffman block of 258-byte matches, 516 output bytes per input byte 'f'.
_BOMB_HEAD = bytes.fromhex("ed91b109000000403a646a5a1c5755397ecab8374751652b")
_BOMB_TAIL = bytes.fromhex("02")


def test_a_posted_logout_response_is_never_inflated_beyond_the_size_cap(
    acme: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    import saml2.entity

    from django_entra_sso.conf import app_settings

    inflated: list[int] = []
    original = saml2.entity.decode_base64_and_inflate

    def spy(value: Any) -> bytes:
        out = original(value)
        inflated.append(len(out))
        return out

    monkeypatch.setattr(saml2.entity, "decode_base64_and_inflate", spy)
    bomb = _BOMB_HEAD + b"f" * 40_000 + _BOMB_TAIL  # 40 KB posted; README cap is 512 KB
    bomb.decode("utf-8")
    value = base64.b64encode(bomb).decode()
    assert len(value) < app_settings.SAML_MAX_RESPONSE_BYTES
    response = Client().post("/sso/saml/sls/acme/", {"SAMLResponse": value})
    assert response.status_code == 302
    assert max(inflated, default=0) <= app_settings.SAML_MAX_RESPONSE_BYTES, (
        f"pysaml2 inflated an unauthenticated POST to {max(inflated)} bytes"
    )


# -- 4. A signed LogoutRequest can be replayed (no ID cache; IssueInstant +-24 h accepted) -------


def test_a_logout_request_is_accepted_once(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    import datetime as dt

    _signed_in(client, idp)
    # Signed by the IdP 20 hours ago (no SessionIndex: "every session of this person"),
    # e.g. read from the browser history or a proxy log of the front-channel redirect.
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=20)
    query = urlencode(
        idp.redirect_logout_request_query(destination=SLS, name_id=VICTIM, issue_instant=old)
    )
    assert Client().get("/sso/saml/sls/acme/?" + query).status_code == 400, (
        "a 20-hour-old LogoutRequest was accepted"
    )


def test_a_replayed_logout_request_ends_nothing(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    query = urlencode(idp.redirect_logout_request_query(destination=SLS, name_id=VICTIM))
    assert Client().get("/sso/saml/sls/acme/?" + query).status_code == 302  # the real one
    assert not SSOSession.objects.exists()
    _signed_in(client, idp)  # the person signs in again
    Client().get("/sso/saml/sls/acme/?" + query)  # the same message, replayed
    assert SSOSession.objects.count() == 1, "the replayed LogoutRequest ended the new session"


# -- 5. A LogoutRequest signed by the IdP but addressed to someone else is a 500 ----------------


@pytest.mark.parametrize("binding", ["redirect", "post"])
def test_a_logout_request_for_another_destination_is_a_400_not_a_500(
    idp: FakeSAMLIdP, acme: Connector, binding: str
) -> None:
    other = "https://other-sp.example/saml/sls"
    client = Client(raise_request_exception=False)
    if binding == "redirect":
        query = idp.redirect_logout_request_query(destination=other, name_id=VICTIM)
        response = client.get("/sso/saml/sls/acme/?" + urlencode(query))
    else:
        xml = idp.logout_request(destination=other, name_id=VICTIM)
        response = client.post("/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(xml)})
    assert response.status_code == 400, response.status_code


# -- 0. Signature wrapping: xmlsec1 checks the FIRST ds:Signature under the signed element ------
#
# pysaml2 checks the shape of the element's own ds:Signature (one Reference, URI "#<its ID>")
# and then runs ``xmlsec1 --verify --node-id <ID>``, which verifies the first ds:Signature
# in document order inside that element. Put any IdP-signed element before the bogus
# enveloped signature and xmlsec1 verifies that one instead.


def _bogus_signature(element_id: str) -> Any:
    from tests import saml_fake_idp as F

    sig = F._signature_template(element_id, "rsa-sha256", "sha256", key_info=False)
    sig.find(F._q(F.DS_NS, "SignatureValue")).text = "AAAA"
    sig.find(".//" + F._q(F.DS_NS, "DigestValue")).text = "AAAA"
    return sig


def _response(idp: FakeSAMLIdP, in_response_to: str) -> Any:
    import datetime as dt

    from lxml import etree

    from tests import saml_fake_idp as F

    return etree.Element(
        F._q(F.SAMLP_NS, "Response"),
        {
            "ID": F.new_id(),
            "Version": "2.0",
            "IssueInstant": F.saml_time(dt.datetime.now(dt.timezone.utc)),
            "Destination": ACS,
            "InResponseTo": in_response_to,
        },
        nsmap={"samlp": F.SAMLP_NS, "saml": F.SAML_NS},
    )


def test_xsw_an_encrypted_assertion_cannot_borrow_another_assertions_signature(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    from lxml import etree

    from tests import saml_fake_idp as F

    sp_cert = Client().get("/sso/saml/metadata/acme/")  # public: the SP's encryption cert
    acme.refresh_from_db()
    assert sp_cert.status_code == 200
    sp = F.KeyPair(private_key_pem="", certificate_pem=acme.sp_certificate, cert_b64="")
    # Any assertion the IdP ever signed: the attacker's own, for another SP, long expired.
    borrowed = F._sign_element(
        idp.assertion_element(
            audience="https://other-sp.example/",
            recipient="https://other-sp.example/acs",
            name_id="attacker",
        ),
        idp.key,
        "rsa-sha256",
        "sha256",
    )
    rid, relay_state = start(client)
    evil = idp.assertion_element(
        audience=SP,
        recipient=ACS,
        in_response_to=rid,
        name_id="ceo-persistent-id",
        attributes={"email": ["ceo@acme.test"], "groups": ["readers"]},
    )
    advice = etree.Element(F._q(F.SAML_NS, "Advice"))
    advice.append(borrowed)
    evil.find(F._q(F.SAML_NS, "Issuer")).addnext(advice)  # before the bogus signature
    advice.addnext(_bogus_signature(evil.get("ID")))
    resp = _response(idp, rid)
    F._sub(resp, F.SAML_NS, "Issuer", idp.entity_id)
    F._add_status(resp, F.STATUS_SUCCESS, None, None)
    F._sub(resp, F.SAML_NS, "EncryptedAssertion").append(
        F.xmlsec_encrypt(
            etree.tostring(evil), sp
        )  # hides the second assertion from the shape check
    )
    response = post(client, F._to_str(resp), relay_state)
    assert response.status_code in (400, 403), response.status_code
    assert not User.objects.exists(), "signed in as a NameID of the attacker's choosing"


def test_xsw_a_response_cannot_borrow_a_nested_signed_responses_signature(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    from tests import saml_fake_idp as F

    # Any Response without assertion the IdP signed (an error answer), for any SP.
    borrowed = F.parse_xml(
        idp.response(
            destination="https://other-sp.example/acs",
            audience=None,
            status=F.STATUS_RESPONDER,
            include_assertion=False,
            sign_assertion=False,
            sign_response=True,
        )
    )
    rid, relay_state = start(client)
    resp = _response(idp, rid)
    F._sub(resp, F.SAML_NS, "Issuer", idp.entity_id)
    status = F._sub(resp, F.SAMLP_NS, "Status")
    F._sub(status, F.SAMLP_NS, "StatusCode", Value=F.STATUS_SUCCESS)
    F._sub(status, F.SAMLP_NS, "StatusDetail").append(borrowed)
    status.addnext(_bogus_signature(resp.get("ID")))
    resp.append(  # unsigned: the "signed" Response vouches for it
        idp.assertion_element(
            audience=SP,
            recipient=ACS,
            in_response_to=rid,
            name_id="ceo-persistent-id",
            attributes={"email": ["ceo@acme.test"]},
        )
    )
    response = post(client, F._to_str(resp), relay_state)
    assert response.status_code in (400, 403), response.status_code
    assert not User.objects.exists(), "signed in as a NameID of the attacker's choosing"


def test_xsw_a_posted_logout_request_cannot_borrow_a_nested_signature(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    from lxml import etree

    from tests import saml_fake_idp as F

    _signed_in(client, idp)
    # Any POST-binding LogoutRequest the IdP signed, to anyone (the attacker's own).
    borrowed = F.parse_xml(
        idp.logout_request(destination="https://other-sp.example/sls", name_id="attacker")
    )
    evil = F.parse_xml(idp.logout_request(destination=SLS, name_id=VICTIM, sign=False))
    extensions = etree.Element(F._q(F.SAMLP_NS, "Extensions"))
    etree.SubElement(extensions, "{urn:example:wrap}Wrap").append(borrowed)
    evil.find(F._q(F.SAML_NS, "Issuer")).addnext(extensions)
    extensions.addnext(_bogus_signature(evil.get("ID")))
    Client().post("/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(F._to_str(evil))})
    assert SSOSession.objects.count() == 1, "a forged LogoutRequest ended the victim's session"


# -- 6. Smaller gaps -------------------------------------------------------------------------------


def test_an_assertion_without_an_audience_restriction_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    response = sign_in(client, idp, audience=None)
    assert response.status_code in (400, 403), response.status_code
    assert not User.objects.exists()


def test_the_replay_cache_outlives_the_assertion(
    idp: FakeSAMLIdP, acme: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IdP-initiated: an assertion whose Conditions end in 5 minutes but whose bearer
    SubjectConfirmationData is valid for 6 h was remembered for 7 minutes only."""
    import datetime as dt

    from django_entra_sso.saml import replay

    remembered: list[int] = []
    real = replay.first_use

    def spy(connector: Connector, kind: Any, message_id: str, remember_for: int) -> bool:
        remembered.append(remember_for)
        return real(connector, kind, message_id, remember_for)

    monkeypatch.setattr(replay, "first_use", spy)
    acme.allow_idp_initiated = True
    acme.save()
    six_hours = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=6)
    xml = answer(idp, None, subject_not_on_or_after=six_hours)
    assert post(Client(), xml).status_code == 302
    assert remembered and remembered[0] >= 6 * 3600 - 60, (
        f"replay marker kept {remembered[0]} s < 6 h validity"
    )


# -- and around the fixes ------------------------------------------------------------------------


def test_a_logout_request_without_a_destination_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    # Signed by the IdP, but for nobody in particular: it could be meant for another app.
    query = urlencode(idp.redirect_logout_request_query(destination=None, name_id=VICTIM))
    assert Client().get("/sso/saml/sls/acme/?" + query).status_code == 400
    assert SSOSession.objects.count() == 1


def test_a_repeated_posted_parameter_is_refused(idp: FakeSAMLIdP, acme: Connector) -> None:
    xml = idp.logout_request(destination=SLS, name_id=VICTIM)
    value = post_form_value(xml)
    response = Client().post("/sso/saml/sls/acme/", {"SAMLRequest": [value, value]})
    assert response.status_code == 400


def test_an_entra_tenants_saml_idp_never_reaches_accounts_made_by_another_connector(
    client: Client,
) -> None:
    """Even with Entra's own entity ID: metadata can be pasted, so the name proves nothing.
    A SAML connector's people are its own (a ``saml:<connector>:`` issuer): the tenant's
    OpenID Connect user is not reached, the SAML sign-in is somebody new."""
    tenant, oid = "72f988bf-86f1-41af-91ab-2d7cd011db47", "4f1c2d3e-0000-4000-8000-00000000a11c"
    oidc = Connector.objects.create(
        slug="contoso",
        name="Contoso",
        provider="entra_id",
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        client_id="app",
    )
    victim = User.objects.create(username="ceo", email="ceo@contoso.com")
    Identity.objects.create(
        connector=oidc,
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        subject=oid,
        tenant_id=tenant,
        user=victim,
    )
    entra_like = FakeSAMLIdP(
        entity_id=f"https://sts.windows.net/{tenant}/", key=make_key_pair("Not Microsoft")
    )
    _saml_connector(
        "contoso-saml", "Contoso SAML", entra_like, "contoso-saml.test", provider="entra_id"
    )
    _saml_sign_in(
        client,
        "contoso-saml",
        entra_like,
        name_id="whatever",
        attributes={
            "http://schemas.microsoft.com/identity/claims/tenantid": [tenant],
            "http://schemas.microsoft.com/identity/claims/objectidentifier": [oid],
        },
    )
    assert client.get("/private/").content != b"signed in as ceo"
    assert Identity.objects.get(user=victim).connector_id == oidc.pk


# -- a second review, of the fixes ------------------------------------------------------------


def test_a_fake_entra_saml_connector_cannot_pre_hijack_a_tenants_oidc_account(
    client: Client,
) -> None:
    """Signing in first through pasted metadata that claims https://sts.windows.net/<T>/
    must not plant an account the tenant's real OpenID Connect connector later adopts."""
    from django_entra_sso import accounts
    from tests.helpers import make_connector, verified_person

    tenant, oid = "72f988bf-86f1-41af-91ab-2d7cd011db47", "4f1c2d3e-0000-4000-8000-00000000a11c"
    oidc = make_connector(
        slug="contoso",
        provider="entra_id",
        issuer=f"https://login.microsoftonline.com/{tenant}/v2.0",
        domain="contoso.com",
    )
    fake = FakeSAMLIdP(entity_id=f"https://sts.windows.net/{tenant}/", key=make_key_pair("Evil"))
    _saml_connector("evil", "Evil", fake, "evil.test", provider="entra_id")
    attacker = Client()
    response = _saml_sign_in(
        attacker,
        "evil",
        fake,
        issuer=f"https://sts.windows.net/{tenant}/",
        name_id="whatever",
        attributes={
            "http://schemas.microsoft.com/identity/claims/tenantid": [tenant],
            "http://schemas.microsoft.com/identity/claims/objectidentifier": [oid],
        },
    )
    assert response.status_code == 302
    planted = User.objects.get()
    person = verified_person(
        oidc,
        iss=f"https://login.microsoftonline.com/{tenant}/v2.0",
        sub="pairwise-sub",
        oid=oid,
        tid=tenant,
        email="ceo@contoso.com",
    )
    assert accounts.user_for(person).pk != planted.pk


def test_a_fake_saml_connector_cannot_lock_a_person_out_of_their_own_connector(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    """Another connector claiming acme's entity ID signs in first as the victim's NameID:
    acme's real sign-in of that person still works, into an account of its own."""
    evil_idp = FakeSAMLIdP(entity_id=idp.entity_id, key=make_key_pair("Evil IdP"))
    _saml_connector("evil", "Evil", evil_idp, "evil.test")
    planted = _saml_sign_in(
        Client(), "evil", evil_idp, name_id="00000000-persistent-id", attributes={}
    )
    assert planted.status_code == 302
    rid, relay_state = start(client)
    assert post(client, answer(idp, rid), relay_state).status_code == 302
    assert Identity.objects.filter(connector=acme).count() == 1
    assert User.objects.count() == 2


def test_a_posted_value_that_is_also_deflate_is_refused_before_pysaml2() -> None:
    """pysaml2 inflates POSTed values when it can: the document it would verify and read
    is then not the one checked here. A value that is UTF-8 *and* DEFLATE (the bomb above)
    is refused by the decoder itself, whatever parses it later."""
    import base64

    from django_entra_sso.saml.messages import MessageRefused, decode_posted

    bomb = _BOMB_HEAD + b"f" * 1000 + _BOMB_TAIL
    bomb.decode("utf-8")
    with pytest.raises(MessageRefused, match="DEFLATE"):
        decode_posted(base64.b64encode(bomb).decode())
    assert decode_posted(base64.b64encode(b"<plain/>").decode()) == "<plain/>"


def test_a_repeated_status_is_refused(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    """pysaml2 keeps the last of a repeated single child, xmlsec1 sees the first."""
    from tests import saml_fake_idp as F

    rid, relay_state = start(client)
    doc = F.parse_xml(answer(idp, rid))
    status = doc.find(F._q(F.SAMLP_NS, "Status"))
    twin = F._sub(doc, F.SAMLP_NS, "Status")
    F._sub(twin, F.SAMLP_NS, "StatusCode", Value=F.STATUS_SUCCESS)
    status.addnext(twin)
    response = post(client, F._to_str(doc), relay_state)
    assert response.status_code in (400, 403)
    assert not User.objects.exists()
