"""Connector screens in the Django admin: write-only secret, domains inline, URLs, test connection."""

from __future__ import annotations

import html
import socket
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from tests.fakeidp import FakeIdP

pytestmark = pytest.mark.django_db


SECRET = "Pl4inText-Secret~value"
CHANGELIST = "/admin/django_entra_sso/connector/"
ADD = CHANGELIST + "add/"


def change_url(connector: Connector) -> str:
    return f"{CHANGELIST}{connector.pk}/change/"


def connection_test_url(connector: Connector) -> str:
    return f"{CHANGELIST}{connector.pk}/test-connection/"


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Acme",
        "slug": "acme",
        "provider": "entra_id",
        "enabled": "on",
        "issuer": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
        "client_id": "app-id",
        "client_secret": SECRET,
        "extra_scopes": "",
        "response_mode": "",
        "prompt": "",
        "create_users": "on",
        "allowed_tenants": "[]",
        "group_mapping": "{}",
        "revalidate_after": "0",
        "max_session_age": "0",
        "domains-TOTAL_FORMS": "1",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
        "domains-0-domain": "Acme.COM",
        "domains-0-sso_only": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def change_form_data(connector: Connector, **overrides: Any) -> dict[str, Any]:
    """What the change form posts back for an existing connector and its domains."""
    domains = list(connector.domains.all())
    data = form_data(
        name=connector.name,
        slug=connector.slug,
        provider=connector.provider,
        issuer=connector.issuer,
        client_id=connector.client_id,
        client_secret="",
        response_mode=connector.response_mode,
        **{
            "domains-TOTAL_FORMS": str(len(domains)),
            "domains-INITIAL_FORMS": str(len(domains)),
            "domains-0-domain": None,
            "domains-0-sso_only": None,
        },
    )
    for i, domain in enumerate(domains):
        data[f"domains-{i}-id"] = str(domain.pk)
        data[f"domains-{i}-connector"] = str(connector.pk)
        data[f"domains-{i}-domain"] = domain.domain
    data.update(overrides)
    return data


def dead_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def page(response: Any) -> str:
    return html.unescape(response.content.decode())


# -- adding -------------------------------------------------------------------------


def test_add_page_renders(admin_client: Client) -> None:
    response = admin_client.get(ADD)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="client_secret"' in content
    assert 'name="domains-0-domain"' in content


def test_adding_a_connector_with_an_inline_domain_creates_both(admin_client: Client) -> None:
    response = admin_client.post(ADD, form_data())
    assert response.status_code == 302, page(response)
    connector = Connector.objects.get()
    assert connector.slug == "acme"
    assert connector.client_secret == SECRET
    assert list(connector.domains.values_list("domain", "sso_only")) == [("acme.com", True)]


def test_adding_without_a_secret_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD, form_data(client_secret=""))
    assert response.status_code == 200
    assert "Enter the client secret from the IdP." in page(response)
    assert not Connector.objects.exists()


def test_adding_a_domain_owned_by_another_connector_is_refused(
    admin_client: Client, connector: Connector
) -> None:
    response = admin_client.post(ADD, form_data(**{"domains-0-domain": "contoso.com"}))
    assert response.status_code == 200
    assert Connector.objects.count() == 1
    assert EmailDomain.objects.get().connector == connector


def test_bad_inline_domain_is_refused_with_the_reason(admin_client: Client) -> None:
    response = admin_client.post(ADD, form_data(**{"domains-0-domain": "@acme.com"}))
    assert response.status_code == 200
    assert "without “@”" in page(response)
    assert not Connector.objects.exists()


# -- the secret is write-only ---------------------------------------------------------


@pytest.fixture
def acme(admin_client: Client, fake_idp: FakeIdP) -> Connector:
    # On the fake IdP, so that "Test connection" never leaves the machine.
    response = admin_client.post(ADD, form_data(provider="oidc", issuer=fake_idp.issuer))
    assert response.status_code == 302
    return Connector.objects.get(slug="acme")


def test_secret_never_appears_in_admin_html(admin_client: Client, acme: Connector) -> None:
    ciphertext = acme.client_secret_encrypted
    failed = admin_client.post(
        change_url(acme),
        change_form_data(acme, issuer="http://public.example", client_secret=SECRET),
    )
    assert failed.status_code == 200
    assert "accepted only on localhost" in page(failed)  # the error is shown ...
    failed_add = admin_client.post(ADD, form_data(slug="acme2", issuer="not a url"))
    assert failed_add.status_code == 200
    pages = {
        "add": admin_client.get(ADD),
        "change": admin_client.get(change_url(acme)),
        "list": admin_client.get(CHANGELIST),
        "test": admin_client.get(connection_test_url(acme)),
        "test action": admin_client.post(
            CHANGELIST,
            {"action": "test_connection_action", "_selected_action": [acme.pk]},
            follow=True,
        ),
        "history": admin_client.get(f"{CHANGELIST}{acme.pk}/history/"),
        "failed change": failed,
        "failed add": failed_add,
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        content = response.content.decode()
        assert SECRET not in content, name  # ... but not the secret typed with it
        assert ciphertext not in content, name


def test_blank_secret_on_change_keeps_the_stored_secret(
    admin_client: Client, acme: Connector
) -> None:
    response = admin_client.post(change_url(acme), change_form_data(acme, name="Acme Corp"))
    assert response.status_code == 302, page(response)
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"
    assert acme.client_secret == SECRET


def test_new_secret_on_change_replaces_the_stored_secret(
    admin_client: Client, acme: Connector
) -> None:
    response = admin_client.post(
        change_url(acme), change_form_data(acme, client_secret="  rotated-secret ")
    )
    assert response.status_code == 302, page(response)
    acme.refresh_from_db()
    assert acme.client_secret == "rotated-secret"


# -- URLs to copy into the IdP -----------------------------------------------------------


def test_change_page_shows_absolute_urls_for_the_idp(admin_client: Client, acme: Connector) -> None:
    content = page(admin_client.get(change_url(acme)))
    assert 'value="http://testserver/sso/callback/acme/"' in content
    assert 'value="http://testserver/sso/logout/frontchannel/acme/"' in content
    assert 'value="http://testserver/sso/logout/backchannel/acme/"' in content
    assert 'value="http://testserver/sso/initiate/acme/"' in content
    assert f'href="{connection_test_url(acme)}"' in content


def test_idp_urls_are_built_from_the_request_host(admin_client: Client, acme: Connector) -> None:
    response = admin_client.get(change_url(acme), HTTP_HOST="localhost:8443", secure=True)
    content = page(response)
    assert 'value="https://localhost:8443/sso/callback/acme/"' in content
    assert 'value="https://localhost:8443/sso/logout/frontchannel/acme/"' in content
    assert "testserver" not in content


def test_add_page_has_no_idp_urls_yet(admin_client: Client) -> None:
    assert 'id="idp-urls"' not in admin_client.get(ADD).content.decode()


# -- test connection --------------------------------------------------------------------


def test_test_connection_page_is_healthy_against_the_fake_idp(
    admin_client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    response = admin_client.get(connection_test_url(connector))
    assert response.status_code == 200
    content = page(response)
    assert "Healthy: discovery and signing keys were fetched and checked." in content
    assert f"<td>{fake_idp.issuer}</td>" in content
    assert '<td id="signing-key-count">2</td>' in content
    assert "Not healthy" not in content


def test_test_connection_page_against_a_dead_port_says_why(
    admin_client: Client, connector: Connector
) -> None:
    connector.issuer = f"http://127.0.0.1:{dead_loopback_port()}"
    connector.save()
    content = page(admin_client.get(connection_test_url(connector)))
    assert "Not healthy:" in content
    assert f"{connector.issuer}/.well-known/openid-configuration could not be reached" in content


def test_test_connection_page_says_when_the_issuer_does_not_match(
    admin_client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    fake_idp.issuer_override = "https://impostor.example"
    content = page(admin_client.get(connection_test_url(connector)))
    assert "Not healthy:" in content
    assert (
        f"The provider's issuer is 'https://impostor.example', not '{fake_idp.issuer}'." in content
    )


def test_test_connection_page_for_unknown_connector_is_404(admin_client: Client) -> None:
    assert admin_client.get(f"{CHANGELIST}999/test-connection/").status_code == 404


def test_test_connection_page_needs_staff(client: Client, connector: Connector) -> None:
    response = client.get(connection_test_url(connector))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_test_connection_page_needs_view_permission(client: Client, connector: Connector) -> None:
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(connection_test_url(connector)).status_code == 403


def test_test_connection_action_reports_each_connector(
    admin_client: Client, connector: Connector, fake_idp: FakeIdP
) -> None:
    dead = Connector(
        slug="dead",
        name="Dead",
        provider="oidc",
        issuer=f"http://127.0.0.1:{dead_loopback_port()}",
        client_id="c",
    )
    dead.save()
    response = admin_client.post(
        CHANGELIST,
        {"action": "test_connection_action", "_selected_action": [connector.pk, dead.pk]},
    )
    assert response.status_code == 302
    messages = {m.message: m.tags for m in get_messages(response.wsgi_request)}
    healthy = f"Contoso: healthy — issuer {fake_idp.issuer}, 2 signing key(s)."
    assert messages[healthy] == "success"
    [(failed, tags)] = [(m, t) for m, t in messages.items() if m.startswith("Dead:")]
    assert tags == "error"
    assert "not healthy" in failed
    assert "could not be reached" in failed


# -- read-only admin of identities and sessions ------------------------------------------


@pytest.fixture
def identity_and_session(connector: Connector) -> tuple[Identity, SSOSession]:
    user = get_user_model().objects.create_user("alice")
    identity = Identity.objects.create(
        connector=connector, issuer=connector.issuer, subject="sub-1", user=user
    )
    session = SSOSession.objects.create(
        connector=connector, sid="sid-1", subject="sub-1", session_key="k" * 32, user=user
    )
    return identity, session


@pytest.mark.parametrize("model", ["identity", "ssosession"])
def test_identities_and_sessions_cannot_be_added(
    admin_client: Client, identity_and_session: Any, model: str
) -> None:
    base = f"/admin/django_entra_sso/{model}/"
    assert admin_client.get(base + "add/").status_code == 403
    listing = admin_client.get(base)
    assert listing.status_code == 200
    assert f'href="{base}add/"' not in listing.content.decode()


def test_identity_cannot_be_changed(
    admin_client: Client, identity_and_session: tuple[Identity, SSOSession]
) -> None:
    identity, _session = identity_and_session
    url = f"/admin/django_entra_sso/identity/{identity.pk}/change/"
    view = admin_client.get(url)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    response = admin_client.post(url, {"subject": "someone-else", "issuer": "x"})
    assert response.status_code == 403
    identity.refresh_from_db()
    assert identity.subject == "sub-1"


def test_sso_session_cannot_be_changed_and_hides_the_session_key(
    admin_client: Client, identity_and_session: tuple[Identity, SSOSession]
) -> None:
    _identity, session = identity_and_session
    url = f"/admin/django_entra_sso/ssosession/{session.pk}/change/"
    view = admin_client.get(url)
    assert view.status_code == 200
    content = view.content.decode()
    assert 'name="_save"' not in content
    assert session.session_key not in content
    assert admin_client.post(url, {"sid": "other"}).status_code == 403
    session.refresh_from_db()
    assert session.sid == "sid-1"


# -- Japanese ------------------------------------------------------------------------


def test_admin_renders_in_japanese(admin_client: Client, acme: Connector) -> None:
    content = page(admin_client.get(change_url(acme), HTTP_ACCEPT_LANGUAGE="ja"))
    for text in (
        "SSO コネクター",
        "接続テスト",
        "クライアント シークレット",
        "以下を ID プロバイダーのアプリ登録にコピーしてください",
        "リダイレクト URI",
        "フロントチャネル ログアウト URL",
        "ID プロバイダーのアプリ登録から",
        "メールドメイン",
    ):
        assert text in content, text
    index = page(admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ja"))
    assert "企業向けシングルサインオン" in index


def test_test_connection_page_renders_in_japanese(
    admin_client: Client, connector: Connector
) -> None:
    content = page(admin_client.get(connection_test_url(connector), HTTP_ACCEPT_LANGUAGE="ja"))
    assert "接続テスト: Contoso" in content
    assert "正常: ディスカバリー文書と署名鍵を取得し、確認しました。" in content
    assert "署名鍵" in content
