"""Leavers lose access I (issue 14): sessions re-validated at the IdP, and their lifetime."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from django_entra_sso import revalidation
from django_entra_sso.crypto import decrypt_secret
from django_entra_sso.models import Connector, SSOSession
from django_entra_sso.sessions import VALIDATION_SESSION_KEY
from django_entra_sso.signals import sso_signed_out
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import IN_CI, SignIn, make_connector, query_of, signed_in_user

pytestmark = pytest.mark.django_db

WINDOW = 300
NAVIGATE = {"HTTP_SEC_FETCH_MODE": "navigate", "HTTP_SEC_FETCH_DEST": "document"}
FETCH = {"HTTP_SEC_FETCH_MODE": "cors", "HTTP_ACCEPT": "application/json"}


@pytest.fixture
def connector(db: Any, fake_idp: FakeIdP) -> Connector:
    return make_connector(
        fake_idp, "contoso", domain="contoso.com", revalidate_after=WINDOW, max_session_age=3600
    )


@pytest.fixture
def reasons() -> Iterator[list[str]]:
    seen: list[str] = []

    def receiver(sender: Any, reason: str, **kwargs: Any) -> None:
        seen.append(reason)

    sso_signed_out.connect(receiver)
    yield seen
    sso_signed_out.disconnect(receiver)


def signed_in(client: Client, fake_idp: FakeIdP) -> Client:
    assert SignIn(client, fake_idp)().status_code == 302
    assert signed_in_user(client) is not None
    return client


def age(client: Client, *, validated: float = 0, signed_in: float = 0) -> None:
    """Move the session's clock back: last validated ``validated`` s ago, signed in ``signed_in``."""
    session = client.session
    state = dict(session[VALIDATION_SESSION_KEY])
    state["validated_at"] -= validated
    state["signed_in_at"] -= max(signed_in, validated)
    session[VALIDATION_SESSION_KEY] = state
    session.save()


def state_of(client: Client) -> dict[str, Any]:
    return dict(client.session[VALIDATION_SESSION_KEY])


# -- at sign-in ------------------------------------------------------------------------------------


def test_sign_in_asks_for_a_refresh_token_when_revalidation_is_on(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    query = query_of(SignIn(client, fake_idp).start())
    assert "offline_access" in query["scope"].split()
    assert query["prompt"] == "consent"  # OIDC Core §11 for a plain OIDC provider
    connector.provider = "entra_id"
    connector.save()
    entra = query_of(SignIn(Client(), fake_idp).start())
    assert "offline_access" in entra["scope"].split() and "prompt" not in entra


def test_the_refresh_token_is_kept_encrypted_on_the_index_row(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    row = SSOSession.objects.get()
    [token] = fake_idp.refresh_tokens
    assert token not in row.refresh_token_encrypted
    assert decrypt_secret(row.refresh_token_encrypted) == token
    assert token not in str(dict(client.session))


def test_without_revalidation_no_refresh_token_is_asked_for(
    client: Client, fake_idp: FakeIdP
) -> None:
    make_connector(fake_idp, "contoso", domain="contoso.com")
    query = query_of(SignIn(client, fake_idp).start())
    assert "offline_access" not in query["scope"].split()
    signed_in(client, fake_idp)
    assert VALIDATION_SESSION_KEY not in client.session
    assert SSOSession.objects.get().refresh_token_encrypted == ""


# -- between windows -----------------------------------------------------------------------------


def test_between_windows_the_middleware_makes_no_call_and_no_query(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    calls = sum(fake_idp.calls.values())
    with CaptureQueriesContext(connection) as with_state:
        assert client.get("/home/", **NAVIGATE).status_code == 200
    session = client.session
    del session[VALIDATION_SESSION_KEY]
    session.save()
    with CaptureQueriesContext(connection) as without_state:
        assert client.get("/home/", **NAVIGATE).status_code == 200
    assert len(with_state) == len(without_state)
    assert sum(fake_idp.calls.values()) == calls


# -- a window has passed: the refresh token ----------------------------------------------------------


def test_a_due_session_redeems_its_refresh_token_once_and_keeps_the_rotated_one(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    [first] = fake_idp.refresh_tokens
    age(client, validated=WINDOW + 1)
    token_calls = fake_idp.calls["/token"]
    assert client.get("/home/", **NAVIGATE).content.startswith(b"signed in as")
    assert fake_idp.calls["/token"] == token_calls + 1
    [rotated] = fake_idp.refresh_tokens
    assert rotated != first
    assert decrypt_secret(SSOSession.objects.get().refresh_token_encrypted) == rotated
    assert time.time() - state_of(client)["validated_at"] < 5
    for _ in range(3):  # the rest of the window: no call
        client.get("/home/", **NAVIGATE)
    assert fake_idp.calls["/token"] == token_calls + 1


@pytest.mark.parametrize("kind", [NAVIGATE, FETCH, {"method": "post"}])
def test_a_revoked_grant_ends_the_session_whatever_the_request(
    client: Client, fake_idp: FakeIdP, connector: Connector, reasons: list[str], kind: Any
) -> None:
    signed_in(client, fake_idp)
    other_browser = signed_in(Client(), fake_idp)  # the same person elsewhere
    fake_idp.revoked_subjects.add("subject-alice")
    age(client, validated=WINDOW + 1)
    if kind.get("method") == "post":
        response = client.post("/home/", {"field": "value"})
        assert response.status_code == 401
        assert b"Your organization has ended your session" in response.content
        assert b'name="next" value="/home/"' in response.content
    elif kind is FETCH:
        response = client.get("/home/", **FETCH)
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "session_ended" and body["reason"] == "revoked"
        assert body["sign_in_url"].startswith("/sso/login/?next=")
    else:
        response = client.get("/home/?page=2", **NAVIGATE)
        assert response.status_code == 302
        assert response["Location"] == "/sso/login/?next=%2Fhome%2F%3Fpage%3D2&ended=revoked"
        page = client.get(response["Location"])
        assert b"Your organization has ended your session" in page.content
    assert signed_in_user(client) is None
    assert signed_in_user(other_browser) is None
    assert not SSOSession.objects.exists()
    assert "revoked" in reasons


def test_a_refreshed_id_token_naming_another_person_ends_the_session(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    fake_idp.refresh_overrides = {"sub": "subject-mallory"}
    age(client, validated=WINDOW + 1)
    assert client.get("/home/", **NAVIGATE).status_code == 302
    assert signed_in_user(client) is None


def test_an_outage_keeps_the_session_and_backs_off(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    fake_idp.faults["/token"] = Fault(status=503, body=b'{"error": "temporarily_unavailable"}')
    age(client, validated=WINDOW + 1)
    before = fake_idp.calls["/token"]
    assert client.get("/home/", **NAVIGATE).content.startswith(b"signed in as")
    assert fake_idp.calls["/token"] == before + 1
    state = state_of(client)
    assert state["failures"] == 1 and state["retry_at"] > time.time()
    client.get("/home/", **NAVIGATE)  # within the back-off: no call
    assert fake_idp.calls["/token"] == before + 1
    del fake_idp.faults["/token"]
    session = client.session
    session[VALIDATION_SESSION_KEY] = {**state, "retry_at": time.time() - 1}
    session.save()
    assert client.get("/home/", **NAVIGATE).content.startswith(b"signed in as")
    assert fake_idp.calls["/token"] == before + 2
    assert state_of(client)["failures"] == 0


def test_an_outage_never_extends_a_session_past_its_maximum_age(
    client: Client, fake_idp: FakeIdP, connector: Connector, reasons: list[str]
) -> None:
    signed_in(client, fake_idp)
    fake_idp.faults["/token"] = Fault(status=503)
    age(client, validated=WINDOW + 1)
    client.get("/home/", **NAVIGATE)  # the outage: kept, backing off
    assert signed_in_user(client) is not None
    age(client, signed_in=3601)
    response = client.get("/home/", **NAVIGATE)
    assert response["Location"] == "/sso/login/?next=%2Fhome%2F&ended=expired"
    assert signed_in_user(client) is None
    assert b"Your session has expired" in client.get(response["Location"]).content


def test_past_the_maximum_age_a_fetch_gets_401_json(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    age(client, signed_in=3601)
    response = client.get("/home/", **FETCH)
    assert (response.status_code, response.json()["reason"]) == (401, "expired")


def test_the_apps_own_urls_are_never_held_up(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    age(client, signed_in=3601)
    assert client.get("/sso/logout/").status_code == 200  # the sign-out page still answers


# -- a window has passed: no refresh token ------------------------------------------------------------


def _without_refresh_token(client: Client, fake_idp: FakeIdP) -> None:
    fake_idp.refresh_tokens.clear()
    SSOSession.objects.update(refresh_token_encrypted="")


def test_no_refresh_token_a_navigation_makes_a_silent_round_trip(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    _without_refresh_token(client, fake_idp)
    age(client, validated=WINDOW + 1)
    response = client.get("/private/?tab=1", **NAVIGATE)
    assert response.status_code == 302
    authorize = query_of(response["Location"])
    assert authorize["prompt"] == "none"
    assert authorize["login_hint"] == "alice@contoso.com"
    back = client.get("/sso/callback/contoso/", fake_idp.authorize(response["Location"]))
    assert (back.status_code, back["Location"]) == (302, "/private/?tab=1")
    assert time.time() - state_of(client)["validated_at"] < 5
    assert SSOSession.objects.count() == 1  # the same session, not a new sign-in


def test_no_refresh_token_login_required_ends_the_session(
    client: Client, fake_idp: FakeIdP, connector: Connector, reasons: list[str]
) -> None:
    signed_in(client, fake_idp)
    _without_refresh_token(client, fake_idp)
    age(client, validated=WINDOW + 1)
    authorize = query_of(client.get("/home/", **NAVIGATE)["Location"])
    back = client.get(
        "/sso/callback/contoso/", {"error": "login_required", "state": authorize["state"]}
    )
    assert back.status_code == 302
    assert "ended=revoked" in back["Location"]
    assert signed_in_user(client) is None
    assert "revoked" in reasons


def test_no_refresh_token_an_idp_outage_on_the_round_trip_keeps_the_session(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    _without_refresh_token(client, fake_idp)
    age(client, validated=WINDOW + 1)
    authorize = query_of(client.get("/home/?x=1", **NAVIGATE)["Location"])
    back = client.get(
        "/sso/callback/contoso/", {"error": "temporarily_unavailable", "state": authorize["state"]}
    )
    assert (back.status_code, back["Location"]) == (302, "/home/?x=1")
    assert signed_in_user(client) is not None
    assert state_of(client)["retry_at"] > time.time()


def test_no_refresh_token_a_fetch_or_a_post_is_served_not_redirected(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    _without_refresh_token(client, fake_idp)
    age(client, validated=WINDOW + 1)
    assert client.get("/home/", **FETCH).status_code == 200
    assert client.post("/home/", {"a": "b"}).status_code == 200
    age(client, validated=WINDOW)  # now more than two windows overdue
    assert client.get("/home/", **FETCH).status_code == 401
    post = client.post("/home/", {"a": "b"})
    assert post.status_code == 401
    assert b'name="next" value="/home/"' in post.content


def test_a_silent_answer_naming_another_person_ends_the_session(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    _without_refresh_token(client, fake_idp)
    age(client, validated=WINDOW + 1)
    location = client.get("/home/", **NAVIGATE)["Location"]
    back = client.get("/sso/callback/contoso/", fake_idp.authorize(location, sub="subject-bob"))
    assert "ended=revoked" in back["Location"]
    assert signed_in_user(client) is None


# -- one refresh at a time -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_of_one_session_redeem_the_token_once(
    fake_idp: FakeIdP,
) -> None:
    if connection.vendor != "postgresql":
        if IN_CI:
            pytest.skip("runs in the PostgreSQL pass of CI")  # the SQLite pass has no writers
        pytest.skip("needs PostgreSQL (concurrent connections)")
    make_connector(
        fake_idp, "contoso", domain="contoso.com", revalidate_after=WINDOW, max_session_age=0
    )
    client = signed_in(Client(), fake_idp)
    age(client, validated=WINDOW + 1)
    session_key = client.session.session_key
    fake_idp.faults["/token"] = Fault(delay=0.5)  # slow enough to overlap
    before = fake_idp.calls["/token"]
    results: list[Any] = []

    def request() -> None:
        from django.contrib.auth.middleware import AuthenticationMiddleware
        from django.db import connections

        try:
            req = RequestFactory().get("/home/", **NAVIGATE)
            req.COOKIES[settings.SESSION_COOKIE_NAME] = session_key  # as a browser sends it
            req.session = SessionStore(session_key)
            AuthenticationMiddleware(lambda r: None).process_request(req)  # type: ignore[arg-type]
            results.append(revalidation.check(req))
            req.session.save()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == [None, None]
    assert fake_idp.calls["/token"] == before + 1


# -- sign out everywhere, connectors as code, the check -------------------------------------------------


def test_sign_out_everywhere_from_the_command(
    fake_idp: FakeIdP, connector: Connector, reasons: list[str]
) -> None:
    first, second = signed_in(Client(), fake_idp), signed_in(Client(), fake_idp)
    username = signed_in_user(first).get_username()
    out = StringIO()
    call_command("sso_sessions", "end", "--user", username, stdout=out)
    assert "Ended 2 session(s)" in out.getvalue()
    assert signed_in_user(first) is None and signed_in_user(second) is None
    assert reasons.count("admin") == 2


def test_sign_out_everywhere_from_the_admin(
    admin_client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    browser = signed_in(Client(), fake_idp)
    row = SSOSession.objects.get()
    response = admin_client.post(
        "/admin/django_entra_sso/ssosession/",
        {"action": "sign_out_everywhere", "_selected_action": [str(row.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Signed out everywhere" in response.content.decode()
    assert signed_in_user(browser) is None


def test_the_command_sets_and_lists_the_windows() -> None:
    out = StringIO()
    call_command(
        "sso_connector", "add", "acme", "--issuer", "https://idp.example", "--client-id", "a",
        "--client-secret", "s", "--revalidate-after", "600", "--max-session-age", "28800",
        stdout=out,
    )  # fmt: skip
    connector = Connector.objects.get()
    assert (connector.revalidate_after, connector.max_session_age) == (600, 28800)
    listing = StringIO()
    call_command("sso_connector", "list", stdout=listing)
    assert "revalidate 600s" in listing.getvalue() and "max age 28800s" in listing.getvalue()


def test_a_check_warns_when_a_connector_revalidates_without_the_middleware(
    connector: Connector, settings: Any
) -> None:
    ids = [m.id for m in run_checks(databases=["default"])]
    assert "django_entra_sso.W004" not in ids
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if not m.endswith("SessionRevalidationMiddleware")
    ]
    ids = [m.id for m in run_checks(databases=["default"])]
    assert "django_entra_sso.W004" in ids


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
def test_revalidation_works_on_the_cache_session_engine(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    fake_idp.revoked_subjects.add("subject-alice")
    age(client, validated=WINDOW + 1)
    assert client.get("/home/", **NAVIGATE).status_code == 302
    assert signed_in_user(client) is None


def test_a_due_session_whose_user_can_no_longer_sign_in_is_left_to_django(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    from django.contrib.auth import get_user_model

    signed_in(client, fake_idp)
    get_user_model().objects.update(is_active=False)  # no signal: the session stays
    age(client, validated=WINDOW + 1)
    before = fake_idp.calls["/token"]
    response = client.get("/home/", **NAVIGATE)
    assert (response.status_code, response.content) == (200, b"signed out")
    assert fake_idp.calls["/token"] == before


def test_a_silent_round_trip_never_redirects_off_site(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signed_in(client, fake_idp)
    SSOSession.objects.update(refresh_token_encrypted="")
    age(client, validated=WINDOW + 1)
    # A path that starts with two slashes (the test client would read it as a host).
    location = client.get("/", PATH_INFO="//evil.example/", **NAVIGATE)["Location"]
    back = client.get("/sso/callback/contoso/", fake_idp.authorize(location))
    assert back.status_code == 302
    assert back["Location"] == "/home/"  # LOGIN_REDIRECT_URL, not //evil.example/


def test_an_anonymous_request_leaves_the_session_unread(client: Client) -> None:
    response = client.get("/sso/logout/done/")
    assert "Cookie" not in response.get("Vary", "")


def test_the_app_included_at_the_root_still_ends_sessions(
    client: Client, fake_idp: FakeIdP, connector: Connector, settings: Any
) -> None:
    signed_in(client, fake_idp)
    age(client, signed_in=3601)
    settings.ROOT_URLCONF = "tests.urls_at_root"  # the app's URLs at "", not "sso/"
    response = client.get("/home/", **NAVIGATE)
    assert response.status_code == 302
    assert "ended=expired" in response["Location"]
