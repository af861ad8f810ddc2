"""Certificate credentials: ``private_key_jwt`` client authentication (RFC 7523).

Against the fake IdP, which verifies client assertions with the public keys it
was given (as Entra ID does with an uploaded certificate).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from io import StringIO
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from django_entra_sso.models import ClientKey, Connector
from django_entra_sso.oidc import credentials
from django_entra_sso.oidc.metadata import check_connection
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, assert_refused, make_connector, signed_in_user
from tests.test_admin import form_data

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/django_entra_sso/connector/"


def public_key(key: ClientKey) -> Any:
    return x509.load_pem_x509_certificate(key.certificate.encode()).public_key()


@pytest.fixture
def with_certificate(fake_idp: FakeIdP) -> Connector:
    """Contoso, authenticating with a certificate the fake IdP was given."""
    fake_idp.auth_methods = ["private_key_jwt"]
    connector = make_connector(
        fake_idp, "contoso", domain="contoso.com", client_auth="private_key_jwt", client_secret=""
    )
    fake_idp.client_public_keys = [public_key(credentials.active_key(connector))]
    return connector


def last_assertion(idp: FakeIdP) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    form = idp.received_token_requests[-1]["form"]
    token = form["client_assertion"]
    return (
        jwt.get_unverified_header(token),
        jwt.decode(token, options={"verify_signature": False}),
        form,
    )


def test_signs_in_with_a_certificate_and_no_secret(
    client: Client, fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    response = SignIn(client, fake_idp)()
    assert response.status_code == 302
    assert signed_in_user(client) is not None
    header, claims, form = last_assertion(fake_idp)
    assert (
        "client_secret" not in form
        and "Authorization" not in fake_idp.received_token_requests[-1]["headers"]
    )
    assert form["client_id"] == fake_idp.client_id
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert claims["iss"] == claims["sub"] == fake_idp.client_id
    assert claims["aud"] == f"{fake_idp.issuer}/token"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    key = ClientKey.objects.get()
    der = x509.load_pem_x509_certificate(key.certificate.encode()).public_bytes(
        serialization.Encoding.DER
    )
    s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    sha1 = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    assert header["kid"] == header["x5t#S256"] == s256 and header["x5t"] == sha1
    assert header["alg"] == "RS256"  # provider type "oidc"


def test_each_assertion_is_new_and_entra_gets_ps256(
    client: Client, fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    SignIn(client, fake_idp)()
    _header, first, _form = last_assertion(fake_idp)
    with_certificate.provider = "entra_id"
    with_certificate.save()
    assert credentials.assertion_algorithm(with_certificate) == "PS256"
    token = credentials.client_assertion(with_certificate, f"{fake_idp.issuer}/token")
    assert jwt.get_unverified_header(token)["alg"] == "PS256"
    assert jwt.decode(token, options={"verify_signature": False})["jti"] != first["jti"]
    with_certificate.client_assertion_alg = "RS256"
    assert credentials.assertion_algorithm(with_certificate) == "RS256"


def test_a_certificate_the_idp_does_not_have_gets_a_clear_page(
    client: Client, fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    fake_idp.client_public_keys = [rsa.generate_private_key(65537, 2048).public_key()]
    response = SignIn(client, fake_idp)()
    assert_refused(client, response, status=424, code="client_refused")
    assert b"did not accept this site&#x27;s credentials" in response.content
    assert not get_user_model().objects.exists()


def test_rotation_keeps_sign_in_working(
    client: Client, fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    old = credentials.active_key(with_certificate)
    new = credentials.start_rotation(with_certificate)
    assert [k["kid"] for k in credentials.jwks(with_certificate)["keys"]] == [old.kid, new.kid]
    # The IdP has only the old certificate yet: the old one still signs.
    assert SignIn(client, fake_idp)().status_code == 302
    fake_idp.client_public_keys.append(public_key(new))  # the site owner uploads it
    credentials.finish_rotation(with_certificate)
    fake_idp.client_public_keys = [public_key(new)]  # and removes the old one
    assert SignIn(Client(), fake_idp)().status_code == 302
    header, _claims, _form = last_assertion(fake_idp)
    assert header["kid"] == new.kid
    assert list(ClientKey.objects.values_list("kid", "state")) == [(new.kid, "active")]
    with pytest.raises(ValueError, match="no new certificate"):
        credentials.finish_rotation(with_certificate)


def test_the_jwks_publishes_public_keys_only(
    client: Client, fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    credentials.start_rotation(with_certificate)
    response = client.get("/sso/jwks/contoso/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwk-set+json"
    keys = response.json()["keys"]
    assert len(keys) == 2 and all(k["kty"] == "RSA" and k["use"] == "sig" for k in keys)
    assert not any(name in k for k in keys for name in ("d", "p", "q", "dp", "dq", "qi"))
    for jwk in keys:  # each verifies what its key signs
        key = ClientKey.objects.get(kid=jwk["kid"])
        token = jwt.encode({"x": 1}, credentials._private_key(key), algorithm="RS256")
        jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"])
    make_connector(fake_idp, "fabrikam")
    assert client.get("/sso/jwks/fabrikam/").json() == {"keys": []}
    assert client.get("/sso/jwks/nobody/").status_code == 404


def test_the_private_key_is_encrypted_at_rest(with_certificate: Connector) -> None:
    key = ClientKey.objects.get()
    assert "PRIVATE KEY" not in key.private_key_encrypted
    assert key.not_after > timezone.now() + timedelta(days=700)


def test_test_connection_says_when_the_idp_does_not_take_certificates(
    fake_idp: FakeIdP, with_certificate: Connector
) -> None:
    assert check_connection(with_certificate).ok
    fake_idp.auth_methods = ["client_secret_basic"]
    report = check_connection(with_certificate)
    assert not report.ok and "does not list private_key_jwt" in report.error


# -- admin --------------------------------------------------------------------------------


def test_admin_adds_a_certificate_connector_and_rotates_its_certificate(
    admin_client: Client, fake_idp: FakeIdP
) -> None:
    data = form_data(
        client_auth="private_key_jwt", client_secret="", issuer=fake_idp.issuer, provider="oidc"
    )
    response = admin_client.post(CHANGELIST + "add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    connector = Connector.objects.get()
    assert not connector.has_client_secret
    key = ClientKey.objects.get(connector=connector, state="active")
    page = admin_client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    assert key.kid in page and 'id="start-rotation"' in page and "/sso/jwks/acme/" in page
    sha1 = x509.load_pem_x509_certificate(key.certificate.encode()).fingerprint(hashes.SHA1())
    assert sha1.hex().upper() in page  # what Entra's portal lists as the thumbprint
    pem = admin_client.get(f"{CHANGELIST}{connector.pk}/certificate/{key.pk}/")
    assert pem["Content-Type"] == "application/x-pem-file"
    assert pem.content.decode() == key.certificate and b"PRIVATE" not in pem.content

    rotate = f"{CHANGELIST}{connector.pk}/rotate-certificate/"
    assert admin_client.get(rotate).status_code == 405
    admin_client.post(rotate, {"action": "start"})
    assert ClientKey.objects.filter(connector=connector).count() == 2
    page = admin_client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    assert 'id="finish-rotation"' in page
    waiting = ClientKey.objects.get(connector=connector, state="next")
    assert f'name="kid" value="{waiting.kid}"' in page
    admin_client.post(rotate, {"action": "finish"})  # a form that names no certificate
    assert ClientKey.objects.filter(connector=connector).count() == 2
    admin_client.post(rotate, {"action": "finish", "kid": waiting.kid})
    [active] = ClientKey.objects.filter(connector=connector)
    assert active.state == "active" and active.kid == waiting.kid != key.kid


def test_confirming_names_the_certificate_and_asking_twice_keeps_the_waiting_one(
    with_certificate: Connector,
) -> None:
    first = credentials.start_rotation(with_certificate)
    assert credentials.start_rotation(with_certificate).pk == first.pk  # the same, not a new one
    other = credentials.start_rotation(with_certificate, replace=True)
    assert other.kid != first.kid
    with pytest.raises(ValueError, match="not " + first.kid[:12]):
        credentials.finish_rotation(with_certificate, first.kid[:12])  # uploaded the old one
    assert ClientKey.objects.filter(state="next").get().kid == other.kid
    assert credentials.finish_rotation(with_certificate, other.kid[:12]).kid == other.kid


def test_the_jwks_is_empty_once_the_connector_goes_back_to_a_secret(
    client: Client, with_certificate: Connector
) -> None:
    assert len(client.get("/sso/jwks/contoso/").json()["keys"]) == 1
    with_certificate.client_auth = Connector.ClientAuth.BASIC
    with_certificate.save()
    assert client.get("/sso/jwks/contoso/").json() == {"keys": []}
    assert ClientKey.objects.count() == 1  # kept: switching back needs no new upload


def test_view_only_staff_cannot_rotate(fake_idp: FakeIdP, with_certificate: Connector) -> None:
    from django.contrib.auth.models import Permission

    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_connector"))
    viewer = Client()
    viewer.force_login(staff)
    rotate = f"{CHANGELIST}{with_certificate.pk}/rotate-certificate/"
    assert viewer.post(rotate, {"action": "start"}).status_code == 403
    assert ClientKey.objects.count() == 1


# -- sso_connector ------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("sso_connector", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cli_adds_a_certificate_connector_and_prints_rotates_confirms(fake_idp: FakeIdP) -> None:
    out, _err = run(
        "add", "acme", "--issuer", fake_idp.issuer, "--client-id", "app",
        "--client-auth", "private_key_jwt", "--provider", "oidc",
    )  # fmt: skip
    assert "sso_connector certificate acme" in out
    pem, err = run("certificate", "acme")
    active = ClientKey.objects.get()
    assert pem.strip() == active.certificate.strip() and active.kid in err
    new_pem, err = run("certificate", "acme", "--rotate")
    waiting = ClientKey.objects.get(state="next")
    assert new_pem != pem and f"--confirm={waiting.kid[:16]}" in err
    again, err = run("certificate", "acme", "--rotate")  # asked twice: the same one
    assert again == new_pem and "already waiting" in err
    with pytest.raises(CommandError, match="is " + waiting.kid):
        run("certificate", "acme", f"--confirm={active.kid[:16]}")
    with pytest.raises(CommandError, match="--replace goes with --rotate"):
        run("certificate", "acme", "--replace")
    out, _err = run("certificate", "acme", f"--confirm={waiting.kid[:16]}")
    assert "from now on" in out
    assert ClientKey.objects.get().certificate.strip() == new_pem.strip()
    with pytest.raises(CommandError, match="no new certificate"):
        run("certificate", "acme", f"--confirm={waiting.kid[:16]}")


def test_cli_refuses_certificates_for_a_secret_connector(fake_idp: FakeIdP) -> None:
    make_connector(fake_idp, "acme")
    with pytest.raises(CommandError, match="client secret"):
        run("certificate", "acme")
    with pytest.raises(CommandError, match="client secret"):
        run("add", "beta", "--issuer", fake_idp.issuer, "--client-id", "app")


# -- system check --------------------------------------------------------------------------


def test_w005_warns_a_month_before_the_certificate_ends(with_certificate: Connector) -> None:
    def w005() -> list[str]:
        return [m.msg for m in run_checks(databases=["default"]) if m.id == "django_entra_sso.W005"]

    assert w005() == []
    ClientKey.objects.update(not_after=timezone.now() + timedelta(days=20))
    [message] = w005()
    assert "contoso" in message and "expires" in message
    ClientKey.objects.update(not_after=timezone.now() - timedelta(days=1))
    assert "has expired" in w005()[0]
    Connector.objects.update(client_auth="")  # back to the secret: the certificate is unused
    assert w005() == []
