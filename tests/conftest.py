"""The suite's fixtures, built from ``tests.helpers``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from django_entra_sso.models import Connector
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector


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


@pytest.fixture
def connector(db: Any, fake_idp: FakeIdP) -> Connector:
    """Contoso: a query-mode OIDC connector at the fake IdP, owning contoso.com."""
    return make_connector(fake_idp, "contoso", domain="contoso.com")


@pytest.fixture
def sign_in(client: Client, fake_idp: FakeIdP, connector: Connector) -> SignIn:
    return SignIn(client, fake_idp)


@pytest.fixture
def one_rate_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the setup links' rate counters in one window for the whole test.

    The counters start afresh every ``POST_WINDOW`` seconds of the wall clock; a test that
    sends a limit's worth of requests across such a boundary saw its count reset (a slow CI
    pass did). ``time`` serves only the counters in that module.
    """
    from types import SimpleNamespace

    from django_entra_sso.setup import links

    monkeypatch.setattr(links, "time", SimpleNamespace(time=lambda: 1_800_000_000.0))
