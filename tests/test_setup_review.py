"""Found by a second read-only security review of the self-service setup links.

Each test failed before its fix, except ``…of_its_own_keys_people_under_its_own_origin``,
the working twin of the Microsoft-template refusal.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from django_entra_sso import providers
from django_entra_sso.models import Connector, EmailDomain, Identity
from django_entra_sso.setup import links as setup_links
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import (
    ENTRA_TEMPLATE,
    TENANT,
    entra_issuer,
    make_connector,
    make_entra_idp,
    signed_in_user,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def page(token: str) -> str:
    return f"/sso/setup/{token}/"


def link_for(connector: Connector) -> str:
    token, _link = setup_links.make_link(connector, created_by="tests")
    return token


def try_sign_in(client: Client, idp: FakeIdP, token: str, slug: str, **claims: Any) -> None:
    started = client.post(page(token), {"action": "try"})
    assert started.status_code == 302, started.content[:300]
    params = idp.authorize(started["Location"], **claims)
    back = client.get(f"/sso/callback/{slug}/", params)
    assert back.status_code == 302, back.content[:300]
    assert back["Location"] == page(token), back["Location"]
    client.get(back["Location"])


# -- 1. A link revives when the team switches its connector on and then off again ---------------


@override_settings(ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES=True)
def test_link_stays_dead_after_staff_enable_then_disable(client: Client, fake_idp: FakeIdP) -> None:
    connector = make_connector(fake_idp, "fabrikam", domain="fabrikam.com", enabled=False)
    token = link_for(connector)
    assert client.get(page(token)).status_code == 200
    # The site's team switches it on in the admin (e.g. after "Tell them I am done"):
    connector.enabled = True
    connector.save()
    assert client.get(page(token)).status_code == 404
    # Weeks... or hours later it is switched off for maintenance or an incident:
    connector.enabled = False
    connector.save()
    # README: "a link stops working when the connector is switched on [...] by your team".
    response = client.post(
        page(token),
        {
            "action": "save",
            "issuer": "https://idp.attacker.example",
            "client_id": "x",
            "client_secret": "y",
        },
    )
    connector.refresh_from_db()
    assert connector.issuer == fake_idp.issuer, "the old link rewrote a live connector's issuer"
    assert response.status_code == 404


# -- 2. SSRF: discovery endpoints with host names resolving to private addresses ----------------


def test_discovery_endpoints_resolving_to_private_addresses_are_not_fetched(
    client: Client, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = False
    real_getaddrinfo = socket.getaddrinfo
    addresses = {"idp.attacker.example": "93.184.216.34", "vault.corp.internal": "10.0.0.5"}

    def fake_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in addresses:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addresses[host], 443))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    fetched: list[str] = []
    discovery = {
        "issuer": "https://idp.attacker.example",
        "authorization_endpoint": "https://idp.attacker.example/authorize",
        "token_endpoint": "https://vault.corp.internal/v1/secret",
        "jwks_uri": "https://vault.corp.internal:8200/v1/sys/health",
    }

    def fake_send(method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
        fetched.append(url)
        if url.startswith("https://idp.attacker.example/"):
            return 200, json.dumps(discovery).encode()
        return 503, b'{"sealed": true}'  # what the internal service answered

    monkeypatch.setattr("django_entra_sso.provider_http._send", fake_send)
    connector = make_connector(None, "northwind", enabled=False, issuer="", client_id="")
    token = link_for(connector)
    saved = client.post(
        page(token),
        {
            "action": "save",
            "issuer": "https://idp.attacker.example",
            "client_id": "c",
            "client_secret": "s",
        },
    )
    assert saved.status_code == 200, saved.content[:500]  # the issuer itself is public
    body = client.post(page(token), {"action": "test"}).content.decode()
    internal = [url for url in fetched if "vault.corp.internal" in url]
    assert not internal, (
        f"the server fetched {internal}; the page says: " + (body[body.find("Not healthy") :][:200])
    )
    assert "vault.corp.internal is on this site" in body
    tried = client.post(page(token), {"action": "try"})
    # Refused before the browser is sent on: its code would be redeemed at the vault.
    assert tried.status_code == 302 and tried["Location"] == page(token)
    assert not [url for url in fetched if "vault.corp.internal" in url]


# -- 3. With REQUIRE_DOMAIN_VERIFICATION off, a link holder routes any unclaimed domain ----------


@override_settings(
    ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION=False, ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES=True
)
def test_link_added_domain_does_not_route_or_link_without_verification(
    client: Client, fake_idp: FakeIdP
) -> None:
    # The site's own staff sign in with a password; their domain is no connector's.
    admin = User.objects.create_user(
        "admin", "admin@shop.example.com", "pw", is_staff=True, is_superuser=True
    )
    connector = make_connector(fake_idp, "northwind", enabled=False, link_existing_by_email=True)
    token = link_for(connector)
    added = client.post(page(token), {"action": "add_domain", "domain": "shop.example.com"})
    # Unproved domains route sign-ins on this site: only its team adds them.
    assert added.status_code == 403
    assert not EmailDomain.objects.exists()
    assert b"add-domain-form" not in client.get(page(token)).content
    try_sign_in(client, fake_idp, token, "northwind", email="x@shop.example.com")
    client.post(page(token), {"action": "activate"})
    attacker = Client()
    started = attacker.post("/sso/login/", {"email": "admin@shop.example.com"})
    problems = []
    if started.status_code == 302 and started["Location"].startswith(fake_idp.issuer):
        problems.append("an unverified, link-added domain routes staff to the link holder's IdP")
        params = fake_idp.authorize(started["Location"], email="admin@shop.example.com", sub="m")
        attacker.get("/sso/callback/northwind/", params)
        user = signed_in_user(attacker)
        if user is not None and user.pk == admin.pk:
            problems.append("the link holder's IdP signed in as the site's superuser")
    assert not problems, problems


# -- 4. Entra multi-tenant issuer on a non-Microsoft host mints Microsoft identities ------------


VICTIM_OID = "00000000-0000-0000-0000-0000000000v1".replace("v", "a")


def victim_of_a_real_tenant() -> Any:
    """A live connector of a real Entra tenant, and its (staff) user."""
    victim_issuer = f"https://login.microsoftonline.com/{TENANT}/v2.0"
    contoso = make_connector(
        None, "contoso", provider="entra_id", issuer=victim_issuer, domain="contoso.com"
    )
    victim = User.objects.create_user("alice", "alice@contoso.com", is_staff=True)
    Identity.objects.create(
        connector=contoso, issuer=victim_issuer, subject=VICTIM_OID, tenant_id=TENANT, user=victim
    )
    return victim


def open_entra_connector_with_a_link() -> tuple[Connector, str]:
    """A connector the team prepared for "any work account" and sent a setup link for."""
    connector = make_connector(
        None,
        "partners",
        provider="entra_id",
        issuer="",
        client_id="",
        enabled=False,
        allow_any_tenant=True,
    )
    return connector, link_for(connector)


def save_as_organizations_endpoint(client: Client, token: str, idp: FakeIdP) -> None:
    """The link holder's server answers discovery at ``/organizations/v2.0`` and is saved."""
    idp.faults["/organizations/v2.0/.well-known/openid-configuration"] = Fault(
        body=json.dumps(idp.discovery()).encode()
    )
    saved = client.post(
        page(token),
        {
            "action": "save",
            "issuer": f"{idp.issuer}/organizations/v2.0",
            "client_id": idp.client_id,
            "client_secret": idp.client_secret,
        },
    )
    assert saved.status_code == 200, saved.content[:800]


@override_settings(ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES=True)
def test_link_holder_cannot_pose_as_microsofts_multi_tenant_endpoint(client: Client) -> None:
    """Their server names Microsoft's ``{tenantid}`` issuer template: refused, so their keys
    never sign tokens keyed like a real tenant's sign-ins (they were: the victim's account)."""
    victim_of_a_real_tenant()
    connector, token = open_entra_connector_with_a_link()
    idp = FakeIdP(issuer_override=ENTRA_TEMPLATE)
    try:
        save_as_organizations_endpoint(client, token, idp)
        tried = client.post(page(token), {"action": "try"})
        assert tried.status_code != 302 or not tried["Location"].startswith(idp.issuer)
        client.post(page(token), {"action": "activate"})
        assert not Connector.objects.get(pk=connector.pk).enabled
        assert not providers.issuer_from_discovery_matches(
            "entra_id", f"{idp.issuer}/organizations/v2.0", ENTRA_TEMPLATE
        )
        assert providers.issuer_from_discovery_matches(
            "entra_id", "https://login.microsoftonline.com/organizations/v2.0", ENTRA_TEMPLATE
        )
    finally:
        idp.close()


@override_settings(ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES=True)
def test_a_multi_tenant_endpoint_of_its_own_keys_people_under_its_own_origin(
    client: Client,
) -> None:
    """Entra-shaped on its own host, it works, and its tenants are its own: the same
    tenant and object IDs never reach a real Microsoft tenant's account."""
    victim = victim_of_a_real_tenant()
    connector, token = open_entra_connector_with_a_link()
    idp = make_entra_idp()
    try:
        save_as_organizations_endpoint(client, token, idp)
        Connector.objects.filter(pk=connector.pk).update(response_mode="query")
        claims = {"tid": TENANT, "oid": VICTIM_OID, "email": "mallory@attacker.example"}
        try_sign_in(client, idp, token, "partners", **claims)
        client.post(page(token), {"action": "activate"})
        assert Connector.objects.get(pk=connector.pk).enabled
        attacker = Client()
        started = attacker.get("/sso/login/", {"connector": "partners"})
        attacker.get("/sso/callback/partners/", idp.authorize(started["Location"], **claims))
        user = signed_in_user(attacker)
        assert user is not None and user.pk != victim.pk
        assert Identity.objects.get(user=user).issuer == entra_issuer(idp, TENANT)
    finally:
        idp.close()


# -- 5. site_owner mode: values change after "Tell them I am done" and the team is not told -----


@override_settings(
    ENTRA_SSO_SETUP_ACTIVATION="site_owner",
    ENTRA_SSO_SETUP_NOTIFY_EMAILS=["sso-team@bookstore.example"],
    ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES=True,
)
def test_values_changed_after_an_activation_request_do_not_go_live_unnoticed(
    client: Client, fake_idp: FakeIdP
) -> None:
    from django.core import mail

    connector = make_connector(fake_idp, "fabrikam", domain="fabrikam.com", enabled=False)
    token = link_for(connector)
    try_sign_in(client, fake_idp, token, "fabrikam", email="alice@fabrikam.com")
    client.post(page(token), {"action": "activate"})
    assert len(mail.outbox) == 1  # "tried signing in successfully. Enable the connector"
    changed = client.post(
        page(token),
        {
            "action": "save",
            "issuer": "https://idp.other.example",
            "client_id": "other",
            "client_secret": "other",
        },
    )
    connector.refresh_from_db()
    refused = changed.status_code >= 400 or connector.issuer == fake_idp.issuer
    told_again = len(mail.outbox) > 1
    # The team follows the mail and switches it on in the admin, which says nothing of it:
    assert refused or told_again, (
        "values saved after the request go live with the team's next click, untried"
    )
