"""Certificate credentials (``private_key_jwt``) against node-oidc-provider 9.x in Chromium.

The provider's client ``cyberdyne-site`` must authenticate with ``private_key_jwt``; it takes
the client's public keys from the site's ``/sso/jwks/cyberdyne/`` (and keeps them at least a
minute, longer when the response says so), as IdPs that fetch a client's JWKS do.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_entra_sso.models import ClientKey
from django_entra_sso.oidc import credentials

pytestmark = pytest.mark.e2e


def test_certificate_sign_in_survives_a_rotation_and_a_wrong_key_gets_a_clear_page(
    e2e: Any, page: Any, browser: Any, new_page: Any
) -> None:
    connector = e2e.make_connector("cyberdyne")
    first = credentials.active_key(connector)
    # The rotation as documented: publish the next certificate before it signs.
    second = credentials.start_rotation(connector)
    e2e.sign_in(page, "cyberdyne", "alice@cyberdyne.test", "alice@cyberdyne.test")
    assert e2e.body(page, "/private/").startswith("signed in as ")
    assert [k["kid"] for k in credentials.jwks(connector)["keys"]] == [first.kid, second.kid]

    credentials.finish_rotation(connector)  # the provider saw it in the JWKS already
    other = new_page(browser)
    try:
        e2e.sign_in(other, "cyberdyne", "bob@cyberdyne.test", "bob@cyberdyne.test")
        assert e2e.body(other, "/private/").startswith("signed in as ")
    finally:
        other.context.close()
    assert list(ClientKey.objects.values_list("kid", flat=True)) == [second.kid]

    # Confirmed before the provider could see it: a key it does not know. Refused, clearly.
    credentials.start_rotation(connector)
    credentials.finish_rotation(connector)
    third = new_page(browser)
    try:
        e2e.start_sign_in(third, "carol@cyberdyne.test")
        e2e.op_login(third, e2e.op9, "carol@cyberdyne.test")
        e2e.op_consent(third, e2e.op9)
        third.wait_for_selector("#sso-error-title")
        assert "did not accept this site's credentials" in third.inner_text("main")
        assert not get_user_model().objects.filter(email="carol@cyberdyne.test").exists()
    finally:
        third.context.close()


def test_the_admin_shows_the_certificate_to_upload_and_rotates_it(
    e2e: Any, page: Any, save_screenshot: Any
) -> None:
    get_user_model().objects.create_superuser("admin", "admin@example.com", "e2e-admin-pw")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{e2e.site}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "e2e-admin-pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{e2e.site}/admin/")
    connector = e2e.make_connector("cyberdyne", provider="entra_id")
    key = credentials.active_key(connector)
    page.goto(f"{e2e.site}/admin/django_entra_sso/connector/{connector.pk}/change/")
    assert page.locator("[data-client-key='active'] code >> nth=0").inner_text() == key.kid
    with page.expect_download() as download:
        page.click("[data-client-key='active'] a")
    assert download.value.suggested_filename.endswith(".pem")
    page.click("#start-rotation")
    page.wait_for_selector("[data-client-key='next']")
    page.evaluate("document.querySelector('#id_client_id').scrollIntoView()")
    save_screenshot(page, "client-certificate.png")
    page.click("#finish-rotation")
    page.wait_for_selector("#start-rotation")
    assert page.locator("[data-client-key]").count() == 1
    assert page.locator("[data-client-key='active'] code >> nth=0").inner_text() != key.kid
