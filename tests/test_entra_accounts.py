"""Entra ID in production (issue 17): personal accounts, B2B guests, claim mapping, staff flags."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from django_entra_sso import accounts, providers
from django_entra_sso.errors import SignInError
from django_entra_sso.models import Connector, Identity, SCIMUser
from django_entra_sso.oidc import adapter
from django_entra_sso.oidc import client as oidc_client
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import (
    OTHER_TENANT,
    TENANT,
    SignIn,
    assert_refused,
    entra_common_connector,
    entra_issuer,
    make_connector,
    make_entra_idp,
    signed_in_user,
    verified_person,
)

pytestmark = pytest.mark.django_db

User = get_user_model()

PERSONAL = providers.MICROSOFT_PERSONAL_TENANT
OID = "00000000-0000-0000-0000-00000000a11c"
GUEST_UPN = "alice_contoso.com#EXT#@fabrikam.onmicrosoft.com"


def tenant_claims(tid: str = TENANT, **more: Any) -> dict[str, Any]:
    """An Entra v2.0 ID token's claims for ``tid`` (the common issuer's template filled)."""
    # The fake IdP fills its template's tenant from tid, as Entra's iss is.
    return {"tid": tid, "oid": OID, **more}


def personal_claims(**more: Any) -> dict[str, Any]:
    """A personal Microsoft account: no email_verified, an address anyone may have."""
    return tenant_claims(PERSONAL, **{"email": "alice@outlook.com", "email_verified": None, **more})


def username_is_valid(username: str) -> bool:
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.run_validators(username)
    except ValidationError:
        return False
    return True


@pytest.fixture
def entra_idp() -> Iterator[FakeIdP]:
    idp = make_entra_idp()
    yield idp
    idp.close()


def common_connector(idp: FakeIdP, **fields: Any) -> Connector:
    """A ``common`` connector without domains: signed in through ``?connector=``."""
    return entra_common_connector(idp, **{"allowed_tenants": [TENANT], **fields})


def sign_in_at(client: Client, idp: FakeIdP, connector: Connector, **claims: Any) -> Any:
    signer = SignIn(client, idp)
    start = client.get(f"/sso/login/?connector={connector.slug}")
    assert start.status_code == 302, start.content[:300]
    return signer.callback(connector.slug, idp.authorize(start["Location"], **claims))


@pytest.fixture
def entra(connector: Connector) -> Connector:
    """The conftest connector (one tenant, owns contoso.com) as an Entra ID connector."""
    connector.provider = providers.ENTRA_ID
    connector.save()
    return connector


def entra_sign_in(sign_in: SignIn, **claims: Any) -> Any:
    """Alice of contoso.com signs in; ``claims`` (an ``email`` claim too) change her token."""
    params = sign_in.idp.authorize(sign_in.start(), **{"oid": OID, "tid": TENANT, **claims})
    return sign_in.callback("contoso", params)


def the_user() -> Any:
    return Identity.objects.select_related("user").get(subject=OID).user


# -- personal Microsoft accounts ------------------------------------------------------------------


def test_a_personal_account_is_refused_by_default(client: Client, entra_idp: FakeIdP) -> None:
    connector = common_connector(entra_idp)
    response = sign_in_at(client, entra_idp, connector, **personal_claims())
    assert_refused(client, response, status=403, code="personal_account")
    assert b"Use your work or school account" in response.content


def test_a_work_account_of_the_same_connector_signs_in(client: Client, entra_idp: FakeIdP) -> None:
    connector = common_connector(entra_idp)
    assert sign_in_at(client, entra_idp, connector, **tenant_claims()).status_code == 302
    assert signed_in_user(client) is not None


def test_naming_the_personal_tenant_in_the_allow_list_is_not_enough(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(entra_idp, allowed_tenants=[TENANT, PERSONAL])
    response = sign_in_at(client, entra_idp, connector, **personal_claims())
    assert_refused(client, response, status=403, code="personal_account")


def test_a_connector_open_to_any_tenant_still_refuses_personal_accounts(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(entra_idp, allowed_tenants=[], allow_any_tenant=True)
    response = sign_in_at(client, entra_idp, connector, **personal_claims())
    assert_refused(client, response, status=403, code="personal_account")


def test_a_connector_at_the_personal_tenants_own_issuer_needs_the_switch_too(
    client: Client, sign_in: SignIn, entra: Connector
) -> None:
    response = sign_in(oid=OID, tid=PERSONAL)
    assert_refused(client, response, status=403, code="personal_account")


@pytest.mark.parametrize("allowed", [[TENANT], []])
def test_personal_accounts_sign_in_when_allowed_whatever_the_allow_list(
    client: Client, entra_idp: FakeIdP, allowed: list[str]
) -> None:
    connector = common_connector(
        entra_idp,
        allowed_tenants=allowed,
        allow_any_tenant=not allowed,
        allow_personal_accounts=True,
    )
    assert sign_in_at(client, entra_idp, connector, **personal_claims()).status_code == 302
    identity = Identity.objects.get()
    assert identity.tenant_id == PERSONAL
    assert identity.issuer == entra_issuer(entra_idp, PERSONAL)
    assert signed_in_user(client).pk == identity.user_id


def test_allowing_personal_accounts_lets_no_other_tenant_in(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(entra_idp, allow_personal_accounts=True)
    response = sign_in_at(client, entra_idp, connector, **tenant_claims(OTHER_TENANT))
    assert_refused(client, response, status=400, code="invalid_token")


def test_another_providers_tenant_allow_list_is_exactly_the_list(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    # Only Entra ID's checks treat the personal accounts' tenant apart; a plain OIDC
    # connector that names tenants lets in those tenants, not that one too.
    connector.allowed_tenants = [TENANT]
    connector.save()
    params = sign_in.idp.authorize(sign_in.start(), tid=PERSONAL)
    response = sign_in.callback("contoso", params)
    assert_refused(client, response, status=400, code="invalid_token")
    params = sign_in.idp.authorize(sign_in.start(), tid=TENANT)
    assert sign_in.callback("contoso", params).status_code == 302


@pytest.fixture
def consumers_idp() -> Iterator[FakeIdP]:
    """The fake IdP answering as Entra's ``consumers`` endpoint does."""
    idp = FakeIdP()
    idp.issuer_override = entra_issuer(idp, PERSONAL)
    idp.faults["/consumers/v2.0/.well-known/openid-configuration"] = Fault(
        body=json.dumps(idp.discovery()).encode()
    )
    yield idp
    idp.close()


@pytest.mark.parametrize("allowed", [False, True])
def test_a_consumers_connector_signs_in_personal_accounts_only_when_allowed(
    client: Client, consumers_idp: FakeIdP, allowed: bool
) -> None:
    connector = make_connector(
        consumers_idp,
        "outlook",
        provider=providers.ENTRA_ID,
        issuer=f"{consumers_idp.issuer}/consumers/v2.0",
        allowed_tenants=[PERSONAL],
        allow_personal_accounts=allowed,
    )
    claims = personal_claims(iss=entra_issuer(consumers_idp, PERSONAL))
    response = sign_in_at(client, consumers_idp, connector, **claims)
    if allowed:
        assert response.status_code == 302
        assert signed_in_user(client) is not None
    else:
        assert_refused(client, response, status=403, code="personal_account")


def test_the_consumers_discovery_document_must_name_the_personal_tenant() -> None:
    consumers = "https://login.microsoftonline.com/consumers/v2.0"
    assert providers.issuer_from_discovery_matches(
        providers.ENTRA_ID, consumers, f"https://login.microsoftonline.com/{PERSONAL}/v2.0"
    )
    assert not providers.issuer_from_discovery_matches(
        providers.ENTRA_ID, consumers, f"https://login.microsoftonline.com/{TENANT}/v2.0"
    )
    assert not providers.issuer_from_discovery_matches(
        providers.ENTRA_ID, consumers, "https://login.microsoftonline.com/{tenantid}/v2.0"
    )


def test_a_personal_accounts_email_is_not_vouched_for_by_the_connectors_domains(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(entra_idp, allow_personal_accounts=True, domain="contoso.com")
    claims = personal_claims(email="alice@contoso.com")
    assert sign_in_at(client, entra_idp, connector, **claims).status_code == 302
    assert the_user().email == ""
    client.logout()
    # The same claims from the organisation's tenant: the connector speaks for its domain.
    other_oid = OID[:-4] + "b0b0"
    claims = tenant_claims(oid=other_oid, email="alice@contoso.com", email_verified=None)
    assert sign_in_at(client, entra_idp, connector, **claims).status_code == 302
    assert Identity.objects.get(subject=other_oid).user.email == "alice@contoso.com"


@pytest.mark.parametrize("personal", [True, False])
def test_a_personal_account_never_links_an_existing_account(
    client: Client, entra_idp: FakeIdP, personal: bool
) -> None:
    connector = common_connector(
        entra_idp, allow_personal_accounts=True, link_existing_by_email=True, domain="contoso.com"
    )
    existing = User.objects.create_user("alice", email="alice@contoso.com")
    claims = tenant_claims(PERSONAL if personal else TENANT, email_verified=True)
    assert sign_in_at(client, entra_idp, connector, **claims).status_code == 302
    assert (the_user().pk == existing.pk) is not personal


def test_a_personal_account_is_never_matched_to_a_provisioned_user(
    entra_idp: FakeIdP,
) -> None:
    connector = common_connector(entra_idp, allow_personal_accounts=True, domain="contoso.com")
    provisioned = User.objects.create_user("alice", email="alice@contoso.com")
    SCIMUser.objects.create(
        connector=connector, user=provisioned, external_id=OID, user_name="alice@contoso.com"
    )
    work = verified_person(connector, **tenant_claims(email_verified=True))
    personal = verified_person(connector, **tenant_claims(PERSONAL, email_verified=True))
    assert accounts.provisioned_user(work) == provisioned
    assert accounts.provisioned_user(personal) is None


def test_scim_never_takes_over_a_personal_accounts_user(entra_idp: FakeIdP) -> None:
    connector = common_connector(entra_idp, allow_personal_accounts=True)
    for tid, oid in ((PERSONAL, "oid-personal"), (TENANT, "oid-work")):
        user = User.objects.create_user(oid)
        Identity.objects.create(
            connector=connector, issuer=f"iss-{tid}", subject=oid, tenant_id=tid, user=user
        )
    assert accounts.user_signed_in_through(connector, "oid-work").username == "oid-work"
    assert accounts.user_signed_in_through(connector, "oid-personal") is None


@pytest.mark.parametrize("still_allowed", [True, False])
def test_re_validation_ends_a_personal_accounts_session_once_they_are_refused(
    entra_idp: FakeIdP, monkeypatch: pytest.MonkeyPatch, still_allowed: bool
) -> None:
    connector = common_connector(entra_idp, allow_personal_accounts=still_allowed)
    now = int(time.time())
    token = entra_idp.sign(
        {
            **tenant_claims(PERSONAL),
            "iss": entra_issuer(entra_idp, PERSONAL),
            "aud": entra_idp.client_id,
            "sub": "subject-alice",
            "iat": now,
            "exp": now + 300,
        }
    )
    monkeypatch.setattr(oidc_client, "redeem_refresh_token", lambda *args: {"id_token": token})
    if still_allowed:
        assert adapter.refresh_session(connector, "rt", subject="subject-alice") == "rt"
    else:
        with pytest.raises(oidc_client.GrantRevoked):
            adapter.refresh_session(connector, "rt", subject="subject-alice")


# -- B2B guests and accounts without an email ----------------------------------------------------


def guest_claims(**more: Any) -> dict[str, Any]:
    """A B2B guest of the connector's tenant: an #EXT# UPN, an idp claim, no email, no names."""
    return {
        "email": None,
        "email_verified": None,
        "given_name": None,
        "family_name": None,
        "preferred_username": GUEST_UPN,
        "idp": f"https://sts.windows.net/{OTHER_TENANT}/",
        **more,
    }


def test_a_guest_without_email_gets_a_readable_valid_username(
    sign_in: SignIn, entra: Connector
) -> None:
    assert entra_sign_in(sign_in, **guest_claims()).status_code == 302
    user = the_user()
    assert user.username == "sso-alice"
    assert username_is_valid(user.username)
    assert user.email == ""


def test_a_guests_ext_upn_is_never_their_email(sign_in: SignIn, entra: Connector) -> None:
    entra.trust_preferred_username = True
    entra.save()
    assert entra_sign_in(sign_in, **guest_claims()).status_code == 302
    assert the_user().email == ""


def test_a_guests_ext_upn_mapped_to_the_username_becomes_their_home_address(
    sign_in: SignIn, entra: Connector
) -> None:
    entra.claim_mapping = {"username": "upn", "email": "upn"}
    entra.save()
    assert entra_sign_in(sign_in, **guest_claims(upn=GUEST_UPN)).status_code == 302
    user = the_user()
    assert user.username == "alice@contoso.com"
    assert username_is_valid(user.username)
    assert user.email == ""  # the #EXT# UPN is no email, mapped or not


@pytest.mark.parametrize(
    ("upn", "home"),
    [
        (GUEST_UPN, "alice@contoso.com"),
        ("alice_b_contoso.com#EXT#@fabrikam.onmicrosoft.com", "alice_b@contoso.com"),
        ("ALICE_CONTOSO.COM#ext#@fabrikam.onmicrosoft.com", "ALICE@CONTOSO.COM"),
        ("nounderscore#EXT#@fabrikam.onmicrosoft.com", "nounderscore"),
        ("alice@contoso.com", None),
    ],
)
def test_a_guests_home_address_is_read_from_the_ext_upn(upn: str, home: str | None) -> None:
    assert providers.guest_home_address(upn) == home


# -- preferred_username as the email ------------------------------------------------------------


def member_without_email(**more: Any) -> dict[str, Any]:
    return {
        "email": None,
        "email_verified": None,
        "preferred_username": "alice@contoso.com",
        **more,
    }


@pytest.mark.parametrize("trusted", [True, False])
def test_preferred_username_is_the_email_only_when_the_connector_trusts_it(
    sign_in: SignIn, entra: Connector, trusted: bool
) -> None:
    entra.trust_preferred_username = trusted
    entra.save()
    assert entra_sign_in(sign_in, **member_without_email()).status_code == 302
    assert the_user().email == ("alice@contoso.com" if trusted else "")


def test_a_preferred_username_that_is_no_email_is_not_the_email(
    sign_in: SignIn, entra: Connector
) -> None:
    entra.trust_preferred_username = True
    entra.save()
    claims = member_without_email(preferred_username="alice")
    assert entra_sign_in(sign_in, **claims).status_code == 302
    assert the_user().email == ""


def test_the_email_claim_wins_over_preferred_username(sign_in: SignIn, entra: Connector) -> None:
    entra.trust_preferred_username = True
    entra.save()
    claims = member_without_email(email="alice.liddell@contoso.com")
    assert entra_sign_in(sign_in, **claims).status_code == 302
    assert the_user().email == "alice.liddell@contoso.com"


def test_preferred_username_as_email_is_stored_only_by_the_domain_rule(
    client: Client, fake_idp: FakeIdP
) -> None:
    connector = make_connector(
        fake_idp, "public", provider=providers.ENTRA_ID, trust_preferred_username=True
    )  # no domains: it speaks for none
    response = sign_in_at(
        client, fake_idp, connector, oid=OID, tid=TENANT, **member_without_email()
    )
    assert response.status_code == 302
    assert the_user().email == ""


def test_preferred_username_as_email_never_links_an_existing_account(
    sign_in: SignIn, entra: Connector
) -> None:
    entra.trust_preferred_username = True
    entra.link_existing_by_email = True
    entra.save()
    existing = User.objects.create_user("alice", email="alice@contoso.com")
    assert entra_sign_in(sign_in, **member_without_email()).status_code == 302
    user = the_user()
    assert user.pk != existing.pk
    assert not Identity.objects.filter(user=existing).exists()


def test_the_verified_email_claim_does_link_an_existing_account(
    sign_in: SignIn, entra: Connector
) -> None:
    # The counterpart of the test above: the same account, linked when the IdP vouches.
    entra.link_existing_by_email = True
    entra.save()
    existing = User.objects.create_user("alice", email="alice@contoso.com")
    assert entra_sign_in(sign_in).status_code == 302
    assert the_user().pk == existing.pk


@pytest.mark.parametrize("verified_claim", [True, False])
def test_preferred_username_as_email_never_matches_a_provisioned_user(
    sign_in: SignIn, entra: Connector, verified_claim: bool
) -> None:
    entra.trust_preferred_username = True
    entra.save()
    provisioned = User.objects.create_user("provisioned-alice")
    SCIMUser.objects.create(connector=entra, user=provisioned, user_name="alice@contoso.com")
    claims = {} if verified_claim else member_without_email()
    assert entra_sign_in(sign_in, **claims).status_code == 302
    assert (the_user().pk == provisioned.pk) is verified_claim


# -- claim mapping ------------------------------------------------------------------------------


MAPPING = {"username": "employee_id", "email": "upn", "first_name": "gn", "last_name": "sn"}


def test_the_claim_mapping_fills_username_email_and_names(
    sign_in: SignIn, entra: Connector
) -> None:
    entra.claim_mapping = MAPPING
    entra.save()
    claims = {"employee_id": "E1234", "upn": "a.liddell@contoso.com", "gn": "Alicia", "sn": "L."}
    assert entra_sign_in(sign_in, **claims).status_code == 302
    user = the_user()
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "E1234",
        "a.liddell@contoso.com",
        "Alicia",
        "L.",
    )


def test_without_a_claim_mapping_the_defaults_stay(sign_in: SignIn, entra: Connector) -> None:
    claims = {"employee_id": "E1234", "upn": "a.liddell@contoso.com", "gn": "Alicia", "sn": "L."}
    assert entra_sign_in(sign_in, **claims).status_code == 302
    user = the_user()
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "sso-alice",
        "alice@contoso.com",
        "Alice",
        "Liddell",
    )


def test_a_mapped_username_that_is_taken_gets_a_suffix(sign_in: SignIn, entra: Connector) -> None:
    entra.claim_mapping = {"username": "employee_id"}
    entra.save()
    User.objects.create_user("E1234")
    assert entra_sign_in(sign_in, employee_id="E1234").status_code == 302
    username = the_user().username
    assert username.startswith("E1234-") and len(username) == len("E1234-") + 6
    assert username_is_valid(username)


@pytest.mark.parametrize(
    ("value", "username"),
    [
        ("Alice Liddell #1", "Alice.Liddell.1"),
        (4711, "4711"),
        ("###", "sso-alice"),
        (None, "sso-alice"),
    ],
)
def test_a_mapped_username_is_made_valid(
    sign_in: SignIn, entra: Connector, value: Any, username: str
) -> None:
    entra.claim_mapping = {"username": "login"}
    entra.save()
    assert entra_sign_in(sign_in, login=value).status_code == 302
    assert the_user().username == username
    assert username_is_valid(username)


def test_a_mapped_email_is_never_vouched_for(entra: Connector) -> None:
    entra.claim_mapping = {"email": "upn"}
    person = verified_person(entra, upn="a.liddell@contoso.com", xms_edov=True)
    assert (person.email, person.email_verified) == ("a.liddell@contoso.com", False)
    entra.claim_mapping = {"email": "email"}
    person = verified_person(entra)
    assert (person.email, person.email_verified) == ("alice@contoso.com", True)


def test_a_mapped_email_never_links_an_existing_account(sign_in: SignIn, entra: Connector) -> None:
    entra.claim_mapping = {"email": "upn"}
    entra.link_existing_by_email = True
    entra.save()
    existing = User.objects.create_user("alice", email="alice@contoso.com")
    assert entra_sign_in(sign_in, upn="alice@contoso.com").status_code == 302
    user = the_user()
    assert user.pk != existing.pk
    assert user.email == "alice@contoso.com"  # stored: the connector's own domain


def test_a_mapped_email_claim_that_is_no_email_falls_back(entra: Connector) -> None:
    entra.claim_mapping = {"email": "upn"}
    assert verified_person(entra, upn="not an email").email is None
    entra.trust_preferred_username = True
    person = verified_person(entra, upn="not an email", preferred_username="al@contoso.com")
    assert (person.email, person.email_verified) == ("al@contoso.com", False)


def test_a_mapped_email_must_still_be_of_the_connectors_domains(
    client: Client, sign_in: SignIn, entra: Connector
) -> None:
    entra.claim_mapping = {"email": "upn"}
    entra.save()
    response = entra_sign_in(sign_in, upn="alice@fabrikam.com")
    assert_refused(client, response, status=403, code="wrong_domain")


# -- staff and superuser from claims ------------------------------------------------------------


def test_staff_and_superuser_follow_the_roles_at_every_sign_in(
    client: Client, sign_in: SignIn, entra: Connector
) -> None:
    entra.staff_values = ["Staff"]
    entra.superuser_values = ["Owner"]
    entra.save()
    assert entra_sign_in(sign_in, roles=["Staff", "Owner"]).status_code == 302
    user = the_user()
    assert (user.is_staff, user.is_superuser) == (True, True)
    client.logout()
    assert entra_sign_in(sign_in, roles=["Staff"]).status_code == 302
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, False)
    client.logout()
    assert entra_sign_in(sign_in, roles=["Reader"]).status_code == 302
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (False, False)


def test_group_ids_make_staff_too(sign_in: SignIn, entra: Connector) -> None:
    group_id = "0e5b9d3a-1111-4a5f-9c0d-2b7e8f6a4c31"
    entra.staff_values = [group_id]
    entra.save()
    assert entra_sign_in(sign_in, groups=[group_id]).status_code == 302
    assert the_user().is_staff


def test_a_connector_without_values_never_touches_the_flags(
    sign_in: SignIn, entra: Connector
) -> None:
    admin = User.objects.create_superuser("admin", "admin@contoso.com", None)
    Identity.objects.create(
        connector=entra, issuer=entra.issuer, subject=OID, tenant_id=TENANT, user=admin
    )
    assert entra_sign_in(sign_in, roles=[]).status_code == 302
    admin.refresh_from_db()
    assert (admin.is_staff, admin.is_superuser) == (True, True)


def test_only_the_flag_with_values_is_managed(sign_in: SignIn, entra: Connector) -> None:
    entra.staff_values = ["Staff"]
    entra.save()
    admin = User.objects.create_superuser("admin", "admin@contoso.com", None)
    Identity.objects.create(
        connector=entra, issuer=entra.issuer, subject=OID, tenant_id=TENANT, user=admin
    )
    assert entra_sign_in(sign_in, roles=["Owner"]).status_code == 302
    admin.refresh_from_db()
    assert (admin.is_staff, admin.is_superuser) == (False, True)


def test_in_group_overage_app_roles_still_decide_flags_only_roles_grant(
    sign_in: SignIn, entra: Connector
) -> None:
    # App roles are never in overage (only groups are): flags whose values are role names
    # follow the roles; they used to be left as they were, so a removed role kept staff.
    entra.staff_values = ["Staff"]
    entra.superuser_values = ["Owner"]
    entra.save()
    assert entra_sign_in(sign_in, roles=["Staff", "Owner"]).status_code == 302
    user = the_user()
    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "x"}}}
    sign_in.client.logout()
    assert entra_sign_in(sign_in, roles=["Staff", "Owner"], **overage).status_code == 302
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)
    sign_in.client.logout()
    assert entra_sign_in(sign_in, roles=["Staff"], **overage).status_code == 302
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, False)


def test_a_connector_open_to_any_tenant_cannot_make_staff(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(
        entra_idp, allowed_tenants=[], allow_any_tenant=True, superuser_values=["Owner"]
    )
    # Any tenant's administrator could grant the role: the connector is refused outright
    # (Connector.open_tenancy_problem, check W003), before anyone is sent to the IdP...
    assert connector.open_tenancy_problem() is not None
    start = client.get(f"/sso/login/?connector={connector.slug}")
    assert start.status_code == 424 and b"Reference: misconfigured" in start.content
    # ... and the sign-in rule refuses it too, should a callback arrive anyway.
    from django_entra_sso.accounts import check_staff_rules

    with pytest.raises(SignInError) as refused:
        check_staff_rules(connector)
    assert refused.value.code == "misconfigured"


def test_a_connector_with_a_tenant_allow_list_can_make_staff(
    client: Client, entra_idp: FakeIdP
) -> None:
    connector = common_connector(entra_idp, superuser_values=["Owner"])
    response = sign_in_at(client, entra_idp, connector, **tenant_claims(roles=["Owner"]))
    assert response.status_code == 302
    assert signed_in_user(client).is_superuser
