"""Bearer access tokens for the site's API: plain views, Django REST framework, Django Ninja.

Access tokens are minted with the fake IdP's own signing keys (``FakeIdP.sign``), so the
app checks them exactly as it would a real IdP's: discovery and JWKS from the fake IdP,
cached.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.checks import run_checks
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from hypothesis import assume, given
from hypothesis import strategies as st

from django_entra_sso.api import connectors
from django_entra_sso.backends import SSOBackend
from django_entra_sso.models import Connector, Identity
from django_entra_sso.providers import access_token_issuer_matches
from tests.fakeidp import FakeIdP, new_rsa_key
from tests.helpers import SignIn, make_connector
from tests.test_claims_fuzz import json_values
from tests.test_hardening import PROFILE

pytestmark = pytest.mark.django_db
User = get_user_model()

API = "api://books"
ENDPOINTS = ["/api/plain/books/", "/api/drf/books/", "/api/ninja/books"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def books(fake_idp: FakeIdP) -> Connector:
    """Contoso's connector, accepting access tokens for the books API."""
    return make_connector(
        fake_idp, "contoso", domain="contoso.com", api_audiences=[API, "books-app"]
    )


def token(idp: FakeIdP, **claims: Any) -> str:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": API,
        "sub": "subject-alice",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "scp": "Books.Read",
        "azp": "spa-client",
        **claims,
    }
    return idp.sign({k: v for k, v in values.items() if v is not None})


def app_token(idp: FakeIdP, **claims: Any) -> str:
    """Client credentials: the client's own ``sub``, roles, no ``scp``."""
    values: dict[str, Any] = {
        "sub": "daemon",
        "client_id": "daemon",
        "azp": None,
        "scp": None,
        "roles": ["Books.Read.All"],
        **claims,
    }
    return token(idp, **values)


def call(client: Client, path: str, bearer: str | None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer is not None else {}
    return client.get(path, **headers)


@pytest.fixture
def alice(client: Client, fake_idp: FakeIdP, books: Connector) -> Any:
    """Alice, signed in once through the browser: her identity exists."""
    assert SignIn(client, fake_idp)().status_code == 302
    client.logout()
    return Identity.objects.get().user


# -- who is calling -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_delegated_token_is_the_same_user_as_the_browser_sign_in(
    client: Client, fake_idp: FakeIdP, alice: Any, path: str
) -> None:
    response = call(client, path, token(fake_idp))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["kind"], body["pk"], body["scopes"]) == ("user", alice.pk, ["Books.Read"])
    assert User.objects.count() == 1


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_application_token_is_an_application_never_a_user(
    client: Client, fake_idp: FakeIdP, books: Connector, path: str
) -> None:
    response = call(client, path, app_token(fake_idp))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["kind"], body["caller"], body["pk"]) == ("application", "app:daemon", None)
    assert not User.objects.exists()


def test_an_unknown_person_is_refused_unless_the_connector_creates_users(
    client: Client, fake_idp: FakeIdP, books: Connector
) -> None:
    books.create_users = False
    books.save()
    refused = call(client, ENDPOINTS[0], token(fake_idp, sub="bob", email="bob@contoso.com"))
    assert refused.status_code == 401 and not User.objects.exists()
    books.create_users = True
    books.save()
    for _ in range(2):
        assert (
            call(
                client, ENDPOINTS[0], token(fake_idp, sub="bob", email="bob@contoso.com")
            ).status_code
            == 200
        )
    assert User.objects.count() == 1 and Identity.objects.get().subject == "bob"


def test_an_inactive_user_is_refused(client: Client, fake_idp: FakeIdP, alice: Any) -> None:
    alice.is_active = False
    alice.save()
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 401


@pytest.mark.parametrize(
    ("idp", "claims"),
    [
        # Okta: sub and cid are the client's ID; no client_id, no azp.
        ("okta", {"sub": "0oa1daemon", "cid": "0oa1daemon", "client_id": None}),
        # Keycloak: the client's service-account user, with a person-like sub.
        (
            "keycloak",
            {
                "sub": "5b1c9e2a-2f4e-4d0b-9a51-0c6f1e7d3a11",
                "azp": "reports-daemon",
                "client_id": None,
                "preferred_username": "service-account-reports-daemon",
            },
        ),
        # No subject at all: nobody but the client.
        ("no sub", {"sub": None, "client_id": "daemon"}),
    ],
)
def test_daemons_of_other_idps_are_applications_never_users(
    client: Client, fake_idp: FakeIdP, books: Connector, idp: str, claims: dict[str, Any]
) -> None:
    assert books.create_users  # an unknown person would be made a user
    response = call(client, ENDPOINTS[0], app_token(fake_idp, **claims))
    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "application", idp
    assert not User.objects.exists()


def test_an_okta_persons_token_is_still_that_person(
    client: Client, fake_idp: FakeIdP, alice: Any
) -> None:
    # Okta's delegated tokens: cid the client, uid the user, sub the login.
    response = call(client, ENDPOINTS[0], token(fake_idp, azp=None, cid="0oa1spa", uid="00u1alice"))
    assert response.status_code == 200, response.content
    assert (response.json()["kind"], response.json()["pk"]) == ("user", alice.pk)


def test_a_person_named_like_a_service_account_of_another_client_is_a_person(
    client: Client, fake_idp: FakeIdP, alice: Any
) -> None:
    bearer = token(fake_idp, preferred_username="service-account-someone-else")
    assert call(client, ENDPOINTS[0], bearer).json()["kind"] == "user"


# -- what is checked ------------------------------------------------------------------------


def _other_key_token(idp: FakeIdP) -> str:
    now = int(time.time())
    claims = {
        "iss": idp.issuer,
        "aud": API,
        "sub": "x",
        "iat": now,
        "exp": now + 60,
        "scp": "Books.Read",
    }
    return jwt.encode(claims, new_rsa_key(), algorithm="RS256", headers={"kid": "key-1"})


BAD_TOKENS = {
    "garbage": lambda idp: "not-a-jwt",
    "other-key": _other_key_token,
    "expired": lambda idp: token(idp, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
    "not-yet-valid": lambda idp: token(idp, nbf=int(time.time()) + 3600),
    "wrong-audience": lambda idp: token(idp, aud="api://another-api"),
    "client-id-audience-of-another-app": lambda idp: token(idp, aud="test-client"),
    "unknown-issuer": lambda idp: token(idp, iss="https://evil.example"),
    "id-token-nonce": lambda idp: token(idp, nonce="n-0S6_WzA2Mj"),
    "id-token-at-hash": lambda idp: token(idp, at_hash="x"),
    "hs256": lambda idp: jwt.encode(
        {"iss": idp.issuer, "aud": API}, "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256"
    ),
    "alg-none": lambda idp: jwt.encode({"iss": idp.issuer, "aud": API}, None, algorithm="none"),
    "no-exp": lambda idp: token(idp, exp=None),
    "audience-of-objects": lambda idp: token(idp, aud=[{"x": 1}, API]),
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_invalid_token_with_no_reason_given(
    client: Client, fake_idp: FakeIdP, alice: Any, path: str, kind: str
) -> None:
    response = call(client, path, BAD_TOKENS[kind](fake_idp))
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() in ({"error": "invalid_token"}, {"detail": "invalid_token"})


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_token_is_401(client: Client, books: Connector, path: str) -> None:
    response = call(client, path, None)
    assert response.status_code == 401
    if "ninja" not in path:
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "claims",
    [{"scp": "Books.Write"}, {"scp": None, "roles": ["Books.Read.All"], "azp": None}],
    ids=["delegated-without-the-scope", "application-role-on-a-delegated-token"],
)
def test_a_token_without_the_scope_is_403_insufficient_scope(
    client: Client, fake_idp: FakeIdP, alice: Any, path: str, claims: dict[str, Any]
) -> None:
    response = call(client, path, token(fake_idp, **claims))
    assert response.status_code in (403, 401), response.content
    if claims.get("scp"):
        assert response.status_code == 403
        assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'


def test_ninja_refusals_keep_their_status_without_install_and_are_logged(
    client: Client, fake_idp: FakeIdP, alice: Any, caplog: pytest.LogCaptureFixture
) -> None:
    as_is = "/api/ninja-as-is/books"
    assert call(client, as_is, token(fake_idp)).status_code == 200
    with caplog.at_level("WARNING", logger="django_entra_sso.api.ninja"):
        refused = call(client, as_is, token(fake_idp, aud="someone-else"))
    assert refused.status_code == 401 and refused.json() == {"detail": "invalid_token"}
    assert "WWW-Authenticate" not in refused  # Ninja's own answer: install() adds it
    assert "audience" in caplog.text or "aud" in caplog.text
    assert call(client, as_is, token(fake_idp, scp="Books.Write")).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_application_without_the_role_is_403(
    client: Client, fake_idp: FakeIdP, books: Connector, path: str
) -> None:
    response = call(client, path, app_token(fake_idp, roles=["Books.Write.All"]))
    assert response.status_code == 403


def test_a_disabled_connector_or_one_without_api_audiences_takes_no_token(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    books.enabled = False
    books.save()
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 401
    cache.clear()
    books.enabled, books.api_audiences = True, []
    books.save()
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 401


def test_a_new_signing_key_is_fetched_once(client: Client, fake_idp: FakeIdP, alice: Any) -> None:
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 200
    fake_idp.rotate_keys()
    before = fake_idp.calls["/jwks"]
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 200
    assert fake_idp.calls["/jwks"] == before + 1


def test_steady_state_costs_no_network_call_and_few_queries(
    client: Client, fake_idp: FakeIdP, alice: Any
) -> None:
    bearer = token(fake_idp)
    assert call(client, ENDPOINTS[0], bearer).status_code == 200
    calls = sum(fake_idp.calls.values())
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert call(client, ENDPOINTS[0], bearer).status_code == 200
    assert sum(fake_idp.calls.values()) == calls  # no discovery, JWKS or userinfo per call
    # Per request: the connector by its cached pk, and the identity with its user.
    assert len(queries) <= 5 * 2, [q["sql"] for q in queries]


def test_the_connector_is_found_by_issuer_in_one_query_then_from_the_cache(
    fake_idp: FakeIdP, books: Connector
) -> None:
    bearer = token(fake_idp)
    with CaptureQueriesContext(connection) as first:
        assert connectors.connector_for_token(bearer) == books
    assert len(first) == 1 and '"issuer" IN' in first[0]["sql"]
    with CaptureQueriesContext(connection) as second:
        assert connectors.connector_for_token(bearer) == books
    assert len(second) == 0  # the connector itself is cached
    books.enabled = False
    books.save()  # any change makes every cached answer stale
    assert connectors.connector_for_token(bearer) is None


def test_answers_cached_while_a_change_was_uncommitted_are_forgotten_at_commit(
    fake_idp: FakeIdP, alice: Any, books: Connector, django_capture_on_commit_callbacks: Any
) -> None:
    from django_entra_sso.api.callers import identity_key

    bearer = token(fake_idp)
    identity = Identity.objects.get()
    key = identity_key(books.pk, identity.issuer, identity.subject)
    with django_capture_on_commit_callbacks(execute=True):
        books.enabled = False
        books.save()
        identity.save()
        # What a call served by another process meanwhile caches: the committed rows.
        cache.set(key, alice.pk)
        Connector.objects.filter(pk=books.pk).update(enabled=True)
        assert connectors.connector_for_token(bearer) == books
        Connector.objects.filter(pk=books.pk).update(enabled=False)
    assert cache.get(key) is None
    assert connectors.connector_for_token(bearer) is None


def test_a_known_caller_costs_one_query_by_primary_key_and_forgetting_works(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    bearer = token(fake_idp)
    assert call(client, ENDPOINTS[0], bearer).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert call(client, ENDPOINTS[0], bearer).status_code == 200
    assert len(queries) == 1 and "auth_user" in queries[0]["sql"], queries.captured_queries
    # By primary key: the identity lookup joins auth_user too.
    assert "django_entra_sso_identity" not in queries[0]["sql"], "the identity was read again"
    Identity.objects.all().delete()  # an administrator unlinks her
    books.create_users = False
    books.save()
    assert call(client, ENDPOINTS[0], bearer).status_code == 401


def test_two_connectors_of_one_issuer_take_no_tokens(fake_idp: FakeIdP, books: Connector) -> None:
    make_connector(fake_idp, "contoso-two", api_audiences=[API])
    assert connectors.connector_for_token(token(fake_idp)) is None


def test_two_connectors_taking_tokens_of_one_issuer_are_a_check_warning(
    fake_idp: FakeIdP, books: Connector
) -> None:
    def warned() -> list[str]:
        return [m.msg for m in run_checks(databases=["default"]) if m.id == "django_entra_sso.W006"]

    two = make_connector(fake_idp, "contoso-two")  # no API audiences: not a taker
    assert warned() == []
    two.api_audiences = [API]
    two.save()
    (message,) = warned()
    assert "contoso-two" in message and books.slug in message and fake_idp.issuer in message
    two.enabled = False
    two.save()
    assert warned() == []


# -- Entra issuers ----------------------------------------------------------------------------


TID = "5f2a0c1e-7b3d-4e8f-9a6b-1c2d3e4f5a6b"


def test_entra_v1_issuers_only_when_the_connector_accepts_them() -> None:
    claims = {"iss": f"https://sts.windows.net/{TID}/", "tid": TID}
    discovered = f"https://login.microsoftonline.com/{TID}/v2.0"
    assert not access_token_issuer_matches("entra_id", discovered, claims, accept_v1=False)
    assert access_token_issuer_matches("entra_id", discovered, claims, accept_v1=True)
    other = f"https://login.microsoftonline.com/{'0' * 8}-0000-0000-0000-000000000000/v2.0"
    assert not access_token_issuer_matches("entra_id", other, claims, accept_v1=True)
    assert not access_token_issuer_matches("okta", discovered, claims, accept_v1=True)


def test_entra_tenant_tokens_find_the_tenants_or_the_multi_tenant_connector() -> None:
    def body(iss: str) -> str:
        import base64
        import json

        payload = base64.urlsafe_b64encode(json.dumps({"iss": iss}).encode()).rstrip(b"=").decode()
        return f"e30.{payload}.sig"

    common = Connector.objects.create(
        slug="common", name="C", provider="entra_id", client_id="x",
        issuer="https://login.microsoftonline.com/organizations/v2.0", api_audiences=[API],
    )  # fmt: skip
    v2 = f"https://login.microsoftonline.com/{TID}/v2.0"
    assert connectors.connector_for_token(body(v2)) == common
    own = Connector.objects.create(
        slug="own", name="O", provider="entra_id", client_id="x", issuer=v2, api_audiences=[API]
    )
    cache.clear()
    assert connectors.connector_for_token(body(v2)) == own  # the tenant's own wins
    cache.clear()
    assert connectors.connector_for_token(body(f"https://sts.windows.net/{TID}/")) is None
    own.accept_v1_tokens = True
    own.save()
    cache.clear()
    assert connectors.connector_for_token(body(f"https://sts.windows.net/{TID}/")) == own


# -- the integrations ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["BearerTokenAuthentication", "NinjaBearerAuth"])
def test_importing_an_integration_without_its_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    import django_entra_sso.api as api

    package = {"BearerTokenAuthentication": "rest_framework", "NinjaBearerAuth": "ninja"}[name]
    here = {"rest_framework": "drf", "ninja": "ninja"}[package]
    for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, loaded, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, f"django_entra_sso.api.{here}", raising=False)
    with pytest.raises(ImportError, match="pip install 'django-entra-sso"):
        getattr(api, name)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "bearer  x y"])
def test_a_garbled_bearer_header_is_400_or_401_never_500(
    client: Client, books: Connector, header: str
) -> None:
    for path in ENDPOINTS:
        response = client.get(path, HTTP_AUTHORIZATION=header)
        assert response.status_code in (400, 401), (path, header, response.status_code)


# -- setting it up --------------------------------------------------------------------------


def test_the_cli_sets_the_api_audiences(fake_idp: FakeIdP) -> None:
    from io import StringIO

    from django.core.management import call_command

    def add(*extra: str) -> None:
        call_command(
            "sso_connector", "add", "acme", "--issuer", fake_idp.issuer, "--client-id", "app",
            "--client-secret", "s", *extra, stdout=StringIO(),
        )  # fmt: skip

    add("--api-audience", API, "--api-audience", "books-app")
    assert Connector.objects.get().api_audiences == [API, "books-app"]
    add()  # not given: kept
    assert Connector.objects.get().api_audiences == [API, "books-app"]
    add("--api-audience", "api://other")
    assert Connector.objects.get().api_audiences == ["api://other"]


def test_the_admin_takes_api_audiences_one_per_line(admin_client: Client) -> None:
    from tests.test_admin import form_data

    response = admin_client.post(
        "/admin/django_entra_sso/connector/add/",
        form_data(api_audiences=f"{API}\nbooks-app\n", accept_v1_tokens="on"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    connector = Connector.objects.get()
    assert connector.api_audiences == [API, "books-app"] and connector.accept_v1_tokens


# -- opaque tokens: introspection (RFC 7662) ---------------------------------------------------


@pytest.fixture
def introspecting(fake_idp: FakeIdP, books: Connector) -> Connector:
    books.introspect_tokens = True
    books.save()
    fake_idp.opaque_tokens["opaque-alice"] = {
        "sub": "subject-alice",
        "scope": "Books.Read",
        "aud": API,
        "client_id": "spa-client",
        "exp": int(time.time()) + 600,
    }
    return books


def test_an_opaque_token_is_introspected_once_per_window(
    client: Client, fake_idp: FakeIdP, alice: Any, introspecting: Connector
) -> None:
    for _ in range(3):
        response = call(client, ENDPOINTS[1], "opaque-alice")
        assert response.status_code == 200, response.content
    assert response.json()["pk"] == alice.pk
    assert fake_idp.calls["/introspect"] == 1
    form = [r["form"] for r in fake_idp.received_token_requests]  # the token endpoint only
    assert all("opaque-alice" not in str(f) for f in form)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"aud": "api://another"},
        {"exp": int(time.time()) - 3600},
        {"exp": "tomorrow"},
        {"nbf": int(time.time()) + 3600},
        {"token_type": "refresh_token"},
        {"iss": "https://login.fabrikam.example"},
    ],
    ids=[
        "inactive",
        "other-audience",
        "expired",
        "exp-not-a-time",
        "not-yet-valid",
        "refresh-token",
        "other-issuer",
    ],
)
def test_an_opaque_token_the_idp_does_not_vouch_for_is_401(
    client: Client, fake_idp: FakeIdP, alice: Any, introspecting: Connector, answer: Any
) -> None:
    if answer is None:
        fake_idp.opaque_tokens.clear()
    else:
        fake_idp.opaque_tokens["opaque-alice"].update(answer)
    assert call(client, ENDPOINTS[0], "opaque-alice").status_code == 401


@pytest.mark.parametrize("junk", ['opaque"alice', "<script>", "a{b}c", "tab\there", "x" * 4097])
def test_strings_no_idp_could_have_issued_are_never_introspected(
    client: Client, fake_idp: FakeIdP, alice: Any, introspecting: Connector, junk: str
) -> None:
    response = client.get(ENDPOINTS[0], HTTP_AUTHORIZATION=f"Bearer {junk}")
    assert response.status_code in (400, 401)
    assert fake_idp.calls["/introspect"] == 0


def test_opaque_tokens_need_exactly_one_introspecting_connector(
    client: Client, fake_idp: FakeIdP, alice: Any, introspecting: Connector
) -> None:
    other = make_connector(fake_idp, "fabrikam", api_audiences=[API], introspect_tokens=True)
    assert call(client, ENDPOINTS[0], "opaque-alice").status_code == 401
    assert fake_idp.calls["/introspect"] == 0  # never shown to an IdP that may not be its own
    other.delete()
    introspecting.introspect_tokens = False
    introspecting.save()
    assert call(client, ENDPOINTS[0], "opaque-alice").status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_introspection_down_is_503_and_never_lets_in(
    client: Client, fake_idp: FakeIdP, alice: Any, introspecting: Connector, path: str
) -> None:
    from tests.fakeidp import Fault

    fake_idp.faults["/introspect"] = Fault(status=500)
    response = call(client, path, "opaque-alice")
    assert response.status_code == 503  # DRF too (its APIException is a 500)


def test_an_introspection_answer_cannot_name_another_connectors_person(
    client: Client, fake_idp: FakeIdP, introspecting: Connector
) -> None:
    # Fabrikam's person, signed in through Fabrikam's own IdP (another issuer).
    fabrikam = make_connector(None, "fabrikam", issuer="https://login.fabrikam.example")
    victim = User.objects.create_user("victim", is_staff=True)
    Identity.objects.create(
        connector=fabrikam, issuer=fabrikam.issuer, subject="victim-sub", user=victim
    )
    fake_idp.opaque_tokens["opaque-evil"] = {
        **fake_idp.opaque_tokens["opaque-alice"],
        "iss": fabrikam.issuer,
        "sub": "victim-sub",
    }
    for path in ENDPOINTS:
        assert call(client, path, "opaque-evil").status_code == 401
    assert Identity.objects.get(subject="victim-sub").connector == fabrikam


@pytest.mark.parametrize("maker", [token, app_token])
def test_google_workspace_tokens_need_the_hosted_domain_as_sign_in_does(
    client: Client, fake_idp: FakeIdP, books: Connector, maker: Any
) -> None:
    books.provider = "google_workspace"
    books.save()
    no_hd = maker(fake_idp, email="ceo@contoso.com")
    assert call(client, ENDPOINTS[0], no_hd).status_code == 401
    other_hd = maker(fake_idp, email="ceo@contoso.com", hd="evil.example")
    assert call(client, ENDPOINTS[0], other_hd).status_code == 401
    assert not User.objects.exists()
    ours = maker(fake_idp, email="ceo@contoso.com", hd="contoso.com")
    assert call(client, ENDPOINTS[0], ours).status_code == 200  # the rule, not a blanket no


@pytest.mark.parametrize("path", ENDPOINTS)
def test_scopes_and_roles_of_the_wrong_shape_count_as_none(
    client: Client, fake_idp: FakeIdP, alice: Any, path: str
) -> None:
    response = call(client, path, token(fake_idp, scp={"x": 1}, roles=[{"y": 2}]))
    assert response.status_code == 403


_json = json_values(text_size=12, key_size=5)
_claim_names = st.sampled_from(
    [
        "iss",
        "aud",
        "sub",
        "exp",
        "iat",
        "nbf",
        "scp",
        "scope",
        "roles",
        "tid",
        "oid",
        "azp",
        "client_id",
    ]
)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_any_signed_claims_or_header_never_make_a_500(
    fake_idp: FakeIdP, alice: Any, path: str
) -> None:
    @PROFILE
    @given(
        claims=st.dictionaries(_claim_names, _json, max_size=6),
        keep=st.booleans(),
        header=st.text(max_size=40),
    )
    def run(claims: dict[str, Any], keep: bool, header: str) -> None:
        client = Client(raise_request_exception=False)
        base = token(fake_idp) if keep else None
        if base is not None:
            try:
                bearer = token(fake_idp, **claims)
            except (TypeError, ValueError):
                assume(False)  # PyJWT itself will not sign it (an iss that is no string)
            response = call(client, path, bearer)
        else:
            response = client.get(path, HTTP_AUTHORIZATION=header)
        assert response.status_code in (200, 400, 401, 403, 503), response.content[:200]

    run()


# -- the site's account rules apply to API callers as to browser sign-ins ------------------------


class PickyBackend(SSOBackend):
    """A site's rules: new people need the 'books' group; 'blocked' may not sign in."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return "books" in (claims.get("groups") or [])

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(user.get_username() != "blocked" and super().user_can_authenticate(user))


@override_settings(AUTHENTICATION_BACKENDS=["tests.test_api.PickyBackend"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_sites_backend_rules_apply_to_api_callers(
    client: Client, fake_idp: FakeIdP, books: Connector, path: str
) -> None:
    # A new person the site's verify_claims refuses is refused here too; one it accepts is not.
    assert call(client, path, token(fake_idp, sub="newbie")).status_code == 401
    assert not User.objects.exists()
    assert call(client, path, token(fake_idp, sub="reader", groups=["books"])).status_code == 200
    # A known user the site's user_can_authenticate refuses is refused, cached or not.
    blocked = User.objects.create_user("blocked")
    Identity.objects.create(
        connector=books, issuer=books.issuer, subject="subject-blocked", user=blocked
    )
    for _ in range(2):
        assert call(client, path, token(fake_idp, sub="subject-blocked")).status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_entra_id_token_without_a_nonce_is_no_application(
    client: Client, fake_idp: FakeIdP, books: Connector, path: str
) -> None:
    books.provider = "entra_id"
    books.save()
    tenant = "5f2a0c1e-7b3d-4e8f-9a6b-1c2d3e4f5a6b"
    # An ID token of a person, for an API sharing the app registration: no scp, no azp.
    person_id_token = token(
        fake_idp,
        aud="books-app",
        azp=None,
        scp=None,
        oid="o-1",
        tid=tenant,
        roles=["Books.Read.All"],
    )
    assert call(client, path, person_id_token).status_code == 401
    # A client-credentials token names its client (azp): an application.
    application = token(
        fake_idp, azp="daemon-app", scp=None, oid="o-2", tid=tenant, roles=["Books.Read.All"]
    )
    response = call(client, path, application)
    assert response.status_code == 200, response.content
    assert not User.objects.exists()
