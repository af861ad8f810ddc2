"""The sign-in path end to end through the test client and the fake IdP."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from django_entra_sso.sessions import SIGN_OUT_SESSION_KEY
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, assert_refused, query_of, signed_in_user

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_login_page_asks_for_work_email(client: Client) -> None:
    response = client.get("/sso/login/")
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b">Continue</button>" in response.content


def test_login_page_in_japanese(client: Client) -> None:
    response = client.get("/sso/login/", HTTP_ACCEPT_LANGUAGE="ja")
    assert "勤務先のメールアドレス".encode() in response.content


def test_email_domain_routes_to_its_connector(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    response = client.post("/sso/login/", {"email": "Alice@Contoso.COM"})
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{fake_idp.issuer}/authorize?")
    query = query_of(location)
    assert query["client_id"] == connector.client_id
    assert query["redirect_uri"] == "http://testserver/sso/callback/contoso/"
    assert query["scope"].split() == ["openid", "profile", "email"]
    assert query["login_hint"] == "Alice@Contoso.COM"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["state"] and query["nonce"] and query["state"] != query["nonce"]
    assert "response_mode" not in query
    assert "domain_hint" not in query


def test_entra_connector_sends_domain_hint_and_form_post(
    client: Client, connector: Connector
) -> None:
    connector.provider = "entra_id"
    connector.response_mode = ""
    connector.extra_scopes = "offline_access User.Read"
    connector.prompt = "select_account"
    connector.save()
    query = query_of(client.post("/sso/login/", {"email": "bob@contoso.com"})["Location"])
    assert query["domain_hint"] == "contoso.com"
    assert query["response_mode"] == "form_post"
    assert query["prompt"] == "select_account"
    assert query["scope"] == "openid profile email offline_access User.Read"


@pytest.mark.parametrize(
    "email, message",
    [
        ("not-an-email", b"Enter a work email address"),
        ("", b"Enter a work email address"),
        ("a@b@contoso.com", b"Enter a work email address"),
        ("alice@unknown.example", b"Single sign-on is not set up for unknown.example"),
    ],
)
def test_unusable_emails_are_answered_on_the_page(
    client: Client, connector: Connector, email: str, message: bytes
) -> None:
    response = client.post("/sso/login/", {"email": email})
    assert response.status_code == 200
    assert message in response.content


def test_disabled_connector_says_so(client: Client, connector: Connector) -> None:
    Connector.objects.filter(pk=connector.pk).update(enabled=False)
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert b"switched off" in response.content


def test_password_login_offered_when_configured(client: Client, settings: Any) -> None:
    settings.ENTRA_SSO_PASSWORD_LOGIN_URL = "/accounts/login/"
    response = client.post("/sso/login/", {"email": "x@nowhere.example"})
    assert b'href="/accounts/login/"' in response.content
    settings.ENTRA_SSO_PASSWORD_LOGIN_URL = None
    response = client.post("/sso/login/", {"email": "x@nowhere.example"})
    assert b"/accounts/login/" not in response.content


def test_connector_parameter_starts_directly(client: Client, connector: Connector) -> None:
    response = client.get("/sso/login/?connector=contoso&next=/private/")
    assert response.status_code == 302
    assert "state=" in response["Location"]
    assert client.get("/sso/login/?connector=nope").status_code == 404


def test_full_sign_in_creates_user_identity_and_session(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    response = sign_in(next_url="/private/")
    assert response.status_code == 302
    assert response["Location"] == "/private/"
    user = signed_in_user(client)
    assert user is not None
    assert (user.first_name, user.last_name, user.email) == (
        "Alice",
        "Liddell",
        "alice@contoso.com",
    )
    assert not user.has_usable_password()
    identity = Identity.objects.get()
    assert (identity.issuer, identity.subject, identity.user_id) == (
        connector.issuer,
        "subject-alice",
        user.pk,
    )
    session = SSOSession.objects.get()
    assert session.sid == "idp-session-1"
    assert session.session_key == client.session.session_key
    assert client.session[SIGN_OUT_SESSION_KEY]["id_token_hint"].count(".") == 2
    assert client.get("/private/").content == f"signed in as {user.username}".encode()


def test_default_redirect_is_login_redirect_url(sign_in: SignIn) -> None:
    assert sign_in()["Location"] == "/home/"


def test_form_post_works_without_the_session_cookie_on_the_post(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    authorize_url = SignIn(client, fake_idp).start()
    params = fake_idp.authorize(authorize_url)
    # The IdP's cross-site POST: the browser sends no Lax session cookie with it.
    cookieless = Client()
    bounce = cookieless.post("/sso/callback/contoso/", params)
    assert bounce.status_code == 303
    assert "code" not in bounce["Location"]
    assert signed_in_user(cookieless) is None
    # The browser then follows the redirect as a top-level GET, with its cookie.
    response = client.get(bounce["Location"])
    assert response.status_code == 302
    assert signed_in_user(client) is not None


def test_form_post_handle_is_single_use(client: Client, sign_in: SignIn, fake_idp: FakeIdP) -> None:
    params = fake_idp.authorize(sign_in.start())
    bounce = client.post("/sso/callback/contoso/", params)
    assert client.get(bounce["Location"]).status_code == 302
    client.logout()
    again = client.get(bounce["Location"])
    assert again.status_code == 400
    assert signed_in_user(client) is None


def test_session_key_changes_on_sign_in(client: Client, sign_in: SignIn) -> None:
    client.get("/sso/login/")
    sign_in.start()
    before = client.session.session_key
    assert before
    sign_in()
    assert client.session.session_key != before


def test_second_sign_in_reuses_user_and_refreshes_names(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    sign_in()
    first = signed_in_user(client)
    client.logout()
    fake_idp.token_overrides["email"] = "alicia@contoso.com"
    sign_in(given_name="Alicia")
    second = signed_in_user(client)
    assert second.pk == first.pk
    assert (second.first_name, second.email) == ("Alicia", "alicia@contoso.com")
    assert User.objects.count() == 1


def test_several_tabs_can_sign_in_at_once(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    first = fake_idp.authorize(sign_in.start(next_url="/one/"))
    second = fake_idp.authorize(sign_in.start(next_url="/two/"))
    assert sign_in.callback("contoso", second)["Location"] == "/two/"
    client.logout()
    # logout flushed the session, and with it the first tab's pending sign-in
    assert sign_in.callback("contoso", first).status_code == 400


def test_pending_sign_ins_are_bounded(client: Client, sign_in: SignIn, settings: Any) -> None:
    settings.ENTRA_SSO_MAX_PENDING_LOGINS = 3
    for _ in range(20):
        sign_in.start()
    assert len(client.session["entra_sso_pending"]) == 3


def test_userinfo_is_not_called_by_default(sign_in: SignIn, fake_idp: FakeIdP) -> None:
    sign_in()
    assert fake_idp.calls["/userinfo"] == 0


def test_steady_state_sign_in_makes_one_network_call(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    sign_in()
    client.logout()
    fake_idp.calls.clear()
    for _ in range(3):
        assert sign_in().status_code == 302
        client.logout()
    assert dict(fake_idp.calls) == {"/token": 3}


def test_userinfo_when_connector_asks(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    connector.use_userinfo = True
    connector.save()
    fake_idp.userinfo_claims = {"sub": "subject-alice", "given_name": "FromUserinfo"}
    sign_in()
    assert signed_in_user(client).first_name == "FromUserinfo"
    assert fake_idp.calls["/userinfo"] == 1


def test_userinfo_with_another_subject_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    connector.use_userinfo = True
    connector.save()
    fake_idp.userinfo_claims = {"sub": "someone-else"}
    assert_refused(client, sign_in(), status=400, code="invalid_token")


def test_client_secret_post_when_basic_is_not_supported(sign_in: SignIn, fake_idp: FakeIdP) -> None:
    fake_idp.auth_methods = ["client_secret_post"]
    assert sign_in().status_code == 302
    form = fake_idp.received_token_requests[-1]["form"]
    assert form["client_secret"] == fake_idp.client_secret


def test_client_secret_basic_is_form_urlencoded(sign_in: SignIn, fake_idp: FakeIdP) -> None:
    assert sign_in().status_code == 302
    request = fake_idp.received_token_requests[-1]
    assert request["headers"]["Authorization"].startswith("Basic ")
    assert "client_secret" not in request["form"]
    import base64

    decoded = base64.b64decode(request["headers"]["Authorization"][6:]).decode()
    assert decoded == "test-client:test-secret+with+spaces%2Bplus"


def test_signals_are_sent(sign_in: SignIn) -> None:
    from django_entra_sso.signals import sso_signed_in, sso_user_created

    seen: list[str] = []
    sso_user_created.connect(lambda **kw: seen.append("created"), weak=False, dispatch_uid="t1")
    sso_signed_in.connect(lambda **kw: seen.append("signed_in"), weak=False, dispatch_uid="t2")
    try:
        sign_in()
    finally:
        sso_user_created.disconnect(dispatch_uid="t1")
        sso_signed_in.disconnect(dispatch_uid="t2")
    assert seen == ["created", "signed_in"]


def test_groups_follow_the_mapping(client: Client, sign_in: SignIn, connector: Connector) -> None:
    from django.contrib.auth.models import Group

    Group.objects.create(name="Unmanaged")
    connector.group_mapping = {"g-readers": ["Readers"], "g-staff": "Staff"}
    connector.save()
    sign_in(groups=["g-readers", "g-staff", "g-other"])
    user = signed_in_user(client)
    user.groups.add(Group.objects.get(name="Unmanaged"))
    assert set(user.groups.values_list("name", flat=True)) == {"Readers", "Staff", "Unmanaged"}
    client.logout()
    sign_in(groups=["g-readers"])
    assert set(user.groups.values_list("name", flat=True)) == {"Readers", "Unmanaged"}


def test_group_overage_is_logged_not_a_crash(
    client: Client, sign_in: SignIn, connector: Connector, caplog: Any
) -> None:
    connector.group_mapping = {"g": ["G"]}
    connector.save()
    response = sign_in(_claim_names={"groups": "src1"}, _claim_sources={"src1": {}})
    assert response.status_code == 302
    assert "group overage" in caplog.text


def test_domain_normalisation_in_email_domain_model(connector: Connector) -> None:
    d = EmailDomain.objects.create(
        domain="Fabrikam.COM.", connector=connector, verified_at=timezone.now()
    )
    assert d.domain == "fabrikam.com"
