"""The IdP's and the site's own faults: a clear answer, and no half state."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.test import Client

from django_entra_sso import cache as sso_cache_module
from django_entra_sso.models import Connector, Identity, SSOSession
from django_entra_sso.oidc import flow
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import SignIn, assert_refused, logout_token, post_logout_token, signed_in_user

pytestmark = pytest.mark.django_db
User = get_user_model()


class BrokenCache:
    """A cache whose server is down: every call raises, as django-redis does."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("cache server unreachable")

        return fail


def break_the_cache(monkeypatch: Any) -> None:
    for module in (sso_cache_module, flow):
        monkeypatch.setattr(module, "sso_cache", lambda: BrokenCache())


@pytest.fixture
def broken_cache(monkeypatch: Any) -> None:
    break_the_cache(monkeypatch)


def test_sign_in_works_from_cached_keys_while_the_idp_metadata_is_down(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, settings: Any
) -> None:
    assert sign_in().status_code == 302
    client.logout()
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0  # every copy is now stale
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(status=503)
    fake_idp.faults["/jwks"] = Fault(status=503)
    assert sign_in().status_code == 302
    assert signed_in_user(client) is not None


def test_idp_down_without_cached_metadata_is_a_clear_page(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(status=503)
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert response.status_code == 424
    assert b"cannot be reached" in response.content


def test_jwks_down_without_cached_keys_is_a_clear_page(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP
) -> None:
    fake_idp.faults["/jwks"] = Fault(
        status=500, body=b"<html>oops</html>", content_type="text/html"
    )
    response = sign_in()
    assert 400 <= response.status_code < 500
    assert b"could not be verified" in response.content
    assert_refused(client, response)


def test_database_failing_while_binding_the_session_leaves_nothing(
    client: Client, sign_in: SignIn, monkeypatch: Any
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(SSOSession.objects, "create", fail)
    response = sign_in()
    assert b"temporary problem on our side" in response.content
    assert_refused(client, response, status=503)


def test_database_failing_while_linking_the_identity_leaves_nothing(
    client: Client, sign_in: SignIn, monkeypatch: Any
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection lost")

    monkeypatch.setattr(Identity.objects, "create", fail)
    assert_refused(client, sign_in(), status=503)


def test_cache_down_query_mode_sign_in_still_works(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, broken_cache: None
) -> None:
    assert sign_in().status_code == 302
    assert signed_in_user(client) is not None
    # Without a cache every sign-in fetches metadata again: slower, not broken.
    assert fake_idp.calls["/.well-known/openid-configuration"] >= 1


def test_cache_down_form_post_is_a_clear_page(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, broken_cache: None
) -> None:
    params = fake_idp.authorize(sign_in.start())
    response = client.post("/sso/callback/contoso/", params)
    assert b"temporary problem on our side" in response.content
    assert_refused(client, response, status=503)


def test_cache_down_back_channel_logout_still_ends_the_session(
    client: Client, sign_in: SignIn, fake_idp: FakeIdP, monkeypatch: Any
) -> None:
    sign_in()
    break_the_cache(monkeypatch)
    response = post_logout_token(logout_token(fake_idp))
    assert response.status_code == 200
    assert signed_in_user(client) is None
