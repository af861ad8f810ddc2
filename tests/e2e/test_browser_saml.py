"""SAML connectors in a real browser against a real SAML IdP (samlify on node, ``saml_idp.py``).

The IdP is written independently of the app's SAML code (pysaml2). It listens on
``127.0.0.1`` and the site on ``localhost``: two sites, so the IdP's cross-site POST to the
ACS carries no ``SameSite=Lax`` session cookie, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from tests.e2e.saml_idp import NodeSAMLIdP, saml_idp_available
from tests.helpers import require

pytestmark = pytest.mark.e2e

SLUG = "hooli"
DOMAIN = "saml.test"
ADMIN_PASSWORD = "e2e-admin-password"


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeSAMLIdP]:
    require(saml_idp_available())
    with NodeSAMLIdP(tmp_path_factory.mktemp("saml-idp"), email_domain=DOMAIN) as idp:
        yield idp


class SAMLSite:
    def __init__(self, site: str, idp: NodeSAMLIdP) -> None:
        self.site, self.idp = site, idp

    @property
    def entity_id(self) -> str:
        return f"{self.site}/sso/saml/metadata/{SLUG}/"

    def connector(self, **fields: Any) -> Connector:
        connector = Connector.objects.create(
            slug=SLUG,
            name="Hooli",
            protocol="saml",
            provider="oidc",
            saml_metadata_url=self.idp.metadata_url,
            **fields,
        )
        EmailDomain.objects.create(domain=DOMAIN, connector=connector, verified_at=timezone.now())
        self.register()
        return connector

    def register(self) -> None:
        """What the customer's IdP admin does with our SP metadata URL."""
        response = requests.get(self.entity_id, timeout=10)
        response.raise_for_status()
        self.idp.register_sp(response.text)

    def idp_login(self, page: Any, login: str) -> None:
        page.wait_for_url(f"{self.idp.base_url}/**")
        page.wait_for_selector("input[name=username]")
        page.fill("input[name=username]", login)
        page.fill("input[name=password]", "any password")
        page.click("button:has-text('Sign in')")

    def sign_in(self, page: Any, login: str = "alice", next_path: str = "/private/") -> None:
        page.goto(f"{self.site}{next_path}")
        page.wait_for_url(f"{self.site}/sso/login/?next=**")
        page.fill("#sso-email", f"{login}@{DOMAIN}")
        page.click("#sso-submit")
        self.idp_login(page, login)
        page.wait_for_url(f"{self.site}{next_path}")

    def body(self, page: Any, path: str) -> str:
        page.goto(f"{self.site}{path}")
        return str(page.inner_text("body")).strip()


@pytest.fixture
def saml(live_server: Any, saml_idp: NodeSAMLIdP, transactional_db: Any) -> Iterator[SAMLSite]:
    saml_idp.end_sessions()
    yield SAMLSite(live_server.url, saml_idp)
    saml_idp.end_sessions()


def test_sign_in_through_the_sign_in_page_and_out_with_single_logout(
    saml: SAMLSite, page: Any
) -> None:
    connector = saml.connector()
    saml.sign_in(page)
    assert saml.body(page, "/private/") == "signed in as sso-alice"
    user = get_user_model().objects.get()
    assert (user.email, user.first_name, user.last_name) == ("alice@saml.test", "Alice", "Liddell")
    identity = Identity.objects.get()
    assert identity.issuer == f"saml:{connector.pk}:{saml.idp.entity_id}"  # the connector's own
    assert len(saml.idp.sessions()) == 1
    row = SSOSession.objects.get()  # bound to the IdP's NameID and SessionIndex
    assert row.subject and row.sid

    page.goto(f"{saml.site}/sso/logout/")
    page.click("#sso-logout")
    # Our signed LogoutRequest to the IdP, its signed LogoutResponse back to our SLS.
    page.wait_for_url(f"{saml.site}/sso/logout/done/")
    assert page.is_visible("#sso-signed-out")
    assert saml.idp.sessions() == []
    assert not SSOSession.objects.exists()
    page.goto(f"{saml.site}/private/")
    page.wait_for_url(f"{saml.site}/sso/login/?next=**")


def test_signing_out_at_the_idp_ends_the_session_here(saml: SAMLSite, page: Any) -> None:
    saml.connector()
    saml.sign_in(page, "bob")
    assert saml.body(page, "/private/") == "signed in as sso-bob"
    page.goto(saml.idp.logout_url)  # the IdP sends its LogoutRequest through the browser
    page.wait_for_selector("text=You are signed out")
    assert not SSOSession.objects.exists()
    page.goto(f"{saml.site}/private/")
    page.wait_for_url(f"{saml.site}/sso/login/?next=**")


def test_idp_initiated_sign_in_only_when_the_connector_allows_it(saml: SAMLSite, page: Any) -> None:
    connector = saml.connector()
    page.goto(saml.idp.launch_url(saml.entity_id, relay_state="/private/"))
    saml.idp_login(page, "alice")
    page.wait_for_selector("#sso-error-title")
    assert "Start signing in from this site" in page.inner_text("#sso-error-title")
    assert not get_user_model().objects.exists()

    connector.allow_idp_initiated = True
    connector.save()
    page.goto(saml.idp.launch_url(saml.entity_id, relay_state="/private/"))  # IdP session now
    page.wait_for_url(f"{saml.site}/private/")
    assert saml.body(page, "/private/") == "signed in as sso-alice"


def test_the_admin_sets_up_a_saml_connector_that_signs_people_in(
    saml: SAMLSite, page: Any, browser: Any, save_screenshot: Any
) -> None:
    get_user_model().objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{saml.site}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{saml.site}/admin/")

    page.goto(f"{saml.site}/admin/django_entra_sso/connector/add/")
    page.locator("#id_name").press_sequentially("Hooli")
    page.select_option("#id_provider", "oidc")
    page.select_option("#id_protocol", "saml")
    page.fill("#id_saml_metadata_url", saml.idp.metadata_url)
    page.fill("#id_domains-0-domain", DOMAIN)
    page.click("input[name=_continue]")
    page.wait_for_url(f"{saml.site}/admin/django_entra_sso/connector/*/change/")
    connector = Connector.objects.get(slug=SLUG)
    assert connector.is_saml and connector.issuer == saml.idp.entity_id
    assert page.input_value("#idp-urls input[data-idp-url='1']") == saml.entity_id
    assert page.input_value("#idp-urls input[data-idp-url='2']") == (
        f"{saml.site}/sso/saml/acs/{SLUG}/"
    )
    page.locator("#idp-urls").scroll_into_view_if_needed()
    save_screenshot(page, "saml-connector-form.png", full_page=True)

    page.click("#test-connection")
    page.wait_for_url(f"{saml.site}/admin/django_entra_sso/connector/*/test-connection/")
    assert "Healthy" in page.inner_text("#connection-status")
    assert page.inner_text("#saml-entity-id") == saml.idp.entity_id
    assert page.locator("#saml-certificates tr").count() == 2  # header + one certificate
    save_screenshot(page, "saml-test-connection.png", full_page=True)

    saml.register()
    person = page.context.browser.new_context()
    try:
        other = person.new_page()
        saml.sign_in(other, "carol")
        assert saml.body(other, "/private/") == "signed in as sso-carol"
    finally:
        person.close()
