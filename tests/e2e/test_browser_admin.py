"""The connector admin in a real browser: add a connector with a domain, copy its redirect URI,
"Test connection" against node-oidc-provider 9.x, then sign in through what was made.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_entra_sso.models import Connector

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "e2e-admin-password"


def test_admin_adds_a_connector_tests_its_connection_and_it_signs_people_in(
    e2e: Any, page: Any, browser: Any, save_screenshot: Any, new_page: Any
) -> None:
    get_user_model().objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{e2e.site}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{e2e.site}/admin/")

    page.goto(f"{e2e.site}/admin/django_entra_sso/connector/add/")
    page.locator("#id_name").press_sequentially("Umbrella")  # typed: the slug follows
    assert page.input_value("#id_slug") == "umbrella"  # prepopulated from the name
    page.select_option("#id_provider", "oidc")
    page.fill("#id_issuer", e2e.op9.issuer)
    page.fill("#id_client_id", "umbrella-site")
    page.fill("#id_client_secret", "e2e-client-secret-not-a-real-one")
    page.select_option("#id_response_mode", "query")
    page.fill("#id_domains-0-domain", "Umbrella.TEST")
    # Group rules are lines, not JSON.
    page.fill("#id_group_mapping", "umbrella-staff = Staff\numbrella-admins = Staff, Editors")
    page.click("input[name=_continue]")  # "Save and continue editing"

    page.wait_for_url(f"{e2e.site}/admin/django_entra_sso/connector/*/change/")
    connector = Connector.objects.get(slug="umbrella")
    assert connector.client_secret == "e2e-client-secret-not-a-real-one"
    assert [d.domain for d in connector.domains.all()] == ["umbrella.test"]
    assert connector.group_mapping == {
        "umbrella-staff": ["Staff"],
        "umbrella-admins": ["Staff", "Editors"],
    }
    # The secret is write-only: the change form does not give it back.
    assert page.input_value("#id_client_secret") == ""
    redirect_uri = page.input_value("#idp-urls input[data-idp-url='1']")
    assert redirect_uri == f"{e2e.site}/sso/callback/umbrella/"
    page.locator("#idp-urls").scroll_into_view_if_needed()
    save_screenshot(page, "connector-form.png", full_page=True)

    page.click("#test-connection")
    page.wait_for_url(f"{e2e.site}/admin/django_entra_sso/connector/*/test-connection/")
    status = page.inner_text("#connection-status")
    assert status.startswith("Healthy"), status
    assert page.inner_text("#signing-key-count") == str(len(e2e.op9.read_jwks()["keys"]))
    save_screenshot(page, "test-connection.png")

    # The redirect URI the admin showed is the one registered at the provider: sign in with it.
    person = new_page(browser)
    try:
        e2e.sign_in(person, "umbrella", "bob@umbrella.test", "bob@umbrella.test")
        user = get_user_model().objects.get(email="bob@umbrella.test")
        assert person.inner_text("body") == f"signed in as {user.get_username()}"
        assert connector.identities.filter(user=user, subject="bob@umbrella.test").exists()
    finally:
        person.context.close()

    # Support's view: the connector's sign-in log shows that sign-in.
    page.goto(f"{e2e.site}/admin/django_entra_sso/connector/{connector.pk}/change/")
    page.click("#sign-in-log")
    page.wait_for_url(f"{e2e.site}/admin/django_entra_sso/signinevent/?**")
    assert "bob@umbrella.test" in page.inner_text("#result_list")
    save_screenshot(page, "sign-in-log.png")
