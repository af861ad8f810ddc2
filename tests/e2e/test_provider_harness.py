"""Tests of the e2e OpenID Provider harness itself (no Django needed).

Run: python -m pytest tests/e2e/test_provider_harness.py -p no:django -q

Needs node and ``npm ci`` in tests/e2e/provider. When those are missing the tests skip, or
fail when CI=true.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

from tests.e2e.oidc_provider import NodeOIDCProvider, ProviderAdminError, provider_available
from tests.helpers import require

pytestmark = pytest.mark.e2e

DOMAIN = "example.test"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the test reads Location only
POST_LOGOUT_URI = "http://127.0.0.1:9/logged-out"


@pytest.fixture(scope="module", autouse=True)
def _need_provider() -> None:
    require(provider_available())  # skips locally, fails under CI=true


def _client(**extra: object) -> dict:
    return {
        "client_id": "django-app",
        "client_secret": "django-app-secret",
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [POST_LOGOUT_URI],
        "token_endpoint_auth_method": "client_secret_basic",
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
        **extra,
    }


@pytest.fixture(params=[9, 6], ids=["v9", "v6"])
def op(request: pytest.FixtureRequest, tmp_path: Path):
    with NodeOIDCProvider(request.param, None, [_client()], DOMAIN, tmp_path) as provider:
        yield provider


def _discovery(op: NodeOIDCProvider) -> dict:
    r = requests.get(op.discovery_url, timeout=10)
    r.raise_for_status()
    return r.json()


def _jwks(op: NodeOIDCProvider) -> dict:
    r = requests.get(_discovery(op)["jwks_uri"], timeout=10)
    r.raise_for_status()
    return r.json()


def test_discovery_and_jwks(op: NodeOIDCProvider) -> None:
    doc = _discovery(op)
    assert doc["issuer"] == op.issuer
    assert "code" in doc["response_types_supported"]
    assert "form_post" in doc["response_modes_supported"]
    assert doc["end_session_endpoint"] == f"{op.issuer}/session/end"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "email", "profile"} <= set(doc["scopes_supported"])
    assert doc["backchannel_logout_supported"] is True
    if op.version == 6:
        assert doc["frontchannel_logout_supported"] is True
    else:
        assert "frontchannel_logout_supported" not in doc
    keys = _jwks(op)["keys"]
    assert len(keys) == 2
    assert all("d" not in k for k in keys), "private key material published"
    assert [k["kid"] for k in keys] == [k["kid"] for k in op.read_jwks()["keys"]]


def test_rotate_keys_changes_signing_key(op: NodeOIDCProvider) -> None:
    port = op.port
    before = [k["kid"] for k in _jwks(op)["keys"]]
    new_kid = op.rotate_keys()
    after = [k["kid"] for k in _jwks(op)["keys"]]
    assert op.port == port and op.running
    assert after[0] != before[0]
    assert after == [before[1], before[0]] and new_kid == after[0]
    fresh_kid = op.rotate_keys(new_key=True)
    after2 = [k["kid"] for k in _jwks(op)["keys"]]
    assert after2[0] == fresh_kid and fresh_kid not in before and after2[1:] == after
    # the new first key really signs
    tokens = _login_and_exchange(op, "alice")
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == fresh_kid


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    bad = NodeOIDCProvider(9, None, [_client()], DOMAIN, tmp_path, startup_timeout=15)
    bad.jwks_path.write_text('{"keys": []}')  # server.mjs refuses an empty key set
    with pytest.raises(RuntimeError) as info:
        bad.start()
    assert "exited" in str(info.value)
    assert "no keys in" in str(info.value)  # the log tail is part of the message
    assert not bad.running


# --------------------------------------------------------------------------------------------
# A real authorization code flow (PKCE S256) through the devInteractions pages.
# --------------------------------------------------------------------------------------------
def _form(page: str) -> tuple[str, dict[str, str]]:
    """Return (action, hidden inputs) of the first <form> in an HTML page."""
    m = re.search(r"<form[^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", page, re.S)
    assert m, page[:2000]
    fields = dict(
        re.findall(r"<input[^>]*type=\"hidden\"[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"", m[2])
    )
    return html.unescape(m[1]), {k: html.unescape(v) for k, v in fields.items()}


def _follow_until_leaving_op(s: requests.Session, op: NodeOIDCProvider, resp: requests.Response):
    """Follow redirects while they stay on the OP; return the last response."""
    for _ in range(10):
        if resp.status_code not in (302, 303) or not resp.headers["Location"]:
            return resp
        target = urljoin(resp.url, resp.headers["Location"])
        if not target.startswith(op.issuer + "/"):
            return resp
        resp = s.get(target, allow_redirects=False, timeout=10)
    raise AssertionError("redirect loop")


def _authorize(
    s: requests.Session,
    op: NodeOIDCProvider,
    login: str,
    client_id: str = "django-app",
    *,
    scope: str = "openid email profile",
    prompt: str | None = None,
) -> tuple[str, str, str]:
    """Drive /auth -> login -> consent; return (code, verifier, nonce)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "client_id": client_id,
        "response_type": "code",
        "scope": scope,
        "redirect_uri": REDIRECT_URI,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    resp = s.get(
        _discovery(op)["authorization_endpoint"], params=params, allow_redirects=False, timeout=10
    )
    resp = _follow_until_leaving_op(s, op, resp)
    # login page: /interaction/<uid>, form fields prompt=login, login, password
    assert resp.status_code == 200 and 'name="login"' in resp.text, resp.text[:2000]
    action, fields = _form(resp.text)
    assert fields == {"prompt": "login"}
    resp = s.post(
        urljoin(resp.url, action),
        data={**fields, "login": login, "password": "anything"},
        allow_redirects=False,
        timeout=10,
    )
    resp = _follow_until_leaving_op(s, op, resp)
    if resp.status_code == 200 and 'value="consent"' in resp.text:
        action, fields = _form(resp.text)
        assert fields == {"prompt": "consent"}
        resp = s.post(urljoin(resp.url, action), data=fields, allow_redirects=False, timeout=10)
        resp = _follow_until_leaving_op(s, op, resp)
    assert resp.status_code in (302, 303), resp.text[:2000]
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    if "iss" in query:  # RFC 9207 (9.x sends it)
        assert query["iss"] == [op.issuer]
    return query["code"][0], verifier, nonce


def _exchange(
    op: NodeOIDCProvider, code: str, verifier: str, client_id: str = "django-app"
) -> dict:
    r = requests.post(
        _discovery(op)["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, f"{client_id}-secret"),  # client_secret_basic
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _login_and_exchange(
    op: NodeOIDCProvider, login: str, s: requests.Session | None = None
) -> dict:
    s = s or requests.Session()
    code, verifier, nonce = _authorize(s, op, login)
    tokens = _exchange(op, code, verifier)
    tokens["_nonce"] = nonce
    return tokens


def _verify_id_token(op: NodeOIDCProvider, id_token: str, audience: str = "django-app") -> dict:
    kid = jwt.get_unverified_header(id_token)["kid"]
    assert kid == op.signing_kid(), "ID token must be signed with the first key of the JWKS"
    jwk = next(k for k in _jwks(op)["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    return jwt.decode(id_token, key, algorithms=["RS256"], audience=audience, issuer=op.issuer)


def test_code_flow_with_pkce_yields_expected_claims(op: NodeOIDCProvider) -> None:
    tokens = _login_and_exchange(op, "alice")
    claims = _verify_id_token(op, tokens["id_token"])
    assert claims["iss"] == op.issuer
    assert claims["sub"] == "alice"
    assert claims["nonce"] == tokens["_nonce"]
    assert claims["email"] == f"alice@{DOMAIN}"
    assert claims["email_verified"] is True
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Liddell"
    assert claims["name"] == "Alice Liddell"
    assert claims["groups"] == ["readers"]
    assert claims["sid"]


def test_unknown_login_gets_synthesized_claims(op: NodeOIDCProvider) -> None:
    claims = jwt.decode(
        _login_and_exchange(op, "zed")["id_token"], options={"verify_signature": False}
    )
    assert claims["email"] == f"zed@{DOMAIN}"
    assert claims["given_name"] == "Zed" and claims["family_name"] == "Tester"
    assert claims["groups"] == []


def test_pkce_is_required(op: NodeOIDCProvider) -> None:
    resp = requests.get(
        _discovery(op)["authorization_endpoint"],
        params={
            "client_id": "django-app",
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": REDIRECT_URI,
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code in (302, 303)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["error"] == ["invalid_request"], query
    assert "PKCE" in query["error_description"][0]


# --------------------------------------------------------------------------------------------
# Logout: back-channel (both versions; loopback allowed) and front-channel (6 only).
# --------------------------------------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        type(self).received.append({"path": self.path, "form": parse_qs(body)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("version", [9, 6])
def test_rp_initiated_logout_calls_backchannel(version: int, tmp_path: Path) -> None:
    recorder = type("Recorder", (_Recorder,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rp = f"http://127.0.0.1:{server.server_address[1]}"
    client = _client(
        backchannel_logout_uri=f"{rp}/backchannel",
        backchannel_logout_session_required=True,
        frontchannel_logout_uri=f"{rp}/frontchannel",  # dropped by v9
        frontchannel_logout_session_required=True,
    )
    try:
        with NodeOIDCProvider(version, None, [client], DOMAIN, tmp_path) as op:
            s = requests.Session()
            tokens = _login_and_exchange(op, "alice", s)
            id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
            resp = s.get(
                _discovery(op)["end_session_endpoint"],
                params={
                    "id_token_hint": tokens["id_token"],
                    "post_logout_redirect_uri": POST_LOGOUT_URI,
                    "state": "bye",
                },
                allow_redirects=False,
                timeout=10,
            )
            # confirmation page: <form id="op.logoutForm"> with hidden xsrf; the "Yes, sign me
            # out" button submits name=logout value=yes
            assert resp.status_code == 200 and "op.logoutForm" in resp.text, resp.text[:2000]
            action, fields = _form(resp.text)
            assert "xsrf" in fields
            resp = s.post(
                urljoin(resp.url, action),
                data={**fields, "logout": "yes"},
                allow_redirects=False,
                timeout=15,
            )
            if version == 6:
                # front-channel: a page with one hidden iframe per RP, then a JS redirect
                assert resp.status_code == 200, resp.text[:2000]
                frames = re.findall(r"<iframe src=\"([^\"]+)\"", resp.text)
                assert len(frames) == 1, resp.text
                q = parse_qs(urlsplit(html.unescape(frames[0])).query)
                assert frames[0].startswith(f"{rp}/frontchannel?")
                assert q["iss"] == [op.issuer] and q["sid"] == [id_claims["sid"]]
                assert POST_LOGOUT_URI in resp.text
            else:
                assert resp.status_code in (302, 303), resp.text[:2000]
                assert resp.headers["Location"].startswith(POST_LOGOUT_URI)
                assert "state=bye" in resp.headers["Location"]
        assert [r["path"] for r in recorder.received] == ["/backchannel"], op.log_tail()
        logout_token = recorder.received[0]["form"]["logout_token"][0]
        lt = jwt.decode(logout_token, options={"verify_signature": False})
        assert lt["iss"] == op.issuer and lt["aud"] == "django-app"
        assert lt["sub"] == "alice" and lt["sid"] == id_claims["sid"]
        assert "http://schemas.openid.net/event/backchannel-logout" in lt["events"]
    finally:
        server.shutdown()
        server.server_close()


def test_config_file_shape(op: NodeOIDCProvider) -> None:
    cfg = json.loads(op.config_path.read_text())
    assert cfg["issuer"] == op.issuer and cfg["host"] == "127.0.0.1"
    assert cfg["version"] == op.version and Path(cfg["jwks_path"]) == op.jwks_path


# --------------------------------------------------------------------------------------------
# Refresh tokens (offline_access + prompt=consent) and an administrator's revocation.
# --------------------------------------------------------------------------------------------
OFFLINE_SCOPE = "openid profile email offline_access"
REFRESH_GRANT_TYPES = ["authorization_code", "refresh_token"]


@pytest.fixture(params=[9, 6], ids=["v9", "v6"])
def refresh_op(request: pytest.FixtureRequest, tmp_path: Path):
    """An OP with two refresh-capable clients and one that may not refresh."""
    clients = [
        _client(grant_types=REFRESH_GRANT_TYPES),
        _client(
            client_id="other-app",
            client_secret="other-app-secret",
            grant_types=REFRESH_GRANT_TYPES,
        ),
        _client(client_id="plain-app", client_secret="plain-app-secret"),
    ]
    with NodeOIDCProvider(request.param, None, clients, DOMAIN, tmp_path) as provider:
        yield provider


def _sign_in_offline(
    op: NodeOIDCProvider,
    login: str,
    s: requests.Session | None = None,
    client_id: str = "django-app",
) -> dict:
    """Sign ``login`` in with offline_access and prompt=consent; return the token answer."""
    s = s or requests.Session()
    code, verifier, _ = _authorize(s, op, login, client_id, scope=OFFLINE_SCOPE, prompt="consent")
    tokens = _exchange(op, code, verifier, client_id)
    assert tokens.get("refresh_token"), tokens
    assert "offline_access" in tokens["scope"].split(), tokens
    return tokens


def _refresh(
    op: NodeOIDCProvider, refresh_token: str, client_id: str = "django-app"
) -> requests.Response:
    return requests.post(
        _discovery(op)["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client_id, f"{client_id}-secret"),
        timeout=10,
    )


def _refreshed(op: NodeOIDCProvider, refresh_token: str, client_id: str = "django-app") -> dict:
    r = _refresh(op, refresh_token, client_id)
    assert r.status_code == 200, r.text
    return r.json()


def _assert_invalid_grant(r: requests.Response) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant", r.text


def _userinfo_status(op: NodeOIDCProvider, access_token: str) -> int:
    r = requests.get(
        _discovery(op)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )
    return r.status_code


def test_refresh_token_needs_refresh_grant_type_and_prompt_consent(
    refresh_op: NodeOIDCProvider,
) -> None:
    assert "refresh_token" in _discovery(refresh_op)["grant_types_supported"]
    # offline_access without prompt=consent is silently dropped
    code, verifier, _ = _authorize(requests.Session(), refresh_op, "alice", scope=OFFLINE_SCOPE)
    tokens = _exchange(refresh_op, code, verifier)
    assert "refresh_token" not in tokens and "offline_access" not in tokens["scope"]
    # ... and so it is for a client that may not use the refresh_token grant
    code, verifier, _ = _authorize(
        requests.Session(), refresh_op, "alice", "plain-app", scope=OFFLINE_SCOPE, prompt="consent"
    )
    tokens = _exchange(refresh_op, code, verifier, "plain-app")
    assert "refresh_token" not in tokens and "offline_access" not in tokens["scope"]


def test_refresh_rotates_the_token_and_returns_a_new_id_token(
    refresh_op: NodeOIDCProvider,
) -> None:
    first = _sign_in_offline(refresh_op, "alice")
    second = _refreshed(refresh_op, first["refresh_token"])
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = _verify_id_token(refresh_op, second["id_token"])
    assert claims["sub"] == "alice"
    assert claims["email"] == f"alice@{DOMAIN}" and claims["sid"]
    third = _refreshed(refresh_op, second["refresh_token"])  # the rotated token keeps working
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert _verify_id_token(refresh_op, third["id_token"])["sub"] == "alice"


def test_replaying_a_rotated_refresh_token_revokes_the_whole_grant(
    refresh_op: NodeOIDCProvider,
) -> None:
    first = _sign_in_offline(refresh_op, "alice")
    second = _refreshed(refresh_op, first["refresh_token"])
    _assert_invalid_grant(_refresh(refresh_op, first["refresh_token"]))
    # reuse detection: the current token of the same grant is gone as well
    _assert_invalid_grant(_refresh(refresh_op, second["refresh_token"]))


def test_admin_revocation_ends_one_persons_refresh_tokens_only(
    refresh_op: NodeOIDCProvider,
) -> None:
    alice_browser = requests.Session()
    alice = _refreshed(
        refresh_op, _sign_in_offline(refresh_op, "alice", alice_browser)["refresh_token"]
    )
    alice_other = _sign_in_offline(refresh_op, "alice", requests.Session(), "other-app")
    bob = _refreshed(refresh_op, _sign_in_offline(refresh_op, "bob")["refresh_token"])

    result = refresh_op.revoke_account("alice")

    assert result["account"] == "alice"
    assert result["grants"] >= 2 and result["tokens"] >= 2 and result["sessions"] >= 1, result
    _assert_invalid_grant(_refresh(refresh_op, alice["refresh_token"]))
    _assert_invalid_grant(_refresh(refresh_op, alice_other["refresh_token"], "other-app"))
    assert _userinfo_status(refresh_op, alice["access_token"]) == 401
    # bob keeps refreshing, rotation and all
    assert _userinfo_status(refresh_op, bob["access_token"]) == 200
    bob = _refreshed(refresh_op, bob["refresh_token"])
    bob = _refreshed(refresh_op, bob["refresh_token"])
    assert _verify_id_token(refresh_op, bob["id_token"])["sub"] == "bob"
    # alice's OP session is gone too: her browser sees the login page again (asserted in
    # _authorize), and a new sign-in gives her a working refresh token
    again = _sign_in_offline(refresh_op, "alice", alice_browser)
    assert _refreshed(refresh_op, again["refresh_token"])["refresh_token"]


def test_admin_route_refuses_without_the_admin_token(refresh_op: NodeOIDCProvider) -> None:
    url = f"{refresh_op.issuer}/admin/revoke"
    tokens = _sign_in_offline(refresh_op, "alice")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        r = requests.post(url, json={"account": "alice"}, headers=headers, timeout=10)
        assert r.status_code == 401, r.text
    assert requests.get(url, timeout=10).status_code == 405
    with pytest.raises(ProviderAdminError, match="400"):
        refresh_op.revoke_account("")
    assert refresh_op.revoke_account("nobody") == {
        "account": "nobody",
        "grants": 0,
        "tokens": 0,
        "sessions": 0,
    }
    _refreshed(refresh_op, tokens["refresh_token"])  # nothing of alice's was touched
