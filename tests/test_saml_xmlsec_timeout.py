"""An ``xmlsec1`` that runs too long is stopped, and the person gets the "try again" page.

pysaml2 waits for ``xmlsec1`` without a bound: a document that keeps it busy, or a hung
process, held the request's worker for as long. ``ENTRA_SSO_XMLSEC_TIMEOUT`` bounds it.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from django_entra_sso.models import Connector, SSOSession
from tests.saml_fake_idp import FakeSAMLIdP, KeyPair, post_form_value
from tests.test_saml import (  # noqa: F401 - fixtures
    SLS,
    _post_only,
    _signed_in,
    acme,
    answer,
    idp,
    post,
    sign_in,
    start,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def slow_xmlsec1(tmp_path: Path) -> str:
    """The real xmlsec1 for ``--version``; every real job hangs first (well past the
    timeout), and leaves a mark if it ever gets to run."""
    real = shutil.which("xmlsec1")
    assert real, "xmlsec1 is needed (apt-get install xmlsec1)"
    mark = tmp_path / "finished"
    script = tmp_path / "xmlsec1"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then exec {real} --version; fi\n'
        "sleep 30\n"
        f"touch {mark}\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_hung_xmlsec1_is_stopped_and_the_sign_in_is_refused_as_unavailable(
    client: Client, idp: FakeSAMLIdP, acme: Connector, slow_xmlsec1: str
) -> None:
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=slow_xmlsec1, ENTRA_SSO_XMLSEC_TIMEOUT=0.5):
        response = sign_in(client, idp)
    assert response.status_code == 503 and b"Reference: unavailable" in response.content
    assert not User.objects.exists() and not SSOSession.objects.exists()
    assert not (Path(slow_xmlsec1).parent / "finished").exists()


def test_a_hung_decryption_is_stopped_too(
    client: Client, idp: FakeSAMLIdP, acme: Connector, slow_xmlsec1: str
) -> None:
    client.get("/sso/saml/metadata/acme/")  # makes the connector's key pair
    acme.refresh_from_db()
    sp_cert = KeyPair(private_key_pem="", certificate_pem=acme.sp_certificate, cert_b64="")
    rid, relay_state = start(client)
    xml = answer(idp, rid, encrypt_to=sp_cert, sign_response=False)
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=slow_xmlsec1, ENTRA_SSO_XMLSEC_TIMEOUT=0.5):
        response = post(client, xml, relay_state)
    assert response.status_code == 503 and b"Reference: unavailable" in response.content
    assert not User.objects.exists()


def test_a_logout_request_whose_check_hangs_ends_nothing_and_is_no_500(
    client: Client, idp: FakeSAMLIdP, acme: Connector, slow_xmlsec1: str
) -> None:
    _signed_in(client, idp)
    xml = idp.logout_request(destination=SLS, name_id="00000000-persistent-id")
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=slow_xmlsec1, ENTRA_SSO_XMLSEC_TIMEOUT=0.5):
        response = Client().post("/sso/saml/sls/acme/", {"SAMLRequest": post_form_value(xml)})
    assert 400 <= response.status_code < 500 or response.status_code == 503
    assert SSOSession.objects.count() == 1


def test_a_quick_xmlsec1_is_unaffected_by_the_timeout(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    with override_settings(ENTRA_SSO_XMLSEC_TIMEOUT=30):
        assert sign_in(client, idp).status_code == 302
    assert SSOSession.objects.count() == 1


# -- a review of these fixes (2026-12-01): failed before ------------------------------------


def test_signing_a_post_binding_authn_request_that_times_out_is_no_500(
    idp: FakeSAMLIdP, acme: Connector, slow_xmlsec1: str
) -> None:
    acme.saml_metadata_xml = _post_only(idp.metadata_xml())
    acme.save()
    browser = Client(raise_request_exception=False)
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=slow_xmlsec1, ENTRA_SSO_XMLSEC_TIMEOUT=0.5):
        response = browser.post("/sso/login/", {"email": "alice@acme.test"})
    assert response.status_code != 500, "XmlsecTimeout escaped start_sign_in"


def test_signing_a_post_binding_logout_response_that_times_out_is_no_500(
    client: Client, idp: FakeSAMLIdP, acme: Connector, slow_xmlsec1: str
) -> None:
    _signed_in(client, idp)
    acme.saml_metadata_xml = _post_only(idp.metadata_xml())
    acme.save()
    # The IdP's LogoutRequest comes over the Redirect binding (checked without xmlsec1);
    # the answer goes by POST, so it is signed by xmlsec1.
    query = idp.redirect_logout_request_query(
        destination=SLS, name_id="00000000-persistent-id", session_index="_s-1"
    )
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=slow_xmlsec1, ENTRA_SSO_XMLSEC_TIMEOUT=0.5):
        response = Client(raise_request_exception=False).get(
            "/sso/saml/sls/acme/?" + urlencode(query)
        )
    assert response.status_code != 500, "XmlsecTimeout escaped handle_logout_request"
    # and the IdP-asked sign-out should still end the session here
    assert not SSOSession.objects.exists()
