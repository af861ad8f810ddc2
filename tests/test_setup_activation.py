"""Self-service setup, second part: try signing in, activate, prove domains by DNS, tell the team.

The DNS lookups go to a real DNS server (``dnslib``'s) the tests start on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client, override_settings

from django_entra_sso.models import Connector, EmailDomain, SetupEvent, SetupLink, SSOSession
from django_entra_sso.setup import links as setup_links
from django_entra_sso.signals import sso_setup_activated, sso_setup_activation_requested
from tests.dnsserver import LoopbackDNSServer, running_dns_server
from tests.fakeidp import FakeIdP
from tests.helpers import make_connector

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def _loopback_identity_providers(settings: Any) -> None:
    # The fake IdPs listen on 127.0.0.1; a customer's page refuses such addresses by default
    # (tested below with the setting off).
    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture(scope="module")
def dns_server() -> Iterator[LoopbackDNSServer]:
    with running_dns_server() as server:
        yield server


@pytest.fixture
def resolver(dns_server: LoopbackDNSServer, settings: Any) -> LoopbackDNSServer:
    dns_server.clear()
    settings.ENTRA_SSO_DNS_NAMESERVERS = [dns_server.address]
    settings.ENTRA_SSO_DNS_TIMEOUT = 1.0
    return dns_server


@pytest.fixture
def fresh(db: Any, fake_idp: FakeIdP) -> Connector:
    """A connector the site owner made for a new customer: disabled, one verified domain."""
    connector = make_connector(fake_idp, "fabrikam", name="Fabrikam", domain="fabrikam.com")
    connector.enabled = False
    connector.save()
    return connector


def page(token: str) -> str:
    return f"/sso/setup/{token}/"


def link_for(connector: Connector) -> str:
    token, _link = setup_links.make_link(connector, created_by="tests")
    return token


def actions(connector: Connector) -> list[str]:
    return list(
        SetupEvent.objects.filter(connector=connector)
        .order_by("pk")
        .values_list("action", flat=True)
    )


def try_sign_in(client: Client, fake_idp: FakeIdP, token: str, **claims: Any) -> Any:
    """Press "Try signing in", sign in at the IdP, come back; the setup page's response."""
    started = client.post(page(token), {"action": "try"})
    assert started.status_code == 302, started.content[:300]
    assert started["Location"].startswith(fake_idp.issuer), started["Location"]
    params = fake_idp.authorize(started["Location"], **claims)
    back = client.get("/sso/callback/fabrikam/", params)
    assert back.status_code == 302, back.content[:300]
    assert back["Location"] == page(token)
    return client.get(back["Location"])


def nobody_signed_in(client: Client) -> None:
    assert not User.objects.exists(), "a trial made a Django user"
    assert not SSOSession.objects.exists(), "a trial indexed an SSO session"
    assert "_auth_user_id" not in client.session, "a trial logged the browser in"


# -- "Try signing in" ---------------------------------------------------------------------------


def test_a_trial_shows_what_was_received_and_signs_no_one_in(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    body = try_sign_in(
        client, fake_idp, token, email="alice@fabrikam.com", groups=["g-readers"]
    ).content.decode()
    assert 'id="trial-result"' in body and "This is what this site received" in body
    assert "alice@fabrikam.com" in body
    assert "fabrikam.com is one of this connector&#x27;s verified domains." in body
    assert re.search(r'id="trial-groups">.*g-readers', body, re.S)
    nobody_signed_in(client)
    link = SetupLink.objects.get()
    assert link.tried_at is not None
    assert actions(fresh)[-1] == "tried"
    assert "signed in" in SetupEvent.objects.filter(action="tried").get().detail
    # Shown once: a reload shows the page without it.
    assert 'id="trial-result"' not in client.get(page(token)).content.decode()


def test_a_trial_names_a_domain_that_is_not_the_connectors(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    body = try_sign_in(
        client, fake_idp, link_for(fresh), email="eve@elsewhere.example"
    ).content.decode()
    assert "elsewhere.example is not one of this connector&#x27;s email domains" in body
    nobody_signed_in(client)


def test_a_refused_trial_says_why_on_the_setup_page(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    started = client.post(page(token), {"action": "try"})
    state = dict(re.findall(r"[?&](state)=([^&]+)", started["Location"]))["state"]
    back = client.get(
        "/sso/callback/fabrikam/",
        {"state": state, "error": "access_denied", "error_description": "user said no"},
    )
    assert back["Location"] == page(token)
    body = client.get(page(token)).content.decode()
    assert "The trial sign-in did not work" in body and "Sign-in was cancelled" in body
    assert SetupLink.objects.get().tried_at is None
    assert "failed (access_denied)" in SetupEvent.objects.get(action="tried").detail
    nobody_signed_in(client)


def test_a_trial_answer_cannot_be_replayed_as_a_sign_in(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    started = client.post(page(token), {"action": "try"})
    params = fake_idp.authorize(started["Location"], email="alice@fabrikam.com")
    client.get("/sso/callback/fabrikam/", params)
    again = client.get("/sso/callback/fabrikam/", params)
    assert again.status_code == 400
    nobody_signed_in(client)


def test_a_disabled_connector_still_refuses_real_sign_ins(client: Client, fresh: Connector) -> None:
    response = client.post("/sso/login/", {"email": "alice@fabrikam.com"})
    assert "switched off" in response.content.decode()
    assert client.get("/sso/login/", {"connector": "fabrikam"}).status_code == 403


def test_a_trial_through_a_revoked_link_ends_on_the_invalid_link_page(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    started = client.post(page(token), {"action": "try"})
    params = fake_idp.authorize(started["Location"], email="alice@fabrikam.com")
    setup_links.revoke_links(fresh, revoked_by="tests")
    back = client.get("/sso/callback/fabrikam/", params)
    assert back.status_code == 404
    assert "This setup link is not valid any more" in back.content.decode()
    assert SetupLink.objects.get().tried_at is None
    nobody_signed_in(client)


# -- "Activate" ------------------------------------------------------------------------------------


def test_activate_needs_a_successful_trial(client: Client, fresh: Connector) -> None:
    token = link_for(fresh)
    body = client.get(page(token)).content.decode()
    assert re.search(r'id="setup-activate" disabled', body)
    response = client.post(page(token), {"action": "activate"})
    assert response.status_code == 400
    assert "Try signing in successfully first" in response.content.decode()
    fresh.refresh_from_db()
    assert not fresh.enabled


@override_settings(ENTRA_SSO_SETUP_NOTIFY_EMAILS=["sso-team@bookstore.example"])
def test_activating_enables_the_connector_ends_the_link_and_tells_the_team(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    heard: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        heard.append(kwargs)

    sso_setup_activated.connect(receiver)
    try:
        token = link_for(fresh)
        try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
        response = client.post(page(token), {"action": "activate"})
    finally:
        sso_setup_activated.disconnect(receiver)
    assert response.status_code == 200
    assert "Single sign-on is on for Fabrikam" in response.content.decode()
    fresh.refresh_from_db()
    assert fresh.enabled
    assert SetupLink.objects.get().activated_at is not None
    assert client.get(page(token)).status_code == 404  # one-time: used up
    assert actions(fresh)[-1] == "activated"
    assert [h["connector"].slug for h in heard] == ["fabrikam"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sso-team@bookstore.example"]
    assert "activated" in mail.outbox[0].subject and "fabrikam" in mail.outbox[0].body
    # And now a person of the verified domain signs in for real.
    started = client.post("/sso/login/", {"email": "bob@fabrikam.com"})
    params = fake_idp.authorize(started["Location"], email="bob@fabrikam.com", sub="bob")
    assert client.get("/sso/callback/fabrikam/", params).status_code == 302
    assert User.objects.get().email == "bob@fabrikam.com"


@override_settings(
    ENTRA_SSO_SETUP_ACTIVATION="site_owner",
    ENTRA_SSO_SETUP_NOTIFY_EMAILS=["sso-team@bookstore.example"],
)
def test_a_site_owner_can_keep_activation_for_themselves(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    heard: list[Any] = []

    def receiver(**kwargs: Any) -> None:
        heard.append(kwargs)

    sso_setup_activation_requested.connect(receiver)
    try:
        token = link_for(fresh)
        try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
        response = client.post(page(token), {"action": "activate"})
        client.post(page(token), {"action": "activate"})  # pressed twice: told once
    finally:
        sso_setup_activation_requested.disconnect(receiver)
    assert response.status_code == 200
    assert "team has been told" in response.content.decode()
    fresh.refresh_from_db()
    assert not fresh.enabled
    link = SetupLink.objects.get()
    assert link.activation_requested_at is not None and link.activated_at is None
    assert actions(fresh).count("requested") == 1
    assert len(heard) == 1 and len(mail.outbox) == 1
    assert "asks to activate" in mail.outbox[0].subject


def test_changing_the_values_after_a_trial_needs_a_new_trial(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
    client.post(
        page(token),
        {
            "action": "save",
            "issuer": fresh.issuer,
            "client_id": "another-client",
            "client_secret": "",
        },
    )
    assert SetupLink.objects.get().tried_at is None
    assert client.post(page(token), {"action": "activate"}).status_code == 400


def test_a_failing_mail_server_does_not_undo_an_activation(
    client: Client, fake_idp: FakeIdP, fresh: Connector, settings: Any
) -> None:
    settings.ENTRA_SSO_SETUP_NOTIFY_EMAILS = ["sso-team@bookstore.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    token = link_for(fresh)
    try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
    assert client.post(page(token), {"action": "activate"}).status_code == 200
    fresh.refresh_from_db()
    assert fresh.enabled


# -- domains: added by the customer, proved by DNS -------------------------------------------------


def test_a_customer_adds_a_domain_which_starts_unverified(client: Client, fresh: Connector) -> None:
    token = link_for(fresh)
    response = client.post(page(token), {"action": "add_domain", "domain": "Fabrikam.CO.JP"})
    assert response.status_code == 200
    added = EmailDomain.objects.get(domain="fabrikam.co.jp")
    assert added.connector == fresh and not added.is_verified
    body = response.content.decode()
    assert f"entra-sso-verification={added.verification_token}" in body
    assert "_entra-sso.fabrikam.co.jp" in body
    assert actions(fresh)[-1] == "domain_added"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gmail.com", "public mail service"),
        ("outlook.com", "public mail service"),
        ("fabrikam.com", "already on the list"),
        ("not a domain", "Enter a full domain with a dot"),
        ("https://evil.example", "not a web address"),
        ("x" * 300, "at most 253"),
    ],
)
def test_domains_a_customer_may_not_add(
    client: Client, fake_idp: FakeIdP, fresh: Connector, value: str, message: str
) -> None:
    make_connector(fake_idp, "contoso", domain="contoso.com")
    before = set(EmailDomain.objects.values_list("domain", flat=True))
    response = client.post(page(link_for(fresh)), {"action": "add_domain", "domain": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert set(EmailDomain.objects.values_list("domain", flat=True)) == before


def test_an_unverified_domain_routes_no_sign_in_until_dns_proves_it(
    client: Client, fake_idp: FakeIdP, fresh: Connector, resolver: LoopbackDNSServer
) -> None:
    token = link_for(fresh)
    client.post(page(token), {"action": "add_domain", "domain": "fabrikam.co.jp"})
    domain = EmailDomain.objects.get(domain="fabrikam.co.jp")
    Connector.objects.filter(pk=fresh.pk).update(enabled=True)  # even switched on:
    refused = client.post("/sso/login/", {"email": "kei@fabrikam.co.jp"})
    assert "Single sign-on is not set up for fabrikam.co.jp" in refused.content.decode()
    Connector.objects.filter(pk=fresh.pk).update(enabled=False)

    resolver.set_txt("fabrikam.co.jp", "v=spf1 -all")
    resolver.set_txt(
        "_entra-sso.fabrikam.co.jp", f"entra-sso-verification={domain.verification_token}"
    )
    checked = client.post(page(token), {"action": "verify_domain", "domain_id": str(domain.pk)})
    assert checked.status_code == 200
    domain.refresh_from_db()
    assert domain.is_verified
    assert domain.verification_method == "dns"
    assert "_entra-sso.fabrikam.co.jp" in domain.verified_by
    assert (
        "verified at _entra-sso.fabrikam.co.jp"
        in SetupEvent.objects.filter(action="domain_checked").get().detail
    )
    Connector.objects.filter(pk=fresh.pk).update(enabled=True)
    assert client.post("/sso/login/", {"email": "kei@fabrikam.co.jp"}).status_code == 302


def test_a_missing_or_wrong_record_leaves_the_domain_unverified(
    client: Client, fresh: Connector, resolver: LoopbackDNSServer
) -> None:
    token = link_for(fresh)
    client.post(page(token), {"action": "add_domain", "domain": "fabrikam.co.jp"})
    domain = EmailDomain.objects.get(domain="fabrikam.co.jp")
    resolver.set_txt("fabrikam.co.jp", "entra-sso-verification=somebody-elses-token")
    response = client.post(page(token), {"action": "verify_domain", "domain_id": str(domain.pk)})
    assert "its token is not this domain" in response.content.decode()
    domain.refresh_from_db()
    assert not domain.is_verified
    assert "no record" in SetupEvent.objects.get(action="domain_checked").detail


def test_a_dns_outage_is_said_and_verifies_nothing(
    client: Client, fresh: Connector, resolver: LoopbackDNSServer
) -> None:
    token = link_for(fresh)
    client.post(page(token), {"action": "add_domain", "domain": "fabrikam.co.jp"})
    domain = EmailDomain.objects.get(domain="fabrikam.co.jp")
    resolver.fail_at("fabrikam.co.jp")
    resolver.fail_at("_entra-sso.fabrikam.co.jp")
    response = client.post(page(token), {"action": "verify_domain", "domain_id": str(domain.pk)})
    assert response.status_code == 200
    domain.refresh_from_db()
    assert not domain.is_verified
    assert "DNS unreachable" in SetupEvent.objects.get(action="domain_checked").detail


@pytest.mark.parametrize("domain_id", ["", "abc", "-1", "9" * 30, "{other}", "¹", "٣", "1e3"])
def test_a_link_can_only_verify_or_remove_its_own_domains(
    client: Client, fake_idp: FakeIdP, fresh: Connector, domain_id: str
) -> None:
    other = make_connector(fake_idp, "contoso", domain="contoso.com")
    theirs = other.domains.get()
    theirs.verified_at = None
    theirs.save()
    value = domain_id.format(other=theirs.pk)
    token = link_for(fresh)
    for action in ("verify_domain", "remove_domain"):
        response = client.post(page(token), {"action": action, "domain_id": value})
        assert response.status_code == 400
    assert EmailDomain.objects.filter(pk=theirs.pk, verified_at__isnull=True).exists()


def test_only_unverified_domains_can_be_removed_through_a_link(
    client: Client, fresh: Connector
) -> None:
    token = link_for(fresh)
    verified = fresh.domains.get()
    assert (
        client.post(
            page(token), {"action": "remove_domain", "domain_id": str(verified.pk)}
        ).status_code
        == 400
    )
    client.post(page(token), {"action": "add_domain", "domain": "typo.example"})
    typo = EmailDomain.objects.get(domain="typo.example")
    assert (
        client.post(page(token), {"action": "remove_domain", "domain_id": str(typo.pk)}).status_code
        == 200
    )
    assert set(EmailDomain.objects.values_list("domain", flat=True)) == {"fabrikam.com"}
    assert actions(fresh)[-1] == "domain_removed"


def test_a_domain_added_twice_at_once_is_a_clear_refusal(fresh: Connector) -> None:
    from django_entra_sso.setup.domains import AddDomainForm

    form = AddDomainForm(fresh, {"domain": "fabrikam.co.jp"})
    assert form.is_valid()
    EmailDomain.objects.create(domain="fabrikam.co.jp", connector=fresh)  # the other tab
    assert form.save() is None
    assert "already on the list" in str(form.errors["domain"])
    assert EmailDomain.objects.filter(domain="fabrikam.co.jp").count() == 1


def test_a_claim_on_someone_elses_domain_blocks_nobody_and_reveals_nothing(
    client: Client, fake_idp: FakeIdP, fresh: Connector, resolver: LoopbackDNSServer
) -> None:
    squatter = make_connector(fake_idp, "squatter", enabled=False)
    owner = make_connector(fake_idp, "northwind", enabled=False)
    # Added unverified by whoever asks, exactly as a free domain would be: no oracle.
    squatted = client.post(
        page(link_for(squatter)), {"action": "add_domain", "domain": "northwind.example"}
    )
    assert squatted.status_code == 200
    # The real owner adds it too, publishes its record, and proves it.
    token = link_for(owner)
    assert (
        client.post(
            page(token), {"action": "add_domain", "domain": "northwind.example"}
        ).status_code
        == 200
    )
    theirs = EmailDomain.objects.get(domain="northwind.example", connector=owner)
    resolver.set_txt(
        "_entra-sso.northwind.example", f"entra-sso-verification={theirs.verification_token}"
    )
    client.post(page(token), {"action": "verify_domain", "domain_id": str(theirs.pk)})
    theirs.refresh_from_db()
    assert theirs.is_verified
    # The squatter's claim can never be verified now, even with a record of its own.
    claim = EmailDomain.objects.get(domain="northwind.example", connector=squatter)
    resolver.set_txt("northwind.example", f"entra-sso-verification={claim.verification_token}")
    refused = client.post(
        page(link_for(squatter)), {"action": "verify_domain", "domain_id": str(claim.pk)}
    )
    assert "already verified by another organization" in refused.content.decode()
    claim.refresh_from_db()
    assert not claim.is_verified
    assert (
        "verified by another connector"
        in SetupEvent.objects.filter(connector=squatter, action="domain_checked").get().detail
    )


def test_staff_cannot_give_a_proved_domain_to_a_second_connector(
    client: Client, fake_idp: FakeIdP
) -> None:
    make_connector(fake_idp, "contoso", domain="contoso.com")  # verified
    second = make_connector(fake_idp, "fabrikam")
    _admin(client)
    response = _post_admin(client, second, add="contoso.com")
    assert response.status_code == 200
    assert "already belongs to a connector" in response.content.decode()
    assert EmailDomain.objects.filter(domain="contoso.com").count() == 1


def test_an_unknown_action_is_a_clear_400(client: Client, fresh: Connector) -> None:
    assert client.post(page(link_for(fresh)), {"action": "drop_tables"}).status_code == 400


# -- the rule: a domain restricts as soon as it is added, grants once verified ----------------------


def test_an_unverified_domain_vouches_for_no_email_and_links_no_account(
    client: Client, fake_idp: FakeIdP
) -> None:
    connector = make_connector(fake_idp, "contoso")
    EmailDomain.objects.create(domain="contoso.com", connector=connector)  # unverified
    authorize = client.get("/sso/login/", {"connector": "contoso"})["Location"]
    params = fake_idp.authorize(authorize, email="alice@contoso.com")
    response = client.get("/sso/callback/contoso/", params)
    assert response.status_code == 403
    assert b"Reference: wrong_domain" in response.content
    assert not User.objects.exists()


def test_another_connectors_unverified_claim_locks_no_one_out(
    client: Client, fake_idp: FakeIdP
) -> None:
    make_connector(fake_idp, "contoso", domain="contoso.com")
    squatter = make_connector(fake_idp, "squatter")
    EmailDomain.objects.create(domain="contoso.net", connector=squatter)  # unverified
    owner = Connector.objects.get(slug="contoso")
    EmailDomain.objects.create(domain="contoso.org", connector=owner, verified_at=None)
    started = client.post("/sso/login/", {"email": "alice@contoso.com"})
    params = fake_idp.authorize(started["Location"], email="alice@contoso.com")
    assert client.get("/sso/callback/contoso/", params).status_code == 302
    assert User.objects.filter(email="alice@contoso.com").exists()


@override_settings(ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION=False)
def test_a_site_can_keep_routing_unverified_domains(client: Client, fake_idp: FakeIdP) -> None:
    connector = make_connector(fake_idp, "contoso")
    EmailDomain.objects.create(domain="contoso.com", connector=connector)
    assert client.post("/sso/login/", {"email": "alice@contoso.com"}).status_code == 302


# -- the site's side: admin, command, migration -----------------------------------------------------


def _add_tailspin(fake_idp: FakeIdP, domain: str) -> None:
    """``sso_connector add tailspin`` at the fake IdP, with one email domain."""
    call_command(
        "sso_connector",
        "add",
        "tailspin",
        *("--issuer", fake_idp.issuer, "--client-id", "c", "--client-secret", "s"),
        *("--domain", domain),
    )


def test_domains_added_with_the_command_are_verified_by_hand_and_listed(
    fake_idp: FakeIdP,
) -> None:
    _add_tailspin(fake_idp, "tailspin.example")
    domain = EmailDomain.objects.get(domain="tailspin.example")
    assert domain.is_verified and domain.verification_method == "manual"
    assert domain.verified_by == "sso_connector command"
    EmailDomain.objects.create(domain="tailspin.test", connector=domain.connector)
    out = StringIO()
    call_command("sso_connector", "list", stdout=out)
    assert "tailspin.example, tailspin.test (unverified)" in out.getvalue()


def test_the_command_refuses_a_public_mail_domain(fake_idp: FakeIdP) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="public mail service"):
        _add_tailspin(fake_idp, "GMail.com")
    assert not Connector.objects.exists()


def _admin(client: Client) -> None:
    User.objects.create_superuser("root", "root@bookstore.example", "pw")
    client.login(username="root", password="pw")


def _change_form(connector: Connector, **domains: Any) -> dict[str, Any]:
    rows = list(connector.domains.all())
    data = {
        "name": connector.name,
        "slug": connector.slug,
        "provider": connector.provider,
        "protocol": connector.protocol,
        "issuer": connector.issuer,
        "client_id": connector.client_id,
        "client_secret": "",
        "extra_scopes": "",
        "enabled": "on",
        "domains-TOTAL_FORMS": str(len(rows) + 1),
        "domains-INITIAL_FORMS": str(len(rows)),
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data[f"domains-{i}-id"] = str(row.pk)
        data[f"domains-{i}-connector"] = str(connector.pk)
        data[f"domains-{i}-domain"] = row.domain
        if domains.get("mark_verified") == row.domain:
            data[f"domains-{i}-mark_verified"] = "on"
    new = domains.get("add")
    if new:
        data[f"domains-{len(rows)}-domain"] = new
        data[f"domains-{len(rows)}-connector"] = str(connector.pk)
    return data


def _post_admin(client: Client, connector: Connector, **domains: Any) -> Any:
    """Post the connector's change form as the browser would, with these domain edits."""
    url = f"/admin/django_entra_sso/connector/{connector.pk}/change/"
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name, value in form.initial.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None and not isinstance(value, (list, dict)):
            data[name] = value
    data.update(_change_form(connector, **domains))
    return client.post(url, data)


def test_staff_vouch_for_domains_they_add_and_can_mark_a_customers_domain_verified(
    client: Client, fake_idp: FakeIdP
) -> None:
    connector = make_connector(fake_idp, "contoso")
    EmailDomain.objects.create(domain="contoso.net", connector=connector)  # a customer's
    _admin(client)
    page_body = client.get(
        f"/admin/django_entra_sso/connector/{connector.pk}/change/"
    ).content.decode()
    assert "Not verified: routes no sign-ins" in page_body
    response = _post_admin(client, connector, add="contoso.com")
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else ""
    )
    added = EmailDomain.objects.get(domain="contoso.com")
    assert added.is_verified and added.verified_by == "by root"
    assert not EmailDomain.objects.get(domain="contoso.net").is_verified
    _post_admin(client, connector, mark_verified="contoso.net")
    marked = EmailDomain.objects.get(domain="contoso.net")
    assert marked.is_verified and marked.verification_method == "manual"


def test_the_admin_refuses_a_public_mail_domain(client: Client, fake_idp: FakeIdP) -> None:
    connector = make_connector(fake_idp, "contoso")
    _admin(client)
    response = _post_admin(client, connector, add="yahoo.co.jp")
    assert response.status_code == 200
    assert "public mail service" in response.content.decode()
    assert not EmailDomain.objects.exists()


# -- abuse -------------------------------------------------------------------------------------------


def test_page_views_through_one_link_are_limited(
    client: Client, fresh: Connector, one_rate_window: None
) -> None:
    token = link_for(fresh)
    statuses = [client.get(page(token)).status_code for _ in range(setup_links.GET_LIMIT + 1)]
    assert statuses[:-1] == [200] * setup_links.GET_LIMIT
    assert statuses[-1] == 429


def test_a_network_trying_made_up_links_is_stopped_but_working_links_are_not(
    client: Client, fresh: Connector, django_assert_num_queries: Any, one_rate_window: None
) -> None:
    token = link_for(fresh)
    for i in range(setup_links.BAD_TOKEN_LIMIT):
        assert client.get(page(f"made-up-token-number-{i:04d}-xxxxxxxx")).status_code == 404
    with django_assert_num_queries(1):  # the token's lookup; nothing else
        assert client.get(page("made-up-token-after-the-limit-xxxxx")).status_code == 429
    # A working link from that network (one proxy, many customers) still works.
    assert client.get(page(token)).status_code == 200
    assert (
        Client(REMOTE_ADDR="198.51.100.7").get(page("made-up-token-elsewhere-xxxxxxx")).status_code
        == 404
    )


# -- SAML connectors try the same way ----------------------------------------------------------------


def test_a_saml_trial_shows_the_attributes_and_signs_no_one_in(client: Client, db: Any) -> None:
    from tests.saml_fake_idp import (
        FakeSAMLIdP,
        post_form_value,
        read_redirect_request,
        request_id,
    )

    idp = FakeSAMLIdP()
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        provider="oidc",
        saml_metadata_xml=idp.metadata_xml(),
        enabled=False,
    )
    token = link_for(connector)
    started = client.post(page(token), {"action": "try"})
    assert started.status_code == 302
    xml, params = read_redirect_request(started["Location"])
    answer = idp.response(
        destination="http://testserver/sso/saml/acs/acme/",
        audience="http://testserver/sso/saml/metadata/acme/",
        in_response_to=request_id(xml),
        attributes={"email": ["alice@acme.test"], "groups": ["readers"]},
    )
    posted = client.post(
        "/sso/saml/acs/acme/",
        {"SAMLResponse": post_form_value(answer), "RelayState": params["RelayState"]},
    )
    back = client.get(posted["Location"])
    assert back.status_code == 302 and back["Location"] == page(token)
    body = client.get(page(token)).content.decode()
    assert "This is what this site received" in body and "alice@acme.test" in body
    assert "This connector has no email domains yet." in body
    nobody_signed_in(client)
    assert SetupLink.objects.get().tried_at is not None


# -- certificate credentials: the certificate to upload, on the setup page -----------------------


def test_a_certificate_connector_offers_its_certificate_and_asks_no_secret(
    client: Client, fake_idp: FakeIdP
) -> None:
    from django_entra_sso.oidc.credentials import active_key, start_rotation

    connector = make_connector(
        fake_idp, "cyberdyne", client_auth="private_key_jwt", client_secret="", enabled=False
    )
    token = link_for(connector)
    body = client.get(page(token)).content.decode()
    key = active_key(connector)
    assert 'id="setup-certificates"' in body
    assert 'name="client_secret"' not in body
    download = client.get(page(token), {"certificate": key.kid})
    assert download.status_code == 200
    assert download["Content-Type"] == "application/x-pem-file"
    assert download.content.decode() == key.certificate
    assert "BEGIN CERTIFICATE" in key.certificate and "PRIVATE" not in download.content.decode()
    # During a rotation both are offered; a key of another connector or a made-up one is not.
    upcoming = start_rotation(connector)
    assert client.get(page(token), {"certificate": upcoming.kid}).status_code == 200
    other = make_connector(fake_idp, "skynet", client_auth="private_key_jwt", client_secret="")
    assert client.get(page(token), {"certificate": active_key(other).kid}).status_code == 404
    assert client.get(page(token), {"certificate": "x" * 5000}).status_code == 404


def test_a_secret_connector_offers_no_certificate(client: Client, fresh: Connector) -> None:
    body = client.get(page(link_for(fresh))).content.decode()
    assert 'id="setup-certificates"' not in body and 'name="client_secret"' in body
    assert client.get(page(link_for(fresh)), {"certificate": "anything"}).status_code == 404


# -- found in review: a live connector, races, prefixes, logs, private addresses ----------------


def test_a_link_cannot_be_made_for_a_connector_that_is_on(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    from django.core.management import CommandError

    Connector.objects.filter(pk=fresh.pk).update(enabled=True)
    fresh.refresh_from_db()
    with pytest.raises(setup_links.ConnectorIsLive, match="switched on"):
        setup_links.make_link(fresh)
    with pytest.raises(CommandError, match="switched on"):
        call_command("sso_connector", "invite", "fabrikam", stdout=StringIO())
    _admin(client)
    response = client.post(f"/admin/django_entra_sso/connector/{fresh.pk}/setup-link/", follow=True)
    assert "switched on" in response.content.decode()
    assert not SetupLink.objects.exists()


@override_settings(ENTRA_SSO_SETUP_ACTIVATION="site_owner")
def test_a_link_stops_working_once_the_site_switches_the_connector_on(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
    client.post(page(token), {"action": "activate"})  # "tell them I am done"
    Connector.objects.filter(pk=fresh.pk).update(enabled=True)  # the site's team
    assert client.get(page(token)).status_code == 404
    changed = client.post(
        page(token),
        {"action": "save", "issuer": fresh.issuer, "client_id": "later", "client_secret": ""},
    )
    assert changed.status_code == 404
    fresh.refresh_from_db()
    assert fresh.client_id == fake_idp.client_id


@override_settings(ENTRA_SSO_SETUP_ACTIVATION="site_owner")
def test_changing_the_values_after_asking_withdraws_the_request(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
    client.post(page(token), {"action": "activate"})
    assert SetupLink.objects.get().activation_requested_at is not None
    client.post(
        page(token),
        {"action": "save", "issuer": fresh.issuer, "client_id": "untried", "client_secret": ""},
    )
    link = SetupLink.objects.get()
    assert link.activation_requested_at is None and link.tried_at is None


def test_values_changed_during_a_trial_are_not_what_activate_turns_on(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    token = link_for(fresh)
    started = client.post(page(token), {"action": "try"})
    params = fake_idp.authorize(started["Location"], email="alice@fabrikam.com")
    # Another tab saves other values while this trial is at the IdP.
    Connector.objects.filter(pk=fresh.pk).update(saml_metadata_url="https://other.example/m")
    assert client.get("/sso/callback/fabrikam/", params)["Location"] == page(token)
    assert SetupLink.objects.get().tried_at is not None
    response = client.post(page(token), {"action": "activate"})
    assert response.status_code == 400
    fresh.refresh_from_db()
    assert not fresh.enabled
    # Tried again with the values as they are now: Activate works.
    try_sign_in(client, fake_idp, token, email="alice@fabrikam.com")
    assert client.post(page(token), {"action": "activate"}).status_code == 200


def test_a_trial_works_when_the_site_runs_under_a_url_prefix(
    client: Client, fake_idp: FakeIdP, fresh: Connector
) -> None:
    from django.urls import clear_script_prefix, set_script_prefix

    token = link_for(fresh)
    set_script_prefix("/shop/")  # what the WSGI handler does for SCRIPT_NAME=/shop
    try:
        started = client.post(page(token), {"action": "try"})
        assert (
            "redirect_uri=http%3A%2F%2Ftestserver%2Fshop%2Fsso%2Fcallback" in (started["Location"])
        )
        params = fake_idp.authorize(started["Location"], email="alice@fabrikam.com")
        back = client.get("/sso/callback/fabrikam/", params)
    finally:
        clear_script_prefix()
    assert back["Location"] == "/shop" + page(token)
    assert SetupLink.objects.get().tried_at is not None


def test_a_working_token_never_reaches_the_request_log(
    client: Client,
    fresh: Connector,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: Any,
    one_rate_window: None,
) -> None:
    import logging

    token = link_for(fresh)
    monkeypatch.setattr(setup_links, "POST_LIMIT", 1)
    caplog.set_level(logging.WARNING, logger="django.request")
    assert client.post(page(token), {"action": "save", "issuer": "nope"}).status_code == 400
    assert client.post(page(token), {"action": "test"}).status_code == 429
    assert client.get(page(token), {"certificate": "nope"}).status_code == 404
    messages = [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert len(messages) == 3, messages
    assert all("/sso/setup/…/" in m and token not in m for m in messages), messages


def test_a_500_mailed_to_admins_does_not_carry_the_token(
    fresh: Connector, monkeypatch: Any, settings: Any
) -> None:
    from django_entra_sso.setup import guides

    settings.ADMINS = [("Site owner", "owner@example.com")]
    token = link_for(fresh)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug on the setup page")

    monkeypatch.setattr(guides, "steps_for", broken)
    client = Client(raise_request_exception=False)
    referer = "http://testserver" + page(token)
    assert client.get(page(token), HTTP_REFERER=referer).status_code == 500
    [report] = mail.outbox
    html = report.alternatives[0][0] if report.alternatives else ""
    assert "a bug on the setup page" in report.body and "/sso/setup/…/" in report.body
    for text in (report.subject, report.body, html):
        assert token not in text


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:6379/internal",
        "https://10.1.2.3:8443/x",
        "https://192.168.0.10/tenant/v2.0",
        "https://169.254.169.254/latest",
        "https://[::1]:8443/x",
        "https://localhost/x",
        "https://idp.localhost/x",
    ],
)
def test_a_customer_cannot_point_the_site_at_its_own_network(
    client: Client, fresh: Connector, settings: Any, issuer: str
) -> None:
    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = False
    response = client.post(
        page(link_for(fresh)),
        {"action": "save", "issuer": issuer, "client_id": "c", "client_secret": "s"},
    )
    assert response.status_code == 400
    assert "private network" in response.content.decode()
    fresh.refresh_from_db()
    assert fresh.issuer != issuer


def test_a_name_that_resolves_to_a_private_address_is_refused_too(
    client: Client, fresh: Connector, settings: Any, monkeypatch: Any
) -> None:
    import socket

    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = False
    answers = {
        "intranet.fabrikam.example": "10.0.0.7",
        "login.fabrikam.example": "93.184.216.34",
    }

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    token = link_for(fresh)
    refused = client.post(
        page(token),
        {"action": "save", "issuer": "https://intranet.fabrikam.example/v2.0", "client_id": "c"},
    )
    assert refused.status_code == 400 and "private network" in refused.content.decode()
    allowed = client.post(
        page(token),
        # A new issuer needs the secret again (test_setup_review3: the stored one stays with
        # the issuer it was entered for).
        {
            "action": "save",
            "issuer": "https://login.fabrikam.example/v2.0",
            "client_id": "c",
            "client_secret": "s",
        },
    )
    assert allowed.status_code == 200
    fresh.refresh_from_db()
    assert fresh.issuer == "https://login.fabrikam.example/v2.0"


def test_a_saml_metadata_url_on_the_sites_network_is_never_fetched(
    client: Client, db: Any, settings: Any
) -> None:
    from tests.saml_fake_idp import FakeSAMLIdP

    settings.ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = False
    idp = FakeSAMLIdP()
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        provider="oidc",
        saml_metadata_xml=idp.metadata_xml(),
        enabled=False,
    )
    response = client.post(
        page(link_for(connector)),
        {
            "action": "save",
            "saml_metadata_url": "http://127.0.0.1:9/metadata",
            "saml_metadata_xml": "",
        },
    )
    assert response.status_code == 400 and "private network" in response.content.decode()


@pytest.mark.parametrize("issuer", ["https://[::1/", "https://[zz/", "https://login.example:port/"])
def test_a_broken_url_is_a_form_error_not_a_500(
    client: Client, fresh: Connector, issuer: str
) -> None:
    response = client.post(
        page(link_for(fresh)),
        {"action": "save", "issuer": issuer, "client_id": "c", "client_secret": "s"},
    )
    assert response.status_code == 400
    assert "full URL" in response.content.decode()
