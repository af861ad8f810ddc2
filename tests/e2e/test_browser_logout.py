"""Sign-out in a real browser: started at the site (RP-initiated, node-oidc-provider 9.x), and
started at the provider, reaching the site by front-channel (6.x, iframe) or back-channel (9.x).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session

from django_entra_sso.models import SSOSession

pytestmark = pytest.mark.e2e


def _assert_signed_out_at_site(e2e: Any, page: Any, session_key: str) -> None:
    assert not Session.objects.filter(session_key=session_key).exists()
    assert not SSOSession.objects.exists()
    page.goto(f"{e2e.site}/private/")
    assert page.url == f"{e2e.site}/sso/login/?next=/private/"


def test_site_sign_out_ends_both_sessions_and_lands_on_post_logout_uri(
    e2e: Any, page: Any, save_screenshot: Any
) -> None:
    e2e.make_connector("acme")
    e2e.sign_in(page, "acme", "alice", "alice@acme.test")
    session_key = e2e.session_key(page)
    assert session_key and SSOSession.objects.filter(session_key=session_key).exists()

    page.goto(f"{e2e.site}/sso/logout/")
    with page.expect_request(lambda r: r.url.startswith(f"{e2e.op9.issuer}/session/end")) as out:
        page.click("#sso-logout")
    end_session_url = out.value.url
    assert "id_token_hint=" in end_session_url
    assert "post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A" in end_session_url
    e2e.op_confirm_logout(page)
    # The app's own "signed out" page, with nothing the provider added left in the address.
    page.wait_for_url(f"{e2e.site}/sso/logout/done/")
    assert page.inner_text("#sso-signed-out") == "You have been signed out"
    save_screenshot(page, "signed-out.png")
    _assert_signed_out_at_site(e2e, page, session_key)

    # The provider's session is over too: a new sign-in asks for the password again.
    e2e.start_sign_in(page, "alice@acme.test")
    page.wait_for_url(f"{e2e.op9.issuer}/interaction/**")
    assert page.locator("input[name=password]").is_visible()


def test_front_channel_logout_from_provider_6_ends_the_site_session(e2e6: Any, page: Any) -> None:
    e2e = e2e6
    e2e.make_connector("initech")
    e2e.sign_in(page, "initech", "alice", "alice@initech.test")
    session_key = e2e.session_key(page)
    assert session_key
    sid = SSOSession.objects.get(session_key=session_key).sid
    assert sid

    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    frontchannel = f"{e2e.site}/sso/logout/frontchannel/initech/"
    page.goto(f"{e2e.op6.issuer}/session/end")
    with page.expect_response(lambda r: r.url.startswith(frontchannel)) as framed:
        e2e.op_confirm_logout(page)
    response = framed.value
    assert response.status == 200
    assert f"sid={sid}" in response.url
    assert response.frame.parent_frame is not None, "the logout URL must load in an iframe"
    # The iframe is cross-site: no Lax session cookie went with it; the sid index did the work.
    assert "sessionid=" not in response.request.all_headers().get("cookie", "")
    csp = response.all_headers()["content-security-policy"]
    assert csp == f"frame-ancestors 'self' {e2e.op6.issuer}"
    # The provider moves on once its frames have loaded; the site's frame was not refused.
    page.wait_for_url(f"{e2e.op6.issuer}/session/end/success**")
    # (Chromium logs "Framing '<site>' violates ... frame-ancestors ..." when it blocks a frame.)
    assert not [text for text in console if "frame-ancestors" in text], console
    _assert_signed_out_at_site(e2e, page, session_key)


def test_back_channel_logout_from_provider_9_ends_the_site_session(e2e: Any, page: Any) -> None:
    e2e.make_connector("acme")
    e2e.sign_in(page, "acme", "alice", "alice@acme.test")
    session_key = e2e.session_key(page)
    assert session_key and SSOSession.objects.filter(session_key=session_key).exists()

    e2e.op_end_session(page, e2e.op9)
    page.wait_for_url(f"{e2e.op9.issuer}/session/end/success**")
    _assert_signed_out_at_site(e2e, page, session_key)
    assert "backchannel.success client=acme-site" in e2e.op9.log_tail(200)
