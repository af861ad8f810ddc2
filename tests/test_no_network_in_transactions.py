"""No call to an identity provider runs inside a database transaction.

A slow IdP must not hold a transaction (and its locks) open for up to the HTTP
timeout. Every call goes through ``provider_http``'s one ``requests`` session;
the probe wraps it and notes whether a transaction was open. The database is
used for real (``transaction=True``): in the default test mode pytest-django
wraps each test in a transaction and every call would look guilty. The suite
runs on SQLite and again on PostgreSQL, and so does this.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client

from django_entra_sso import provider_http
from django_entra_sso.models import Connector
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, logout_token, make_connector, post_logout_token, signed_in_user

pytestmark = pytest.mark.django_db(transaction=True)


class Probe:
    """Records, for each request to the IdP, its path and whether a transaction was open."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def wrap(self, send: Any) -> Any:
        def probed(method: str, url: str, **kwargs: Any) -> Any:
            self.calls.append((url, connection.in_atomic_block))
            return send(method, url, **kwargs)

        return probed

    def inside_a_transaction(self) -> list[str]:
        return [url for url, in_transaction in self.calls if in_transaction]


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    probe = Probe()
    monkeypatch.setattr(
        provider_http._session, "request", probe.wrap(provider_http._session.request)
    )
    yield probe


@pytest.fixture
def userinfo_connector(db: Any, fake_idp: FakeIdP) -> Connector:
    # userinfo adds a second call to the sign-in: it must be outside too.
    return make_connector(fake_idp, "contoso", domain="contoso.com", use_userinfo=True)


def test_the_probe_sees_a_transaction_when_there_is_one(probe: Probe, fake_idp: FakeIdP) -> None:
    with transaction.atomic():
        provider_http.get_json(f"{fake_idp.issuer}/.well-known/openid-configuration")
    provider_http.get_json(f"{fake_idp.issuer}/jwks")
    assert len(probe.calls) == 2
    assert probe.inside_a_transaction() == [f"{fake_idp.issuer}/.well-known/openid-configuration"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_sign_in_and_sign_out_call_the_idp_outside_any_transaction(
    client: Client,
    fake_idp: FakeIdP,
    userinfo_connector: Connector,
    probe: Probe,
    method: str,
) -> None:
    fake_idp.userinfo_claims = {"sub": "subject-alice"}
    sign_in = SignIn(client, fake_idp)
    authorize_url = sign_in.start()
    cache.clear()  # the callback fetches discovery and keys again
    assert sign_in.callback("contoso", fake_idp.authorize(authorize_url), method).status_code == 302
    assert signed_in_user(client) is not None
    cache.clear()
    assert client.post("/sso/logout/").status_code == 302  # fetches end_session_endpoint
    paths = {url.removeprefix(fake_idp.issuer) for url, _ in probe.calls}
    assert {"/token", "/userinfo", "/jwks", "/.well-known/openid-configuration"} <= paths
    assert probe.inside_a_transaction() == []


def test_logout_from_the_idp_calls_it_outside_any_transaction(
    client: Client, fake_idp: FakeIdP, connector: Connector, probe: Probe
) -> None:
    SignIn(client, fake_idp)()
    cache.clear()
    frontchannel = client.get(
        "/sso/logout/frontchannel/contoso/", {"sid": "another-sid", "iss": "https://other.example"}
    )
    assert frontchannel.status_code == 400  # after fetching discovery to compare iss
    cache.clear()
    assert post_logout_token(logout_token(fake_idp)).status_code == 200
    assert signed_in_user(client) is None
    initiate = client.get("/sso/initiate/contoso/", {"iss": "https://other.example"})
    assert initiate.status_code == 400
    assert len(probe.calls) >= 4
    assert probe.inside_a_transaction() == []
