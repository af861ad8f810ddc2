"""Every way a sign-in must be refused, through the views.

Each refusal answers below 500 with the error page, signs nobody in, binds no
``SSOSession`` and leaves no half-made ``User`` or ``Identity`` behind.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from django_entra_sso.errors import SignInError
from django_entra_sso.models import Connector, Identity
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import TENANT, SignIn, assert_refused, make_connector, signed_in_user

pytestmark = pytest.mark.django_db
User = get_user_model()

OID = "4b4d3c57-0000-4000-8000-00000000a11c"


@pytest.fixture
def fabrikam(db: Any, fake_idp: FakeIdP) -> Connector:
    """A second connector (same IdP software, its own slug) owning fabrikam.com."""
    return make_connector(fake_idp, "fabrikam", domain="fabrikam.com")


# -- the ID token ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_overrides", "header_overrides", "method"),
    [
        ({"iss": "https://evil.example"}, {}, "get"),
        ({"iss": "https://evil.example"}, {}, "post"),
        ({"aud": "another-client"}, {}, "get"),
        ({"aud": ["test-client", "another-api"]}, {}, "get"),
        ({"nonce": "nonce-of-another-sign-in"}, {}, "get"),
        ({"nonce": "nonce-of-another-sign-in"}, {}, "post"),
        ({"exp": 1_000_000_000}, {}, "get"),
        ({"iat": 1_000_000_000}, {}, "get"),
        ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, {}, "get"),
        # Signed with key-1 but naming key-2: the signature does not verify.
        ({}, {"kid": "key-2"}, "get"),
        ({}, {"kid": "forged-kid"}, "get"),
    ],
    ids=[
        "iss",
        "iss-form-post",
        "aud",
        "aud-without-azp",
        "nonce",
        "nonce-form-post",
        "expired",
        "too-old",
        "at_hash-of-another-access-token",
        "bad-signature",
        "unknown-key",
    ],
)
def test_unacceptable_id_token_is_refused(
    client: Client,
    sign_in: SignIn,
    fake_idp: FakeIdP,
    token_overrides: dict[str, Any],
    header_overrides: dict[str, Any],
    method: str,
) -> None:
    fake_idp.token_overrides.update(token_overrides)
    fake_idp.token_header_overrides.update(header_overrides)
    assert_refused(client, sign_in(method=method), status=400, code="invalid_token")


# -- state --------------------------------------------------------------------------------


def test_replayed_callback_is_refused(client: Client, sign_in: SignIn, fake_idp: FakeIdP) -> None:
    params = fake_idp.authorize(sign_in.start())
    assert sign_in.callback("contoso", params).status_code == 302
    client.logout()
    replay = sign_in.callback("contoso", params)
    assert replay.status_code == 400
    assert_refused(client, replay, status=400, code="invalid_state", created_nothing=False)
    assert fake_idp.calls["/token"] == 1  # the replay never reached the IdP


def test_replayed_form_post_callback_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    params = fake_idp.authorize(sign_in.start())
    assert sign_in.callback("contoso", params, method="post").status_code == 302
    client.logout()
    bounce = client.post("/sso/callback/contoso/", params)
    assert bounce.status_code == 303
    replay = client.get(bounce["Location"])
    assert_refused(client, replay, status=400, code="invalid_state", created_nothing=False)
    assert fake_idp.calls["/token"] == 1


def test_callback_in_a_browser_that_never_started_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    # Login CSRF: the attacker's own code and state, opened in the victim's browser.
    params = fake_idp.authorize(sign_in.start())
    victim = Client()
    response = victim.get("/sso/callback/contoso/", params)
    assert response.status_code == 400
    assert b"Reference: invalid_state" in response.content
    assert signed_in_user(victim) is None
    assert_refused(client, response)
    assert fake_idp.calls["/token"] == 0


def test_form_post_in_a_browser_that_never_started_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    params = fake_idp.authorize(sign_in.start())
    victim = Client()
    bounce = victim.post("/sso/callback/contoso/", params)
    assert bounce.status_code == 303
    response = victim.get(bounce["Location"])
    assert response.status_code == 400
    assert signed_in_user(victim) is None
    assert_refused(client, response)


def test_state_of_one_connector_at_anothers_callback_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, fabrikam: Connector
) -> None:
    params = fake_idp.authorize(sign_in.start("alice@contoso.com"))
    response = sign_in.callback("fabrikam", params)
    assert response.status_code == 400
    assert b"Reference: wrong_callback" in response.content
    assert_refused(client, response)
    # The state was spent by the wrong callback: it cannot be used afterwards either.
    assert sign_in.callback("contoso", params).status_code == 400
    assert fake_idp.calls["/token"] == 0


def test_expired_state_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, settings: Any
) -> None:
    params = fake_idp.authorize(sign_in.start())
    settings.ENTRA_SSO_LOGIN_TIMEOUT = 0
    time.sleep(0.01)
    response = sign_in.callback("contoso", params)
    assert response.status_code == 400
    assert b"Reference: invalid_state" in response.content
    assert_refused(client, response)


def test_callback_without_state_is_refused(client: Client, sign_in: SignIn) -> None:
    sign_in.start()
    response = client.get("/sso/callback/contoso/", {"code": "some-code"})
    assert_refused(client, response, status=400, code="invalid_state")


def test_callback_without_code_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    params = fake_idp.authorize(sign_in.start())
    response = client.get("/sso/callback/contoso/", {"state": params["state"]})
    assert_refused(client, response, status=400, code="invalid_request")


def test_callback_of_an_unknown_connector_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    params = fake_idp.authorize(sign_in.start())
    assert_refused(client, sign_in.callback("nobody", params), status=404)
    assert_refused(client, client.post("/sso/callback/nobody/", params), status=404)


def test_callback_of_a_connector_disabled_meanwhile_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    params = fake_idp.authorize(sign_in.start())
    Connector.objects.filter(pk=connector.pk).update(enabled=False)
    assert_refused(client, sign_in.callback("contoso", params), status=403, code="disabled")


# -- open redirects ------------------------------------------------------------------------

EVIL_NEXT = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "http://evil.example/path",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "https:evil.example",
    "//evil.example@testserver",
    " //evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "evil.example",
    "//testserver.evil.example/",
]


def assert_on_site(location: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location and not any(ord(ch) < 32 for ch in location), location


@pytest.mark.parametrize("next_url", EVIL_NEXT)
def test_next_cannot_leave_the_site_after_sign_in(
    client: Client, sign_in: SignIn, next_url: str
) -> None:
    response = sign_in(next_url=next_url)
    assert response.status_code == 302
    assert_on_site(response["Location"])
    assert response["Location"] == "/home/"
    assert signed_in_user(client) is not None  # the sign-in itself is fine


@pytest.mark.parametrize("next_url", EVIL_NEXT[:8])
def test_next_cannot_leave_the_site_when_starting_at_a_connector(
    client: Client, connector: Connector, fake_idp: FakeIdP, next_url: str
) -> None:
    start = client.get("/sso/login/", {"connector": "contoso", "next": next_url})
    assert start.status_code == 302
    response = SignIn(client, fake_idp).callback("contoso", fake_idp.authorize(start["Location"]))
    assert response["Location"] == "/home/"


@pytest.mark.parametrize("target", EVIL_NEXT[:8])
def test_target_link_uri_cannot_leave_the_site(
    client: Client, connector: Connector, fake_idp: FakeIdP, target: str
) -> None:
    start = client.get(
        "/sso/initiate/contoso/", {"iss": fake_idp.issuer, "target_link_uri": target}
    )
    assert start.status_code == 302
    response = SignIn(client, fake_idp).callback("contoso", fake_idp.authorize(start["Location"]))
    assert response["Location"] == "/home/"


def test_same_site_next_is_kept(client: Client, sign_in: SignIn) -> None:
    response = sign_in(next_url="/private/?tab=2")
    assert response["Location"] == "/private/?tab=2"


def test_login_page_does_not_echo_an_evil_next(client: Client, connector: Connector) -> None:
    response = client.get("/sso/login/", {"next": "https://evil.example/x"})
    assert response.status_code == 200
    assert b"evil.example" not in response.content


# -- domains and who the user is ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "method", "code"),
    [
        ("bob@fabrikam.com", "get", "wrong_connector"),
        ("bob@fabrikam.com", "post", "wrong_connector"),
        ("eve@gmail.example", "get", "wrong_domain"),
        ("eve@gmail.example", "post", "wrong_domain"),
    ],
)
def test_email_outside_the_connectors_domains_is_refused(
    client: Client,
    sign_in: SignIn,
    fake_idp: FakeIdP,
    fabrikam: Connector,
    email: str,
    method: str,
    code: str,
) -> None:
    fake_idp.token_overrides["email"] = email
    assert_refused(client, sign_in(method=method), status=403, code=code)


def test_same_email_with_another_subject_gets_its_own_user(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    # nOAuth: a second identity that claims alice's email must not become alice.
    assert sign_in().status_code == 302
    alice = signed_in_user(client)
    client.logout()
    fake_idp.token_overrides.update({"sub": "subject-mallory", "email_verified": False})
    assert sign_in().status_code == 302
    mallory = signed_in_user(client)
    assert mallory is not None and mallory.pk != alice.pk
    assert Identity.objects.get(subject="subject-mallory").user_id == mallory.pk


def test_same_verified_email_with_another_subject_is_not_linked_even_when_linking_is_on(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    assert sign_in().status_code == 302
    alice = signed_in_user(client)
    client.logout()
    # Even vouched for, alice's account already belongs to another subject here.
    fake_idp.token_overrides["sub"] = "subject-mallory"
    assert sign_in().status_code == 302
    mallory = signed_in_user(client)
    assert mallory is not None and mallory.pk != alice.pk
    assert set(Identity.objects.filter(user=alice).values_list("subject", flat=True)) == {
        "subject-alice"
    }


def test_same_email_with_another_subject_is_refused_when_users_are_not_created(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    assert sign_in().status_code == 302
    client.logout()
    Connector.objects.filter(pk=connector.pk).update(create_users=False)
    fake_idp.token_overrides["sub"] = "subject-mallory"
    assert_refused(client, sign_in(), status=403, code="no_account", created_nothing=False)
    assert User.objects.count() == 1
    assert not Identity.objects.filter(subject="subject-mallory").exists()


def test_no_account_and_no_creation_is_refused(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    Connector.objects.filter(pk=connector.pk).update(create_users=False)
    assert_refused(client, sign_in(), status=403, code="no_account")


def test_inactive_user_is_refused(client: Client, sign_in: SignIn) -> None:
    assert sign_in().status_code == 302
    user = signed_in_user(client)
    client.logout()
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_refused(client, sign_in(), status=403, code="inactive", created_nothing=False)
    assert User.objects.count() == 1


# -- errors from the IdP -----------------------------------------------------------------------

IDP_ERRORS = [
    ("access_denied", 403),
    ("invalid_request", 400),
    ("unauthorized_client", 400),
    ("unsupported_response_type", 400),
    ("server_error", 400),
    ("temporarily_unavailable", 400),
    ("invalid_resource", 400),
]
DESCRIPTION = "AADSTS50105: <script>alert('desc-marker-7731')</script>"


@pytest.mark.parametrize("error, status", IDP_ERRORS)
def test_idp_error_shows_a_friendly_page_without_the_description(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, error: str, status: int
) -> None:
    state = fake_idp.authorize(sign_in.start())["state"]
    response = client.get(
        "/sso/callback/contoso/",
        {"state": state, "error": error, "error_description": DESCRIPTION},
    )
    assert response.status_code == status
    assert f"Reference: {error}".encode() in response.content
    assert b"desc-marker-7731" not in response.content
    assert b"<script>" not in response.content
    assert_refused(client, response)
    assert fake_idp.calls["/token"] == 0


@pytest.mark.parametrize("error, status", IDP_ERRORS[:2])
def test_idp_error_on_the_form_post_path(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, error: str, status: int
) -> None:
    state = fake_idp.authorize(sign_in.start())["state"]
    response = sign_in.callback(
        "contoso", {"state": state, "error": error, "error_description": DESCRIPTION}, "post"
    )
    assert response.status_code == status
    assert b"desc-marker-7731" not in response.content
    assert_refused(client, response)


@pytest.mark.parametrize("error", ["invalid_state", "unavailable", "made_up_error", "<b>x</b>"])
def test_unknown_or_our_own_error_codes_from_the_idp_are_generic(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, error: str
) -> None:
    state = fake_idp.authorize(sign_in.start())["state"]
    response = client.get("/sso/callback/contoso/", {"state": state, "error": error})
    assert response.status_code == 400
    assert b"Reference: idp_error" in response.content
    assert_refused(client, response)


def test_login_required_asks_to_sign_in_interactively(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    state = fake_idp.authorize(sign_in.start())["state"]
    response = client.get("/sso/callback/contoso/", {"state": state, "error": "login_required"})
    assert_refused(client, response, status=400, code="interaction_required")


# -- the token endpoint -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500, body=b'{"error": "server_error"}'),
        Fault(status=400, body=b'{"error": "invalid_grant"}'),
        Fault(body=b"<html>gateway</html>", content_type="text/html"),
        Fault(body=b"[]"),
        Fault(body=b'{"access_token": "a", "token_type": "Bearer"}'),
        Fault(body=b'{"id_token": 12345}'),
        Fault(body=b'{"id_token": "not.a.jwt"}'),
    ],
    ids=["500", "invalid_grant", "html", "json-array", "no-id-token", "numeric", "garbage-jwt"],
)
def test_unusable_token_answers_are_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, fault: Fault
) -> None:
    fake_idp.faults["/token"] = fault
    response = sign_in()
    assert response.status_code in {400, 424}
    assert_refused(client, response)


@pytest.mark.parametrize("method", ["get", "post"])
def test_token_endpoint_timeout_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, settings: Any, method: str
) -> None:
    params = fake_idp.authorize(sign_in.start())
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.2
    fake_idp.faults["/token"] = Fault(delay=1)
    started = time.monotonic()
    response = sign_in.callback("contoso", params, method=method)
    assert time.monotonic() - started < 0.9
    assert_refused(client, response, status=424, code="token_failed")


def test_idp_unreachable_at_sign_in_start_is_a_friendly_page(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(status=500)
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert_refused(client, response, status=424, code="provider_unreachable")


# -- RFC 9207 -----------------------------------------------------------------------------------


@pytest.fixture
def iss_idp(fake_idp: FakeIdP) -> FakeIdP:
    fake_idp.iss_parameter_supported = True
    return fake_idp


@pytest.mark.parametrize(
    ("promised", "iss", "method"),
    [
        (True, None, "get"),
        (True, "https://evil.example", "get"),
        (True, "https://evil.example", "post"),
        (False, "https://evil.example", "get"),
    ],
    ids=["missing-when-promised", "another-idp", "another-idp-form-post", "mismatch-unpromised"],
)
def test_iss_parameter_not_naming_the_connectors_issuer_is_refused(
    client: Client,
    sign_in: SignIn,
    fake_idp: FakeIdP,
    promised: bool,
    iss: str | None,
    method: str,
) -> None:
    fake_idp.iss_parameter_supported = promised
    params = fake_idp.authorize(sign_in.start())
    if iss is not None:
        params["iss"] = iss
    response = sign_in.callback("contoso", params, method=method)
    assert_refused(client, response, status=400, code="wrong_callback")
    assert fake_idp.calls["/token"] == 0


def test_matching_iss_parameter_is_accepted(
    client: Client, sign_in: SignIn, iss_idp: FakeIdP
) -> None:
    params = iss_idp.authorize(sign_in.start()) | {"iss": iss_idp.issuer}
    assert sign_in.callback("contoso", params).status_code == 302
    assert signed_in_user(client) is not None


# -- one person, one user --------------------------------------------------------------------------


def test_two_sign_ins_with_one_subject_make_one_user(client: Client, sign_in: SignIn) -> None:
    assert sign_in().status_code == 302
    client.logout()
    assert sign_in().status_code == 302
    assert (User.objects.count(), Identity.objects.count()) == (1, 1)


@pytest.fixture
def entra_connector(connector: Connector) -> Connector:
    connector.provider = "entra_id"
    connector.response_mode = "query"
    connector.save()
    return connector


def test_entra_user_is_found_by_tenant_and_object_id_not_sub(
    client: Client, sign_in: SignIn, entra_connector: Connector
) -> None:
    assert sign_in(oid=OID, tid=TENANT).status_code == 302
    first = signed_in_user(client)
    client.logout()
    # Entra's sub is pairwise per app: a new app registration gives a new sub.
    assert sign_in(sub="another-pairwise-sub", oid=OID, tid=TENANT).status_code == 302
    assert signed_in_user(client).pk == first.pk
    identity = Identity.objects.get()
    assert (identity.subject, identity.tenant_id) == (OID, TENANT)


def test_entra_user_with_another_object_id_is_another_user(
    client: Client, sign_in: SignIn, entra_connector: Connector
) -> None:
    assert sign_in(oid=OID, tid=TENANT).status_code == 302
    first = signed_in_user(client)
    client.logout()
    other_oid = OID[:-4] + "b0b0"
    assert sign_in(oid=other_oid, tid=TENANT).status_code == 302
    assert signed_in_user(client).pk != first.pk


def test_entra_token_with_a_non_guid_tid_is_refused(
    client: Client, sign_in: SignIn, entra_connector: Connector
) -> None:
    assert_refused(
        client, sign_in(oid=OID, tid="contoso.onmicrosoft.com"), status=400, code="invalid_token"
    )


def test_entra_tenant_outside_the_allow_list_is_refused(
    client: Client, sign_in: SignIn, entra_connector: Connector
) -> None:
    entra_connector.allowed_tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]
    entra_connector.save()
    assert_refused(client, sign_in(oid=OID, tid=TENANT), status=400, code="invalid_token")


def test_sign_in_error_carries_a_code_and_its_pages_status() -> None:
    error = SignInError("no_account", "log text")
    assert (error.code, error.status, str(error)) == ("no_account", 403, "log text")
    assert SignInError("token_failed").status == 424
    assert SignInError("token_failed", status=503).status == 503
