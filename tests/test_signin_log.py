"""The sign-in log (``signin_log``, ``SignInEvent``): what it records, what it never
stores, that it never fails a sign-in, retention, and its admin screens.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_entra_sso import signin_log
from django_entra_sso.models import Connector, SignInEvent, SSOSession
from django_entra_sso.sessions import SIGN_OUT_SESSION_KEY
from tests.fakeidp import FakeIdP
from tests.helpers import (
    SignIn,
    assert_refused,
    logout_token,
    post_logout_token,
    query_of,
    signed_in_user,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/django_entra_sso/signinevent/"


def only_row() -> SignInEvent:
    rows = list(SignInEvent.objects.all())
    assert len(rows) == 1, rows
    return rows[0]


def event(connector: Connector | None, **fields: Any) -> SignInEvent:
    values: dict[str, Any] = {
        "connector": connector,
        "connector_slug": connector.slug if connector else "gone",
        "kind": SignInEvent.Kind.SIGN_IN,
        "outcome": SignInEvent.Outcome.REFUSED,
        "code": "wrong_domain",
        "email": "alice@contoso.com",
        **fields,
    }
    return SignInEvent.objects.create(**values)


@pytest.fixture
def failing_log(monkeypatch: Any) -> None:
    def save(self: SignInEvent, *args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the log table is gone")

    monkeypatch.setattr(SignInEvent, "save", save)


# -- what is recorded ------------------------------------------------------------------


def test_a_sign_in_is_recorded_with_who_and_from_which_network(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    assert sign_in().status_code == 302
    row = only_row()
    assert (row.kind, row.outcome, row.code, row.detail) == ("sign_in", "success", "", "")
    assert row.connector == connector and row.connector_slug == "contoso"
    assert row.email == "alice@contoso.com"
    assert row.subject == "subject-alice"
    assert row.user == signed_in_user(client)
    assert row.client_network == "127.0.0.0/24"  # the test client's REMOTE_ADDR, coarsened
    assert timezone.now() - row.time < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("id_token_email", "connector_fields", "code"),
    [
        ("alice@elsewhere.example", {}, "wrong_domain"),
        (None, {"create_users": False}, "no_account"),
    ],
    ids=["email-outside-the-connector's-domains", "no-account-and-creation-off"],
)
def test_a_refusal_is_recorded_with_its_code_and_reason(
    client: Client,
    sign_in: SignIn,
    fake_idp: FakeIdP,
    connector: Connector,
    id_token_email: str | None,
    connector_fields: dict[str, Any],
    code: str,
) -> None:
    if id_token_email:
        fake_idp.token_overrides["email"] = id_token_email
    Connector.objects.filter(pk=connector.pk).update(**connector_fields)
    assert_refused(client, sign_in(), status=403, code=code)
    row = only_row()
    assert (row.kind, row.outcome, row.code) == ("sign_in", "refused", code)
    assert row.connector == connector
    assert row.subject == "subject-alice"
    assert row.email == (id_token_email or "alice@contoso.com")
    assert row.user is None
    if code == "wrong_domain":
        assert "elsewhere.example is not one of connector contoso's domains" in row.detail
    else:
        assert "creation is off" in row.detail


def test_an_idp_outage_is_recorded_as_an_error_with_the_idps_words(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    state = query_of(sign_in.start())["state"]
    response = sign_in.callback(
        "contoso",
        {
            "state": state,
            "error": "temporarily_unavailable",
            "error_description": "AADSTS90033: A transient error has occurred.",
        },
    )
    assert_refused(client, response, code="temporarily_unavailable")
    row = only_row()
    assert (row.outcome, row.code) == ("error", "temporarily_unavailable")
    assert "AADSTS90033" in row.detail


def test_a_refusal_when_starting_records_the_email_typed(
    client: Client, connector: Connector
) -> None:
    Connector.objects.filter(pk=connector.pk).update(enabled=False)
    response = client.get("/sso/login/", {"connector": "contoso", "login_hint": "bob@contoso.com"})
    assert_refused(client, response, status=403, code="disabled")
    row = only_row()
    assert (row.outcome, row.code, row.email) == ("refused", "disabled", "bob@contoso.com")


def test_an_unknown_connector_is_recorded_under_the_slug_asked_for(client: Client) -> None:
    response = client.get("/sso/callback/nope/", {"code": "c", "state": "s"})
    assert_refused(client, response, status=404, code="unknown_connector")
    row = only_row()
    assert (row.connector, row.connector_slug, row.code) == (None, "nope", "unknown_connector")


def test_a_broken_form_post_is_recorded_under_its_connector(
    client: Client, connector: Connector
) -> None:
    response = client.post("/sso/callback/contoso/", {})
    assert_refused(client, response, status=400, code="invalid_state")
    row = only_row()
    assert (row.connector, row.code, row.detail) == (
        connector,
        "invalid_state",
        "empty form_post callback",
    )


def test_signing_out_here_is_recorded(client: Client, sign_in: SignIn) -> None:
    sign_in()
    user = signed_in_user(client)
    assert client.post("/sso/logout/").status_code == 302
    row = SignInEvent.objects.get(kind="sign_out")
    assert (row.outcome, row.user, row.email) == ("local", user, "alice@contoso.com")
    assert row.client_network == "127.0.0.0/24"


def test_back_channel_logout_is_recorded(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    sign_in()
    user = signed_in_user(client)
    assert post_logout_token(logout_token(fake_idp)).status_code == 200
    row = SignInEvent.objects.get(kind="sign_out")
    assert (row.outcome, row.connector, row.user) == ("backchannel", connector, user)
    assert row.client_network == ""  # the IdP's server, not the person's browser


def test_deactivating_a_user_is_recorded_as_a_sign_out(client: Client, sign_in: SignIn) -> None:
    sign_in()
    user = signed_in_user(client)
    user.is_active = False
    user.save()
    row = SignInEvent.objects.get(kind="sign_out")
    assert (row.outcome, row.user) == ("deactivated", user)


def test_rows_outlive_their_connector_and_user(client: Client, sign_in: SignIn) -> None:
    sign_in()
    get_user_model().objects.all().delete()
    Connector.objects.all().delete()
    row = only_row()
    assert (row.connector, row.user, row.connector_slug) == (None, None, "contoso")
    assert row.email == "alice@contoso.com"


def test_the_log_can_be_switched_off(client: Client, sign_in: SignIn, settings: Any) -> None:
    settings.ENTRA_SSO_SIGN_IN_LOG = False
    sign_in()
    client.post("/sso/logout/")
    client.get("/sso/callback/nope/")
    assert not SignInEvent.objects.exists()


# -- what is never stored ---------------------------------------------------------------


def test_no_code_token_secret_or_state_is_stored(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, connector: Connector
) -> None:
    authorize_url = sign_in.start()
    authorize = query_of(authorize_url)
    params = fake_idp.authorize(authorize_url)
    assert sign_in.callback("contoso", params).status_code == 302
    id_token = client.session[SIGN_OUT_SESSION_KEY]["id_token_hint"]
    session_key = client.session.session_key
    # The same answer again from another browser (a replayed code and state), and an
    # IdP error whose description carries a JWT: both refused, both recorded.
    assert SignIn(Client(), fake_idp).callback("contoso", params).status_code == 400
    second = query_of(sign_in.start())["state"]
    sign_in.callback(
        "contoso",
        {"state": second, "error": "access_denied", "error_description": f"bad {id_token}"},
    )
    client.post("/sso/logout/")
    assert SignInEvent.objects.count() == 4

    secrets = {
        "code": params["code"],
        "state": params["state"],
        "second state": second,
        "nonce": authorize["nonce"],
        "code_challenge": authorize["code_challenge"],
        "ID token": id_token,
        "ID token's signature": id_token.rsplit(".", 1)[1],
        "client secret": fake_idp.client_secret,
        "encrypted client secret": connector.client_secret_encrypted,
        "session key": session_key,
        "access token": "access-",
        "any JWT": "eyJ",
        "a query string": "?",
    }
    for row in SignInEvent.objects.values():
        stored = " ".join(str(value) for value in row.values())
        for what, secret in secrets.items():
            assert secret not in stored, f"{what} stored in {row}"


# -- it never fails a sign-in -------------------------------------------------------------


@pytest.mark.usefixtures("failing_log")
def test_a_failing_log_write_does_not_fail_a_sign_in(
    client: Client, sign_in: SignIn, caplog: Any
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_entra_sso.signin_log"):
        response = sign_in()
    assert response.status_code == 302
    assert response["Location"] == "/home/"
    assert signed_in_user(client) is not None
    assert SSOSession.objects.count() == 1
    assert "Could not write to the sign-in log." in caplog.text


@pytest.mark.usefixtures("failing_log")
def test_a_failing_log_write_still_shows_the_refusal_page(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.token_overrides["email"] = "alice@elsewhere.example"
    assert_refused(client, sign_in(), status=403, code="wrong_domain")
    assert_refused(client, client.get("/sso/callback/nope/"), status=404)


def test_a_database_error_rolls_back_to_a_savepoint_and_the_outer_transaction_goes_on(
    connector: Connector, monkeypatch: Any
) -> None:
    def broken_save(self: SignInEvent, *args: Any, **kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO entra_sso_no_such_table VALUES (1)")

    monkeypatch.setattr(SignInEvent, "save", broken_save)
    with transaction.atomic():  # a site with ATOMIC_REQUESTS
        with CaptureQueriesContext(connection) as queries:
            signin_log.record_refusal(None, "wrong_domain", connector=connector)
        assert not connection.needs_rollback
        assert Connector.objects.filter(pk=connector.pk).exists()
    assert any(q["sql"].startswith("ROLLBACK TO SAVEPOINT") for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_the_row_is_written_after_the_sign_in_transaction(
    client: Client, fake_idp: FakeIdP, monkeypatch: Any
) -> None:
    from tests.helpers import make_connector

    make_connector(fake_idp, "contoso", domain="contoso.com")
    open_savepoints: list[list[str]] = []
    original = SignInEvent.save

    def save(self: SignInEvent, *args: Any, **kwargs: Any) -> None:
        assert connection.in_atomic_block
        open_savepoints.append(list(connection.savepoint_ids))
        original(self, *args, **kwargs)

    monkeypatch.setattr(SignInEvent, "save", save)
    assert SignIn(client, fake_idp)().status_code == 302
    # Its own transaction, not a savepoint inside the sign-in's.
    assert open_savepoints == [[]]


# -- retention -----------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "removed"), [(None, 1), (30, 2), (0, 0)])
def test_sso_clear_sessions_prunes_rows_past_the_retention(
    connector: Connector, settings: Any, days: int | None, removed: int
) -> None:
    if days is not None:
        settings.ENTRA_SSO_SIGN_IN_LOG_RETENTION_DAYS = days
    now = timezone.now()
    for age in (1, 45, 120):
        event(connector, time=now - timedelta(days=age), detail=f"{age} days old")
    out = StringIO()
    call_command("sso_clear_sessions", stdout=out)
    assert f"Removed {removed} sign-in log row(s)" in out.getvalue()
    assert SignInEvent.objects.count() == 3 - removed
    assert SignInEvent.objects.filter(detail="1 days old").exists()


# -- the admin -------------------------------------------------------------------------------


def test_the_admin_list_shows_the_log_with_its_filters(
    admin_client: Client, connector: Connector
) -> None:
    event(connector, email="alice@contoso.com", code="wrong_domain")
    event(None, connector_slug="deleted-one", email="bob@fabrikam.example", code="no_account")
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    content = response.content.decode()
    for text in ("alice@contoso.com", "bob@fabrikam.example", "wrong_domain", "deleted-one"):
        assert text in content
    for title in ("By connector", "By outcome", "By kind"):
        assert title in content
    assert "?time__year=" in content  # the date hierarchy
    filtered = admin_client.get(CHANGELIST, {"connector__id__exact": connector.pk})
    assert "alice@contoso.com" in filtered.content.decode()
    assert "bob@fabrikam.example" not in filtered.content.decode()
    searched = admin_client.get(CHANGELIST, {"q": "fabrikam"})
    assert "alice@contoso.com" not in searched.content.decode()


def test_the_admin_list_is_read_only_and_refuses_other_lookups(
    admin_client: Client, connector: Connector
) -> None:
    row = event(connector, detail="Email domain elsewhere.example is not one of …")
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    change = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client.get(CHANGELIST, {"detail__startswith": "Email"}).status_code == 400
    assert admin_client.get(CHANGELIST, {"outcome__exact": "refused"}).status_code == 200


def test_only_superusers_may_delete_rows(
    client: Client, admin_client: Client, connector: Connector
) -> None:
    row = event(connector)
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="_signinevent"))
    client.force_login(staff)
    assert client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{row.pk}/delete/").status_code == 200


def test_the_connector_page_links_to_its_sign_in_log(
    client: Client, admin_client: Client, connector: Connector
) -> None:
    page = admin_client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    link = f'href="{CHANGELIST}?connector__id__exact={connector.pk}"'
    assert link in page.content.decode()
    assert "Sign-in log" in page.content.decode()
    # Staff who may not see the log get no link to it.
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_connector"))
    client.force_login(staff)
    page = client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    assert page.status_code == 200
    assert link not in page.content.decode()


# -- the coarse client address ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("::1", "::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("", ""),
        ("not-an-address", ""),
        (None, ""),
    ],
)
def test_the_client_address_is_cut_to_its_network(address: Any, network: str) -> None:
    assert signin_log.coarse_network(address) == network
