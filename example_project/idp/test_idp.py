"""End-to-end checks of the demo OpenID provider with Django's test client.

Run:  cd example_project/idp && python -m pytest test_idp.py -q -p no:cacheprovider
(conftest.py points IDP_DATA_DIR at a temp dir and migrates it.)
"""

import base64
import hashlib
import json
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from accounts import saml_idp
from conftest import TEST_ISSUER
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from jwcrypto import jwk, jwt
from oauth2_provider.models import get_access_token_model, get_application_model
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.sigver import verify_redirect_signature
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

Application = get_application_model()
AccessToken = get_access_token_model()

HOST = "127.0.0.1:9000"
CLIENT_ID = "bookstore-demo"
CLIENT_SECRET = "s3cret/with+odd&chars=="  # exercises form-encoding in HTTP Basic
REDIRECT_URI = "http://localhost:8000/sso/callback/"
POST_LOGOUT_URI = "http://localhost:8000/"


def seed(secret=CLIENT_SECRET):
    out = StringIO()
    call_command(
        "seed_idp",
        "--client-id", CLIENT_ID,
        "--client-secret", secret,
        "--redirect-uri", REDIRECT_URI,
        "--post-logout-redirect-uri", POST_LOGOUT_URI,
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


@pytest.fixture(scope="module", autouse=True)
def seeded():
    seed()


def browser():
    return Client(enforce_csrf_checks=True, HTTP_HOST=HOST)


def basic_auth(client_id, secret):
    # RFC 6749 2.3.1: form-encode id and secret before base64.
    raw = f"{urlencode({'': client_id})[1:]}:{urlencode({'': secret})[1:]}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorize_params(challenge, state="st-123", nonce="n-456", scope="openid profile email"):
    return {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def login(c, username, password, next_url):
    page = c.get("/accounts/login/", {"next": next_url})
    assert page.status_code == 200
    html = page.content.decode()
    for field in (
        'name="username"',
        'name="password"',
        'name="next"',
        'name="csrfmiddlewaretoken"',
    ):
        assert field in html
    csrf = c.cookies["idp_csrftoken"].value
    resp = c.post(
        "/accounts/login/",
        {"username": username, "password": password, "next": next_url, "csrfmiddlewaretoken": csrf},
    )
    assert resp.status_code == 302, resp.content[:500]
    assert resp["Location"] == next_url
    assert "idp_sessionid" in c.cookies
    return resp


def code_from(location, state="st-123"):
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI
    q = parse_qs(parts.query)
    assert q["state"] == [state]
    return q["code"][0]


def sign_in_and_get_code(c, username, password, challenge, expect_consent=None, **kw):
    """Browser part of the flow: authorize -> login -> consent -> code.

    Consent is shown unless the user still holds a valid access token for the
    client (REQUEST_APPROVAL_PROMPT="auto"); expect_consent=None accepts both.
    """
    params = authorize_params(challenge, **kw)
    authorize_url = "/o/authorize/?" + urlencode(params)
    resp = c.get(authorize_url)
    assert resp.status_code == 302
    assert resp["Location"].startswith("/accounts/login/?next=")
    login(c, username, password, authorize_url)

    consent = c.get(authorize_url)
    if consent.status_code == 302 and expect_consent is not True:
        return code_from(consent["Location"], params["state"])
    assert expect_consent is not False
    assert consent.status_code == 200
    html = consent.content.decode()
    assert 'name="allow"' in html and 'value="Authorize"' in html
    form = consent.context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None}
    data["allow"] = "Authorize"
    data["csrfmiddlewaretoken"] = c.cookies["idp_csrftoken"].value
    resp = c.post(authorize_url, data)
    assert resp.status_code == 302, resp.content[:500]
    return code_from(resp["Location"], params["state"])


def redeem(code, verifier, auth="basic", secret=CLIENT_SECRET):
    c = Client(HTTP_HOST=HOST)  # back channel: no browser cookies
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    headers = {}
    if auth == "basic":
        headers["HTTP_AUTHORIZATION"] = basic_auth(CLIENT_ID, secret)
    else:
        data.update(client_id=CLIENT_ID, client_secret=secret)
    return c.post(
        "/o/token/", urlencode(data), content_type="application/x-www-form-urlencoded", **headers
    )


def discovery():
    resp = Client(HTTP_HOST=HOST).get("/o/.well-known/openid-configuration")
    assert resp.status_code == 200
    return resp.json()


def jwks():
    resp = Client(HTTP_HOST=HOST).get("/o/.well-known/jwks.json")
    assert resp.status_code == 200
    return resp.json()


def verify_id_token(token):
    keyset = jwk.JWKSet.from_json(json.dumps(jwks()))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    assert header["kid"] in {k["kid"] for k in jwks()["keys"]}
    verified = jwt.JWT(key=keyset, jwt=token, expected_type="JWS")
    return json.loads(verified.claims)


# --------------------------------------------------------------------------


def test_seed_is_idempotent():
    out = seed()
    assert "updated user alice" in out and "updated user bob" in out
    assert f"updated application '{CLIENT_ID}'" in out
    assert Application.objects.filter(client_id=CLIENT_ID).count() == 1
    assert User.objects.filter(username__in=["alice", "bob"]).count() == 2
    assert Group.objects.filter(name__in=["readers", "staff"]).count() == 2
    alice = User.objects.get(username="alice")
    assert (alice.first_name, alice.last_name, alice.email) == (
        "Alice",
        "Liddell",
        "alice@bookstore.example",
    )
    assert alice.check_password("alice-demo-pw")
    assert list(alice.groups.values_list("name", flat=True)) == ["readers"]
    bob = User.objects.get(username="bob")
    assert bob.check_password("bob-demo-pw")
    assert list(bob.groups.values_list("name", flat=True)) == ["staff"]

    app = Application.objects.get(client_id=CLIENT_ID)
    assert app.client_type == Application.CLIENT_CONFIDENTIAL
    assert app.authorization_grant_type == Application.GRANT_AUTHORIZATION_CODE
    assert app.algorithm == Application.RS256_ALGORITHM
    assert app.skip_authorization is False
    assert app.hash_client_secret is True
    assert app.client_secret != CLIENT_SECRET and app.client_secret.startswith("pbkdf2_")
    assert app.redirect_uris == REDIRECT_URI
    assert app.post_logout_redirect_uris == POST_LOGOUT_URI


def test_discovery_document():
    doc = discovery()
    assert doc["issuer"] == TEST_ISSUER  # exactly, no trailing slash
    assert doc["authorization_endpoint"] == f"{TEST_ISSUER}/authorize/"
    assert doc["token_endpoint"] == f"{TEST_ISSUER}/token/"
    assert doc["userinfo_endpoint"] == f"{TEST_ISSUER}/userinfo/"
    assert doc["jwks_uri"] == f"{TEST_ISSUER}/.well-known/jwks.json"
    assert doc["end_session_endpoint"] == f"{TEST_ISSUER}/logout/"
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    assert set(doc["scopes_supported"]) == {
        "openid",
        "profile",
        "email",
        "Books.Read",
        "Books.Read.All",
    }
    for claim in ("sub", "email", "email_verified", "given_name", "family_name", "name",
                  "preferred_username", "groups"):  # fmt: skip
        assert claim in doc["claims_supported"]


def test_jwks_serves_rsa_key_with_kid():
    keys = jwks()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] and key["n"] and key["e"]
    assert "d" not in key  # public part only


def test_authorization_code_pkce_flow():
    AccessToken.objects.filter(user__username="alice").delete()  # no earlier consent
    c = browser()
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(c, "alice", "alice-demo-pw", challenge, expect_consent=True)

    resp = redeem(code, verifier, auth="basic")
    assert resp.status_code == 200, resp.content
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer"
    assert set(tokens["scope"].split()) == {"openid", "profile", "email"}
    claims = verify_id_token(tokens["id_token"])
    alice = User.objects.get(username="alice")
    assert claims["iss"] == TEST_ISSUER
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == str(alice.pk)
    assert claims["nonce"] == "n-456"
    assert claims["email"] == "alice@bookstore.example"
    assert claims["email_verified"] is True
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Liddell"
    assert claims["name"] == "Alice Liddell"
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["readers"]
    for std in ("exp", "iat", "auth_time", "jti", "at_hash"):
        assert std in claims
    assert "sid" not in claims  # DOT does not issue a session id

    # The code is single use.
    assert redeem(code, verifier).status_code == 400

    # userinfo gives the same claims for the access token.
    info = Client(HTTP_HOST=HOST).get(
        "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"
    )
    assert info.status_code == 200
    assert info.json()["email"] == "alice@bookstore.example"
    assert info.json()["groups"] == ["readers"]

    # Consent is asked once: the next sign-in goes straight back with a code.
    verifier2, challenge2 = pkce_pair()
    resp = c.get("/o/authorize/?" + urlencode(authorize_params(challenge2, state="again")))
    assert resp.status_code == 302
    code2 = code_from(resp["Location"], "again")
    resp = redeem(code2, verifier2, auth="post")  # client_secret_post works too
    assert resp.status_code == 200, resp.content

    # RP-initiated logout with id_token_hint: no prompt, back to the RP with state.
    id_token = resp.json()["id_token"]
    resp = c.get(
        "/o/logout/",
        {"id_token_hint": id_token, "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "bye"},
    )
    assert resp.status_code == 302, resp.content[:500]
    assert resp["Location"] == POST_LOGOUT_URI + "?state=bye"
    assert "_auth_user_id" not in c.session


# -- JWT access tokens for the bookstore's API (accounts/api_tokens.py) ---------------------

DAEMON_ID = "bookstore-daemon"
API_AUDIENCE = "http://localhost:8000/api/"  # IDP_API_AUDIENCE's default


def add_api_client(secret_file):
    out = StringIO()
    call_command(
        "add_api_client", "--client-id", DAEMON_ID, "--client-secret-file", str(secret_file),
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def client_credentials(secret, scope):
    return Client(HTTP_HOST=HOST).post(
        "/o/token/",
        urlencode({"grant_type": "client_credentials", "scope": scope}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic_auth(DAEMON_ID, secret),
    )


def access_token_claims(token):
    """The claims of a JWT access token, its signature checked with the IdP's JWKS."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt"
    return verify_id_token(token)  # the same keys as the ID tokens


def test_an_application_gets_a_jwt_for_the_api_with_its_permission_as_a_role(tmp_path):
    secret_file = tmp_path / "daemon.secret"
    out = add_api_client(secret_file)
    assert f"created application '{DAEMON_ID}'" in out and "secret: new" in out
    secret = secret_file.read_text().strip()
    app = Application.objects.get(client_id=DAEMON_ID)
    assert app.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert app.client_secret != secret  # stored hashed

    resp = client_credentials(secret, "Books.Read.All")
    assert resp.status_code == 200, resp.content
    answer = resp.json()
    assert answer["scope"] == "Books.Read.All" and "refresh_token" not in answer
    claims = access_token_claims(answer["access_token"])
    assert (claims["iss"], claims["aud"]) == (TEST_ISSUER, API_AUDIENCE)
    assert claims["sub"] == claims["client_id"] == DAEMON_ID  # the application itself
    assert claims["scope"] == "Books.Read.All" and claims["roles"] == ["Books.Read.All"]
    assert claims["exp"] - claims["iat"] == answer["expires_in"] and claims["jti"]
    # DOT keeps it like any token of its own.
    assert AccessToken.objects.filter(application=app, user=None).count() == 1

    # No scope of the API: DOT's usual random token.
    other = client_credentials(secret, "profile")
    assert other.status_code == 200, other.content
    assert other.json()["access_token"].count(".") == 0

    # Running it again keeps the secret; a wrong secret gets nothing.
    assert "secret: kept" in add_api_client(secret_file)
    assert secret_file.read_text().strip() == secret
    assert client_credentials(secret, "Books.Read.All").status_code == 200
    assert client_credentials("wrong", "Books.Read.All").status_code == 401


def test_a_persons_token_for_the_api_is_a_jwt_with_the_id_tokens_sub():
    c = browser()
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(c, "alice", "alice-demo-pw", challenge, scope="openid Books.Read")
    resp = redeem(code, verifier)
    assert resp.status_code == 200, resp.content
    tokens = resp.json()
    claims = access_token_claims(tokens["access_token"])
    alice = User.objects.get(username="alice")
    assert claims["sub"] == str(alice.pk) == verify_id_token(tokens["id_token"])["sub"]
    assert (claims["aud"], claims["client_id"]) == (API_AUDIENCE, CLIENT_ID)
    assert claims["scope"] == "openid Books.Read" and "roles" not in claims
    assert tokens["refresh_token"].count(".") == 0  # refresh tokens stay random
    info = Client(HTTP_HOST=HOST).get(
        "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}"
    )
    assert info.status_code == 200 and info.json()["sub"] == str(alice.pk)


def test_scopes_limit_claims_and_bob_groups():
    c = browser()
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(c, "bob", "bob-demo-pw", challenge, scope="openid")
    resp = redeem(code, verifier)
    assert resp.status_code == 200, resp.content
    claims = verify_id_token(resp.json()["id_token"])
    assert claims["groups"] == ["staff"]
    assert claims["nonce"] == "n-456"
    for absent in (
        "email",
        "email_verified",
        "given_name",
        "family_name",
        "name",
        "preferred_username",
    ):
        assert absent not in claims


def test_pkce_is_required():
    c = browser()
    login(c, "alice", "alice-demo-pw", "/")
    params = authorize_params("x")
    del params["code_challenge"], params["code_challenge_method"]
    resp = c.get("/o/authorize/?" + urlencode(params))
    assert resp.status_code == 302
    q = parse_qs(urlsplit(resp["Location"]).query)
    assert q["error"] == ["invalid_request"]


def test_wrong_verifier_and_wrong_secret_are_rejected():
    c = browser()
    verifier, challenge = pkce_pair()
    code = sign_in_and_get_code(c, "alice", "alice-demo-pw", challenge, state="s2")
    resp = redeem(code, verifier, secret="not-the-secret")
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"
    resp = redeem(code, "wrong-verifier-" + "x" * 40)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_reseeding_with_new_secret_replaces_it():
    seed(secret="rotated-secret")
    try:
        c = browser()
        verifier, challenge = pkce_pair()
        code = sign_in_and_get_code(c, "alice", "alice-demo-pw", challenge, state="s3")
        assert redeem(code, verifier, secret=CLIENT_SECRET).status_code == 401
        assert redeem(code, verifier, secret="rotated-secret").status_code == 200
    finally:
        seed()


def test_logout_rejects_unregistered_post_logout_redirect_uri():
    c = browser()
    login(c, "alice", "alice-demo-pw", "/")
    resp = c.get(
        "/o/logout/",
        {"client_id": CLIENT_ID, "post_logout_redirect_uri": "http://localhost:8000/elsewhere/"},
    )
    assert resp.status_code == 400
    assert "_auth_user_id" in c.session  # still signed in


def test_logout_with_client_id_only_asks_first():
    c = browser()
    login(c, "alice", "alice-demo-pw", "/")
    resp = c.get(
        "/o/logout/", {"client_id": CLIENT_ID, "post_logout_redirect_uri": POST_LOGOUT_URI}
    )
    assert resp.status_code == 200
    assert 'name="allow"' in resp.content.decode()
    data = {k: v for k, v in resp.context["form"].initial.items() if v is not None}
    data["allow"] = "Logout"
    data["csrfmiddlewaretoken"] = c.cookies["idp_csrftoken"].value
    resp = c.post("/o/logout/", data)
    assert resp.status_code == 302
    assert resp["Location"] == POST_LOGOUT_URI
    assert "_auth_user_id" not in c.session


# -- add_client (demo.sh --add-client): a site of your own beside the bookstore ---------

MYSITE = "mysite"
MYSITE_REDIRECT_URI = "http://127.0.0.1:8001/sso/callback/mysite/"


def add_client(secret_file, *redirect_uris):
    args = ["add_client", "--client-id", MYSITE, "--client-secret-file", str(secret_file)]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_client_keeps_its_secret_and_leaves_the_demo_client_and_users_alone(tmp_path):
    bookstore = Application.objects.get(client_id=CLIENT_ID)
    secret_file = tmp_path / "clients" / "mysite.secret"

    out = add_client(secret_file, MYSITE_REDIRECT_URI)
    assert "secret: new" in out
    secret = secret_file.read_text().strip()
    assert len(secret) == 64 and int(secret, 16)  # 256 random bits, hex
    assert secret_file.stat().st_mode & 0o777 == 0o600
    app = Application.objects.get(client_id=MYSITE)
    assert app.redirect_uris == MYSITE_REDIRECT_URI
    assert app.client_type == Application.CLIENT_CONFIDENTIAL
    assert check_password(secret, app.client_secret)

    out = add_client(secret_file, MYSITE_REDIRECT_URI)
    assert "secret: kept" in out
    assert secret_file.read_text().strip() == secret
    assert check_password(secret, Application.objects.get(client_id=MYSITE).client_secret)

    after = Application.objects.get(client_id=CLIENT_ID)
    assert (after.redirect_uris, after.client_secret) == (
        bookstore.redirect_uris,
        bookstore.client_secret,
    )
    assert User.objects.get(username="alice").check_password("alice-demo-pw")
    assert User.objects.get(username="bob").check_password("bob-demo-pw")


def test_add_client_refuses_a_bad_redirect_uri_and_keeps_no_secret(tmp_path):
    secret_file = tmp_path / "other.secret"
    with pytest.raises(CommandError, match="invalid application settings"):
        add_client(secret_file, "ftp://127.0.0.1:8001/sso/callback/mysite/")
    assert not secret_file.exists()


def test_authorize_accepts_the_added_clients_redirect_uri(tmp_path):
    add_client(tmp_path / "mysite.secret", MYSITE_REDIRECT_URI)
    c = browser()
    login(c, "alice", "alice-demo-pw", "/")
    _, challenge = pkce_pair()
    params = {**authorize_params(challenge), "client_id": MYSITE}

    resp = c.get("/o/authorize/?" + urlencode({**params, "redirect_uri": MYSITE_REDIRECT_URI}))
    html = resp.content.decode()
    assert resp.status_code == 200, html[:500]
    assert "Mismatching redirect URI" not in html
    assert 'value="Authorize"' in html
    assert resp.context["form"].initial["redirect_uri"] == MYSITE_REDIRECT_URI

    # The same request with a callback it does not know is refused: the check is real.
    other = "http://127.0.0.1:8001/sso/callback/other/"
    resp = c.get("/o/authorize/?" + urlencode({**params, "redirect_uri": other}))
    assert "Mismatching redirect URI" in resp.content.decode()


# -- the SAML 2.0 side (accounts.saml_idp), against a pysaml2 service provider ------------------

SAML_IDP_ENTITY = "http://127.0.0.1:9000/saml/metadata/"
SAML_SSO = "http://127.0.0.1:9000/saml/sso/"
SAML_SLO = "http://127.0.0.1:9000/saml/slo/"
EMAIL_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
GROUPS_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"

needs_xmlsec = pytest.mark.skipif(
    not shutil.which("xmlsec1"), reason="SAML needs xmlsec1 (apt-get install xmlsec1)"
)


@dataclass
class SAMLServiceProvider:
    """A pysaml2 SP whose metadata is served on loopback at its entity ID, as the app does."""

    entity_id: str
    acs: str
    sls: str
    client: Saml2Client


def _key_pair(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SP")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "sp.key", directory / "sp.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def _sp_settings(base, key_path, cert_path):
    return {
        "entityid": f"{base}/sso/saml/metadata/test-sp/",
        "key_file": key_path,
        "cert_file": cert_path,
        "allow_unknown_attributes": True,
        "accepted_time_diff": 60,
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [
                        (f"{base}/sso/saml/acs/test-sp/", BINDING_HTTP_POST)
                    ],
                    "single_logout_service": [
                        (f"{base}/sso/saml/sls/test-sp/", BINDING_HTTP_REDIRECT),
                        (f"{base}/sso/saml/sls/test-sp/", BINDING_HTTP_POST),
                    ],
                },
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                # Both must be signed: pysaml2 refuses the Response otherwise.
                "want_response_signed": True,
                "want_assertions_signed": True,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
            }
        },
    }


@pytest.fixture(scope="module")
def saml_sp(tmp_path_factory):
    """The SP, its metadata served at its entity ID; the IdP trusts it (and nothing else)."""
    key_path, cert_path = _key_pair(tmp_path_factory.mktemp("sp"))
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = holder["metadata"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings_ = _sp_settings(base, key_path, cert_path)
    metadata_config = SPConfig()
    metadata_config.load(settings_)
    holder["metadata"] = str(entity_descriptor(metadata_config))
    client_config = SPConfig()
    client_config.load(
        {
            **settings_,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "metadata": {"inline": [saml_idp.metadata_xml()]},
        }
    )
    sp = SAMLServiceProvider(
        entity_id=settings_["entityid"],
        acs=f"{base}/sso/saml/acs/test-sp/",
        sls=f"{base}/sso/saml/sls/test-sp/",
        client=Saml2Client(client_config),
    )
    saml_idp._sp_cache.clear()
    with override_settings(SAML_IDP_TRUSTED_SPS=[sp.entity_id]):
        yield sp
    saml_idp._sp_cache.clear()
    server.shutdown()
    server.server_close()


def authn_request_url(sp, relay_state="rs-in", sign=True):
    request_id, request = sp.client.create_authn_request(
        SAML_SSO, binding=BINDING_HTTP_POST, sign=False
    )
    info = sp.client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        SAML_SSO,
        relay_state=relay_state,
        sign=sign,
        sigalg=SIG_RSA_SHA256,
    )
    location = dict(info["headers"])["Location"]
    assert location.startswith(SAML_SSO + "?")
    return str(request_id), location[len("http://127.0.0.1:9000") :]


def posted_form(page):
    """``(action, fields)`` of the IdP's auto-post page."""
    html = page.content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" id="saml-post-form">', html)
    assert action is not None, html[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    return action.group(1), fields


def saml_sign_in(sp, c, username, password, relay_state="rs-in"):
    request_id, url = authn_request_url(sp, relay_state)
    resp = c.get(url)
    if resp.status_code == 302:
        login_url = urlsplit(resp["Location"])
        assert login_url.path == "/accounts/login/"
        assert parse_qs(login_url.query) == {"next": [url]}
        login(c, username, password, url)
        resp = c.get(url)
    assert resp.status_code == 200, resp.content[:2000]
    assert "no-store" in resp["Cache-Control"]
    action, fields = posted_form(resp)
    assert action == sp.acs
    assert fields["RelayState"] == relay_state
    # The SP checks the signatures (of the Response and of the assertion), the
    # audience, the recipient and InResponseTo.
    answer = sp.client.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/"}
    )
    assert answer is not None
    return answer


@needs_xmlsec
def test_saml_metadata_names_the_endpoints_and_the_signing_certificate(tmp_path):
    resp = Client(HTTP_HOST=HOST).get("/saml/metadata/")
    assert resp.status_code == 200
    assert resp["Content-Type"] == "application/samlmetadata+xml"
    xml = resp.content.decode()
    assert f'entityID="{SAML_IDP_ENTITY}"' in xml
    assert f'Binding="{BINDING_HTTP_REDIRECT}" Location="{SAML_SSO}"' in xml
    assert f'Binding="{BINDING_HTTP_REDIRECT}" Location="{SAML_SLO}"' in xml
    assert f'Binding="{BINDING_HTTP_POST}" Location="{SAML_SLO}"' in xml
    cert = x509.load_pem_x509_certificate(settings.SAML_IDP_CERT_FILE.read_bytes())
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    assert der in xml
    assert "validUntil" not in xml  # the demo keeps the file it wrote at setup
    # The key files are the IdP's own, private.
    assert settings.SAML_IDP_KEY_FILE.stat().st_mode & 0o777 == 0o600

    # What demo.sh writes before the IdP runs is what the IdP serves.
    out = tmp_path / "idp.xml"
    call_command("saml_metadata", "--out", str(out), "--base-url", "http://127.0.0.1:9000/")
    assert out.read_text().strip() == xml


@needs_xmlsec
def test_saml_sign_in_and_single_logout_with_a_trusted_sp(saml_sp):
    c = browser()
    answer = saml_sign_in(saml_sp, c, "alice", "alice-demo-pw")
    alice = User.objects.get(username="alice")

    assert answer.response.signature.signed_info.signature_method.algorithm == SIG_RSA_SHA256
    assert answer.assertion.signature.signed_info.signature_method.algorithm == SIG_RSA_SHA256
    assert answer.assertion.issuer.text == SAML_IDP_ENTITY
    name_id = answer.name_id
    assert name_id.format == NAMEID_FORMAT_PERSISTENT
    assert name_id.text == saml_idp.persistent_name_id(alice, saml_sp.entity_id)
    assert name_id.sp_name_qualifier == saml_sp.entity_id
    session_index = answer.assertion.authn_statement[0].session_index
    assert session_index
    assert answer.ava == {
        EMAIL_CLAIM: ["alice@saml.bookstore.example"],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Alice"],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Liddell"],
        GROUPS_CLAIM: ["readers"],
    }

    # Signed in at the IdP already: straight back, with the same persistent NameID.
    again = saml_sign_in(saml_sp, c, "alice", "alice-demo-pw", relay_state="rs-again")
    assert again.name_id.text == name_id.text
    # Opaque (an HMAC, not the pk for all to see) and one per SP.
    assert re.fullmatch(r"[0-9a-f]{64}", name_id.text)
    assert saml_idp.persistent_name_id(alice, "http://other.example/sp") != name_id.text

    # SP-initiated single logout: a signed LogoutRequest, a signed LogoutResponse back.
    _id, request = saml_sp.client.create_logout_request(
        SAML_SLO, SAML_IDP_ENTITY, name_id=name_id, session_indexes=[session_index], sign=False
    )
    info = saml_sp.client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        SAML_SLO,
        relay_state="rs-out",
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    resp = c.get(dict(info["headers"])["Location"][len("http://127.0.0.1:9000") :])
    assert resp.status_code == 302, resp.content[:2000]
    assert "_auth_user_id" not in c.session
    location = resp["Location"]
    assert location.startswith(saml_sp.sls + "?")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["RelayState"] == "rs-out"
    assert params["SigAlg"] == SIG_RSA_SHA256
    # pysaml2's own check of a Redirect-binding signature (the base64 of the certificate).
    idp_cert = "".join(settings.SAML_IDP_CERT_FILE.read_text().splitlines()[1:-1])
    assert verify_redirect_signature(params, saml_sp.client.sec.sec_backend, cert=idp_cert)
    logout_response = saml_sp.client.parse_logout_request_response(
        params["SAMLResponse"], BINDING_HTTP_REDIRECT
    )
    assert logout_response.response.status.status_code.value == samlp.STATUS_SUCCESS
    assert logout_response.response.in_response_to == request.id

    # Signed out: the next AuthnRequest goes to the login page again.
    _request_id, url = authn_request_url(saml_sp)
    assert c.get(url)["Location"].startswith("/accounts/login/?next=")


@needs_xmlsec
def test_saml_single_logout_over_http_post_checks_the_xml_signature(saml_sp):
    c = browser()
    answer = saml_sign_in(saml_sp, c, "bob", "bob-demo-pw")
    _id, unsigned = saml_sp.client.create_logout_request(
        SAML_SLO, SAML_IDP_ENTITY, name_id=answer.name_id, sign=False
    )
    posted = base64.b64encode(str(unsigned).encode()).decode()
    resp = c.post("/saml/slo/", {"SAMLRequest": posted, "RelayState": "rs-post"})
    assert resp.status_code == 400
    assert "_auth_user_id" in c.session

    _id, signed = saml_sp.client.create_logout_request(
        SAML_SLO, SAML_IDP_ENTITY, name_id=answer.name_id, sign=True, sign_alg=SIG_RSA_SHA256
    )
    posted = base64.b64encode(str(signed).encode()).decode()
    # No CSRF token: the SP's page posts it (HTTP-POST binding).
    resp = c.post("/saml/slo/", {"SAMLRequest": posted, "RelayState": "rs-post"})
    assert resp.status_code == 302, resp.content[:2000]
    assert "_auth_user_id" not in c.session
    params = dict(parse_qsl(urlsplit(resp["Location"]).query))
    assert resp["Location"].startswith(saml_sp.sls + "?")
    assert params["RelayState"] == "rs-post"
    logout_response = saml_sp.client.parse_logout_request_response(
        params["SAMLResponse"], BINDING_HTTP_REDIRECT
    )
    assert logout_response.response.status.status_code.value == samlp.STATUS_SUCCESS


@needs_xmlsec
def test_saml_refuses_an_sp_it_does_not_trust_and_bad_signatures(saml_sp):
    c = browser()
    login(c, "bob", "bob-demo-pw", "/")
    _request_id, url = authn_request_url(saml_sp)

    with override_settings(SAML_IDP_TRUSTED_SPS=["http://127.0.0.1:1/sso/saml/metadata/x/"]):
        resp = c.get(url)
    assert resp.status_code == 400
    assert "is not one this IdP trusts" in resp.content.decode()
    assert "SAMLResponse" not in resp.content.decode()

    # Another request's signature, and none at all (the SP's metadata says it signs).
    _other_id, other = authn_request_url(saml_sp, relay_state="other")
    forged = re.sub(r"Signature=[^&]+", re.search(r"Signature=[^&]+", other).group(0), url)
    resp = c.get(forged)
    assert resp.status_code == 400
    assert "signature is not by" in resp.content.decode()
    _unsigned_id, unsigned = authn_request_url(saml_sp, sign=False)
    resp = c.get(unsigned)
    assert resp.status_code == 400
    assert "is not signed" in resp.content.decode()
    # A RelayState changed on the way breaks the signature too.
    resp = c.get(url.replace("RelayState=rs-in", "RelayState=rs-evil"))
    assert resp.status_code == 400

    # An unsigned LogoutRequest signs nobody out.
    name_id = NameID(
        format=NAMEID_FORMAT_PERSISTENT,
        text=saml_idp.persistent_name_id(User.objects.get(username="bob"), saml_sp.entity_id),
    )
    _id, request = saml_sp.client.create_logout_request(
        SAML_SLO, SAML_IDP_ENTITY, name_id=name_id, sign=False
    )
    info = saml_sp.client.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), SAML_SLO, relay_state="", sign=False
    )
    resp = c.get(dict(info["headers"])["Location"][len("http://127.0.0.1:9000") :])
    assert resp.status_code == 400
    assert "_auth_user_id" in c.session

    # Still fine with the real request.
    assert c.get(url).status_code == 200


@needs_xmlsec
def test_saml_says_so_when_a_trusted_sps_metadata_cannot_be_fetched(saml_sp):
    _request_id, url = authn_request_url(saml_sp)
    gone = "http://127.0.0.1:1/sso/saml/metadata/test-sp/"
    xml = saml_idp.inflate(dict(parse_qsl(urlsplit(url).query))["SAMLRequest"])
    assert saml_idp.issuer_of(xml, "AuthnRequest") == saml_sp.entity_id
    with (
        override_settings(SAML_IDP_TRUSTED_SPS=[gone]),
        pytest.raises(saml_idp.SPUnreachable, match="could not be fetched"),
    ):
        saml_idp.trusted_sp(gone)
