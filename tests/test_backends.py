"""``SSOBackend`` is a thin shell over ``accounts``, and a site may subclass it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.test import Client

from django_entra_sso.backends import SSOBackend
from django_entra_sso.models import Connector, EmailDomain
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, assert_refused, signed_in_user, verified_person

pytestmark = pytest.mark.django_db
User = get_user_model()

SUBCLASS = "tests.test_backends.CompanyBackend"


class CompanyBackend(SSOBackend):
    """What a site writes: only employees; the ``admin`` role makes staff."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return "employee" in claims.get("roles", [])

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user = super().update_user(user, claims)
        is_staff = "admin" in claims.get("roles", [])
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        return user

    def create_user(self, claims: dict[str, Any]) -> Any:
        return self.update_user(super().create_user(claims), claims)


@pytest.fixture
def company_backend(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [SUBCLASS, "django.contrib.auth.backends.ModelBackend"]


def test_sign_in_through_a_subclass_uses_its_hooks_and_stays_signed_in(
    client: Client, sign_in: SignIn, company_backend: None
) -> None:
    assert sign_in(roles=["employee", "admin"]).status_code == 302
    assert client.session[BACKEND_SESSION_KEY] == SUBCLASS
    user = signed_in_user(client)
    assert user.is_staff and user.first_name == "Alice"
    # The next request finds the user through the subclass's get_user().
    assert client.get("/home/").content == f"signed in as {user.get_username()}".encode()
    client.logout()
    assert sign_in(roles=["employee"]).status_code == 302
    assert not signed_in_user(client).is_staff


def test_a_subclass_may_refuse_a_person(
    client: Client, sign_in: SignIn, company_backend: None
) -> None:
    assert_refused(client, sign_in(roles=["contractor"]), status=403, code="refused")


def test_the_password_guard_holds_in_a_subclass(
    connector: Connector, company_backend: None
) -> None:
    from django.contrib.auth import authenticate

    User.objects.create_user("alice", email="alice@contoso.com", password="pw-Alice-123")
    assert authenticate(username="alice", password="pw-Alice-123") is not None
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    assert authenticate(username="alice", password="pw-Alice-123") is None


def test_without_a_verified_person_or_password_the_backend_passes(connector: Connector) -> None:
    assert SSOBackend().authenticate(None) is None
    assert SSOBackend().authenticate(None, username="alice") is None


def test_the_backend_needs_no_oidc_settings(settings: Any) -> None:
    for name in ("OIDC_OP_TOKEN_ENDPOINT", "OIDC_RP_CLIENT_ID", "OIDC_RP_CLIENT_SECRET"):
        assert not hasattr(settings, name)
    backend = SSOBackend()  # mozilla-django-oidc's __init__ reads them through get_settings
    assert backend.get_settings("OIDC_RP_SIGN_ALGO", "RS256") == "RS256"


def test_authenticate_hands_the_person_to_accounts(connector: Connector, fake_idp: FakeIdP) -> None:
    user = SSOBackend().authenticate(None, sso_person=verified_person(connector))
    assert user is not None and user.sso_identities.get().subject == "subject-alice"
