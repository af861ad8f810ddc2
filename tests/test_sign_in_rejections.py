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

from django_entra_sso.backends import SignInError, SSOBackend
from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from tests.conftest import SignIn, make_connector, signed_in_user
from tests.fakeidp import FakeIdP, Fault

pytestmark = pytest.mark.django_db
User = get_user_model()

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OID = "4b4d3c57-0000-4000-8000-00000000a11c"


def assert_refused(
    client: Client, response: Any, *, status: int | None = None, code: str | None = None
) -> None:
    """Refused without a 500, nobody signed in, nothing created."""
    assert response.status_code < 500, response.content[:500]
    if status is not None:
        assert response.status_code == status, response.content[:500]
    if code is not None:
        assert f"Reference: {code}".encode() in response.content, response.content[:500]
    assert signed_in_user(client) is None
    assert not SSOSession.objects.exists()
    assert not User.objects.exists()
    assert not Identity.objects.exists()


def assert_not_signed_in(client: Client, response: Any) -> None:
    assert response.status_code < 500, response.content[:500]
    assert signed_in_user(client) is None
    assert not SSOSession.objects.exists()


@pytest.fixture
def fabrikam(db: Any, fake_idp: FakeIdP) -> Connector:
    """A second connector (same IdP software, its own slug) owning fabrikam.com."""
    return make_connector(fake_idp, "fabrikam", "Fabrikam", "fabrikam.com")


# -- the ID token ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        {"iss": "https://evil.example"},
        {"aud": "another-client"},
        {"aud": ["test-client", "another-api"]},
        {"nonce": "nonce-of-another-sign-in"},
        {"exp": 1_000_000_000},
        {"iat": 1_000_000_000},
    ],
    ids=["iss", "aud", "aud-without-azp", "nonce", "expired", "too-old"],
)
def test_id_token_with_wrong_claims_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, override: dict[str, Any]
) -> None:
    fake_idp.token_overrides.update(override)
    assert_refused(client, sign_in(), status=400, code="invalid_token")


def test_id_token_with_a_bad_signature_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    # Signed with key-1 but naming key-2: the signature does not verify.
    fake_idp.token_header_overrides["kid"] = "key-2"
    assert_refused(client, sign_in(), status=400, code="invalid_token")


def test_id_token_naming_an_unknown_key_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_header_overrides["kid"] = "forged-kid"
    assert_refused(client, sign_in(), status=400, code="invalid_token")


def test_id_token_with_wrong_nonce_is_refused_on_the_form_post_path(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["nonce"] = "nonce-of-another-sign-in"
    assert_refused(client, sign_in(method="post"), status=400, code="invalid_token")


def test_id_token_from_another_issuer_is_refused_on_the_form_post_path(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["iss"] = "https://evil.example"
    assert_refused(client, sign_in(method="post"), status=400, code="invalid_token")


def test_at_hash_of_another_access_token_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"
    assert_refused(client, sign_in(), status=400, code="invalid_token")


# -- state --------------------------------------------------------------------------------


def test_replayed_callback_is_refused(client: Client, sign_in: SignIn, fake_idp: FakeIdP) -> None:
    params = fake_idp.authorize(sign_in.start())
    assert sign_in.callback("contoso", params).status_code == 302
    client.logout()
    replay = sign_in.callback("contoso", params)
    assert replay.status_code == 400
    assert b"Reference: invalid_state" in replay.content
    assert_not_signed_in(client, replay)
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
    assert replay.status_code == 400
    assert_not_signed_in(client, replay)
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


def test_email_of_another_connectors_domain_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, fabrikam: Connector
) -> None:
    fake_idp.token_overrides["email"] = "bob@fabrikam.com"
    assert_refused(client, sign_in(), status=403, code="wrong_connector")


def test_email_outside_the_connectors_domains_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["email"] = "eve@gmail.example"
    assert_refused(client, sign_in(), status=403, code="wrong_domain")


def test_email_outside_the_domains_is_refused_on_the_form_post_path(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["email"] = "eve@gmail.example"
    assert_refused(client, sign_in(method="post"), status=403, code="wrong_domain")


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
    response = sign_in()
    assert response.status_code == 403
    assert b"Reference: no_account" in response.content
    assert_not_signed_in(client, response)
    assert User.objects.count() == 1
    assert not Identity.objects.filter(subject="subject-mallory").exists()


@pytest.fixture
def existing_alice(db: Any) -> Any:
    return User.objects.create_user("alice", email="alice@contoso.com", password="pw-12345")


def test_existing_account_is_not_linked_when_the_connector_does_not_allow_it(
    client: Client, sign_in: SignIn, existing_alice: Any
) -> None:
    assert sign_in().status_code == 302
    assert signed_in_user(client).pk != existing_alice.pk
    assert not Identity.objects.filter(user=existing_alice).exists()


def test_existing_account_is_not_linked_by_an_unverified_email(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector, existing_alice: Any
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    fake_idp.token_overrides["email_verified"] = False
    assert sign_in().status_code == 302
    assert signed_in_user(client).pk != existing_alice.pk
    assert not Identity.objects.filter(user=existing_alice).exists()


def test_existing_account_is_not_linked_by_an_email_outside_the_connectors_domains(
    client: Client, fake_idp: FakeIdP, connector: Connector, existing_alice: Any
) -> None:
    # A connector without domains may sign in any email, but links none.
    connector.link_existing_by_email = True
    connector.save()
    EmailDomain.objects.filter(connector=connector).delete()
    start = client.get("/sso/login/", {"connector": "contoso"})
    response = SignIn(client, fake_idp).callback("contoso", fake_idp.authorize(start["Location"]))
    assert response.status_code == 302
    assert signed_in_user(client).pk != existing_alice.pk
    assert not Identity.objects.filter(user=existing_alice).exists()


def test_existing_account_is_not_linked_when_two_accounts_share_the_email(
    client: Client, sign_in: SignIn, connector: Connector, existing_alice: Any
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    twin = User.objects.create_user("alice2", email="ALICE@contoso.com")
    assert sign_in().status_code == 302
    assert signed_in_user(client).pk not in {existing_alice.pk, twin.pk}


def test_existing_account_is_linked_by_a_verified_email_of_the_connectors_domain(
    client: Client, sign_in: SignIn, connector: Connector, existing_alice: Any
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    assert sign_in().status_code == 302
    assert signed_in_user(client).pk == existing_alice.pk
    identity = Identity.objects.get()
    assert (identity.user_id, identity.subject) == (existing_alice.pk, "subject-alice")
    assert User.objects.count() == 1


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
    response = sign_in()
    assert response.status_code == 403
    assert b"Reference: inactive" in response.content
    assert_not_signed_in(client, response)
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


def test_token_endpoint_timeout_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, settings: Any
) -> None:
    params = fake_idp.authorize(sign_in.start())
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.2
    fake_idp.faults["/token"] = Fault(delay=1)
    started = time.monotonic()
    response = sign_in.callback("contoso", params)
    assert time.monotonic() - started < 0.9
    assert_refused(client, response, status=424, code="token_failed")


def test_token_endpoint_timeout_on_the_form_post_path(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, settings: Any
) -> None:
    params = fake_idp.authorize(sign_in.start())
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.2
    fake_idp.faults["/token"] = Fault(delay=1)
    response = sign_in.callback("contoso", params, method="post")
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


def test_missing_iss_parameter_is_refused_when_the_idp_promises_it(
    client: Client, sign_in: SignIn, iss_idp: FakeIdP
) -> None:
    params = iss_idp.authorize(sign_in.start())
    response = sign_in.callback("contoso", params)
    assert_refused(client, response, status=400, code="wrong_callback")
    assert iss_idp.calls["/token"] == 0


def test_iss_parameter_of_another_idp_is_refused(
    client: Client, sign_in: SignIn, iss_idp: FakeIdP
) -> None:
    params = iss_idp.authorize(sign_in.start()) | {"iss": "https://evil.example"}
    assert_refused(client, sign_in.callback("contoso", params), status=400, code="wrong_callback")


def test_iss_parameter_of_another_idp_is_refused_on_the_form_post_path(
    client: Client, sign_in: SignIn, iss_idp: FakeIdP
) -> None:
    params = iss_idp.authorize(sign_in.start()) | {"iss": "https://evil.example"}
    response = sign_in.callback("contoso", params, method="post")
    assert_refused(client, response, status=400, code="wrong_callback")


def test_iss_parameter_mismatch_is_refused_even_when_not_promised(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    params = fake_idp.authorize(sign_in.start()) | {"iss": "https://evil.example"}
    assert_refused(client, sign_in.callback("contoso", params), status=400, code="wrong_callback")


def test_matching_iss_parameter_is_accepted(
    client: Client, sign_in: SignIn, iss_idp: FakeIdP
) -> None:
    params = iss_idp.authorize(sign_in.start()) | {"iss": iss_idp.issuer}
    assert sign_in.callback("contoso", params).status_code == 302
    assert signed_in_user(client) is not None


# -- one person, one user --------------------------------------------------------------------------


def backend_for(connector: Connector) -> SSOBackend:
    backend = SSOBackend()
    backend.configure(connector)
    return backend


def alice_claims(connector: Connector, **extra: Any) -> dict[str, Any]:
    return {
        "iss": connector.issuer,
        "sub": "subject-alice",
        "email": "alice@contoso.com",
        "email_verified": True,
        **extra,
    }


def test_two_first_sign_ins_of_one_person_make_one_user(connector: Connector) -> None:
    first = backend_for(connector).resolve_user(alice_claims(connector), None)
    second = backend_for(connector).resolve_user(alice_claims(connector), None)
    assert first.pk == second.pk
    assert (User.objects.count(), Identity.objects.count()) == (1, 1)


def test_losing_the_first_sign_in_race_takes_the_winners_user(
    connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other request inserts the identity between our lookup and our insert."""
    winner = User.objects.create_user("winner")
    backend = backend_for(connector)

    def other_request_wins(claims: dict[str, Any]) -> None:
        Identity.objects.create(
            connector=connector, issuer=connector.issuer, subject="subject-alice", user=winner
        )
        return None

    monkeypatch.setattr(backend, "linkable_user", other_request_wins)
    user = backend.resolve_user(alice_claims(connector), None)
    assert user.pk == winner.pk
    assert (User.objects.count(), Identity.objects.count()) == (1, 1)


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


def test_sign_in_error_carries_a_code_and_a_status() -> None:
    error = SignInError("no_account", "log text", status=403)
    assert (error.code, error.status, str(error)) == ("no_account", 403, "log text")
