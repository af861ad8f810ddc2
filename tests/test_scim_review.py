"""Found by a second read-only review of SCIM (2026-12-01); each failed before its fix."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from django_entra_sso.models import Connector
from tests.test_scim import USER, Scim, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim(connector: Connector) -> Scim:
    return Scim(connector)


User = get_user_model()

# The object ID of the customer's privileged Entra group, as a site maps group claims.
ADMINS_OID = "8f3a1c2e-4b5d-4e6f-9a0b-1c2d3e4f5a6b"


# -- F1: datetime filters with a non-string value are 500s ----------------------------------------


@pytest.mark.parametrize(
    ("resource", "query"),
    [
        ("Users", "meta.lastModified gt 5"),
        ("Users", "meta.created eq true"),
        ("Users", "meta.created gt 99999999999999999999999"),
        ("Groups", "meta.created lt true"),
    ],
)
def test_datetime_filter_with_a_non_string_value_is_400_not_500(
    scim: Scim, resource: str, query: str
) -> None:
    # The test client re-raises the view's exception: a 500 fails here with TypeError.
    scim.create_user()
    response = scim.get(f"{resource}?filter={quote(query)}")
    assert_error(response, 400)


# -- F2: a group's displayName (free text) matches mapping keys meant for object IDs ---------------


def test_a_group_renamed_to_a_mapped_object_id_does_not_grant_its_django_groups(
    scim: Scim,
) -> None:
    # The site maps the *object ID* of the customer's admin group (what group claims carry,
    # and what no one but Entra can choose). Any owner of an ordinary group that is in the
    # provisioning scope can set its displayName to that GUID.
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={ADMINS_OID: ["Editors"]})
    alice = scim.create_user()["id"]
    scim.create_group(ADMINS_OID, [alice], externalId="1b2c3d4e-0000-4000-8000-000000000001")
    assert not User.objects.get().groups.filter(name="Editors").exists()


# -- F3: a write that does not mention `active` reactivates ---------------------------------------


def _deactivated(scim: Scim) -> str:
    uid: str = scim.create_user()["id"]
    scim.patch(f"Users/{uid}", {"op": "replace", "path": "active", "value": False})
    assert not User.objects.get().is_active
    return uid


def test_put_without_active_does_not_reactivate(scim: Scim) -> None:
    uid = _deactivated(scim)
    body = {"schemas": [USER], "userName": "alice@contoso.com", "name": {"givenName": "Al"}}
    assert scim.put(f"Users/{uid}", body).status_code == 200
    assert not User.objects.get().is_active


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "remove", "path": "active"},
        {"op": "replace", "path": "active", "value": None},
    ],
)
def test_patch_removing_active_does_not_reactivate(scim: Scim, operation: dict[str, Any]) -> None:
    uid = _deactivated(scim)
    scim.patch(f"Users/{uid}", operation)
    assert not User.objects.get().is_active


# -- F4: a core-schema object in a path-less PATCH is silently stored, not applied ----------------


def test_pathless_patch_with_the_core_schema_urn_is_applied_or_refused(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    op = {
        "op": "replace",
        "value": {"urn:ietf:params:scim:schemas:core:2.0:User": {"active": False}},
    }
    response = scim.patch(f"Users/{uid}", op)
    # Either a 400, or the deactivation happened; never a 200 that left the person active.
    assert response.status_code == 400 or not User.objects.get().is_active


# -- F5: the "site's own account" rule is only checked at takeover --------------------------------


@override_settings(ENTRA_SSO_SCIM_DELETE="delete")
def test_scim_delete_does_not_delete_a_user_the_site_made_superuser(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    User.objects.update(is_staff=True, is_superuser=True)  # promoted by the site's staff
    scim.delete(f"Users/{uid}")
    assert User.objects.filter(is_superuser=True).exists()


def test_scim_cannot_deactivate_a_user_the_site_made_superuser(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    User.objects.update(is_staff=True, is_superuser=True)
    scim.patch(f"Users/{uid}", {"op": "replace", "path": "active", "value": False})
    assert User.objects.get().is_active


# -- F6: when a connector starts provisioning groups, claim-granted groups are never revoked ------


def test_claim_granted_group_is_revoked_once_the_connector_provisions_groups(
    client: Any, sign_in: Any, scim: Scim
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"staff-id": ["Staff"]})
    scim.create_user("alice@contoso.com", externalId="subject-alice")  # users only, for now
    assert sign_in(groups=["staff-id"]).status_code == 302
    alice = User.objects.get()
    assert alice.groups.filter(name="Staff").exists()  # from her claims
    scim.create_group("Others")  # the IdP now pushes groups too; alice is in none
    client.logout()
    assert sign_in(groups=[]).status_code == 302  # she has left the staff group at the IdP
    # Neither her sign-in (skipped: SCIM manages her) nor SCIM (never recomputes her) takes it.
    assert not alice.groups.filter(name="Staff").exists()


def test_takeover_by_a_connector_without_scim_groups_keeps_claim_groups(
    client: Any, sign_in: Any, scim: Scim
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"staff-id": ["Staff"]})
    assert sign_in(groups=["staff-id"]).status_code == 302
    scim.create_user("alice@contoso.com", externalId="subject-alice")  # takeover, no groups pushed
    # README: only "a connector that provisions groups keeps them through SCIM".
    assert User.objects.get().groups.filter(name="Staff").exists()


# -- left by the second review, closed on issue-18's branch --------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '"userName": "nul\\u0000@contoso.com"',
        '"userName": "a@contoso.com", "name": {"given\\u0000": "x"}',
        '"userName": "a@contoso.com", "x": [1, ["\\u0000"]]',
    ],
    ids=["value", "key", "nested"],
)
def test_a_nul_character_is_a_400_whatever_the_database_driver(scim: Scim, body: str) -> None:
    """psycopg 3 refuses NUL in text with DataError (a 400 here); psycopg2 raised a ValueError
    of its own, a 500. Refused before any database sees it."""
    assert_error(scim.post("Users", _raw_user(body)), 400, "invalidValue")
    assert not User.objects.exists()


def test_a_nul_character_in_a_filter_is_a_400(scim: Scim) -> None:
    scim.create_user("alice@contoso.com")
    response = scim.get("Users?filter=" + quote('userName eq "a\\u0000"'))
    assert_error(response, 400, "invalidFilter")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(scim: Scim, constant: str) -> None:
    body = _raw_user(f'"userName": "a@contoso.com", "active": {constant}')
    assert_error(scim.post("Users", body), 400, "invalidSyntax")
    response = scim.get("Users?filter=" + quote(f"meta.version eq {constant}"))
    assert response.status_code == 400


def _raw_user(members: str) -> str:
    """A User body written by hand, for what ``json.dumps`` would not write."""
    return '{"schemas": ["' + USER + '"], ' + members + "}"
