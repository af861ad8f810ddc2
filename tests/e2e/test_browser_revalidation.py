"""Session re-validation in a real browser against node-oidc-provider 9.x: each window the site
redeems the (rotated) refresh token kept for the session, and a person an administrator revoked
at the provider is signed out on their next page, told why.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.models import Session

from django_entra_sso.crypto import decrypt_secret
from django_entra_sso.models import SSOSession

pytestmark = pytest.mark.e2e

WINDOW = 2  # the connector's revalidate_after, in seconds


def _refresh_token(session_key: str) -> str:
    row = SSOSession.objects.get(session_key=session_key)
    return decrypt_secret(row.refresh_token_encrypted)


def _next_window() -> None:
    time.sleep(WINDOW + 0.3)


def test_refresh_keeps_people_signed_in_until_the_provider_revokes_one(
    e2e: Any, page: Any, browser: Any, new_page: Any
) -> None:
    e2e.make_connector("acme", revalidate_after=WINDOW)
    bob_page = new_page(browser)
    try:
        e2e.sign_in(page, "acme", "alice", "alice@acme.test")
        alice_key = e2e.session_key(page)
        alice_token = _refresh_token(alice_key)
        assert alice_token, "sign-in kept no refresh token (offline_access, prompt=consent)"
        # Within a window nothing is asked of the provider.
        assert e2e.body(page, "/private/").startswith("signed in as ")
        assert _refresh_token(alice_key) == alice_token

        e2e.sign_in(bob_page, "acme", "bob", "bob@acme.test")
        pages = {"alice": page, "bob": bob_page}
        keys = {who: e2e.session_key(person_page) for who, person_page in pages.items()}
        tokens = {who: _refresh_token(key) for who, key in keys.items()}
        users = {who: SSOSession.objects.get(session_key=key).user for who, key in keys.items()}
        signed_in = {who: f"signed in as {user.get_username()}" for who, user in users.items()}

        for _ in range(2):
            _next_window()
            for who, person_page in pages.items():
                assert e2e.body(person_page, "/private/") == signed_in[who]
                # Redeemed at the token endpoint, and the rotated token was kept.
                rotated = _refresh_token(keys[who])
                assert rotated and rotated != tokens[who], f"{who}'s refresh token not rotated"
                tokens[who] = rotated

        revoked = e2e.op9.revoke_account("alice")
        assert revoked["account"] == "alice" and revoked["grants"] >= 1, revoked

        _next_window()
        page.goto(f"{e2e.site}/private/")
        page.wait_for_url(lambda url: url.startswith(f"{e2e.site}/sso/login/?"))
        query = parse_qs(urlsplit(page.url).query)
        assert query == {"next": ["/private/"], "ended": ["revoked"]}
        ended = page.locator("#sso-ended")
        assert ended.is_visible()
        assert ended.inner_text().startswith("Your organization has ended your session")
        assert not SSOSession.objects.filter(user=users["alice"]).exists()
        assert not Session.objects.filter(session_key=keys["alice"]).exists()
        # Signed out for good: the next page asks for sign-in again, with no reason given.
        page.goto(f"{e2e.site}/private/")
        assert page.url == f"{e2e.site}/sso/login/?next=/private/"

        # Bob was not revoked: his window passed too, and he stays.
        assert e2e.body(bob_page, "/private/") == signed_in["bob"]
        assert _refresh_token(keys["bob"]) != tokens["bob"]
        assert SSOSession.objects.filter(session_key=keys["bob"]).exists()
    finally:
        bob_page.context.close()
