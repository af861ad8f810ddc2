"""A third review of the API (2026-12-01): each test here failed before its fix, but
``test_moved_identities_control_without_the_cached_pk`` (a control)."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import Client, override_settings

from django_entra_sso.api import connectors
from django_entra_sso.models import Connector, EmailDomain, Identity
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector
from tests.test_api import (  # noqa: F401 - fixtures
    API,
    ENDPOINTS,
    _fresh_cache,
    alice,
    app_token,
    books,
    call,
    token,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


# -- 1. Okta: the access token's sub is the login, not the user ID ---------------------------


def test_an_okta_access_token_reaches_the_person_of_the_browser_sign_in(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    """Okta's ID token sub is the user ID (00u…); its access tokens carry that ID as
    ``uid`` and the user's *login* as ``sub`` (the comment in test_api says so too)."""
    books.provider = "okta"
    books.save()
    bearer = token(
        fake_idp,
        sub="alice@contoso.com",  # Okta access token: sub = login
        uid="subject-alice",  # = the ID token's sub, what the browser identity is keyed by
        cid="0oa1spa",
        azp=None,
        scp=["Books.Read"],
    )
    response = call(client, ENDPOINTS[0], bearer)
    assert response.status_code == 200, response.content
    assert (response.json()["kind"], response.json()["pk"]) == ("user", alice.pk)
    assert User.objects.count() == 1, "a second account was made for the same person"


def test_an_okta_login_handed_to_someone_else_does_not_reach_the_first_holder(
    client: Client, fake_idp: FakeIdP, books: Connector
) -> None:
    """Keyed by the (mutable, reassignable) login, a new holder of a login is its old holder."""
    books.provider = "okta"
    books.save()

    def okta(uid: str) -> str:
        return token(
            fake_idp, sub="jdoe@contoso.com", uid=uid, cid="0oa1spa", azp=None, scp=["Books.Read"]
        )

    first = call(client, ENDPOINTS[0], okta("00u-john-doe"))
    assert first.status_code == 200, first.content
    # John leaves; the login jdoe@ is given to Jane (another Okta user, another uid).
    second = call(client, ENDPOINTS[0], okta("00u-jane-doe"))
    assert second.status_code in (200, 401)
    assert second.status_code == 401 or second.json()["pk"] != first.json()["pk"], (
        "Jane's token is John's Django user"
    )


# -- 2. The site's verify_claims is skipped for people already known -------------------------


from django_entra_sso.backends import SSOBackend  # noqa: E402


class BooksOnly(SSOBackend):
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return "books" in (claims.get("groups") or [])


@override_settings(AUTHENTICATION_BACKENDS=["tests.test_api_review3.BooksOnly"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_verify_claims_refuses_a_known_person_on_the_api_as_at_sign_in(
    fake_idp: FakeIdP, alice: Any, path: str
) -> None:
    # The browser sign-in of the same (known) person without the group is refused ...
    browser = Client()
    SignIn(browser, fake_idp)(groups=["other"])
    assert "_auth_user_id" not in browser.session
    # ... and so must be her API calls with a token that fails the site's rule.
    response = call(Client(), path, token(fake_idp, groups=["other"]))
    assert response.status_code == 401, "verify_claims was not asked for a known person"


# -- 3. Auth0-style client-credentials tokens become Django users ---------------------------


def test_an_auth0_client_credentials_token_is_an_application(
    client: Client, fake_idp: FakeIdP, books: Connector
) -> None:
    """Auth0 (a generic OIDC IdP): M2M tokens say sub '<client_id>@clients', azp the
    client, gty 'client-credentials'."""
    assert books.create_users
    bearer = token(
        fake_idp,
        sub="Xh1daemon@clients",
        azp="Xh1daemon",
        gty="client-credentials",
        scp=None,
        scope="Books.Read",
    )
    response = call(client, ENDPOINTS[0], bearer)
    assert response.status_code in (200, 403), response.content
    assert not User.objects.exists(), "a Django user was made for a daemon"


# -- 4. move-identities leaves cached answers pointing at the old connector ---------------------


def test_moved_identities_are_not_reached_through_their_old_connector(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    bearer = token(fake_idp)
    assert call(client, ENDPOINTS[0], bearer).json()["pk"] == alice.pk  # cached now
    target = make_connector(None, "contoso-new")
    call_command("sso_connector", "move-identities", "contoso", "contoso-new", stdout=StringIO())
    assert Identity.objects.get().connector == target
    # Without the cache this is refused (known_user: the identity is another connector's).
    response = call(client, ENDPOINTS[0], bearer)
    assert response.status_code == 401, "the old connector still reaches the moved person"


def test_moved_identities_control_without_the_cached_pk(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    """Control (passes): the same move with the cache emptied is refused, so the 200 above
    is the cached pk's doing."""
    from django.core.cache import cache

    bearer = token(fake_idp)
    assert call(client, ENDPOINTS[0], bearer).json()["pk"] == alice.pk
    make_connector(None, "contoso-new")
    call_command("sso_connector", "move-identities", "contoso", "contoso-new", stdout=StringIO())
    cache.clear()
    assert call(client, ENDPOINTS[0], bearer).status_code == 401


# -- 5. W006 misses multi-tenant connectors that shadow each other -----------------------------


def test_two_multi_tenant_entra_connectors_taking_api_tokens_are_warned_about() -> None:
    tid = "5f2a0c1e-7b3d-4e8f-9a6b-1c2d3e4f5a6b"
    for slug, segment, tenants in (("a", "common", [tid]), ("b", "organizations", [])):
        Connector.objects.create(
            slug=slug, name=slug, provider="entra_id", client_id="x",
            issuer=f"https://login.microsoftonline.com/{segment}/v2.0",
            allowed_tenants=tenants, allow_any_tenant=not tenants, api_audiences=[API],
        )  # fmt: skip
    import base64
    import json

    body = base64.urlsafe_b64encode(
        json.dumps({"iss": f"https://login.microsoftonline.com/{tid}/v2.0"}).encode()
    )
    # Tokens of every tenant are refused: neither connector is picked ...
    assert connectors.connector_for_token(f"e30.{body.rstrip(b'=').decode()}.sig") is None
    # ... and the check meant to say so is silent.
    warned = [m for m in run_checks(databases=["default"]) if m.id == "django_entra_sso.W006"]
    assert warned, "no W006 for connectors that make the API refuse every tenant's tokens"


# -- 6. An IdP outage turns every forged API token into outbound calls --------------------------


def test_an_idp_outage_does_not_cost_a_network_call_per_api_request(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    """Once the cached discovery/JWKS copy is older than METADATA_CACHE_TTL and the IdP
    fails, every request (anyone's: the token need not be signed) fetches again, each up
    to HTTP_TIMEOUT, before the stale copy is served: no negative caching, no floor."""
    import time as _time

    from tests.fakeidp import Fault

    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 200
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(status=503)
    fake_idp.faults["/jwks"] = Fault(status=503)
    with override_settings(ENTRA_SSO_METADATA_CACHE_TTL=1):
        _time.sleep(1.2)  # the cached copies are now older than the TTL
        before = sum(fake_idp.calls.values())
        forged = token(fake_idp)[:-8] + "AAAAAAAA"  # a bad signature: anyone can send it
        for _ in range(10):
            assert call(client, ENDPOINTS[0], forged).status_code == 401
        made = sum(fake_idp.calls.values()) - before
    assert made <= 2, f"{made} calls to the IdP for 10 unauthenticated requests"


# -- 7. The remembered user pk races an unlink ----------------------------------------------


def test_an_identity_unlinked_while_a_call_reads_it_is_not_remembered(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector, monkeypatch: Any
) -> None:
    """``_known_user`` reads the identity, then caches the pk; an unlink (admin, SCIM) that
    commits in between forgets the key *before* it is written, so the unlinked person is
    still let in for KNOWN_USER_TTL. (The connector cache guards this race with its
    generation; the identity cache has none.)"""
    from django_entra_sso import accounts
    from django_entra_sso.api import callers

    real = accounts.known_user

    def known_user_racing_an_unlink(person: Any) -> Any:
        user = real(person)
        Identity.objects.filter(user=user).delete()  # another request's unlink, committed
        return user

    monkeypatch.setattr(callers.accounts, "known_user", known_user_racing_an_unlink)
    bearer = token(fake_idp)
    assert call(client, ENDPOINTS[0], bearer).status_code == 200  # served while unlinking
    monkeypatch.setattr(callers.accounts, "known_user", real)
    books.create_users = False  # an unknown person is refused now
    books.save()
    assert not Identity.objects.exists()
    response = call(client, ENDPOINTS[0], bearer)
    assert response.status_code == 401, "the unlinked person is still the user (cached pk)"


# -- 8. An introspection answer with a non-finite exp is a 500 ---------------------------------


@pytest.mark.parametrize("exp", [float("inf"), float("nan")], ids=["Infinity", "NaN"])
def test_an_introspection_answer_with_a_non_finite_exp_is_no_500(
    fake_idp: FakeIdP, alice: Any, books: Connector, exp: float
) -> None:
    """Python's json reads ``Infinity``/``NaN``; ``introspection.introspect`` then does
    ``int(exp - time.time())`` (OverflowError / ValueError) outside any handler."""
    books.introspect_tokens = True
    books.save()
    fake_idp.opaque_tokens["opaque-alice"] = {
        "sub": "subject-alice", "scope": "Books.Read", "aud": API, "exp": exp,
    }  # fmt: skip
    client = Client(raise_request_exception=False)
    for path in ENDPOINTS:
        response = call(client, path, "opaque-alice")
        assert response.status_code in (401, 503), (path, response.status_code)


# -- and around the fixes -------------------------------------------------------------------


def test_a_known_persons_email_in_another_connectors_domain_is_refused(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    """The domain owner is asked again when a token's email domain changes."""
    other = make_connector(fake_idp, "fabrikam", domain="fabrikam.com")
    assert other.pk
    assert call(client, ENDPOINTS[0], token(fake_idp)).status_code == 200
    moved = token(fake_idp, email="alice@fabrikam.com")
    assert call(client, ENDPOINTS[0], moved).status_code == 401


@pytest.mark.parametrize(
    "said", [{"typ": "ID"}, {"token_use": "id"}], ids=["keycloak-typ", "cognito-token_use"]
)
def test_an_id_token_that_says_so_is_no_access_token_even_without_a_nonce(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector, said: dict[str, str]
) -> None:
    """An ID token renewed without a nonce, for a connector whose own client ID is among
    its API audiences (``books-app``), passed as an access token."""
    bearer = token(fake_idp, aud="books-app", **said)
    assert call(client, ENDPOINTS[0], bearer).status_code == 401
    keycloak_access = token(fake_idp, aud="books-app", typ="Bearer")
    assert call(client, ENDPOINTS[0], keycloak_access).status_code == 200


# -- a review of these fixes (2026-12-01): failed before ------------------------------------


def test_a_domain_given_to_another_connector_stops_api_calls_at_once(
    client: Client, fake_idp: FakeIdP, alice: Any, books: Connector
) -> None:
    bearer = token(fake_idp, email="alice@contoso.com")
    first = call(client, ENDPOINTS[0], bearer)
    assert first.status_code == 200, first.content
    # Staff hand contoso.com to another customer's connector (the browser sign-in of
    # Alice through books is refused from now on: wrong_connector).
    other = make_connector(None, "fabrikam")
    domain = EmailDomain.objects.get(domain="contoso.com")
    domain.connector = other
    domain.save()
    again = call(client, ENDPOINTS[0], bearer)
    assert again.status_code == 401, (
        "the remembered domain check let the call through although the domain "
        "now belongs to another connector"
    )
