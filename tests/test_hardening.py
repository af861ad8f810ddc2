"""Property-based hardening: arbitrary input never makes a 500, signs anyone in,
grows state without bound, or leaks a secret.

Bounded by a Hypothesis profile chosen with ``HYPOTHESIS_PROFILE``: ``default``
(40 examples per property, the normal run) or ``long`` (1000, for a soak).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_entra_sso.models import Connector, SSOSession
from django_entra_sso.oidc.metadata import ProviderMetadata, get_metadata
from django_entra_sso.oidc.tokens import (
    BACKCHANNEL_LOGOUT_EVENT,
    TokenError,
    check_id_token,
    check_logout_token,
)
from django_entra_sso.sessions import SIGN_OUT_SESSION_KEY
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import SignIn, query_of, signed_in_user

pytestmark = pytest.mark.django_db

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "print_blob": True,
}
# Registered here, not in conftest.py: this module is their only user. "default"
# is also Hypothesis's own profile name, so ours are registered under a prefix.
hypothesis_settings.register_profile("entra-sso-default", max_examples=40, **_COMMON)
hypothesis_settings.register_profile("entra-sso-long", max_examples=1000, **_COMMON)
PROFILE = hypothesis_settings.get_profile(
    "entra-sso-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "entra-sso-default"
)

User = get_user_model()
ON_SITE_HOSTS = {None, "testserver", "localhost", "127.0.0.1", "::1"}

# -- strategies ---------------------------------------------------------------------------

KNOWN_PARAMS = [
    "next",
    "connector",
    "login_hint",
    "email",
    "state",
    "code",
    "error",
    "error_description",
    "error_uri",
    "iss",
    "sid",
    "resume",
    "logout_token",
    "target_link_uri",
    "session_state",
    "csrfmiddlewaretoken",
]
latin1_text = st.text(st.characters(codec="latin-1"), max_size=60)
any_text = st.text(max_size=80)
evil_values = st.sampled_from(
    [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "alice@contoso.com",
        "contoso",
        "\x00",
        "a" * 5000,
        "%00%ff",
        "${jndi:ldap://x}",
        "<script>alert(1)</script>",
        "eyJhbGciOiJub25lIn0.e30.",
    ]
)
param_values = st.one_of(any_text, evil_values)
param_dicts = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_PARAMS), st.text(max_size=12)), param_values, max_size=6
)
raw_query = st.one_of(
    param_dicts.map(lambda d: urlencode(d)),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "HTTP_COOKIE",
            "HTTP_ACCEPT_LANGUAGE",
            "HTTP_REFERER",
            "HTTP_ORIGIN",
            "HTTP_USER_AGENT",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_ACCEPT",
            "HTTP_HOST",
        ]
    ),
    st.from_regex(r"HTTP_[A-Z][A-Z0-9_]{0,15}", fullmatch=True),
)
headers = st.dictionaries(header_names, latin1_text, max_size=4)
cookie_names = st.sampled_from(["sessionid", "csrftoken", "django_language", "messages", "x"])
cookies = st.dictionaries(
    cookie_names, st.text(st.characters(codec="ascii", exclude_characters=";,"), max_size=60)
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded; charset=utf-16",
        "application/x-www-form-urlencoded; charset=nonsense",
        "",
    ]
)
bodies = st.one_of(
    param_dicts.map(lambda d: ("form", d)),
    st.tuples(content_types, st.binary(max_size=300)).map(lambda t: ("raw", t)),
)

ENDPOINTS = [
    ("get", "/sso/login/"),
    ("post", "/sso/login/"),
    ("get", "/sso/callback/{slug}/"),
    ("post", "/sso/callback/{slug}/"),
    ("get", "/sso/logout/"),
    ("post", "/sso/logout/"),
    ("get", "/sso/logout/frontchannel/{slug}/"),
    ("post", "/sso/logout/backchannel/{slug}/"),
    ("get", "/sso/initiate/{slug}/"),
    ("post", "/sso/initiate/{slug}/"),
]


def assert_safe_location(response: Any, idp: FakeIdP) -> None:
    """A redirect stays on this site or goes to the connector's own IdP."""
    if not 300 <= response.status_code < 400:
        return
    location = response["Location"]
    assert "\\" not in location and not any(ord(ch) < 32 for ch in location), location
    if location.startswith(idp.issuer + "/"):
        return
    parts = urlsplit(location)
    assert parts.scheme in {"", "http", "https"}, location
    assert parts.hostname in ON_SITE_HOSTS, location
    if not parts.netloc:
        assert location.startswith("/") and not location.startswith("//"), location


def send(
    client: Client, method: str, path: str, query: str, body: Any, extra: dict[str, str]
) -> Any:
    environ = {**extra, "QUERY_STRING": query}
    if method == "get":
        return client.get(path, **environ)
    kind, payload = body
    if kind == "form":
        return client.post(path, payload, **environ)
    content_type, raw = payload
    # generic() sends the bytes as they are; post() would re-encode them itself.
    return client.generic("POST", path, raw, content_type=content_type, **environ)


@pytest.fixture
def started_state(connector: Connector) -> Callable[[Client], str]:
    def start(client: Client) -> str:
        response = client.get("/sso/login/", {"connector": connector.slug})
        assert response.status_code == 302
        return query_of(response["Location"])["state"]

    return start


# -- every public view ------------------------------------------------------------------------


@pytest.mark.parametrize("method, template", ENDPOINTS)
def test_views_never_fail_or_sign_in_on_arbitrary_input(
    connector: Connector,
    fake_idp: FakeIdP,
    started_state: Callable[[Client], str],
    method: str,
    template: str,
) -> None:
    get_metadata(connector)  # warm the cache: the property is about our code

    @PROFILE
    @given(
        slug=st.one_of(st.just("contoso"), st.just("contoso"), st.text(max_size=20)),
        query=raw_query,
        body=bodies,
        extra=headers,
        jar=cookies,
        with_state=st.booleans(),
        with_issuer=st.booleans(),
    )
    @example(
        slug="contoso",
        query="code=abc&error_description=%3Cb%3Ex%3C%2Fb%3E",
        body=("form", {"code": "abc"}),
        extra={},
        jar={},
        with_state=True,
        with_issuer=True,
    )
    def run(
        slug: str,
        query: str,
        body: Any,
        extra: dict[str, str],
        jar: dict[str, str],
        with_state: bool,
        with_issuer: bool,
    ) -> None:
        client = Client(raise_request_exception=False)
        additions: dict[str, str] = {}
        if with_state and "callback" in template:
            additions["state"] = started_state(client)
        if with_issuer:
            additions["iss"] = fake_idp.issuer
        if additions:
            query = f"{query}&{urlencode(additions)}" if query else urlencode(additions)
            if body[0] == "form":
                body = ("form", {**body[1], **additions})
        for name, value in jar.items():
            client.cookies[name] = value
        path = template.format(slug=quote(slug, safe="") or "contoso")
        response = send(client, method, path, query, body, extra)
        assert response.status_code < 500, (response.status_code, response.content[:300])
        assert signed_in_user(client) is None
        assert_safe_location(response, fake_idp)
        if response.status_code == 303 and "resume=" in response.get("Location", ""):
            follow = client.get(response["Location"])
            assert follow.status_code < 500
            assert signed_in_user(client) is None

    run()
    assert not SSOSession.objects.exists()
    assert not User.objects.exists()
    if "callback" in template:
        # The explicit example took the whole path, up to the code exchange.
        assert fake_idp.calls["/token"] >= 1


def test_sign_in_with_arbitrary_next_lands_on_site(connector: Connector, fake_idp: FakeIdP) -> None:
    @PROFILE
    @given(next_url=st.one_of(any_text, evil_values), method=st.sampled_from(["get", "post"]))
    def run(next_url: str, method: str) -> None:
        client = Client(raise_request_exception=False)
        response = SignIn(client, fake_idp)(next_url=next_url, method=method)
        assert response.status_code == 302, response.content[:300]
        assert_safe_location(response, fake_idp)
        assert not response["Location"].startswith(fake_idp.issuer)

    run()


# -- the token checker ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = ["iss", "aud", "sub", "iat", "exp", "nbf", "nonce", "azp", "tid", "oid"]
CLAIM_NAMES += ["events", "sid", "jti", "at_hash"]
claim_dicts = st.dictionaries(
    st.one_of(st.sampled_from(CLAIM_NAMES), st.text(max_size=8)), json_values, max_size=8
)
HEADER_VALUES = st.one_of(
    json_values, st.sampled_from(["RS256", "ES256", "none", "HS256", "key-1", "key-2", "PS512"])
)
jose_headers = st.dictionaries(
    st.one_of(st.sampled_from(["alg", "kid", "typ", "crit", "jku", "x5u", "b64"]), st.text()),
    HEADER_VALUES,
    max_size=5,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_json(value: Any) -> str:
    return b64(json.dumps(value).encode())


segments = st.one_of(
    jose_headers.map(b64_json),
    json_values.map(b64_json),
    claim_dicts.map(b64_json),
    st.binary(max_size=80).map(b64),
    st.text(max_size=40),
    st.just(""),
    st.just(b64_json({"alg": "RS256", "kid": "key-1", "pad": "x" * 20000})),
)
jwt_shaped = st.one_of(
    st.lists(segments, min_size=0, max_size=5).map(".".join),
    st.tuples(jose_headers, claim_dicts, st.binary(max_size=300)).map(
        lambda t: f"{b64_json(t[0])}.{b64_json(t[1])}.{b64(t[2])}"
    ),
    st.text(max_size=200),
    st.one_of(st.none(), st.integers(), st.binary(max_size=20), st.lists(st.text(), max_size=2)),
)
NESTED = b64(b"[" * 5000)


def base_claims(idp: FakeIdP, kind: str) -> dict[str, Any]:
    import time

    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "iat": now,
        "exp": now + 60,
        "sub": "subject-alice",
    }
    if kind == "id":
        claims["nonce"] = "n"
    else:
        claims["events"] = {BACKCHANNEL_LOGOUT_EVENT: {}}
    return claims


def check_either(token: Any, idp: FakeIdP, metadata: ProviderMetadata, provider: str) -> None:
    for check in (check_id_token, check_logout_token):
        kwargs: dict[str, Any] = {
            "provider": provider,
            "metadata": metadata,
            "client_id": idp.client_id,
        }
        if check is check_id_token:
            kwargs["nonce"] = "n"
        with contextlib.suppress(TokenError):
            check(token, **kwargs)


@pytest.mark.parametrize("provider", ["oidc", "entra_id"])
def test_token_checker_raises_only_token_error_on_jwt_shaped_junk(
    connector: Connector, fake_idp: FakeIdP, provider: str
) -> None:
    metadata = get_metadata(connector)

    @PROFILE
    @given(token=jwt_shaped)
    @example(token=f"{NESTED}.e30.c2ln")
    @example(token=f"e30.{NESTED}.c2ln")
    @example(token="a" * 20000)
    @example(token=f"{b64_json({'alg': 'RS256', 'kid': ['key-1']})}.e30.c2ln")
    @example(token=f"{b64_json({'alg': 'RS256', 'crit': 'exp'})}.e30.c2ln")
    @example(token=f"{b64_json([1, 2])}.e30.c2ln")
    def run(token: Any) -> None:
        check_either(token, fake_idp, metadata, provider)

    run()


@pytest.mark.parametrize("provider", ["oidc", "entra_id"])
def test_token_checker_raises_only_token_error_on_signed_odd_claims(
    connector: Connector, fake_idp: FakeIdP, provider: str
) -> None:
    """Signed by the IdP's own key: the claim checks see every odd type and value."""
    metadata = get_metadata(connector)

    @PROFILE
    @given(
        kind=st.sampled_from(["id", "logout"]),
        keep_base=st.booleans(),
        odd=claim_dicts,
        extra_header=jose_headers,
    )
    @example(kind="id", keep_base=True, odd={"iat": float("inf")}, extra_header={})
    @example(kind="id", keep_base=True, odd={"nbf": float("-inf")}, extra_header={})
    @example(kind="id", keep_base=True, odd={"exp": float("nan")}, extra_header={})
    @example(kind="logout", keep_base=True, odd={"iat": 10**400}, extra_header={})
    @example(kind="id", keep_base=True, odd={"aud": {"x": 1}, "tid": []}, extra_header={})
    def run(kind: str, keep_base: bool, odd: dict[str, Any], extra_header: dict[str, Any]) -> None:
        claims = {**base_claims(fake_idp, kind), **odd} if keep_base else odd
        header = {k: v for k, v in extra_header.items() if k not in {"alg", "kid", "b64"}}
        try:
            token = fake_idp.sign(claims, headers=header)
        except (TypeError, ValueError, OverflowError):
            return  # not encodable as a JWT at all
        check_either(token, fake_idp, metadata, provider)

    run()


# -- bounded state ------------------------------------------------------------------------------------


def test_sign_ins_started_and_never_finished_keep_the_session_bounded(
    connector: Connector, fake_idp: FakeIdP, settings: Any
) -> None:
    # The cache engine keeps 2000 requests quick; the pending list is engine-agnostic.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    client = Client()
    sizes = {}
    for n in range(2000):
        response = client.get("/sso/login/", {"connector": "contoso", "next": f"/page/{n}/"})
        assert response.status_code == 302
        if n in (10, 1999):
            session = client.session
            sizes[n] = len(session.encode(dict(session.items())))
    pending = client.session["entra_sso_pending"]
    assert len(pending) == 5  # ENTRA_SSO_MAX_PENDING_LOGINS' default
    # The newest ones are kept: the last tabs still work.
    assert {p["next_url"] for p in pending.values()} == {f"/page/{n}/" for n in range(1995, 2000)}
    assert sizes[1999] < sizes[10] * 1.2
    assert fake_idp.calls["/.well-known/openid-configuration"] == 1


def test_pending_sign_ins_follow_the_max_pending_setting(
    client: Client, connector: Connector, settings: Any
) -> None:
    settings.ENTRA_SSO_MAX_PENDING_LOGINS = 2
    for _ in range(10):
        assert client.get("/sso/login/", {"connector": "contoso"}).status_code == 302
    assert len(client.session["entra_sso_pending"]) == 2


def random_sids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabets = [
        string.ascii_letters + string.digits + "-_",
        string.printable,
        "äöü日本語😀\u202e\ufeff",
    ]
    sids = []
    for _ in range(count):
        alphabet = rng.choice(alphabets)
        sids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 255))))
    return sids


def test_front_channel_flood_of_random_sids_ends_nothing_at_constant_cost(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    assert sign_in().status_code == 302
    victim = signed_in_user(client)
    assert victim is not None and SSOSession.objects.count() == 1
    iframe = Client(raise_request_exception=False)  # the IdP's iframe carries no cookies
    counts = set()
    for n, sid in enumerate(random_sids(500)):
        params = {"sid": sid} if n % 2 else {"sid": sid, "iss": fake_idp.issuer}
        with CaptureQueriesContext(connection) as queries:
            response = iframe.get("/sso/logout/frontchannel/contoso/", params)
        assert response.status_code == 200, sid
        counts.add(len(queries))
    # Two indexed lookups (the connector, the sid's sessions), whatever the sid.
    assert counts == {2}, counts
    assert SSOSession.objects.count() == 1
    assert signed_in_user(client) == victim


def test_back_channel_flood_of_junk_ends_nothing(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    assert sign_in().status_code == 302
    idp = Client(raise_request_exception=False)
    for sid in random_sids(100, seed=11):
        response = idp.post("/sso/logout/backchannel/contoso/", {"logout_token": sid})
        assert response.status_code == 400
    assert SSOSession.objects.count() == 1
    assert signed_in_user(client) is not None
    assert fake_idp.calls["/jwks"] <= 2


# -- secrets never leak ------------------------------------------------------------------------------


class Recorder:
    """Wraps the fake IdP so the test knows every code and token it handed out."""

    def __init__(self, idp: FakeIdP, monkeypatch: pytest.MonkeyPatch):
        self.secrets: set[str] = {idp.client_secret}
        original_authorize, original_token = idp.authorize, idp._token

        def authorize(url: str, **claims: Any) -> dict[str, str]:
            params = original_authorize(url, **claims)
            self.secrets.add(params["code"])
            return params

        def token(form: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
            status, payload = original_token(form, headers)
            for name in ("id_token", "access_token"):
                if isinstance(payload.get(name), str):
                    self.secrets.add(payload[name])
                    # A token's signature part alone is as secret as the token.
                    self.secrets.add(payload[name].rsplit(".", 1)[-1])
            return status, payload

        monkeypatch.setattr(idp, "authorize", authorize)
        monkeypatch.setattr(idp, "_token", token)

    def assert_absent(self, text: str | bytes, where: str) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        for secret in self.secrets:
            for form in {secret, quote_plus(secret)}:
                assert form not in text, f"a secret ({secret[:12]}…) appears in {where}"


def test_secrets_never_reach_the_logs_or_error_pages(
    client: Client,
    sign_in: SignIn,
    fake_idp: FakeIdP,
    connector: Connector,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(fake_idp, monkeypatch)
    refused: list[Any] = []

    good = sign_in()  # a good one: its tokens are secrets too
    assert good.status_code == 302
    recorder.secrets.add(client.session[SIGN_OUT_SESSION_KEY]["id_token_hint"])
    client.logout()
    failures: list[Callable[[], None]] = [
        lambda: fake_idp.token_overrides.update({"nonce": "other"}),
        lambda: fake_idp.token_overrides.update({"iss": "https://evil.example"}),
        lambda: fake_idp.token_overrides.update({"at_hash": "AAAA"}),
        lambda: fake_idp.token_overrides.update({"email": "x@fabrikam.example"}),
        lambda: fake_idp.faults.update({"/token": Fault(status=500, body=b"{}")}),
        lambda: fake_idp.faults.update({"/token": Fault(body=b"<html>")}),
    ]
    for arrange in failures:
        fake_idp.token_overrides.clear()
        fake_idp.faults.clear()
        arrange()
        for method in ("get", "post"):
            refused.append(sign_in(method=method))
    fake_idp.token_overrides.clear()
    fake_idp.faults.clear()
    # The same code and state sent back a second time.
    params = fake_idp.authorize(sign_in.start())
    assert sign_in.callback("contoso", params).status_code == 302
    client.logout()
    refused.append(sign_in.callback("contoso", params))
    # The token endpoint too slow.
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.2
    fake_idp.faults["/token"] = Fault(delay=0.6)
    refused.append(sign_in())
    fake_idp.faults.clear()
    # A client secret the IdP does not accept.
    connector.client_secret = "a-different-secret-value"
    connector.save()
    recorder.secrets.add("a-different-secret-value")
    refused.append(sign_in())

    assert [400 <= page.status_code < 500 for page in refused] == [True] * 15
    for page in [good, *refused]:
        recorder.assert_absent(page.content, f"the page ({page.status_code})")
    # Every code, ID token and access token handed out, plus the two client secrets.
    assert len(recorder.secrets) > 20
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert any("refused" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        recorder.assert_absent(record.getMessage(), f"a log record from {record.name}")
    recorder.assert_absent(caplog.text, "the captured log")


def test_admin_pages_never_show_the_client_secret_or_session_keys(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    assert sign_in().status_code == 302
    row = SSOSession.objects.get()
    id_token = client.session[SIGN_OUT_SESSION_KEY]["id_token_hint"]
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.invalid", "pw"))
    secrets = [fake_idp.client_secret, connector.client_secret_encrypted, row.session_key, id_token]
    urls = [
        f"/admin/django_entra_sso/connector/{connector.pk}/change/",
        "/admin/django_entra_sso/connector/",
        f"/admin/django_entra_sso/connector/{connector.pk}/test-connection/",
        f"/admin/django_entra_sso/ssosession/{row.pk}/change/",
        "/admin/django_entra_sso/ssosession/",
        "/admin/django_entra_sso/identity/",
    ]
    for url in urls:
        response = admin.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for secret in secrets:
            assert secret not in body, f"{url} shows a secret ({secret[:10]}…)"
    change = admin.get(urls[0]).content.decode()
    assert 'name="client_secret"' in change  # the write-only field is there, empty
