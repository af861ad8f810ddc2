"""A third read-only review of the setup links (2026-12-01): each test failed before its fix."""

from __future__ import annotations

import base64
import json
from importlib import import_module
from typing import Any
from urllib.parse import unquote_plus

import pytest
from django.conf import settings as django_settings
from django.test import Client

from django_entra_sso.models import Connector
from django_entra_sso.setup import links as setup_links
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import make_connector

pytestmark = pytest.mark.django_db


STORED_SECRET = "customer-production-secret-0f9e"


@pytest.fixture(autouse=True)
def _loopback_identity_providers(settings: Any) -> None:
    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = True


def page(token: str) -> str:
    return f"/sso/setup/{token}/"


def secrets_received(idp: FakeIdP) -> list[str]:
    found = []
    for request in idp.received_token_requests:
        auth = request["headers"].get("Authorization", "")
        if auth.startswith("Basic "):
            found.append(unquote_plus(base64.b64decode(auth[6:]).decode().partition(":")[2]))
        if "client_secret" in request["form"]:
            found.append(request["form"]["client_secret"])
    return found


def test_a_link_holder_cannot_send_the_stored_secret_to_an_issuer_of_their_own(
    client: Client, fake_idp: FakeIdP
) -> None:
    """The secret is "write-only, never shown again" — yet pointing the issuer elsewhere and
    leaving the secret blank ("blank keeps the stored one") makes "Try signing in" post the
    stored secret to the new issuer's token endpoint."""
    connector = make_connector(
        fake_idp, "fabrikam", enabled=False, client_secret=STORED_SECRET, domain="fabrikam.com"
    )
    token, _link = setup_links.make_link(connector, created_by="tests")
    attacker = FakeIdP(client_id="attacker-client", client_secret="whatever")
    try:
        saved = client.post(
            page(token),
            {
                "action": "save",
                "issuer": attacker.issuer,
                "client_id": "attacker-client",
                "client_secret": "",  # "leave blank to keep the stored secret"
            },
        )
        connector.refresh_from_db()
        if saved.status_code == 200 and connector.issuer == attacker.issuer:
            started = client.post(page(token), {"action": "try"})
            if started.status_code == 302 and started["Location"].startswith(attacker.issuer):
                params = attacker.authorize(started["Location"], email="x@fabrikam.com")
                client.get("/sso/callback/fabrikam/", params)
        leaked = secrets_received(attacker)
        assert STORED_SECRET not in leaked, (
            f"the stored client secret reached the link holder's token endpoint: {leaked}"
        )
    finally:
        attacker.close()
    assert Connector.objects.get(pk=connector.pk).client_secret == STORED_SECRET


def test_an_abandoned_trial_leaves_no_working_token_in_the_session_store(
    client: Client, fake_idp: FakeIdP
) -> None:
    """README: "The link is shown once: only its SHA-256 is stored." Pressing "Try signing in"
    writes the whole setup URL, token included, into the browser's server-side session
    (the pending sign-in's ``next_url``); a trial never finished leaves it there for the
    session's lifetime (two weeks by default), longer than the link's three days."""
    connector = make_connector(fake_idp, "fabrikam", enabled=False)
    token, _link = setup_links.make_link(connector, created_by="tests")
    started = client.post(f"/sso/setup/{token}/", {"action": "try"})
    assert started.status_code == 302
    # The customer closes the IdP's tab. What the session store holds for this browser:
    engine = import_module(django_settings.SESSION_ENGINE)
    stored = engine.SessionStore(session_key=client.cookies["sessionid"].value).load()
    assert token not in json.dumps(stored, default=str), (
        "the session store holds the working setup token in plain text: "
        + json.dumps(stored, default=str)[:300]
    )


@pytest.mark.parametrize("field", ["jwks_uri", "userinfo_endpoint", "end_session_endpoint"])
def test_a_broken_endpoint_url_in_the_discovery_document_is_no_500(
    field: str, fake_idp: FakeIdP
) -> None:
    """The discovery document is the link holder's: ``https://[::1`` as one of its endpoints
    makes ``urlsplit`` raise ValueError inside ``validation.endpoint_problem``, which
    ``parse_discovery`` does not turn into a MetadataError: "Test connection" and
    "Try signing in" answer 500 (and so would the connector's sign-in page once live)."""
    doc = {**fake_idp.discovery(), field: "https://[::1"}
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(body=json.dumps(doc).encode())
    connector = make_connector(fake_idp, "fabrikam", enabled=False)
    token, _link = setup_links.make_link(connector, created_by="tests")
    client = Client(raise_request_exception=False)
    tested = client.post(page(token), {"action": "test"})
    tried = client.post(page(token), {"action": "try"})
    assert (tested.status_code, tried.status_code) == (200, 302), (
        f"Test connection answered {tested.status_code}, Try signing in {tried.status_code}"
    )


def test_the_same_issuer_pasted_with_its_discovery_suffix_keeps_the_stored_secret(
    client: Client, fake_idp: FakeIdP
) -> None:
    """The rule compares issuers as the model cleans them: no change, no secret asked."""
    connector = make_connector(
        fake_idp, "fabrikam", enabled=False, client_secret=STORED_SECRET, domain="fabrikam.com"
    )
    token, _link = setup_links.make_link(connector, created_by="tests")
    saved = client.post(
        page(token),
        {
            "action": "save",
            "issuer": connector.issuer + "/.well-known/openid-configuration",
            "client_id": connector.client_id,
            "client_secret": "",
        },
    )
    assert saved.status_code == 200, saved.content.decode()[-600:]
    assert "enter the client secret for it again" not in saved.content.decode()
    assert Connector.objects.get(pk=connector.pk).client_secret == STORED_SECRET
