"""What a performance review of the sign-in callback changed, pinned (issue 20).

Each saving is a query fewer with the same answer: the email domain's trusted owner,
looked up once per sign-in by the domain check, answers the later questions a
sign-in asks about the email (may it be stored, linked, matched to a SCIM user);
the identity lookup sends no ORDER BY. The answers must stay what the queries gave.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_entra_sso import accounts
from django_entra_sso.lookups import connector_by_slug, trusted_domain_owner
from django_entra_sso.models import Connector, EmailDomain, Identity, SCIMUser
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector, verified_person

User = get_user_model()

pytestmark = pytest.mark.django_db


def _domain_queries(queries: CaptureQueriesContext) -> list[str]:
    """The lookups of one email domain (not "has the connector any domains?")."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if '"django_entra_sso_emaildomain"."domain" =' in q["sql"]
    ]


def test_a_returning_person_whose_email_the_idp_does_not_vouch_for_asks_for_the_domain_once(
    connector: Connector,
) -> None:
    """Entra sends no ``email_verified``: the email is stored because the domain is the
    connector's. That used to be a second query for the same domain."""
    accounts.user_for(verified_person(connector, email_verified=None))
    person = verified_person(connector, email_verified=None, email="alice@contoso.com")
    with CaptureQueriesContext(connection) as queries:
        user = accounts.user_for(person)
    assert user.email == "alice@contoso.com"
    assert len(_domain_queries(queries)) == 1, queries.captured_queries


def test_an_unvouched_email_of_a_domain_no_one_owns_is_still_not_stored(
    fake_idp: FakeIdP,
) -> None:
    open_connector = make_connector(fake_idp, "open")  # no domains: any email signs in
    person = verified_person(open_connector, email_verified=None, email="alice@typed.example")
    with CaptureQueriesContext(connection) as queries:
        user = accounts.user_for(person)
    assert user.email == ""
    assert len(_domain_queries(queries)) == 1, queries.captured_queries


def test_a_first_sign_in_matches_a_scim_user_by_email_without_asking_for_the_domain_again(
    connector: Connector,
) -> None:
    provisioned = User.objects.create(username="alice-scim", email="alice@contoso.com")
    SCIMUser.objects.create(
        connector=connector, user=provisioned, external_id="obj-1", user_name="alice@contoso.com"
    )
    with CaptureQueriesContext(connection) as queries:
        user = accounts.user_for(verified_person(connector))
    assert user == provisioned
    assert len(_domain_queries(queries)) == 1, queries.captured_queries


def test_a_first_sign_in_links_by_a_verified_email_asking_for_the_domain_once(
    connector: Connector,
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    existing = User.objects.create(username="alice", email="alice@contoso.com")
    with CaptureQueriesContext(connection) as queries:
        user = accounts.user_for(verified_person(connector))
    assert user == existing
    assert Identity.objects.get().user == existing
    assert len(_domain_queries(queries)) == 1, queries.captured_queries


@override_settings(ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION=False)
def test_with_verification_off_a_domain_another_connector_also_lists_is_asked_for(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    """Several connectors may list one domain unverified; the remembered owner is one of
    them, and for another ``connector_trusts`` asks the database as before."""
    other = make_connector(fake_idp, "other")
    EmailDomain.objects.filter(connector=other).delete()
    token = accounts._domain_owners.set({"contoso.com": connector.pk})
    try:
        with CaptureQueriesContext(connection) as queries:
            assert accounts.connector_trusts(connector, "contoso.com") is True
        assert len(queries) == 0
        with CaptureQueriesContext(connection) as queries:
            assert accounts.connector_trusts(other, "contoso.com") is False
        assert len(queries) == 1
        EmailDomain.objects.create(connector=other, domain="contoso.com")
        assert accounts.connector_trusts(other, "contoso.com") is True
    finally:
        accounts._domain_owners.reset(token)


def test_outside_a_sign_in_nothing_is_remembered(connector: Connector) -> None:
    accounts.user_for(verified_person(connector))
    assert accounts._domain_owners.get() is None
    EmailDomain.objects.filter(connector=connector).update(verified_at=None)
    # Unverified now: asked afresh, not answered from the sign-in before.
    assert accounts.connector_trusts(connector, "contoso.com") is False
    EmailDomain.objects.filter(connector=connector).update(verified_at=timezone.now())
    assert accounts.connector_trusts(connector, "contoso.com") is True


def test_a_refused_sign_in_forgets_what_it_learnt(connector: Connector) -> None:
    from django_entra_sso.errors import SignInError

    with pytest.raises(SignInError):
        accounts.user_for(verified_person(connector, email="alice@elsewhere.example"))
    assert accounts._domain_owners.get() is None


def test_the_identity_lookup_sends_no_order_by(connector: Connector) -> None:
    accounts.user_for(verified_person(connector))
    with CaptureQueriesContext(connection) as queries:
        accounts.user_for(verified_person(connector))
    (lookup,) = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "identity" in q["sql"]
    ]
    assert "ORDER BY" not in lookup.upper()


def test_a_returning_sign_in_callback_runs_our_six_statements(
    sign_in: SignIn, client: Any, fake_idp: FakeIdP
) -> None:
    """Figure 11's goal, at the test client: our own statements in a returning sign-in's
    callback, each once (Django's session and ``login()`` statements aside)."""
    assert sign_in().status_code == 302
    client.logout()
    params = fake_idp.authorize(sign_in.start())
    with CaptureQueriesContext(connection) as queries:
        assert sign_in.callback("contoso", params).status_code == 302
    ours = Counter(
        f"{q['sql'].split()[0]} {table}"
        for q in queries.captured_queries
        for table in ("connector", "emaildomain", "identity", "ssosession", "signinevent")
        if f'"django_entra_sso_{table}"' in q["sql"].split(" WHERE ")[0]
    )
    assert ours == Counter(
        [
            "SELECT connector",
            "SELECT emaildomain",
            "SELECT identity",
            "UPDATE identity",
            "INSERT ssosession",
            "INSERT signinevent",
        ]
    ), queries.captured_queries


# -- the connector by slug, its SQL compiled once (django_entra_sso.lookups) -------------


def _fields(connector: Connector) -> dict[str, Any]:
    return {f.attname: getattr(connector, f.attname) for f in Connector._meta.concrete_fields}


def test_the_compiled_lookup_reads_every_field_as_the_orm_does(connector: Connector) -> None:
    connector.extra_scopes = "User.Read offline_access"
    connector.api_audiences = ["api://one", "api://two"]
    connector.staff_values = ["Admins"]
    connector.claim_mapping = {"email": "upn", "username": "preferred_username"}
    connector.revalidate_after = 600
    connector.enabled = False
    connector.client_secret = "s3cret with spaces"
    connector.save()
    found = connector_by_slug("contoso")
    assert found is not None and found._state.adding is False
    assert _fields(found) == _fields(Connector.objects.get(slug="contoso"))
    assert found.client_secret == "s3cret with spaces"
    assert found.api_audiences == ["api://one", "api://two"]
    assert found.claim_mapping == {"email": "upn", "username": "preferred_username"}
    assert found.updated_at == connector.updated_at and found.updated_at.tzinfo is not None


def test_the_compiled_lookup_reads_the_row_as_it_is_now(connector: Connector) -> None:
    assert connector_by_slug("contoso").enabled is True  # type: ignore[union-attr]
    Connector.objects.filter(pk=connector.pk).update(enabled=False, name="Renamed")
    again = connector_by_slug("contoso")
    assert again is not None and (again.enabled, again.name) == (False, "Renamed")
    with CaptureQueriesContext(connection) as queries:
        connector_by_slug("contoso")
    assert len(queries) == 1 and "ORDER BY" not in queries[0]["sql"].upper()


@pytest.mark.parametrize("slug", ["nope", "", "a%sb", "50%", "x' OR '1'='1", "\x00", "ü" * 300])
def test_the_compiled_lookup_finds_nothing_for_other_slugs(connector: Connector, slug: str) -> None:
    if slug == "\x00" and connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses NUL in text; the URL pattern never passes one")
    assert connector_by_slug(slug) is None


def _orm_owner(domain: str) -> Any:
    return (
        EmailDomain.objects.trusted()
        .filter(domain=domain)
        .values_list("connector_id", flat=True)
        .first()
    )


@pytest.mark.parametrize("verification", [True, False])
def test_the_compiled_owner_lookup_answers_as_the_orm_does(
    fake_idp: FakeIdP, connector: Connector, verification: bool
) -> None:
    first, second = make_connector(fake_idp, "first"), make_connector(fake_idp, "second")
    EmailDomain.objects.create(connector=first, domain="shared.example")
    EmailDomain.objects.create(connector=second, domain="shared.example")
    EmailDomain.objects.create(connector=second, domain="second-only.example")
    EmailDomain.objects.create(
        connector=second, domain="proved.example", verified_at=timezone.now()
    )
    EmailDomain.objects.create(connector=first, domain="proved.example")
    with override_settings(ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION=verification):
        for domain in ("contoso.com", "shared.example", "second-only.example", "proved.example"):
            assert trusted_domain_owner(domain) == _orm_owner(domain), domain
        assert trusted_domain_owner("nobody.example") is None
        with CaptureQueriesContext(connection) as queries:
            trusted_domain_owner("contoso.com")
        assert len(queries) == 1
    assert trusted_domain_owner("contoso.com") == connector.pk
    # Unverified claims route nothing while verification is on; verified first when off.
    expected_shared = None if verification else first.pk
    with override_settings(ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION=verification):
        assert trusted_domain_owner("shared.example") == expected_shared
        assert trusted_domain_owner("proved.example") == second.pk
