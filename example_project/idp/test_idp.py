"""End-to-end checks of the demo OpenID provider with Django's test client.

Run:  cd example_project/idp && python -m pytest test_idp.py -q -p no:cacheprovider
(conftest.py points IDP_DATA_DIR at a temp dir and migrates it.)
"""

import base64
import hashlib
import json
import secrets
from io import StringIO
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from conftest import TEST_ISSUER
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from jwcrypto import jwk, jwt
from oauth2_provider.models import get_access_token_model, get_application_model

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
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email"}
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
