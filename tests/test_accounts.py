"""The account rules (``accounts.py``), called directly with a verified person.

Through the views the same rules are pinned by ``test_sign_in_rejections.py``;
here each rule is tried on its own, as every adapter reaches it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from django_entra_sso import accounts
from django_entra_sso.errors import SignInError
from django_entra_sso.models import Connector, EmailDomain, Identity
from django_entra_sso.signals import sso_user_created
from tests.fakeidp import FakeIdP
from tests.helpers import make_connector, verified_person

pytestmark = pytest.mark.django_db
User = get_user_model()


def refusal_code(connector: Connector, **claims: Any) -> str:
    with pytest.raises(SignInError) as info:
        accounts.user_for(verified_person(connector, **claims))
    return info.value.code


# -- identity keying and just-in-time users ---------------------------------------------------


def test_first_sign_in_creates_a_user_with_the_idps_profile_and_an_identity(
    connector: Connector,
) -> None:
    user = accounts.user_for(verified_person(connector))
    assert (user.first_name, user.last_name, user.email) == (
        "Alice",
        "Liddell",
        "alice@contoso.com",
    )
    assert not user.has_usable_password()
    assert user.username == "sso-alice"  # readable; the identity is keyed by issuer and subject
    identity = Identity.objects.get()
    assert (identity.user_id, identity.issuer, identity.subject) == (
        user.pk,
        connector.issuer,
        "subject-alice",
    )


def test_the_same_person_is_the_same_user_and_claims_are_refreshed(connector: Connector) -> None:
    first = accounts.user_for(verified_person(connector))
    again = accounts.user_for(verified_person(connector, family_name="Pleasance"))
    assert again.pk == first.pk
    assert User.objects.get(pk=first.pk).last_name == "Pleasance"
    assert (User.objects.count(), Identity.objects.count()) == (1, 1)


def test_another_subject_with_the_same_email_is_another_user(connector: Connector) -> None:
    # nOAuth: an identity claiming alice's email must not become alice.
    alice = accounts.user_for(verified_person(connector))
    mallory = accounts.user_for(verified_person(connector, sub="subject-mallory"))
    assert mallory.pk != alice.pk


def test_no_account_and_no_creation_is_refused(connector: Connector) -> None:
    connector.create_users = False
    assert refusal_code(connector) == "no_account"
    assert not User.objects.exists()


def test_user_created_signal_is_sent_once(connector: Connector) -> None:
    created: list[Any] = []
    sso_user_created.connect(lambda **kw: created.append(kw["user"]), weak=False, dispatch_uid="a")
    try:
        accounts.user_for(verified_person(connector))
        accounts.user_for(verified_person(connector))
    finally:
        sso_user_created.disconnect(dispatch_uid="a")
    assert len(created) == 1


def test_losing_the_first_sign_in_race_takes_the_winners_user(
    connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other request inserts the identity between our lookup and our insert."""
    winner = User.objects.create_user("winner")

    def other_request_wins(person: Any) -> None:
        Identity.objects.create(
            connector=connector, issuer=connector.issuer, subject="subject-alice", user=winner
        )
        return None

    monkeypatch.setattr(accounts, "linkable_user", other_request_wins)
    user = accounts.user_for(verified_person(connector))
    assert user.pk == winner.pk
    assert (User.objects.count(), Identity.objects.count()) == (1, 1)


# -- domain ownership ------------------------------------------------------------------------


def test_email_of_another_connectors_domain_is_refused(
    connector: Connector, fake_idp: FakeIdP
) -> None:
    make_connector(fake_idp, "fabrikam", domain="fabrikam.com")
    assert refusal_code(connector, email="bob@fabrikam.com") == "wrong_connector"


def test_email_outside_the_connectors_domains_is_refused(connector: Connector) -> None:
    assert refusal_code(connector, email="eve@gmail.example") == "wrong_domain"


def test_a_connector_without_domains_signs_in_any_email(connector: Connector) -> None:
    EmailDomain.objects.filter(connector=connector).delete()
    assert accounts.user_for(verified_person(connector, email="eve@gmail.example"))


# -- linking an existing account by email -------------------------------------------------------


@pytest.fixture
def existing_alice(db: Any) -> Any:
    return User.objects.create_user("alice", email="alice@contoso.com", password="pw-12345")


@pytest.mark.parametrize(
    ("setup", "claims"),
    [
        ("linking-off", {}),
        ("linking-on", {"email_verified": False}),
        ("no-domains", {}),
        ("twin-account", {}),
        ("identity-at-this-issuer", {}),
    ],
    ids=[
        "connector-does-not-allow-it",
        "email-not-verified",
        "email-outside-the-connectors-domains",
        "two-accounts-share-the-email",
        "account-belongs-to-another-subject-here",
    ],
)
def test_existing_account_is_not_linked(
    connector: Connector, existing_alice: Any, setup: str, claims: dict[str, Any]
) -> None:
    connector.link_existing_by_email = setup != "linking-off"
    connector.save()
    if setup == "no-domains":
        # A connector without domains may sign in any email, but links none.
        EmailDomain.objects.filter(connector=connector).delete()
    if setup == "twin-account":
        User.objects.create_user("alice2", email="ALICE@contoso.com")
    if setup == "identity-at-this-issuer":
        Identity.objects.create(
            connector=connector, issuer=connector.issuer, subject="subject-x", user=existing_alice
        )
    user = accounts.user_for(verified_person(connector, **claims))
    assert user.pk != existing_alice.pk
    assert not Identity.objects.filter(user=existing_alice, subject="subject-alice").exists()


def test_existing_account_is_linked_by_a_verified_email_of_the_connectors_domain(
    connector: Connector, existing_alice: Any
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    assert accounts.user_for(verified_person(connector)).pk == existing_alice.pk
    identity = Identity.objects.get()
    assert (identity.user_id, identity.subject) == (existing_alice.pk, "subject-alice")
    assert User.objects.count() == 1


def test_entra_xms_edov_vouches_for_the_email(connector: Connector, existing_alice: Any) -> None:
    connector.provider = "entra_id"
    connector.link_existing_by_email = True
    connector.save()
    person = verified_person(connector, email_verified=None, xms_edov=True, oid="oid-alice")
    assert person.email_verified
    assert accounts.user_for(person).pk == existing_alice.pk


# -- inactive users ------------------------------------------------------------------------------


def test_inactive_user_is_refused(connector: Connector) -> None:
    user = accounts.user_for(verified_person(connector))
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert refusal_code(connector) == "inactive"


def test_a_sign_in_never_writes_back_a_deactivation_made_meanwhile(connector: Connector) -> None:
    user = accounts.user_for(verified_person(connector))
    read_at_the_start = User.objects.get(pk=user.pk)  # what a sign-in in flight holds
    User.objects.filter(pk=user.pk).update(is_active=False, is_staff=True)  # SCIM, the admin
    hooks = accounts.AccountHooks()
    hooks.person = verified_person(connector, family_name="Pleasance")
    hooks.update_user(read_at_the_start, {})
    saved = User.objects.get(pk=user.pk)
    assert (saved.last_name, saved.is_active, saved.is_staff) == ("Pleasance", False, True)


def test_inactive_account_is_neither_linked_nor_signed_in(
    connector: Connector, existing_alice: Any
) -> None:
    connector.link_existing_by_email = True
    connector.save()
    User.objects.filter(pk=existing_alice.pk).update(is_active=False)
    assert refusal_code(connector) == "inactive"
    assert not Identity.objects.exists()


# -- groups ---------------------------------------------------------------------------------------


def test_mapped_groups_follow_the_idp_and_others_stay(connector: Connector) -> None:
    connector.group_mapping = {"g-readers": ["Readers"], "g-staff": "Staff"}
    user = accounts.user_for(verified_person(connector, groups=["g-readers", "g-staff", "x"]))
    user.groups.add(Group.objects.create(name="Unmanaged"))
    accounts.user_for(verified_person(connector, roles=["g-readers"]))
    assert set(user.groups.values_list("name", flat=True)) == {"Readers", "Unmanaged"}


def test_unknown_groups_leave_the_users_groups_alone(connector: Connector, caplog: Any) -> None:
    connector.group_mapping = {"g-readers": ["Readers"]}
    user = accounts.user_for(verified_person(connector, groups=["g-readers"]))
    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {}}}
    accounts.user_for(verified_person(connector, **overage))
    assert list(user.groups.values_list("name", flat=True)) == ["Readers"]
    assert "group overage" in caplog.text


# -- hooks ----------------------------------------------------------------------------------------


class StrictHooks(accounts.AccountHooks):
    """A site's rules: only people with the ``employee`` role; staff from a role."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return "employee" in claims.get("roles", [])

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user = super().update_user(user, claims)
        user.is_staff = "admin" in claims.get("roles", [])
        user.save()
        return user

    def create_user(self, claims: dict[str, Any]) -> Any:
        return self.update_user(super().create_user(claims), claims)


def test_hooks_may_refuse_a_person(connector: Connector) -> None:
    with pytest.raises(SignInError) as info:
        accounts.user_for(verified_person(connector, roles=["guest"]), hooks=StrictHooks())
    assert info.value.code == "refused"
    assert not User.objects.exists()


def test_hooks_see_the_person_and_shape_the_user(connector: Connector) -> None:
    hooks = StrictHooks()
    user = accounts.user_for(verified_person(connector, roles=["employee", "admin"]), hooks=hooks)
    assert user.is_staff
    assert hooks.person.subject == "subject-alice"
    user = accounts.user_for(verified_person(connector, roles=["employee"]), hooks=hooks)
    assert not user.is_staff


# -- readable usernames ----------------------------------------------------------------------


def test_a_taken_username_gets_a_short_suffix_of_the_identity_hash(connector: Connector) -> None:
    first = accounts.user_for(verified_person(connector))
    other = accounts.user_for(verified_person(connector, sub="subject-other-alice"))
    assert first.username == "sso-alice"
    assert other.username.startswith("sso-alice-") and len(other.username) == len("sso-alice-") + 6
    assert other.username != first.username


def test_when_even_the_suffixed_name_is_taken_the_full_hash_is_used(
    connector: Connector, django_user_model: Any
) -> None:
    person = verified_person(connector)
    readable = accounts.derived_username(person)
    django_user_model.objects.create_user(readable)
    suffixed = accounts.derived_username(person)
    django_user_model.objects.create_user(suffixed)
    fallback = accounts.derived_username(person)
    assert fallback not in (readable, suffixed)
    assert len(fallback) > 40 and fallback.startswith("sso-")


def test_usernames_come_from_names_when_the_email_is_not_vouched_for(
    db: Any, fake_idp: Any
) -> None:
    public = make_connector(fake_idp, "public")  # no domains: an unverified email is not used
    person = verified_person(public, email="ceo@contoso.com", email_verified=False)
    assert accounts.derived_username(person) == "sso-alice.liddell"


def test_a_username_differing_only_in_case_or_width_counts_as_taken(
    connector: Connector, django_user_model: Any
) -> None:
    """The site's ``admin`` is not to be joined by an IdP's ``Admin`` or a full-width
    ``ADMIN``: in admin lists and logs they read as the same person."""
    django_user_model.objects.create_superuser("admin", password="pw")
    person = verified_person(connector)
    for mapped in ("Admin", "\uff21\uff24\uff2d\uff29\uff2e"):
        username = accounts.derived_username(dataclasses.replace(person, username=mapped))
        assert username.lower().startswith("admin-") and len(username) == len("admin-") + 6, (
            f"{mapped!r} became {username!r}"
        )


def test_readable_usernames_are_nfkc_normalised(connector: Connector) -> None:
    person = verified_person(
        connector, email="\uff41\uff4c\uff49\uff43\uff45@contoso.com", email_verified=True
    )
    assert accounts.derived_username(person) == "sso-alice"


def test_usernames_are_cleaned_lower_case(connector: Connector) -> None:
    person = verified_person(connector, email="Bob O'Brien+x@contoso.com", email_verified=True)
    assert accounts.derived_username(person) == "sso-bob.o.brien+x"
