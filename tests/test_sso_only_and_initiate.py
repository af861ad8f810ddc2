"""SSO-only domains refuse passwords; third-party-initiated sign-in (OIDC Core §4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.test import Client

from django_entra_sso.models import Connector, EmailDomain
from tests.fakeidp import FakeIdP
from tests.helpers import query_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        "alice", email="alice@contoso.com", password="pw-Alice-123", is_staff=True
    )


def test_password_sign_in_works_when_domain_is_not_sso_only(
    staff_user: Any, connector: Connector
) -> None:
    assert authenticate(username="alice", password="pw-Alice-123") == staff_user


def test_sso_only_domain_refuses_password_sign_in(staff_user: Any, connector: Connector) -> None:
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    assert authenticate(username="alice", password="pw-Alice-123") is None


def test_sso_only_domain_refuses_the_admin_login(
    client: Client, staff_user: Any, connector: Connector
) -> None:
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": "pw-Alice-123"}
    )
    assert response.status_code == 200  # the login form again, not a redirect
    assert "_auth_user_id" not in client.session


def test_sso_only_applies_to_email_usernames(django_user_model: Any, connector: Connector) -> None:
    django_user_model.objects.create_user("bob@contoso.com", password="pw-Bob-123")
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    assert authenticate(username="bob@contoso.com", password="pw-Bob-123") is None
    assert authenticate(username="BOB@CONTOSO.COM", password="pw-Bob-123") is None


def test_other_domains_keep_password_sign_in(django_user_model: Any, connector: Connector) -> None:
    user = django_user_model.objects.create_user(
        "carol", email="carol@other.example", password="pw-Carol-123"
    )
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    assert authenticate(username="carol", password="pw-Carol-123") == user


def test_initiate_starts_the_flow_with_login_hint_and_target(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    response = client.get(
        "/sso/initiate/contoso/",
        {
            "iss": fake_idp.issuer,
            "login_hint": "alice@contoso.com",
            "target_link_uri": "http://testserver/private/?tab=2",
        },
    )
    assert response.status_code == 302
    query = query_of(response["Location"])
    assert query["login_hint"] == "alice@contoso.com"
    params = fake_idp.authorize(response["Location"])
    done = client.get("/sso/callback/contoso/", params)
    assert done["Location"] == "/private/?tab=2"


def test_initiate_by_post(client: Client, connector: Connector, fake_idp: FakeIdP) -> None:
    response = client.post("/sso/initiate/contoso/", {"iss": fake_idp.issuer})
    assert response.status_code == 302
    assert response["Location"].startswith(fake_idp.issuer)


@pytest.mark.parametrize("iss", ["", "https://evil.example", "http://127.0.0.1:1"])
def test_initiate_refuses_another_issuer(client: Client, connector: Connector, iss: str) -> None:
    response = client.get("/sso/initiate/contoso/", {"iss": iss})
    assert 400 <= response.status_code < 500
    assert "entra_sso_pending" not in client.session


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
    ],
)
def test_initiate_target_must_be_same_site(
    client: Client, connector: Connector, fake_idp: FakeIdP, target: str
) -> None:
    response = client.get(
        "/sso/initiate/contoso/", {"iss": fake_idp.issuer, "target_link_uri": target}
    )
    params = fake_idp.authorize(response["Location"])
    done = client.get("/sso/callback/contoso/", params)
    assert done["Location"] == "/home/"


def test_initiate_unknown_connector(client: Client, connector: Connector) -> None:
    assert client.get("/sso/initiate/nope/", {"iss": "x"}).status_code == 404
