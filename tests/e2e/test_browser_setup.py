"""Customer self-service setup in a real browser, against node-oidc-provider 9.x and a real DNS server.

The site's administrator makes a setup link in the admin; the customer's IT administrator opens
it in a browser of their own, follows the Entra ID guide, enters what their IdP gave them, tests
the connection, tries signing in, proves their email domain with a TXT record (served by dnslib on
loopback), and activates. A person of that domain then signs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_entra_sso.models import Connector, EmailDomain, SetupEvent
from tests.dnsserver import LoopbackDNSServer, running_dns_server
from tests.e2e.conftest import CLIENT_SECRET

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "e2e-admin-password"


@pytest.fixture
def dns_server(settings: Any) -> Iterator[LoopbackDNSServer]:
    with running_dns_server() as server:
        settings.ENTRA_SSO_DNS_NAMESERVERS = [server.address]
        settings.ENTRA_SSO_DNS_TIMEOUT = 3.0
        # node-oidc-provider listens on 127.0.0.1, which a customer's page refuses by default.
        settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = True
        yield server


def test_a_customer_sets_up_their_own_connector_from_a_link(
    e2e: Any,
    page: Any,
    browser: Any,
    new_page: Any,
    save_screenshot: Any,
    dns_server: LoopbackDNSServer,
) -> None:
    # The site's side: a connector for the new customer, switched off, with no IdP values yet.
    connector = Connector.objects.create(
        slug="wayne", name="Wayne Enterprises", provider="entra_id", enabled=False
    )
    get_user_model().objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{e2e.site}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{e2e.site}/admin/django_entra_sso/connector/{connector.pk}/change/")
    page.click("#create-setup-link")
    setup_url = page.input_value("#setup-link")
    assert setup_url.startswith(f"{e2e.site}/sso/setup/")
    save_screenshot(page, "setup-link.png")

    # The customer's IT administrator, in a browser of their own.
    it = new_page(browser)
    it.set_viewport_size({"width": 1100, "height": 900})
    try:
        it.goto(setup_url)
        assert "Set up single sign-on for Wayne Enterprises" in it.inner_text("#setup-title")
        assert "Microsoft Entra admin center" in it.inner_text("#setup-steps")
        redirect_uri = it.input_value("#redirect-uri")
        assert redirect_uri == f"{e2e.site}/sso/callback/wayne/"  # what op9 has registered
        save_screenshot(it, "setup-guide.png", full_page=True)

        it.fill("#id_issuer", e2e.op9.issuer)
        it.fill("#id_client_id", "wayne-site")
        it.fill("#id_client_secret", CLIENT_SECRET)
        it.click("#setup-save")
        it.wait_for_selector("#setup-saved")
        assert it.input_value("#id_client_secret") == ""  # write-only
        it.click("#setup-test")
        it.wait_for_selector("#connection-status")
        assert it.inner_text("#connection-status").startswith("Healthy")

        # Try signing in: a real round trip through the IdP that signs no one in here.
        it.click("#setup-try")
        e2e.op_login(it, e2e.op9, "it-admin@wayne.test")
        e2e.op_consent(it, e2e.op9)
        it.wait_for_url(setup_url)
        result = it.inner_text("#trial-result")
        assert "This is what this site received" in result
        assert "it-admin@wayne.test" in result
        assert "This connector has no email domains yet." in result
        save_screenshot(it, "setup-trial.png", full_page=True)
        assert list(get_user_model().objects.values_list("username", flat=True)) == ["admin"]
        assert e2e.body(it, "/home/") == "signed out"
        it.goto(setup_url)

        # Prove the domain: the page says which TXT record to publish; the "customer's DNS"
        # (the dnslib server) publishes it; Verify finds it.
        it.fill("#id_domain", "wayne.test")
        it.click("#add-domain")
        it.wait_for_selector("#domain-added")
        domain = EmailDomain.objects.get(domain="wayne.test")
        row = it.locator("[id='domain-wayne.test']")
        record = row.locator(".txt-value").input_value()
        assert record == f"entra-sso-verification={domain.verification_token}"
        assert "_entra-sso.wayne.test" in row.inner_text()
        save_screenshot(it, "setup-domain.png", full_page=True)
        dns_server.set_txt("_entra-sso.wayne.test", record)
        row.locator(".verify-domain").click()
        it.wait_for_selector(".dns-check")
        assert "Found the record at _entra-sso.wayne.test" in it.inner_text(".dns-check")
        assert it.locator("[id='domain-wayne.test'] .domain-status").inner_text() == "Verified"

        # The trial was before the domain was added; values unchanged, so Activate is open.
        it.click("#setup-activate")
        it.wait_for_selector("#setup-activated")
        assert "Single sign-on is on for Wayne Enterprises" in it.inner_text("h1")
        save_screenshot(it, "setup-activated.png")
        it.goto(setup_url)
        assert "This setup link is not valid any more" in it.inner_text("body")  # used up
    finally:
        it.context.close()

    connector.refresh_from_db()
    assert connector.enabled
    assert EmailDomain.objects.get(domain="wayne.test").verification_method == "dns"

    # A person of that domain signs in for real.
    person = new_page(browser)
    try:
        e2e.sign_in(person, "wayne", "bruce@wayne.test", "bruce@wayne.test")
        user = get_user_model().objects.get(email="bruce@wayne.test")
        assert person.inner_text("body") == f"signed in as {user.get_username()}"
    finally:
        person.context.close()

    # The site's administrator sees what happened, step by step.
    page.goto(f"{e2e.site}/admin/django_entra_sso/connector/{connector.pk}/change/")
    audit = page.inner_text("#setup-audit")
    for label in (
        "link created",
        "saved",
        "connection tested",
        "sign-in tried",
        "domain added",
        "domain checked",
        "activated",
    ):
        assert label in audit, label
    assert set(SetupEvent.objects.values_list("action", flat=True)) >= {
        "created",
        "saved",
        "tested",
        "tried",
        "domain_added",
        "domain_checked",
        "activated",
    }
    page.locator("#setup-audit").scroll_into_view_if_needed()
    save_screenshot(page, "setup-audit.png")
