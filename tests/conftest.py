from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.test import Client

from django_entra_sso.models import Connector, EmailDomain
from tests.fakeidp import FakeIdP

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(reason: str | None) -> None:
    """Skip a test for a missing tool locally; fail it under CI=true."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"Required under CI=true: {reason}")
    pytest.skip(reason)  # local runs only: under CI=true the line above fails the test


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _english_by_default() -> Iterator[None]:
    """A request in Japanese must not leave Japanese switched on for the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def fake_idp() -> Iterator[FakeIdP]:
    idp = FakeIdP()
    yield idp
    idp.close()


def make_connector(idp: FakeIdP, slug: str, name: str, domain: str) -> Connector:
    """A query-mode OIDC connector at the fake IdP, owning one email domain."""
    c = Connector(
        slug=slug,
        name=name,
        provider="oidc",
        issuer=idp.issuer,
        client_id=idp.client_id,
        response_mode="query",
    )
    c.client_secret = idp.client_secret
    c.save()
    EmailDomain.objects.create(domain=domain, connector=c)
    return c


@pytest.fixture
def connector(db: Any, fake_idp: FakeIdP) -> Connector:
    return make_connector(fake_idp, "contoso", "Contoso", "contoso.com")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class SignIn:
    """Drives a whole sign-in with the test client against the fake IdP."""

    def __init__(self, client: Client, idp: FakeIdP):
        self.client = client
        self.idp = idp

    def start(self, email: str = "alice@contoso.com", next_url: str | None = None) -> str:
        data = {"email": email}
        if next_url is not None:
            data["next"] = next_url
        response = self.client.post("/sso/login/", data)
        assert response.status_code == 302, response.content
        return response["Location"]

    def callback(self, connector_slug: str, params: dict[str, str], method: str = "get") -> Any:
        url = f"/sso/callback/{connector_slug}/"
        if method == "post":
            bounce = self.client.post(url, params)
            assert bounce.status_code == 303, bounce.content
            return self.client.get(bounce["Location"])
        return self.client.get(url, params)

    def __call__(
        self,
        email: str = "alice@contoso.com",
        slug: str = "contoso",
        method: str = "get",
        next_url: str | None = None,
        **claims: Any,
    ) -> Any:
        authorize_url = self.start(email, next_url)
        params = self.idp.authorize(authorize_url, **claims)
        return self.callback(slug, params, method)


@pytest.fixture
def sign_in(client: Client, fake_idp: FakeIdP, connector: Connector) -> SignIn:
    return SignIn(client, fake_idp)


def signed_in_user(client: Client) -> Any:
    from django.contrib.auth import get_user

    request = type("R", (), {"session": client.session})()
    user = get_user(request)  # type: ignore[arg-type]
    return user if user.is_authenticated else None
