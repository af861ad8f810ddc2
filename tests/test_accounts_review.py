"""Found by a read-only review of "one person, one account; no connector reaches another's
people" across the ways in (2026-12-01). Each failed before its fix."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from django_entra_sso import accounts
from django_entra_sso.errors import SignInError
from django_entra_sso.models import Connector, EmailDomain, Identity, SCIMUser
from django_entra_sso.saml.attributes import person_from_assertion
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector, verified_person
from tests.test_scim import Scim

pytestmark = pytest.mark.django_db
User = get_user_model()

ENTRA_A = "https://login.microsoftonline.com/5f2a0c1e-7b3d-4e8f-9a6b-1c2d3e4f5a6b/v2.0"
OID = "0a1b2c3d-0000-4000-8000-00000000a11c"


def _a_and_b() -> tuple[Connector, Connector, Any]:
    """Customer A's Entra connector, Alice signed in through it; customer B's connector
    whose (customer-editable) issuer is A's tenant issuer."""
    a = make_connector(None, "contoso", domain="contoso.com", provider="entra_id", issuer=ENTRA_A)
    b = make_connector(
        None,
        "fabrikam",
        domain="fabrikam.com",
        provider="entra_id",
        issuer=ENTRA_A,
        client_id="fabrikam-multitenant-app",
    )
    alice = accounts.user_for(verified_person(a, oid=OID, tid=ENTRA_A.split("/")[3]))
    return a, b, alice


# -- F1: a customer-controlled connector can claim another customer's issuer ------------------


def test_sign_in_through_another_connector_never_takes_the_identity() -> None:
    a, b, alice = _a_and_b()
    # Entra ID tokens carry no email for mailbox-less users (or unless asked): no domain check.
    person = verified_person(b, oid=OID, tid=ENTRA_A.split("/")[3], email=None)
    try:
        got = accounts.user_for(person)
    except SignInError:
        got = None
    identity = Identity.objects.get(subject=OID)
    assert got != alice, "a sign-in through connector B landed in A's user"
    assert identity.connector_id == a.pk, "the identity moved to connector B"


def test_connector_b_scim_cannot_take_over_a_person_of_connector_a() -> None:
    _a, b, alice = _a_and_b()
    alice.set_password("pw")
    alice.save()
    # A sign-in through B used to move the identity to B...
    with pytest.raises(SignInError):
        accounts.user_for(verified_person(b, oid=OID, tid=ENTRA_A.split("/")[3], email=None))
    # ...and B's SCIM client then owned A's person: rewrote her email to B's domain.
    scim = Scim(b)
    scim.create_user("mallory@fabrikam.com", externalId=OID)
    alice.refresh_from_db()
    assert alice.email == "alice@contoso.com", f"B's SCIM rewrote A's user's email to {alice.email}"
    assert not SCIMUser.objects.filter(connector=b, user=alice).exists()


# -- F2: SAML sign-ins of SCIM-provisioned people (Okta defaults) ----------------------------


def test_okta_saml_sign_in_lands_in_the_scim_provisioned_user() -> None:
    okta = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        provider="okta",
        saml_metadata_xml="<x/>",
        issuer="http://www.okta.com/exk1",
    )
    EmailDomain.objects.create(domain="acme.test", connector=okta, verified_at=okta.created_at)
    scim = Scim(okta)
    doc = scim.create_user("alice@acme.test", externalId="00u1alice")  # Okta sends its user ID
    provisioned = SCIMUser.objects.get().user
    # Okta's SAML default NameID: the Okta username (the email), format unspecified.
    person = person_from_assertion(
        okta,
        {"email": ["alice@acme.test"], "firstName": ["Alice"]},
        entity_id="http://www.okta.com/exk1",
        name_id="alice@acme.test",
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    )
    user = accounts.user_for(person)
    # Offboarding through SCIM, as the README advises for SAML leavers:
    scim.patch(f"Users/{doc['id']}", {"op": "replace", "path": "active", "value": False})
    user.refresh_from_db()
    assert user == provisioned, f"a second account: {User.objects.count()} users"
    assert not user.is_active, "the SAML account survives the SCIM deactivation"


def test_connector_b_scim_takeover_reaches_the_password_reset_of_as_user() -> None:
    from django.contrib.auth.forms import PasswordResetForm

    _a, b, alice = _a_and_b()
    alice.set_password("pw")
    alice.save()
    with pytest.raises(SignInError):
        accounts.user_for(verified_person(b, oid=OID, tid=ENTRA_A.split("/")[3], email=None))
    Scim(b).create_user("mallory@fabrikam.com", externalId=OID)
    assert alice not in list(PasswordResetForm().get_users("mallory@fabrikam.com"))


# -- F4: a connector's IdP rewrites the email of a staff account linked to it -------------------


def test_a_customer_idp_cannot_rewrite_a_staff_accounts_email() -> None:
    from django.contrib.auth.forms import PasswordResetForm

    staff = User.objects.create_user("sam", "sam@site.example", "pw", is_staff=True)
    a = make_connector(None, "contoso", domain="contoso.com")
    # An administrator linked Sam's guest account at Contoso's IdP to his staff account.
    Identity.objects.create(connector=a, issuer=a.issuer, subject="guest-sam", user=staff)
    # Contoso's admin sets the guest's mail to an address of Contoso's own domain.
    accounts.user_for(
        verified_person(a, sub="guest-sam", email="mallory@contoso.com", email_verified=False)
    )
    staff.refresh_from_db()
    assert staff.email == "sam@site.example", f"staff email is now {staff.email}"
    assert staff not in list(PasswordResetForm().get_users("mallory@contoso.com"))


def test_a_customer_scim_cannot_take_over_a_staff_account_linked_to_its_connector() -> None:
    staff = User.objects.create_user("sam", "sam@site.example", "pw", is_staff=True)
    a = make_connector(None, "contoso", domain="contoso.com")
    Identity.objects.create(connector=a, issuer=a.issuer, subject="guest-sam", user=staff)
    scim = Scim(a)
    refused = scim.post(
        "Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "mallory@contoso.com",
            "externalId": "guest-sam",
            "emails": [{"value": "mallory@contoso.com", "primary": True}],
        },
    )
    assert refused.status_code == 409, refused.content
    staff.refresh_from_db()
    assert not SCIMUser.objects.filter(user=staff).exists(), "Contoso's SCIM now owns staff"
    assert staff.email == "sam@site.example", f"staff email is now {staff.email}"


# -- F2b: provider "oidc" at an Entra issuer keys by sub, SCIM by oid ---------------------------


def test_generic_oidc_connector_at_entra_issuer_lands_in_the_scim_user() -> None:
    c = make_connector(None, "contoso", domain="contoso.com", provider="oidc", issuer=ENTRA_A)
    Scim(c).create_user("alice@contoso.com", externalId=OID)  # Entra: objectId -> externalId
    provisioned = SCIMUser.objects.get().user
    user = accounts.user_for(verified_person(c, sub="pairwise-sub-of-this-app", oid=OID))
    assert user == provisioned, f"a second account: {User.objects.count()} users"


def test_staff_hand_a_replaced_connectors_people_to_its_successor() -> None:
    """Sign-ins no longer move identities; ``sso_connector move-identities`` does, on purpose."""
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    old, new, alice = _a_and_b()
    out = StringIO()
    call_command("sso_connector", "move-identities", "contoso", "fabrikam", stdout=out)
    assert "Moved 1 identity" in out.getvalue()
    assert Identity.objects.get(subject=OID).connector_id == new.pk
    person = verified_person(new, oid=OID, tid=ENTRA_A.split("/")[3], email=None)
    assert accounts.user_for(person) == alice
    with pytest.raises(SignInError):
        accounts.user_for(verified_person(old, oid=OID, tid=ENTRA_A.split("/")[3], email=None))
    with pytest.raises(CommandError):
        call_command("sso_connector", "move-identities", "fabrikam", "fabrikam", stdout=out)


def test_an_api_token_of_connector_b_never_resolves_to_a_user_of_connector_a(
    client: Client, fake_idp: FakeIdP
) -> None:
    """Worse than a sign-in: B's own app holds tokens of A's people (they use B's product),
    and one API call moved the identity, with no one signing in at the site."""
    cache.clear()
    a = make_connector(fake_idp, "contoso", domain="contoso.com")  # no API audiences
    make_connector(fake_idp, "fabrikam", domain="fabrikam.com", api_audiences=["api://b"])
    assert SignIn(client, fake_idp)().status_code == 302  # Alice, through A
    client.logout()
    alice = Identity.objects.get().user
    now = int(time.time())
    bearer = fake_idp.sign(
        {
            "iss": fake_idp.issuer,
            "aud": "api://b",
            "sub": "subject-alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "scp": "Books.Read",
            "azp": "b-spa",
        }
    )
    response = client.get("/api/plain/books/", HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert response.status_code == 401
    assert Identity.objects.get().connector_id == a.pk, "an API call moved the identity to B"
    assert Identity.objects.get().user == alice
