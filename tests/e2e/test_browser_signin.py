"""Sign-in in a real browser against node-oidc-provider 9.x: identifier-first with ``query`` and
``form_post``, key rotation at the provider, and a refused sign-in ending on the error page.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore

from django_entra_sso.models import Connector, Identity, SSOSession
from django_entra_sso.oidc.metadata import get_metadata, get_signing_keys
from django_entra_sso.sessions import SIGN_OUT_SESSION_KEY

pytestmark = pytest.mark.e2e


def _id_token_of(e2e: Any, page: Any) -> dict[str, Any]:
    """The header and claims of the ID token kept in the browser's Django session."""
    key = e2e.session_key(page)
    assert key, "no session cookie on the site"
    token = SessionStore(session_key=key).get(SIGN_OUT_SESSION_KEY, {}).get("id_token_hint")
    assert isinstance(token, str), "the session holds no ID token"
    return {
        "header": jwt.get_unverified_header(token),
        "claims": jwt.decode(token, options={"verify_signature": False}),
    }


def test_identifier_first_sign_in_returns_to_next_with_claims_on_the_user(
    e2e: Any, page: Any, save_screenshot: Any
) -> None:
    e2e.make_connector("acme")
    page.goto(f"{e2e.site}/private/")
    # login_required -> the identifier-first page, with next kept
    assert page.url == f"{e2e.site}/sso/login/?next=/private/"
    page.fill("#sso-email", "alice@acme.test")
    page.set_viewport_size({"width": 900, "height": 440})
    save_screenshot(page, "sign-in.png")
    page.click("#sso-submit")

    e2e.op_login(page, e2e.op9, "alice")
    e2e.op_consent(page, e2e.op9)
    page.wait_for_url(f"{e2e.site}/private/")

    body = page.inner_text("body")
    user = get_user_model().objects.get()
    assert body == f"signed in as {user.get_username()}"
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Liddell", "alice@acme.test")
    identity = Identity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (e2e.op9.issuer, "alice")
    assert SSOSession.objects.get(user=user).sid == _id_token_of(e2e, page)["claims"]["sid"]


def test_form_post_sign_in_works_with_the_default_lax_session_cookie(e2e: Any, page: Any) -> None:
    connector = e2e.make_connector("globex")
    assert connector.effective_response_mode == "form_post"
    callbacks: list[tuple[str, str, str]] = []

    def record(request: Any) -> None:
        if "/sso/callback/globex/" in request.url:
            cookie = request.all_headers().get("cookie", "")
            callbacks.append((request.method, request.url, cookie))

    page.on("request", record)
    e2e.start_sign_in(page, "alice@globex.test")
    e2e.op_login(page, e2e.op9, "alice@globex.test")
    e2e.op_consent(page, e2e.op9)
    page.wait_for_url(f"{e2e.site}/private/")

    user = get_user_model().objects.get()
    assert page.inner_text("body") == f"signed in as {user.get_username()}"
    assert (user.first_name, user.last_name, user.email) == (
        "Alice",
        "Liddell",
        "alice@globex.test",
    )
    # The provider POSTed the code cross-site: the Lax session cookie stayed behind, and the app
    # came back to itself with a top-level GET that carries it (the code is not in that URL).
    methods = [method for method, _url, _cookie in callbacks]
    assert methods == ["POST", "GET"], callbacks
    assert "sessionid=" not in callbacks[0][2]
    assert "sessionid=" in callbacks[1][2]
    assert "code=" not in callbacks[1][1] and "resume=" in callbacks[1][1]


def test_sign_in_after_key_rotation_refreshes_the_cached_jwks(e2e: Any, page: Any) -> None:
    connector = e2e.make_connector("acme")
    e2e.sign_in(page, "acme", "alice", "alice@acme.test")
    first = _id_token_of(e2e, page)
    assert first["header"]["kid"] == e2e.op9.signing_kid()

    new_kid = e2e.op9.rotate_keys(new_key=True)  # restarts the provider on the same port
    metadata = get_metadata(connector)
    cached_kids = {key.key_id for key in get_signing_keys(metadata)}
    assert first["header"]["kid"] in cached_kids
    assert new_kid not in cached_kids, "the site must not know the new key yet"

    # The provider forgot its sessions: the second sign-in shows its login page again.
    e2e.sign_in(page, "acme", "alice", "alice@acme.test")
    second = _id_token_of(e2e, page)
    assert second["header"]["kid"] == new_kid
    assert page.inner_text("body") == f"signed in as {get_user_model().objects.get().username}"
    assert new_kid in {key.key_id for key in get_signing_keys(metadata)}


def test_cancelled_sign_in_shows_the_error_page_and_signs_nobody_in(
    e2e: Any, page: Any, save_screenshot: Any
) -> None:
    e2e.make_connector("acme")
    e2e.start_sign_in(page, "alice@acme.test")
    page.wait_for_url(f"{e2e.op9.issuer}/interaction/**")
    with page.expect_response(lambda r: "/sso/callback/acme/" in r.url) as callback:
        page.click("text=[ Cancel ]")
    response = callback.value
    assert "error=access_denied" in response.url
    assert response.status == 403
    title = page.inner_text("#sso-error-title")
    assert title == "Sign-in was cancelled"
    assert "access_denied" in page.inner_text("body")
    page.set_viewport_size({"width": 900, "height": 460})
    save_screenshot(page, "error.png")

    assert e2e.body(page, "/home/") == "signed out"
    assert not get_user_model().objects.exists()
    assert not Connector.objects.get(slug="acme").sessions.exists()
