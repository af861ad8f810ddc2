"""The site's API with access tokens from a real IdP: node-oidc-provider 9.x issues JWT access
tokens for a resource (RFC 8707), signed with the keys of its ID tokens.

The API is the test site's (``tests/api_views.py``): a person's token needs the scope
``Books.Read``, an application's the app role ``Books.Read.All``. op9 knows it as the resource
``API_RESOURCE`` (``tests/e2e/conftest.py``); the connector of the sign-ins (``acme``) accepts
that audience. Nothing here is faked: the tokens are what the provider answers at its token
endpoint, and the site checks them with the provider's JWKS as it would in production.

* an application (client credentials, ``books-daemon``) is an application, never a user;
  one without the app role (``unassigned-daemon``) is refused with ``insufficient_scope``;
* a person signs in to the site in the browser, then lets a script (``books-reader``, the
  authorization code flow with ``resource``) read the books for her: the API sees the
  same Django user as the browser sign-in;
* a token for another API, or an opaque one, is ``invalid_token``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from django.contrib.auth import get_user_model

from django_entra_sso.models import Connector, Identity
from tests.e2e.conftest import (
    API_RESOURCE,
    API_ROLE,
    API_SCOPE,
    BOOKS_READER_CALLBACK,
    CLIENT_SECRET,
    OP9_DOMAIN,
    OTHER_RESOURCE,
)

pytestmark = pytest.mark.e2e

DRF = "/api/drf/books/"
PLAIN = "/api/plain/books/"
NINJA = "/api/ninja/books"


@pytest.fixture
def acme(e2e: Any) -> Connector:
    """The sign-ins' connector, accepting access tokens for the books API."""
    return e2e.make_connector("acme", api_audiences=[API_RESOURCE])


def client_credentials(op: Any, client_id: str, resource: str | None) -> str:
    """An application's access token, straight from the provider's token endpoint."""
    data = {"grant_type": "client_credentials", **({"resource": resource} if resource else {})}
    answer = requests.post(
        op.token_endpoint, data=data, auth=(client_id, CLIENT_SECRET), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def call(e2e: Any, path: str, token: str) -> requests.Response:
    return requests.get(
        f"{e2e.site}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_an_application_calls_the_api_as_itself_with_its_app_role(
    e2e: Any, acme: Connector
) -> None:
    token = client_credentials(e2e.op9, "books-daemon", API_RESOURCE)
    assert jwt.get_unverified_header(token)["kid"] == e2e.op9.signing_kid()
    claims = claims_of(token)
    assert (claims["iss"], claims["aud"]) == (e2e.op9.issuer, API_RESOURCE)
    assert claims["sub"] == claims["client_id"] == "books-daemon"
    assert claims["roles"] == [API_ROLE]

    for path in (PLAIN, DRF, NINJA):
        answer = call(e2e, path, token)
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        assert (body["kind"], body["caller"], body["pk"]) == (
            "application",
            "app:books-daemon",
            None,
        )
        assert (body["roles"], body["connector"]) == ([API_ROLE], "acme")
    assert not get_user_model().objects.exists()  # an application is never a user

    # A valid token of an application the API's role was not given to.
    unassigned = client_credentials(e2e.op9, "unassigned-daemon", API_RESOURCE)
    assert claims_of(unassigned)["aud"] == API_RESOURCE and "roles" not in claims_of(unassigned)
    refused = call(e2e, DRF, unassigned)
    assert refused.status_code == 403, refused.text
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'


def test_a_persons_token_is_the_same_user_as_her_browser_sign_in(
    e2e: Any, acme: Connector, page: Any
) -> None:
    e2e.sign_in(page, "acme", "alice", f"alice@{OP9_DOMAIN}")
    user = Identity.objects.get(connector=acme, subject="alice").user

    # Alice lets a script read the books for her: the authorization code flow of client
    # books-reader with the API as its resource, in her browser (she is signed in at the
    # provider already, so it asks only for her consent). The script's callback is caught
    # in the browser, as a local script's would be.
    callback = f"{e2e.site}{BOOKS_READER_CALLBACK}"
    page.route(
        lambda url: url.startswith(callback),
        lambda route: route.fulfill(status=200, body="the script has its code"),
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": "books-reader",
        "response_type": "code",
        "redirect_uri": callback,
        "scope": f"openid {API_SCOPE}",
        "resource": API_RESOURCE,
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    page.goto(f"{e2e.op9.authorization_endpoint}?{urlencode(params)}")
    e2e.op_consent(page, e2e.op9)
    page.wait_for_url(lambda url: url.startswith(callback + "?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == [state]

    answer = requests.post(
        e2e.op9.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": callback,
            "code_verifier": verifier,
            "resource": API_RESOURCE,
        },
        auth=("books-reader", CLIENT_SECRET),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    claims = claims_of(token)
    assert (claims["aud"], claims["sub"], claims["client_id"]) == (
        API_RESOURCE,
        "alice",
        "books-reader",
    )
    assert claims["scope"] == API_SCOPE

    for path in (DRF, PLAIN):
        called = call(e2e, path, token)
        assert called.status_code == 200, (path, called.text)
        body = called.json()
        assert (body["kind"], body["pk"], body["scopes"]) == ("user", user.pk, [API_SCOPE])
        assert body["caller"] == user.get_username()
    assert get_user_model().objects.count() == 1  # no second account for the API


def test_a_token_for_another_api_or_an_opaque_one_is_invalid(e2e: Any, acme: Connector) -> None:
    other = client_credentials(e2e.op9, "books-daemon", OTHER_RESOURCE)
    # Signed by the same provider with the same keys, for the same application: only the
    # audience is another API's.
    claims = claims_of(other)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        e2e.op9.issuer,
        OTHER_RESOURCE,
        "books-daemon",
    )
    opaque = client_credentials(e2e.op9, "books-daemon", None)  # no resource: not a JWT
    assert opaque.count(".") == 0
    for token in (other, opaque):
        for path in (DRF, PLAIN):
            refused = call(e2e, path, token)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
            assert refused.json() in ({"error": "invalid_token"}, {"detail": "invalid_token"})
