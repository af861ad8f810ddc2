"""Sign-out: here (RP-initiated), front-channel and back-channel."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_entra_sso.models import Connector, SSOSession
from django_entra_sso.oidc.tokens import BACKCHANNEL_LOGOUT_EVENT
from django_entra_sso.sessions import SIGN_OUT_SESSION_KEY
from django_entra_sso.signals import sso_signed_out
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, logout_token, post_logout_token, query_of, signed_in_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_out_reasons() -> Any:
    reasons: list[str] = []

    def receiver(**kwargs: Any) -> None:
        reasons.append(kwargs["reason"])

    sso_signed_out.connect(receiver, weak=False, dispatch_uid="test-reasons")
    yield reasons
    sso_signed_out.disconnect(dispatch_uid="test-reasons")


# -- signing out here -------------------------------------------------------------


def test_logout_get_shows_a_confirmation_with_a_post_form(client: Client) -> None:
    response = client.get("/sso/logout/")
    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert b'id="sso-logout"' in response.content


def test_logout_post_ends_the_session_and_goes_to_the_idp(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, signed_out_reasons: list[str]
) -> None:
    sign_in()
    id_token = client.session[SIGN_OUT_SESSION_KEY]["id_token_hint"]
    response = client.post("/sso/logout/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{fake_idp.issuer}/logout?")
    query = query_of(location)
    assert query["id_token_hint"] == id_token
    assert query["post_logout_redirect_uri"] == "http://testserver/sso/logout/done/"
    assert query["client_id"] == fake_idp.client_id
    assert "state" not in query  # nothing would check it; the IdP would echo it back
    assert signed_in_user(client) is None
    assert not SSOSession.objects.exists()
    assert signed_out_reasons == ["local"]


def test_logout_sends_entra_logout_hint(client: Client, sign_in: SignIn, settings: Any) -> None:
    settings.ENTRA_SSO_POST_LOGOUT_REDIRECT_URL = "/bye/"
    sign_in(login_hint="O.CiQAAAA-opaque-hint")
    query = query_of(client.post("/sso/logout/")["Location"])
    assert query["logout_hint"] == "O.CiQAAAA-opaque-hint"
    assert query["post_logout_redirect_uri"] == "http://testserver/bye/"


def test_logout_without_end_session_endpoint_ends_locally(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, monkeypatch: Any
) -> None:
    original = fake_idp.discovery

    def without_end_session() -> dict[str, Any]:
        doc = original()
        doc.pop("end_session_endpoint")
        return doc

    monkeypatch.setattr(fake_idp, "discovery", without_end_session)
    sign_in()
    response = client.post("/sso/logout/")
    assert response["Location"] == "http://testserver/sso/logout/done/"
    assert signed_in_user(client) is None


def test_logout_of_a_password_session_stays_local(client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("pw", password="secret-pw-1")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/sso/logout/")
    assert response["Location"] == "http://testserver/sso/logout/done/"
    assert signed_in_user(client) is None


def test_logout_is_not_a_get(client: Client, sign_in: SignIn) -> None:
    sign_in()
    client.get("/sso/logout/")
    assert signed_in_user(client) is not None


# -- front-channel -------------------------------------------------------------------


def test_frontchannel_ends_the_session_without_cookies(
    client: Client, sign_in: SignIn, signed_out_reasons: list[str]
) -> None:
    sign_in()
    iframe = Client()  # the IdP's cross-site iframe carries no Lax cookie
    response = iframe.get("/sso/logout/frontchannel/contoso/", {"sid": "idp-session-1"})
    assert response.status_code == 200
    assert signed_in_user(client) is None
    assert client.get("/private/").status_code == 302
    assert not SSOSession.objects.exists()
    assert signed_out_reasons == ["frontchannel"]


def test_frontchannel_with_matching_iss(client: Client, sign_in: SignIn, fake_idp: FakeIdP) -> None:
    sign_in()
    response = Client().get(
        "/sso/logout/frontchannel/contoso/", {"sid": "idp-session-1", "iss": fake_idp.issuer}
    )
    assert response.status_code == 200
    assert signed_in_user(client) is None


def test_frontchannel_with_wrong_iss_ends_nothing(client: Client, sign_in: SignIn) -> None:
    sign_in()
    response = Client().get(
        "/sso/logout/frontchannel/contoso/",
        {"sid": "idp-session-1", "iss": "https://evil.example"},
    )
    assert response.status_code == 400
    assert signed_in_user(client) is not None
    assert SSOSession.objects.count() == 1


def test_frontchannel_other_sid_ends_nothing(client: Client, sign_in: SignIn) -> None:
    sign_in()
    response = Client().get("/sso/logout/frontchannel/contoso/", {"sid": "other"})
    assert response.status_code == 200
    assert signed_in_user(client) is not None


def test_frontchannel_ends_every_session_bound_to_the_sid(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    second = Client()
    SignIn(client, fake_idp)()
    SignIn(second, fake_idp)()
    assert SSOSession.objects.count() == 2
    Client().get("/sso/logout/frontchannel/contoso/", {"sid": "idp-session-1"})
    assert signed_in_user(client) is None
    assert signed_in_user(second) is None


def test_frontchannel_headers_allow_framing_and_forbid_caching(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    response = client.get("/sso/logout/frontchannel/contoso/", {"sid": "x"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-cache, no-store"
    assert response["Pragma"] == "no-cache"
    assert "X-Frame-Options" not in response
    assert response["Content-Security-Policy"] == f"frame-ancestors 'self' {fake_idp.issuer}"


def test_frontchannel_unknown_connector_and_missing_sid(
    client: Client, connector: Connector
) -> None:
    assert client.get("/sso/logout/frontchannel/nope/", {"sid": "x"}).status_code == 404
    missing = client.get("/sso/logout/frontchannel/contoso/")
    assert missing.status_code == 400
    assert missing["Cache-Control"] == "no-cache, no-store"


def test_frontchannel_query_count_does_not_grow_with_stored_sessions(
    client: Client, sign_in: SignIn, django_user_model: Any, connector: Connector
) -> None:
    sign_in()
    user = django_user_model.objects.get()

    def queries_for_one_logout() -> int:
        with CaptureQueriesContext(connection) as ctx:
            Client().get("/sso/logout/frontchannel/contoso/", {"sid": "missing-sid"})
        return len(ctx.captured_queries)

    few = queries_for_one_logout()
    SSOSession.objects.bulk_create(
        SSOSession(
            connector=connector, sid=f"s{i}", subject=f"u{i}", session_key=f"k{i}", user=user
        )
        for i in range(2000)
    )
    assert queries_for_one_logout() == few


# -- back-channel ----------------------------------------------------------------------


def test_backchannel_by_sid_ends_the_session(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, signed_out_reasons: list[str]
) -> None:
    sign_in()
    response = post_logout_token(logout_token(fake_idp), unknown_param="ignored")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-cache, no-store"
    assert signed_in_user(client) is None
    assert signed_out_reasons == ["backchannel"]


def test_backchannel_by_sub_ends_every_session_of_the_subject(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    second = Client()
    SignIn(client, fake_idp)()
    fake_idp.token_overrides["sid"] = "another-idp-session"
    SignIn(second, fake_idp)()
    response = post_logout_token(logout_token(fake_idp, sid=None, extra_claim=1))
    assert response.status_code == 200
    assert signed_in_user(client) is None
    assert signed_in_user(second) is None


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "no_events",
        "wrong_event",
        "nonce",
        "wrong_alg",
        "wrong_aud",
        "wrong_iss",
        "expired",
        "no_sub_no_sid",
        "garbage",
        "missing",
    ],
)
def test_backchannel_refuses_bad_tokens(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, case: str
) -> None:
    import base64
    import json

    sign_in()
    now = int(time.time())
    if case == "alg_none":

        def b64(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        good = logout_token(fake_idp)
        payload = good.split(".")[1]
        token = f"{b64({'alg': 'none', 'kid': 'key-1'})}.{payload}."
    elif case == "no_events":
        token = logout_token(fake_idp, events=None)
    elif case == "wrong_event":
        token = logout_token(fake_idp, events={"http://example.com/other": {}})
    elif case == "nonce":
        token = logout_token(fake_idp, nonce="n")
    elif case == "wrong_alg":
        import jwt

        token = jwt.encode(
            {
                "iss": fake_idp.issuer,
                "aud": fake_idp.client_id,
                "iat": now,
                "sid": "idp-session-1",
                "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
            },
            "shared-secret-guess-long-enough-for-hs256!",
            algorithm="HS256",
            headers={"kid": "key-1"},
        )
    elif case == "wrong_aud":
        token = logout_token(fake_idp, aud="someone-else")
    elif case == "wrong_iss":
        token = logout_token(fake_idp, iss="https://evil.example")
    elif case == "expired":
        token = logout_token(fake_idp, iat=now - 3600, exp=now - 1800)
    elif case == "no_sub_no_sid":
        token = logout_token(fake_idp, sid=None, sub=None)
    elif case == "garbage":
        token = "not.a.jwt"
    else:
        token = ""
    response = post_logout_token(token)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()
    assert "no-store" in response["Cache-Control"]
    assert signed_in_user(client) is not None


def test_backchannel_replayed_jti_is_refused(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    token = logout_token(fake_idp, sid="unrelated")
    assert post_logout_token(token).status_code == 200
    assert post_logout_token(token).status_code == 400


def test_backchannel_is_post_only_and_csrf_exempt(connector: Connector) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.get("/sso/logout/backchannel/contoso/").status_code == 405
    assert csrf_client.post("/sso/logout/backchannel/contoso/", {}).status_code == 400
    assert csrf_client.post("/sso/logout/backchannel/nope/", {}).status_code == 404


# -- session engines ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "engine",
    [
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.cached_db",
        "django.contrib.sessions.backends.file",
    ],
)
def test_server_side_logout_works_with_each_session_engine(
    settings: Any, engine: str, fake_idp: FakeIdP, connector: Connector, tmp_path: Any
) -> None:
    settings.SESSION_ENGINE = engine
    settings.SESSION_FILE_PATH = str(tmp_path)
    browser = Client()
    SignIn(browser, fake_idp)()
    assert signed_in_user(browser) is not None
    assert browser.get("/private/").status_code == 200
    Client().get("/sso/logout/frontchannel/contoso/", {"sid": "idp-session-1"})
    assert browser.get("/private/").status_code == 302


def test_clear_stale_sessions_drops_rows_of_ended_sessions(
    client: Client, sign_in: SignIn, connector: Connector, django_user_model: Any
) -> None:
    from django.core.management import call_command

    sign_in()
    user = django_user_model.objects.get()
    SSOSession.objects.create(
        connector=connector, sid="gone", subject="s", session_key="nope", user=user
    )
    call_command("sso_clear_sessions")
    assert list(SSOSession.objects.values_list("sid", flat=True)) == ["idp-session-1"]


def test_django_logout_elsewhere_forgets_the_index_row(client: Client, sign_in: SignIn) -> None:
    sign_in()
    from django.contrib.auth import logout
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = client.session
    request.user = signed_in_user(client)
    logout(request)
    assert not SSOSession.objects.exists()
