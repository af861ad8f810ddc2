"""Customer self-service setup, first slice: setup links, the setup page, its abuse guards."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from django_entra_sso.models import Connector, EmailDomain, SetupEvent, SetupLink
from django_entra_sso.setup import links as setup_links
from tests.fakeidp import FakeIdP
from tests.helpers import make_connector
from tests.saml_fake_idp import FakeSAMLIdP

pytestmark = pytest.mark.django_db

INVALID = "This setup link is not valid any more"
NEW_SECRET = "n3w-Secret~value-from-the-IdP"
CHANGELIST = "/admin/django_entra_sso/connector/"


@pytest.fixture
def connector(connector: Connector) -> Connector:
    """A new customer's connector: links configure connectors that are switched off."""
    connector.enabled = False
    connector.save(update_fields=["enabled"])
    return connector


@pytest.fixture(autouse=True)
def _loopback_identity_providers(settings: Any) -> None:
    # The fake IdPs listen on 127.0.0.1; a customer's page refuses such addresses by default.
    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = True


def page(token: str) -> str:
    return f"/sso/setup/{token}/"


def link_for(connector: Connector, **kwargs: Any) -> str:
    token, _link = setup_links.make_link(connector, created_by="tests", **kwargs)
    return token


def oidc_post(target: Connector, /, **overrides: Any) -> dict[str, Any]:
    data = {
        "action": "save",
        "issuer": target.issuer,
        "client_id": target.client_id,
        "client_secret": "",
        **overrides,
    }
    return data


def events(connector: Connector, action: str) -> list[SetupEvent]:
    return list(SetupEvent.objects.filter(connector=connector, action=action))


# -- links: made, shown once, stored hashed; expiry and revocation -----------------------------


def test_a_link_is_stored_only_as_the_sha256_of_its_token(connector: Connector) -> None:
    token, link = setup_links.make_link(connector, created_by="alice")
    assert len(token) >= 40
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = SetupLink.objects.values().get(pk=link.pk)
    assert token not in str(row)
    assert row["created_by"] == "alice"
    assert setup_links.usable_link(token) == link


def test_a_link_lives_as_long_as_the_setting_says(connector: Connector) -> None:
    _token, link = setup_links.make_link(connector)
    assert abs((link.expires_at - link.created_at) - timedelta(days=3)) < timedelta(seconds=1)
    with override_settings(ENTRA_SSO_SETUP_LINK_LIFETIME=120):
        _token, link = setup_links.make_link(connector)
    assert abs((link.expires_at - link.created_at) - timedelta(seconds=120)) < timedelta(seconds=1)


def test_an_expired_link_answers_the_404_page(client: Client, connector: Connector) -> None:
    token = link_for(connector)
    assert client.get(page(token)).status_code == 200
    SetupLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(page(token))
    assert response.status_code == 404
    assert INVALID in response.content.decode()
    assert client.post(page(token), oidc_post(connector)).status_code == 404


def test_a_revoked_or_activated_link_answers_the_404_page(
    client: Client, connector: Connector
) -> None:
    token = link_for(connector)
    assert setup_links.revoke_links(connector, revoked_by="bob") == 1
    assert client.get(page(token)).status_code == 404
    token = link_for(connector)
    SetupLink.objects.filter(revoked_at__isnull=True).update(activated_at=timezone.now())
    assert client.get(page(token)).status_code == 404


def test_a_new_link_replaces_the_older_one(client: Client, connector: Connector) -> None:
    first = link_for(connector)
    second = link_for(connector)
    assert client.get(page(first)).status_code == 404
    assert client.get(page(second)).status_code == 200
    assert "replaces 1 older link(s)" in events(connector, "created")[0].detail


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "A" * 43,
        "x" * 10_000,
        "%E6%97%A5%E6%9C%AC%E8%AA%9E" * 3,
        "%F0%9F%94%91" * 20,
        "..%2F..%2Fadmin",
        "%00%00%00" * 10,
        "' OR 1=1 --",
    ],
)
def test_bad_tokens_answer_one_404_page_never_a_500(
    client: Client, connector: Connector, token: str
) -> None:
    link_for(connector)
    for response in (client.get(page(token)), client.post(page(token), oidc_post(connector))):
        assert response.status_code == 404
        assert INVALID in response.content.decode()
        assert response["X-Robots-Tag"].startswith("noindex")
        assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


# -- the page ----------------------------------------------------------------------------------


def test_the_page_is_never_cached_nor_indexed_and_sends_no_referer(
    client: Client, connector: Connector
) -> None:
    response = client.get(page(link_for(connector)))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        ("entra_id", "App registrations"),
        ("okta", "Okta Admin Console"),
        ("google_workspace", "https://accounts.google.com"),
        ("logto", "Logto Console"),
        ("oidc", "authorization code flow"),
    ],
)
def test_the_page_guides_through_the_providers_console_with_values_to_copy(
    client: Client, fake_idp: FakeIdP, provider: str, words: str
) -> None:
    connector = make_connector(fake_idp, "acme", provider=provider, enabled=False)
    body = client.get(page(link_for(connector))).content.decode()
    assert words in body
    assert 'value="http://testserver/sso/callback/acme/"' in body
    assert 'value="http://testserver/sso/logout/frontchannel/acme/"' in body
    assert 'id="post-logout-redirect-uri"' in body
    assert 'name="issuer"' in body and 'name="client_secret"' in body
    assert "saml_metadata" not in body


def test_saving_the_idp_values_never_adds_a_domain(client: Client, connector: Connector) -> None:
    token = link_for(connector)
    body = client.get(page(token)).content.decode()
    assert re.search(r'id="domain-contoso.com">.*?Verified', body, re.S)
    response = client.post(
        page(token),
        oidc_post(
            connector,
            domain="evil.example",
            **{"domains-0-domain": "evil.example", "domains-TOTAL_FORMS": "1"},
        ),
    )
    assert response.status_code == 200
    assert list(EmailDomain.objects.values_list("domain", flat=True)) == ["contoso.com"]


def test_saving_changes_the_idp_values_and_records_which_changed(
    client: Client, connector: Connector
) -> None:
    token = link_for(connector)
    response = client.post(
        page(token), oidc_post(connector, client_id="new-client"), REMOTE_ADDR="203.0.113.77"
    )
    assert response.status_code == 200
    assert 'id="setup-saved"' in response.content.decode()
    connector.refresh_from_db()
    assert connector.client_id == "new-client"
    (saved,) = events(connector, "saved")
    assert saved.detail == "changed: client_id"
    assert saved.client_network == "203.0.113.0/24"
    assert saved.link == SetupLink.objects.get()


def test_a_link_edits_only_its_own_connector_and_only_the_idp_fields(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    other = make_connector(fake_idp, "fabrikam", client_id="fabrikam-app")
    token = link_for(connector)
    response = client.post(
        page(token),
        oidc_post(
            connector,
            client_id="changed",
            slug="fabrikam",
            connector=str(other.pk),
            pk=str(other.pk),
            name="Hijacked",
            enabled="",
            provider="entra_id",
            protocol="saml",
            create_users="",
            staff_values="Admin",
        ),
    )
    assert response.status_code == 200
    other.refresh_from_db()
    connector.refresh_from_db()
    assert other.client_id == "fabrikam-app" and other.name == "Fabrikam"
    assert connector.client_id == "changed"
    assert (connector.slug, connector.name, connector.enabled) == ("contoso", "Contoso", False)
    assert (connector.provider, connector.protocol) == ("oidc", "oidc")
    assert connector.create_users is True and connector.staff_values == []


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"issuer": "http://idp.example.com"}, "issuer", "https"),
        ({"client_id": "  "}, "client_id", "Enter the client (application) ID"),
        ({"issuer": "x" * 600}, "issuer", "at most 500 characters"),
    ],
)
def test_validation_errors_are_shown_and_nothing_is_saved(
    client: Client, connector: Connector, overrides: dict[str, Any], field: str, message: str
) -> None:
    before = (connector.issuer, connector.client_id)
    token = link_for(connector)
    response = client.post(page(token), oidc_post(connector, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert field in response.context["form"].errors
    connector.refresh_from_db()
    assert (connector.issuer, connector.client_id) == before
    (refused,) = events(connector, "refused")
    assert field in refused.detail


def test_a_rule_on_a_field_the_customer_cannot_see_is_shown_not_a_500(
    client: Client, fake_idp: FakeIdP
) -> None:
    connector = make_connector(fake_idp, "acme", provider="entra_id", enabled=False)
    token = link_for(connector)
    response = client.post(
        page(token),
        oidc_post(connector, issuer="https://login.microsoftonline.com/common/v2.0"),
    )
    assert response.status_code == 400
    assert "multi-tenant issuer" in response.content.decode()
    connector.refresh_from_db()
    assert connector.issuer == fake_idp.issuer


def test_the_secret_is_write_only(client: Client, connector: Connector) -> None:
    old_secret = connector.client_secret
    token = link_for(connector)
    body = client.get(page(token)).content.decode()
    assert old_secret not in body and 'id="secret-status"' in body
    # Refused for another field: the secret typed is not rendered back, nor saved.
    response = client.post(
        page(token), oidc_post(connector, issuer="http://bad.example", client_secret=NEW_SECRET)
    )
    assert response.status_code == 400
    assert NEW_SECRET not in response.content.decode()
    connector.refresh_from_db()
    assert connector.client_secret == old_secret
    # Saved: stored encrypted, not shown, not in the audit.
    response = client.post(page(token), oidc_post(connector, client_secret=NEW_SECRET))
    assert response.status_code == 200
    assert NEW_SECRET not in response.content.decode()
    connector.refresh_from_db()
    assert connector.client_secret == NEW_SECRET
    assert NEW_SECRET not in connector.client_secret_encrypted
    # Blank keeps it.
    client.post(page(token), oidc_post(connector, client_id="again"))
    connector.refresh_from_db()
    assert connector.client_secret == NEW_SECRET
    details = " ".join(SetupEvent.objects.values_list("detail", flat=True))
    assert NEW_SECRET not in details and "client_secret" in details


def test_a_connector_without_a_secret_needs_one(client: Client, fake_idp: FakeIdP) -> None:
    connector = make_connector(fake_idp, "acme", enabled=False)
    Connector.objects.filter(pk=connector.pk).update(client_secret_encrypted="")
    response = client.post(page(link_for(connector)), oidc_post(connector))
    assert response.status_code == 400
    assert "Enter the client secret from the IdP." in response.content.decode()


# -- SAML --------------------------------------------------------------------------------------


@pytest.fixture
def saml_connector(db: Any) -> Connector:
    idp = FakeSAMLIdP()
    return make_connector(
        None,
        "acme-saml",
        protocol="saml",
        provider="entra_id",
        issuer=idp.entity_id,
        client_id="",
        client_secret="",
        saml_metadata_xml=idp.metadata_xml(),
        enabled=False,
    )


def test_a_saml_page_shows_the_sp_values_and_a_metadata_form(
    client: Client, saml_connector: Connector
) -> None:
    body = client.get(page(link_for(saml_connector))).content.decode()
    assert 'value="http://testserver/sso/saml/metadata/acme-saml/"' in body
    assert 'value="http://testserver/sso/saml/acs/acme-saml/"' in body
    assert 'value="http://testserver/sso/saml/sls/acme-saml/"' in body
    assert "Basic SAML Configuration" in body
    assert 'name="saml_metadata_url"' in body and 'name="saml_metadata_xml"' in body
    assert 'name="client_secret"' not in body


def test_saving_saml_metadata_reads_it(client: Client, saml_connector: Connector) -> None:
    token = link_for(saml_connector)
    new_idp = FakeSAMLIdP(entity_id="https://sts.windows.net/new-tenant/")
    response = client.post(
        page(token),
        {"action": "save", "saml_metadata_url": "", "saml_metadata_xml": new_idp.metadata_xml()},
    )
    assert response.status_code == 200, response.context["form"].errors
    saml_connector.refresh_from_db()
    assert saml_connector.issuer == "https://sts.windows.net/new-tenant/"
    assert saml_connector.sp_certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert events(saml_connector, "saved")[0].detail == "changed: saml_metadata_xml"

    response = client.post(page(token), {"action": "save", "saml_metadata_xml": "<not-metadata/>"})
    assert response.status_code == 400
    assert "saml_metadata_xml" in response.context["form"].errors
    saml_connector.refresh_from_db()
    assert saml_connector.issuer == "https://sts.windows.net/new-tenant/"


def test_saml_needs_one_source_of_metadata(client: Client, saml_connector: Connector) -> None:
    response = client.post(
        page(link_for(saml_connector)),
        {"action": "save", "saml_metadata_url": "", "saml_metadata_xml": ""},
    )
    assert response.status_code == 400
    assert "Give the identity provider" in response.content.decode()


# -- test connection ---------------------------------------------------------------------------


def test_test_connection_reports_and_is_recorded(
    client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    token = link_for(connector)
    response = client.post(page(token), {"action": "test"})
    assert response.status_code == 200
    assert "Healthy: discovery and signing keys were fetched and checked." in (
        response.content.decode()
    )
    assert events(connector, "tested")[0].detail == "healthy"

    Connector.objects.filter(pk=connector.pk).update(issuer="http://127.0.0.1:9/nothing")
    response = client.post(page(token), {"action": "test"})
    assert "Not healthy:" in response.content.decode()
    assert events(connector, "tested")[0].detail.startswith("not healthy: ")


# -- abuse -------------------------------------------------------------------------------------


def test_posts_through_one_link_are_rate_limited(
    client: Client, connector: Connector, monkeypatch: pytest.MonkeyPatch, one_rate_window: None
) -> None:
    monkeypatch.setattr(setup_links, "POST_LIMIT", 3)
    token = link_for(connector)
    for _ in range(3):
        assert client.post(page(token), oidc_post(connector)).status_code == 200
    response = client.post(page(token), {"action": "test"})
    assert response.status_code == 429
    assert response["Retry-After"] == str(setup_links.POST_WINDOW)
    assert client.get(page(token)).status_code == 200
    # Another connector's link has its own count.
    other = make_connector(None, "fabrikam", enabled=False)
    assert client.post(page(link_for(other)), {"action": "test"}).status_code == 200


def test_csrf_is_enforced(connector: Connector) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    token = link_for(connector)
    assert csrf_client.post(page(token), oidc_post(connector, client_id="x")).status_code == 403
    connector.refresh_from_db()
    assert connector.client_id != "x"
    body = csrf_client.get(page(token)).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert csrf is not None
    response = csrf_client.post(
        page(token), oidc_post(connector, client_id="x", csrfmiddlewaretoken=csrf.group(1))
    )
    assert response.status_code == 200
    connector.refresh_from_db()
    assert connector.client_id == "x"


# -- CLI ---------------------------------------------------------------------------------------


def test_cli_invite_prints_the_link_once(client: Client, connector: Connector) -> None:
    out = StringIO()
    call_command("sso_connector", "invite", "contoso", "--expires", "600", stdout=out)
    match = re.search(r"https://<your site>/sso/setup/([A-Za-z0-9_-]+)/", out.getvalue())
    assert match is not None, out.getvalue()
    link = SetupLink.objects.get()
    assert link.token_hash == hashlib.sha256(match.group(1).encode()).hexdigest()
    assert abs((link.expires_at - link.created_at) - timedelta(seconds=600)) < timedelta(seconds=1)
    assert client.get(page(match.group(1))).status_code == 200


def test_cli_invite_prints_the_whole_link_given_the_sites_address(connector: Connector) -> None:
    out = StringIO()
    call_command(
        "sso_connector", "invite", "contoso", "--base-url", "http://127.0.0.1:8000/", stdout=out
    )
    assert re.search(r"^http://127\.0\.0\.1:8000/sso/setup/[A-Za-z0-9_-]+/$", out.getvalue(), re.M)


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["contoso", "--expires", "0"],
        ["contoso", "--base-url", "javascript:alert(1)"],
        ["contoso", "--base-url", "https://shop.example.com?x=1"],
    ],
)
def test_cli_invite_refuses_bad_input(connector: Connector, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("sso_connector", "invite", *args, stdout=StringIO())
    assert not SetupLink.objects.exists()


# -- admin -------------------------------------------------------------------------------------


def test_admin_creates_a_link_and_shows_it_once(admin_client: Client, connector: Connector) -> None:
    url = f"{CHANGELIST}{connector.pk}/setup-link/"
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(
        r'value="http://testserver/sso/setup/([A-Za-z0-9_-]+)/"', response.content.decode()
    )
    assert match is not None
    token = match.group(1)
    link = SetupLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert link.created_by == "admin"
    change = admin_client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    assert token not in change
    assert 'id="create-setup-link"' in change and 'id="revoke-setup-links"' in change
    assert 'data-setup-event="created"' in change


def test_admin_revokes_the_links(
    admin_client: Client, client: Client, connector: Connector
) -> None:
    token = link_for(connector)
    response = admin_client.post(f"{CHANGELIST}{connector.pk}/revoke-setup-links/")
    assert response.status_code == 302
    assert client.get(page(token)).status_code == 404
    assert events(connector, "revoked")[0].detail == "by admin; 1 link(s) revoked"


def test_admin_lists_the_setup_audit_on_the_connector_page(
    admin_client: Client, client: Client, connector: Connector
) -> None:
    client.post(page(link_for(connector)), oidc_post(connector, client_id="changed"))
    body = admin_client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    assert 'data-setup-event="saved"' in body
    assert "changed: client_id" in body


def test_admin_setup_links_need_change_permission(client: Client, connector: Connector) -> None:
    from django.contrib.auth.models import Permission

    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_connector"))
    client.force_login(staff)
    assert client.post(f"{CHANGELIST}{connector.pk}/setup-link/").status_code == 403
    link_for(connector)
    assert client.post(f"{CHANGELIST}{connector.pk}/revoke-setup-links/").status_code == 403
    assert SetupLink.objects.filter(revoked_at__isnull=True).count() == 1
    body = client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    assert 'id="create-setup-link"' not in body
