"""SAML connectors through the test client and a misbehaving IdP of our own.

Each check of a Response has its accept and reject case here; every refusal
also proves that no Django user was created. The IdP (``tests/saml_fake_idp``)
builds and signs its messages with lxml and the ``xmlsec1`` program, not with
pysaml2, the library under test.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from django_entra_sso.saml.metadata import SAMLMetadataError, get_idp_metadata, parse_metadata
from tests.saml_fake_idp import (
    FakeSAMLIdP,
    KeyPair,
    make_key_pair,
    post_form_value,
    read_redirect_request,
    request_id,
    strip_signatures,
    tamper_name_id,
    verify_redirect_signature,
    wrap_evil_assertion_beside,
    wrap_signed_assertion_moved,
)
from tests.test_hardening import PROFILE

pytestmark = pytest.mark.django_db
User = get_user_model()

SP = "http://testserver/sso/saml/metadata/acme/"
ACS = "http://testserver/sso/saml/acs/acme/"
SLS = "http://testserver/sso/saml/sls/acme/"
ALICE = {
    "email": ["alice@acme.test"],
    "firstName": ["Alice"],
    "lastName": ["Liddell"],
    "groups": ["readers"],
}
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
ENTRA_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_OID = "4f1c2d3e-0000-4000-8000-00000000a11c"


@pytest.fixture(scope="module")
def idp() -> FakeSAMLIdP:
    return FakeSAMLIdP()


@pytest.fixture(scope="module")
def stranger() -> KeyPair:
    """A key the IdP's metadata does not list."""
    return make_key_pair("Somebody else")


@pytest.fixture
def acme(idp: FakeSAMLIdP) -> Connector:
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        provider="oidc",
        saml_metadata_xml=idp.metadata_xml(),
        group_mapping={"readers": ["Readers"]},
    )
    EmailDomain.objects.create(domain="acme.test", connector=connector, verified_at=timezone.now())
    return connector


def start(client: Client, next_url: str = "/private/") -> tuple[str, str]:
    """Start a sign-in at the sign-in page; the AuthnRequest's ID and the RelayState."""
    response = client.post("/sso/login/", {"email": "alice@acme.test", "next": next_url})
    assert response.status_code == 302, response.content
    xml, params = read_redirect_request(response["Location"])
    return request_id(xml), params["RelayState"]


def post(client: Client, xml: str, relay_state: str = "") -> Any:
    """Post a Response to the ACS as the IdP's page would, and follow the 303 back."""
    posted = client.post(
        "/sso/saml/acs/acme/", {"SAMLResponse": post_form_value(xml), "RelayState": relay_state}
    )
    assert posted.status_code == 303, posted.content
    return client.get(posted["Location"])


def answer(idp: FakeSAMLIdP, in_response_to: str | None, **kwargs: Any) -> str:
    values: dict[str, Any] = {
        "destination": ACS,
        "audience": SP,
        "in_response_to": in_response_to,
        "attributes": ALICE,
        **kwargs,
    }
    return idp.response(**values)


def sign_in(client: Client, idp: FakeSAMLIdP, **kwargs: Any) -> Any:
    rid, relay_state = start(client)
    return post(client, answer(idp, rid, **kwargs), relay_state)


def refused(response: Any, code: str = "invalid_token") -> None:
    assert response.status_code in (400, 403), response.status_code
    assert f"Reference: {code}".encode() in response.content, response.content[-400:]
    assert not User.objects.exists(), "a refused sign-in left a user behind"


# -- the path that works ------------------------------------------------------------------


def test_sign_in_through_the_sign_in_page(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    response = sign_in(client, idp, session_index="_s-42")
    assert response.status_code == 302 and response["Location"] == "/private/"
    assert client.get("/private/").content == b"signed in as sso-alice"
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("alice@acme.test", "Alice", "Liddell")
    identity = Identity.objects.get()
    # The connector's own issuer: another connector claiming the same entity ID never
    # shares its people (tests/test_saml_review.py).
    connector = Connector.objects.get(slug="acme")
    expected = (f"saml:{connector.pk}:{idp.entity_id}", "00000000-persistent-id")
    assert (identity.issuer, identity.subject) == expected
    assert list(user.groups.values_list("name", flat=True)) == ["Readers"]
    row = SSOSession.objects.get()
    assert (row.sid, row.subject) == ("_s-42", "00000000-persistent-id")


def test_the_authn_request_is_signed_and_names_our_acs(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    response = client.get("/sso/login/?connector=acme")
    xml, params = read_redirect_request(response["Location"])
    assert response["Location"].startswith(idp.sso_url + "?")
    assert f'AssertionConsumerServiceURL="{ACS}"' in xml
    assert f">{SP}</" in xml  # our entity ID is the Issuer
    assert "Subject" not in xml  # Entra ID refuses AuthnRequests that name a subject
    acme.refresh_from_db()
    assert verify_redirect_signature(response["Location"], acme.sp_certificate)
    assert not verify_redirect_signature(response["Location"], idp.key.certificate_pem)
    assert len(params["RelayState"]) >= 32 and "/" not in params["RelayState"]


def test_sp_metadata_is_what_the_idp_needs(client: Client, acme: Connector) -> None:
    response = client.get("/sso/saml/metadata/acme/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/samlmetadata+xml"
    xml = response.content.decode()
    assert f'entityID="{SP}"' in xml
    assert f'Location="{ACS}"' in xml and f'Location="{SLS}"' in xml
    acme.refresh_from_db()
    der = "".join(acme.sp_certificate.strip().splitlines()[1:-1])
    assert der in xml.replace("\n", "")
    assert 'use="encryption"' in xml and 'use="signing"' in xml
    assert "sha1" not in xml and "md5" not in xml


def test_a_response_signed_only_on_the_response_is_accepted(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    response = sign_in(client, idp, sign_assertion=False, sign_response=True)
    assert response.status_code == 302 and User.objects.count() == 1


def test_an_encrypted_assertion_is_decrypted_with_the_connector_key(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    client.get("/sso/saml/metadata/acme/")  # makes the connector's key pair
    acme.refresh_from_db()
    sp_cert = KeyPair(private_key_pem="", certificate_pem=acme.sp_certificate, cert_b64="")
    rid, relay_state = start(client)
    xml = answer(idp, rid, encrypt_to=sp_cert)
    assert "EncryptedAssertion" in xml and "alice@acme.test" not in xml
    response = post(client, xml, relay_state)
    assert response.status_code == 302, response.content
    assert User.objects.get().email == "alice@acme.test"


def test_an_encrypted_assertion_must_still_be_signed(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    client.get("/sso/saml/metadata/acme/")
    acme.refresh_from_db()
    sp_cert = KeyPair(private_key_pem="", certificate_pem=acme.sp_certificate, cert_b64="")
    refused(sign_in(client, idp, encrypt_to=sp_cert, sign_assertion=False))


def test_certificate_rollover_accepts_either_listed_certificate(
    client: Client, idp: FakeSAMLIdP, stranger: KeyPair, acme: Connector
) -> None:
    acme.saml_metadata_xml = idp.metadata_xml(certs=[idp.key, stranger])
    acme.save()
    response = sign_in(client, idp, signing_key=stranger)
    assert response.status_code == 302


# -- signatures ------------------------------------------------------------------------------


def test_unsigned_response_is_refused(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    refused(sign_in(client, idp, sign_assertion=False, sign_response=False))


def test_signature_by_an_unknown_certificate_is_refused(
    client: Client, idp: FakeSAMLIdP, stranger: KeyPair, acme: Connector
) -> None:
    refused(sign_in(client, idp, signing_key=stranger))


def test_a_tampered_assertion_is_refused(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    rid, relay_state = start(client)
    refused(post(client, tamper_name_id(answer(idp, rid), "ceo"), relay_state))


def test_stripped_signatures_are_refused(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    rid, relay_state = start(client)
    refused(post(client, strip_signatures(answer(idp, rid, sign_response=True)), relay_state))


@pytest.mark.parametrize("same_id", [False, True])
def test_wrapping_a_second_unsigned_assertion_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector, same_id: bool
) -> None:
    rid, relay_state = start(client)
    attack = wrap_evil_assertion_beside(
        answer(idp, rid), "ceo", evil_attributes={"email": ["ceo@acme.test"]}, same_id=same_id
    )
    refused(post(client, attack, relay_state))


@pytest.mark.parametrize("into", ["extensions", "signature_object"])
def test_a_signed_assertion_moved_under_another_element_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector, into: str
) -> None:
    rid, relay_state = start(client)
    attack = wrap_signed_assertion_moved(
        answer(idp, rid), "ceo", into=into, evil_attributes={"email": ["ceo@acme.test"]}
    )
    refused(post(client, attack, relay_state))


def test_sha1_signatures_are_refused_unless_the_connector_accepts_them(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    refused(sign_in(client, idp, algorithm="rsa-sha1", digest="sha1"))
    acme.saml_allow_sha1 = True
    acme.save()
    response = sign_in(client, idp, algorithm="rsa-sha1", digest="sha1")
    assert response.status_code == 302


# -- who it is for, and when -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": "https://other-sp.example/metadata"}, "invalid_token"),
        ({"recipient": "https://other-sp.example/acs"}, "wrong_callback"),
        ({"destination": "https://other-sp.example/acs"}, "wrong_callback"),
        ({"issuer": "https://evil-idp.example/"}, "wrong_callback"),
        ({"assertion_issuer": "https://evil-idp.example/"}, "invalid_token"),
    ],
    ids=["audience", "recipient", "destination", "issuer", "assertion-issuer"],
)
def test_a_response_meant_for_someone_else_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector, change: dict[str, str], code: str
) -> None:
    refused(sign_in(client, idp, **change), code)


def _minutes(n: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=n)


@pytest.mark.parametrize(
    "change",
    [
        {"not_on_or_after": _minutes(-5)},
        {"not_before": _minutes(+5)},
        {"subject_not_on_or_after": _minutes(-5)},
    ],
    ids=["expired", "not-yet-valid", "subject-confirmation-expired"],
)
def test_a_response_outside_its_time_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector, change: dict[str, dt.datetime]
) -> None:
    # Computed at collection: minutes, far outside the 60 s leeway either way.
    refused(sign_in(client, idp, **change))


def test_clocks_a_little_apart_are_tolerated(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    response = sign_in(client, idp, not_before=_minutes(0.5), issue_instant=_minutes(0.5))
    assert response.status_code == 302


def test_a_failed_status_gets_its_page(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    response = sign_in(
        client,
        idp,
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        sub_status="urn:oasis:names:tc:SAML:2.0:status:RequestDenied",
        include_assertion=False,
    )
    assert response.status_code == 403
    assert b"Reference: access_denied" in response.content
    assert not User.objects.exists()


# -- whose request it answers ---------------------------------------------------------------------


def test_a_response_to_another_browsers_request_is_refused(
    idp: FakeSAMLIdP, acme: Connector
) -> None:
    victim, attacker = Client(), Client()
    rid, relay_state = start(victim)
    refused(post(attacker, answer(idp, rid), relay_state), "invalid_state")


def test_a_response_to_no_request_of_ours_is_refused(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _rid, relay_state = start(client)
    refused(post(client, answer(idp, "_made-up-request"), relay_state), "invalid_state")


def test_a_response_is_used_once(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    rid, relay_state = start(client)
    xml = answer(idp, rid)
    assert post(client, xml, relay_state).status_code == 302
    client.post("/sso/logout/")
    User.objects.all().delete()
    refused(post(client, xml, relay_state), "invalid_state")


def test_a_relay_state_dropped_by_the_idp_is_not_needed(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    rid, _relay_state = start(client)
    response = post(client, answer(idp, rid), "")
    assert response.status_code == 302 and response["Location"] == "/private/"


# -- IdP-initiated ---------------------------------------------------------------------------------


def test_unsolicited_responses_are_refused_by_default(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    refused(post(client, answer(idp, None)), "unsolicited")


def test_idp_initiated_sign_in_when_allowed_goes_to_a_same_site_next(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.allow_idp_initiated = True
    acme.save()
    response = post(client, answer(idp, None), "/private/")
    assert response.status_code == 302 and response["Location"] == "/private/"
    other = Client()
    response = post(other, answer(idp, None), "https://evil.example/phish")
    assert response.status_code == 302 and response["Location"] == "/home/"


def test_an_assertion_is_accepted_once_even_unsolicited(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.allow_idp_initiated = True
    acme.save()
    xml = answer(idp, None)
    assert post(client, xml).status_code == 302
    replay = post(Client(), xml)
    assert replay.status_code == 400 and b"Reference: invalid_token" in replay.content
    assert SSOSession.objects.count() == 1


# -- hostile XML and sizes --------------------------------------------------------------------------


def test_external_entities_are_never_resolved(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    rid, relay_state = start(client)
    response = post(
        client, idp.xxe_response(destination=ACS, audience=SP, in_response_to=rid), relay_state
    )
    refused(response)
    assert b"root:" not in response.content


def test_billion_laughs_is_refused(client: Client, idp: FakeSAMLIdP, acme: Connector) -> None:
    rid, relay_state = start(client)
    refused(
        post(
            client,
            idp.billion_laughs(destination=ACS, audience=SP, in_response_to=rid),
            relay_state,
        )
    )


@pytest.mark.parametrize(
    "value",
    ["", "not base64!", "PGZvbz4=", "////", "A" * (600 * 1024)],
    ids=["empty", "garbage", "not-a-response", "binary", "too-large"],
)
def test_malformed_posts_get_a_clear_answer(client: Client, acme: Connector, value: str) -> None:
    response = client.post("/sso/saml/acs/acme/", {"SAMLResponse": value})
    if response.status_code == 303:
        response = client.get(response["Location"])
    assert response.status_code == 400
    assert not User.objects.exists()


def test_unknown_connectors_and_oidc_connectors_have_no_saml_endpoints(client: Client) -> None:
    Connector.objects.create(slug="oidc-one", name="O", issuer="https://op.example", client_id="x")
    for path in ("metadata", "sls"):
        assert client.get(f"/sso/saml/{path}/oidc-one/").status_code == 404
        assert client.get(f"/sso/saml/{path}/nobody/").status_code == 404
    assert client.post("/sso/saml/acs/oidc-one/", {"SAMLResponse": "eA=="}).status_code == 404


# -- who the user is ------------------------------------------------------------------------------


def test_a_transient_name_id_cannot_key_an_account(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    refused(sign_in(client, idp, name_id_format=TRANSIENT, name_id="_one-time"))


def test_attribute_names_can_be_overridden(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.saml_attribute_map = {"email": "work-mail"}
    acme.save()
    response = sign_in(
        client, idp, attributes={"work-mail": ["alice@acme.test"], "email": ["x@y.z"]}
    )
    assert response.status_code == 302
    assert User.objects.get().email == "alice@acme.test"


def _entra_connector(idp: FakeSAMLIdP, tenant: str = ENTRA_TENANT) -> Connector:
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        provider="entra_id",
        saml_metadata_xml=idp.metadata_xml(entity_id=f"https://sts.windows.net/{tenant}/"),
    )
    EmailDomain.objects.create(domain="acme.test", connector=connector, verified_at=timezone.now())
    return connector


ENTRA_CLAIMS = {
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["alice@acme.test"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Alice"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Liddell"],
    "http://schemas.microsoft.com/identity/claims/tenantid": [ENTRA_TENANT],
    "http://schemas.microsoft.com/identity/claims/objectidentifier": [ENTRA_OID],
}


def test_entra_is_keyed_by_its_object_id_per_connector(client: Client, idp: FakeSAMLIdP) -> None:
    connector = _entra_connector(idp)
    response = sign_in(
        client,
        idp,
        issuer=f"https://sts.windows.net/{ENTRA_TENANT}/",
        attributes=ENTRA_CLAIMS,
        name_id="alice@acme.test",
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    )
    assert response.status_code == 302, response.content
    identity = Identity.objects.get()
    # The object ID (it outlives a renamed UPN, Entra's default NameID), under the
    # connector's own issuer: never the key of the tenant's OpenID Connect sign-ins,
    # which a pasted metadata document claiming Entra's entity ID could otherwise reach.
    entity = f"https://sts.windows.net/{ENTRA_TENANT}/"
    assert (identity.issuer, identity.subject) == (f"saml:{connector.pk}:{entity}", ENTRA_OID)
    assert identity.tenant_id == ENTRA_TENANT
    assert User.objects.get().first_name == "Alice"


def test_entra_claims_of_another_tenant_are_refused(client: Client, idp: FakeSAMLIdP) -> None:
    _entra_connector(idp)
    claims = {**ENTRA_CLAIMS, "http://schemas.microsoft.com/identity/claims/tenantid": ["other"]}
    refused(
        sign_in(client, idp, issuer=f"https://sts.windows.net/{ENTRA_TENANT}/", attributes=claims)
    )


def test_entra_group_overage_leaves_groups_alone(client: Client, idp: FakeSAMLIdP) -> None:
    connector = _entra_connector(idp)
    connector.group_mapping = {"readers": ["Readers"]}
    connector.save()
    claims = {
        **ENTRA_CLAIMS,
        "http://schemas.microsoft.com/claims/groups.link": ["https://graph.microsoft.com/v1.0/x"],
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["readers"],
    }
    response = sign_in(
        client, idp, issuer=f"https://sts.windows.net/{ENTRA_TENANT}/", attributes=claims
    )
    assert response.status_code == 302
    assert not Group.objects.filter(user__isnull=False).exists()


# -- single logout ----------------------------------------------------------------------------------


def _signed_in(client: Client, idp: FakeSAMLIdP) -> None:
    assert sign_in(client, idp, session_index="_s-1").status_code == 302
    assert client.get("/private/").status_code == 200


def test_signing_out_here_sends_a_signed_logout_request(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    response = client.post("/sso/logout/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(idp.slo_url + "?")
    xml, _params = read_redirect_request(location)
    assert (
        "00000000-persistent-id" in xml and "_s-1" in xml and f'Destination="{idp.slo_url}"' in xml
    )
    acme.refresh_from_db()
    assert verify_redirect_signature(location, acme.sp_certificate)
    assert client.get("/private/").status_code == 302  # signed out here already
    logout_id = request_id(xml)
    back = idp.redirect_logout_response_query(destination=SLS, in_response_to=logout_id)
    done = client.get("/sso/saml/sls/acme/?" + urlencode(back))
    assert done.status_code == 302 and done["Location"] == "http://testserver/sso/logout/done/"


def test_signing_out_without_an_idp_slo_endpoint_stays_here(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.saml_metadata_xml = idp.metadata_xml(slo_url=False)
    acme.save()
    _signed_in(client, idp)
    response = client.post("/sso/logout/")
    assert response["Location"] == "http://testserver/sso/logout/done/"


def test_an_idp_logout_request_ends_the_session_and_is_answered(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    query = idp.redirect_logout_request_query(
        destination=SLS, name_id="00000000-persistent-id", session_index="_s-1", relay_state="rs"
    )
    response = Client().get("/sso/saml/sls/acme/?" + urlencode(query))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(idp.slo_url + "?")
    xml, params = read_redirect_request(location)
    assert "LogoutResponse" in xml and "status:Success" in xml and params["RelayState"] == "rs"
    acme.refresh_from_db()
    assert verify_redirect_signature(location, acme.sp_certificate)
    assert client.get("/private/").status_code == 302
    assert not SSOSession.objects.exists()


def test_an_idp_logout_request_over_post_is_accepted(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    xml = idp.logout_request(destination=SLS, name_id="00000000-persistent-id")
    response = Client().post("/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(xml)})
    assert response.status_code == 302
    assert not SSOSession.objects.exists()


@pytest.mark.parametrize(
    "change",
    [{"sign": False}, {"signing_key": "stranger"}, {"issuer": "https://evil-idp.example/"}],
    ids=["unsigned", "unknown-key", "other-issuer"],
)
def test_a_logout_request_not_from_the_idp_ends_nothing(
    client: Client,
    idp: FakeSAMLIdP,
    stranger: KeyPair,
    acme: Connector,
    change: dict[str, Any],
) -> None:
    _signed_in(client, idp)
    if change.get("signing_key") == "stranger":
        change = {"signing_key": stranger}
    query = idp.redirect_logout_request_query(
        destination=SLS, name_id="00000000-persistent-id", **change
    )
    assert Client().get("/sso/saml/sls/acme/?" + urlencode(query)).status_code == 400
    xml = idp.logout_request(destination=SLS, name_id="00000000-persistent-id", **change)
    response = Client().post("/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(xml)})
    assert response.status_code == 400
    assert SSOSession.objects.count() == 1
    assert client.get("/private/").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "",
        "SAMLRequest=",
        "SAMLRequest=%%%",
        "SAMLRequest=eJzLSM3JyVcozy/KSQEAGgQEXQ==",
        "SAMLResponse=garbage",
        "SAMLRequest=" + "A" * 700_000,
    ],
    ids=["nothing", "empty", "bad-escape", "not-xml", "garbage-response", "huge"],
)
def test_malformed_logout_messages_get_a_clear_answer(
    client: Client, acme: Connector, query: str
) -> None:
    response = client.get("/sso/saml/sls/acme/?" + query)
    assert response.status_code in (302, 400)


# -- metadata by URL ------------------------------------------------------------------------------


class _MetadataServer:
    """Serves one document on loopback; ``fail`` makes it answer 503."""

    def __init__(self, body: str) -> None:
        self.body, self.fail, self.hits = body, False, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                status = 503 if owner.fail else 200
                payload = b"down" if owner.fail else owner.body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/federationmetadata.xml?appid=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata_server(idp: FakeSAMLIdP) -> Iterator[_MetadataServer]:
    cache.clear()
    server = _MetadataServer(idp.metadata_xml())
    yield server
    server.close()


def test_metadata_by_url_is_cached_and_served_stale_while_the_idp_is_down(
    client: Client, idp: FakeSAMLIdP, metadata_server: _MetadataServer
) -> None:
    connector = Connector.objects.create(
        slug="acme", name="Acme", protocol="saml", saml_metadata_url=metadata_server.url
    )
    EmailDomain.objects.create(domain="acme.test", connector=connector, verified_at=timezone.now())
    assert get_idp_metadata(connector).entity_id == idp.entity_id
    assert sign_in(client, idp).status_code == 302
    assert metadata_server.hits == 1
    metadata_server.fail = True
    assert get_idp_metadata(connector, force=True).entity_id == idp.entity_id  # stale copy
    cache.clear()
    with pytest.raises(SAMLMetadataError, match="503"):
        get_idp_metadata(connector)
    response = Client().get("/sso/login/?connector=acme")
    assert response.status_code == 424


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<html/>", "not SAML metadata"),
        ("<<<", "not well-formed"),
        ('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "DTD"),
    ],
)
def test_unusable_metadata_is_refused_with_a_reason(xml: str, message: str) -> None:
    with pytest.raises(SAMLMetadataError, match=message):
        parse_metadata(xml)


def test_expired_metadata_is_a_set_up_problem_not_a_sign_in(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.saml_metadata_xml = idp.metadata_xml(valid_until=_minutes(-60))
    acme.save()
    with pytest.raises(SAMLMetadataError, match="expired on"):
        get_idp_metadata(acme)
    response = client.post("/sso/login/", {"email": "alice@acme.test"})
    assert response.status_code == 424
    assert b"Reference: misconfigured" in response.content
    acme.saml_metadata_xml = idp.metadata_xml(valid_until=_minutes(60 * 24))
    acme.save()
    assert client.post("/sso/login/", {"email": "alice@acme.test"}).status_code == 302


def test_metadata_lists_every_signing_certificate_with_its_expiry(
    idp: FakeSAMLIdP, stranger: KeyPair
) -> None:
    metadata = parse_metadata(idp.metadata_xml(certs=[idp.key, stranger]))
    assert len(metadata.certificates) == 2
    assert all(not cert.expired for cert in metadata.certificates)
    assert metadata.slo is not None and metadata.slo.url == idp.slo_url
    assert urlsplit(metadata.sso.url).path == "/sso"


# -- anything at all --------------------------------------------------------------------------

_SAML_FIELDS = ["SAMLResponse", "SAMLRequest", "RelayState", "SigAlg", "Signature", "resume"]
_xmlish = st.sampled_from(
    [
        "<samlp:Response xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>",
        "<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol' ID='x'/>",
        "<x/>",
        '<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
    ]
)
_values = st.one_of(
    st.text(max_size=60),
    _xmlish.map(lambda x: base64.b64encode(x.encode()).decode()),
    _xmlish.map(lambda x: base64.b64encode(zlib.compress(x.encode())[2:-4]).decode()),
)
_params = st.dictionaries(st.sampled_from(_SAML_FIELDS), _values, max_size=5)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/sso/saml/acs/acme/"),
        ("post", "/sso/saml/acs/acme/"),
        ("get", "/sso/saml/sls/acme/"),
        ("post", "/sso/saml/sls/acme/"),
        ("get", "/sso/saml/metadata/acme/"),
    ],
)
def test_saml_endpoints_never_fail_on_arbitrary_input(
    acme: Connector, method: str, path: str
) -> None:
    @PROFILE
    @given(params=_params, follow=st.booleans())
    def run(params: dict[str, str], follow: bool) -> None:
        client = Client(raise_request_exception=False)
        response = getattr(client, method)(path, params)
        if follow and response.status_code == 303:
            response = client.get(response["Location"])
        assert response.status_code < 500, (params, response.content[:300])
        assert not User.objects.exists()

    run()


# -- IdPs that take only the HTTP-POST binding -------------------------------------------------


def _post_only(metadata: str) -> str:
    """The IdP's metadata without its HTTP-Redirect endpoints."""
    return re.sub(
        r"<md:(SingleSignOnService|SingleLogoutService)[^>]*HTTP-Redirect[^>]*/>", "", metadata
    )


def _form(response: Any) -> tuple[str, dict[str, str]]:
    page = response.content.decode()
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert action, page
    return action.group(1), fields


def _verify_enveloped(xml: str, cert_pem: str, tmp_path: Any, node: str) -> bool:
    (tmp_path / "m.xml").write_text(xml)
    (tmp_path / "c.pem").write_text(cert_pem)
    done = subprocess.run(
        ["xmlsec1", "--verify", "--pubkey-cert-pem", str(tmp_path / "c.pem"),
         "--id-attr:ID", f"urn:oasis:names:tc:SAML:2.0:protocol:{node}", str(tmp_path / "m.xml")],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode == 0


def test_an_idp_with_only_the_post_binding_gets_signed_forms(
    client: Client, idp: FakeSAMLIdP, acme: Connector, tmp_path: Any
) -> None:
    metadata = _post_only(idp.metadata_xml())
    assert "HTTP-Redirect" not in metadata
    acme.saml_metadata_xml = metadata
    acme.save()
    response = client.post("/sso/login/", {"email": "alice@acme.test"})
    assert response.status_code == 200
    action, fields = _form(response)
    assert action == idp.sso_url and fields["RelayState"]
    authn_request = base64.b64decode(fields["SAMLRequest"]).decode()
    acme.refresh_from_db()
    assert _verify_enveloped(authn_request, acme.sp_certificate, tmp_path, "AuthnRequest")
    assert not _verify_enveloped(authn_request, idp.key.certificate_pem, tmp_path, "AuthnRequest")
    signed_in = post(client, answer(idp, request_id(authn_request)), fields["RelayState"])
    assert signed_in.status_code == 302

    action, fields = _form(client.post("/sso/logout/"))
    assert action == idp.slo_url
    logout_request = base64.b64decode(fields["SAMLRequest"]).decode()
    assert "LogoutRequest" in logout_request and "_session-1" in logout_request
    assert _verify_enveloped(logout_request, acme.sp_certificate, tmp_path, "LogoutRequest")


def test_an_idp_logout_request_is_answered_by_post_when_the_idp_wants_it(
    client: Client, idp: FakeSAMLIdP, acme: Connector, tmp_path: Any
) -> None:
    _signed_in(client, idp)
    acme.saml_metadata_xml = _post_only(idp.metadata_xml())
    acme.save()
    xml = idp.logout_request(destination=SLS, name_id="00000000-persistent-id")
    response = Client().post(
        "/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(xml), "RelayState": "rs"}
    )
    assert response.status_code == 200
    action, fields = _form(response)
    assert action == idp.slo_url and fields["RelayState"] == "rs"
    logout_response = base64.b64decode(fields["SAMLResponse"]).decode()
    acme.refresh_from_db()
    assert _verify_enveloped(logout_response, acme.sp_certificate, tmp_path, "LogoutResponse")
    assert not SSOSession.objects.exists()


def test_the_idps_logout_response_is_checked_not_just_followed(
    client: Client, idp: FakeSAMLIdP, stranger: KeyPair, acme: Connector
) -> None:
    from django.test import RequestFactory

    from django_entra_sso.saml.adapter import check_logout_response

    def checked(query: dict[str, str]) -> str:
        request = RequestFactory().get("/sso/saml/sls/acme/?" + urlencode(query))
        return check_logout_response(
            request, acme, request.GET.dict(), query_string=request.META["QUERY_STRING"]
        )

    assert checked(idp.redirect_logout_response_query(destination=SLS, in_response_to="_r1")) == ""
    denied = idp.redirect_logout_response_query(
        destination=SLS,
        in_response_to="_r1",
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
    )
    assert "Responder" in checked(denied)
    forged = idp.redirect_logout_response_query(
        destination=SLS, in_response_to="_r1", signing_key=stranger
    )
    assert "not by the identity provider" in checked(forged)
    unsigned = idp.redirect_logout_response_query(destination=SLS, in_response_to="_r1", sign=False)
    assert "not signed" in checked(unsigned)
    posted = idp.logout_response(destination=SLS, in_response_to="_r1")
    request = RequestFactory().post(
        "/sso/saml/sls/acme/", {"SAMLResponse": post_form_value(posted)}
    )
    assert check_logout_response(request, acme, request.POST.dict(), query_string="") == ""
