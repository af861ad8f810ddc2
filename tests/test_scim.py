"""SCIM 2.0 provisioning (``django_entra_sso.scim``): auth, Users, Groups, quirks, errors."""

from __future__ import annotations

import json
import threading
from importlib import import_module
from io import StringIO
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from django_entra_sso.backends import SSOBackend
from django_entra_sso.models import Connector, Identity, SCIMGroup, SCIMToken, SCIMUser, SSOSession
from django_entra_sso.scim.auth import new_token
from django_entra_sso.signals import sso_user_created
from tests.fakeidp import FakeIdP
from tests.helpers import IN_CI, SignIn, make_connector, signed_in_user

pytestmark = pytest.mark.django_db
User = get_user_model()
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Scim:
    """A SCIM client of one connector: JSON in, JSON out, its bearer token on every call."""

    def __init__(self, connector: Connector, token: str | None = None) -> None:
        self.connector = connector
        self.token = token if token is not None else new_token(connector)
        self.client = Client()
        self.base = f"/sso/scim/v2/{connector.slug}/"

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body) if body else None
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        kwargs.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        return getattr(self.client, method)(
            self.base + path, data=data, content_type="application/scim+json", **kwargs
        )

    def get(self, path: str, **headers: str) -> Any:
        kwargs = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return self.client.get(
            self.base + path, HTTP_AUTHORIZATION=f"Bearer {self.token}", **kwargs
        )

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.call("post", path, body, **headers)

    def put(self, path: str, body: Any, **headers: str) -> Any:
        return self.call("put", path, body, **headers)

    def patch(self, path: str, *operations: dict[str, Any], **headers: str) -> Any:
        return self.call(
            "patch", path, {"schemas": [PATCH], "Operations": list(operations)}, **headers
        )

    def delete(self, path: str, **headers: str) -> Any:
        return self.call("delete", path, **headers)

    def create_user(self, user_name: str = "alice@contoso.com", **fields: Any) -> dict[str, Any]:
        body = {
            "schemas": [USER],
            "userName": user_name,
            "name": {"givenName": "Alice", "familyName": "Liddell"},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
            **fields,
        }
        response = self.post("Users", body)
        assert response.status_code == 201, response.content
        return response.json()  # type: ignore[no-any-return]

    def create_group(self, name: str = "Readers", members: list[str] = (), **fields: Any) -> Any:  # type: ignore[assignment]
        body = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": m} for m in members],
            **fields,
        }
        response = self.post("Groups", body)
        assert response.status_code == 201, response.content
        return response.json()


def assert_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type
    return body  # type: ignore[no-any-return]


@pytest.fixture
def scim(connector: Connector) -> Scim:
    return Scim(connector)


@pytest.fixture
def other(fake_idp: FakeIdP) -> Scim:
    return Scim(make_connector(fake_idp, "fabrikam", domain="fabrikam.com"))


# -- auth ----------------------------------------------------------------------------------------


def test_token_is_stored_hashed(connector: Connector) -> None:
    token = new_token(connector)
    stored = SCIMToken.objects.get(connector=connector)
    assert token not in stored.token_hash and len(stored.token_hash) == 64


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic abc", "bearer  "])
def test_missing_or_wrong_token_is_401_with_no_data(scim: Scim, header: str | None) -> None:
    scim.create_user()
    kwargs = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = Client().get(scim.base + "Users", **kwargs)
    body = assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "alice" not in json.dumps(body)


def test_an_old_token_stops_working_when_replaced(scim: Scim) -> None:
    old = scim.token
    scim.token = new_token(scim.connector)
    assert scim.get("Users").status_code == 200
    scim.token = old
    assert_error(scim.get("Users"), 401)


def test_a_disabled_connector_is_401(scim: Scim) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(enabled=False)
    assert_error(scim.get("Users"), 401)


def test_a_token_works_only_at_its_own_connectors_endpoint(scim: Scim, other: Scim) -> None:
    scim.base = other.base
    assert_error(scim.get("Users"), 401)


def test_one_connectors_token_cannot_see_or_change_anothers_users_or_groups(
    scim: Scim, other: Scim
) -> None:
    bob = other.create_user("bob@fabrikam.com")
    team = other.create_group("Team", [bob["id"]])
    mine = scim.create_user()
    listed = scim.get("Users").json()
    assert [r["id"] for r in listed["Resources"]] == [mine["id"]]
    assert scim.get("Groups").json()["totalResults"] == 0
    for path in (f"Users/{bob['id']}", f"Groups/{team['id']}"):
        assert_error(scim.get(path), 404)
        assert_error(scim.delete(path), 404)
        assert_error(scim.patch(path, {"op": "replace", "path": "displayName", "value": "x"}), 404)
    # Nor may A put B's user into its own group.
    assert_error(
        scim.post(
            "Groups", {"schemas": [GROUP], "displayName": "G", "members": [{"value": bob["id"]}]}
        ),
        400,
    )
    assert User.objects.get(username__startswith="sso-bob").is_active


def test_users_signed_in_elsewhere_are_not_listed(scim: Scim, sign_in: SignIn) -> None:
    sign_in()  # alice signs in through OIDC but was never provisioned
    assert scim.get("Users").json()["totalResults"] == 0


# -- Users ---------------------------------------------------------------------------------------


def test_create_user_makes_a_django_user_and_reads_back(scim: Scim) -> None:
    created = scim.create_user(externalId="ext-1")
    user = User.objects.get()
    assert (user.first_name, user.last_name, user.email, user.is_active) == (
        "Alice",
        "Liddell",
        "alice@contoso.com",
        True,
    )
    assert user.username == "sso-alice" and not user.has_usable_password()
    assert created["userName"] == "alice@contoso.com" and created["externalId"] == "ext-1"
    assert created["meta"]["version"] == 'W/"1"'
    got = scim.get(f"Users/{created['id']}")
    assert got.status_code == 200 and got["Content-Type"] == "application/scim+json"
    assert got["ETag"] == 'W/"1"'
    assert got.json()["emails"] == created["emails"]


def test_create_user_accepts_application_json(scim: Scim) -> None:
    response = scim.client.post(
        scim.base + "Users",
        json.dumps({"schemas": [USER], "userName": "x@contoso.com"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {scim.token}",
    )
    assert response.status_code == 201 and response["Location"].endswith(response.json()["id"])


def test_email_of_a_foreign_domain_is_not_stored_on_the_django_user(scim: Scim) -> None:
    scim.create_user("eve@elsewhere.example")
    assert User.objects.get().email == ""


def test_duplicate_username_is_409_case_insensitively(scim: Scim) -> None:
    scim.create_user()
    body = {"schemas": [USER], "userName": "ALICE@contoso.com"}
    assert_error(scim.post("Users", body), 409, "uniqueness")
    assert User.objects.count() == 1


def test_two_connectors_may_provision_the_same_username(scim: Scim, other: Scim) -> None:
    scim.create_user("shared@example.com")
    other.create_user("shared@example.com")
    assert User.objects.count() == 2 and len({u.username for u in User.objects.all()}) == 2


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('userName eq "ALICE@contoso.com"', ["alice"]),
        ('externalId eq "ext-bob"', ["bob"]),
        ('externalId eq "EXT-BOB"', []),
        ('emails[type eq "work"].value eq "bob@contoso.com"', ["bob"]),
        ('emails.value eq "bob@contoso.com"', ["bob"]),
        ('userName sw "a" and active eq true', ["alice"]),
        ('userName eq "x" or userName eq "bob@contoso.com" and externalId eq "ext-bob"', ["bob"]),
        ('not (userName eq "alice@contoso.com")', ["bob"]),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@contoso.com"', ["bob"]),
    ],
)
def test_user_filters(scim: Scim, filter_: str, expected: list[str]) -> None:
    scim.create_user()
    scim.create_user("bob@contoso.com", externalId="ext-bob")
    found = scim.client.get(
        scim.base + "Users", {"filter": filter_}, HTTP_AUTHORIZATION=f"Bearer {scim.token}"
    ).json()
    assert [r["userName"].split("@")[0] for r in found["Resources"]] == expected
    assert found["totalResults"] == len(expected)


@pytest.mark.parametrize(
    "filter_",
    ['nickName eq "x"', "userName eq", 'userName xx "a"', '(userName eq "a"', "userName eq 'a'"],
)
def test_bad_or_unknown_filters_are_invalid_filter(scim: Scim, filter_: str) -> None:
    scim.create_user()
    response = scim.client.get(
        scim.base + "Users", {"filter": filter_}, HTTP_AUTHORIZATION=f"Bearer {scim.token}"
    )
    assert_error(response, 400, "invalidFilter")


def test_pagination(scim: Scim) -> None:
    for n in range(5):
        scim.create_user(f"user{n}@contoso.com")
    page = scim.get("Users?startIndex=2&count=2").json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [r["userName"] for r in page["Resources"]] == ["user1@contoso.com", "user2@contoso.com"]
    assert scim.get("Users?count=0").json()["Resources"] == []
    assert_error(scim.get("Users?startIndex=x"), 400, "invalidValue")


def test_put_replaces_the_user_okta_style(scim: Scim) -> None:
    created = scim.create_user(externalId="00u1")
    body = {
        "schemas": [USER],
        "id": created["id"],
        "userName": "alice@contoso.com",
        "externalId": "00u1",
        "name": {"givenName": "Alicia", "familyName": "L"},
        "emails": [{"value": "alice@contoso.com", "primary": True}],
        "active": True,
    }
    response = scim.put(f"Users/{created['id']}", body)
    assert response.status_code == 200, response.content
    assert response.json()["meta"]["version"] == 'W/"2"'
    assert User.objects.get().first_name == "Alicia"


def test_patch_add_replace_remove(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    response = scim.patch(
        f"Users/{uid}",
        {"op": "replace", "path": "name.familyName", "value": "Pleasance"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a2@contoso.com"},
        {"op": "add", "path": "title", "value": "CEO"},
        {"op": "add", "value": {"nickName": "Al"}},
    )
    assert response.status_code == 200, response.content
    doc = response.json()
    assert doc["name"]["familyName"] == "Pleasance" and doc["title"] == "CEO"
    assert doc["emails"][0]["value"] == "a2@contoso.com"
    user = User.objects.get()
    assert (user.last_name, user.email) == ("Pleasance", "a2@contoso.com")
    doc = scim.patch(f"Users/{uid}", {"op": "remove", "path": "title"}).json()
    assert "title" not in doc
    assert_error(scim.patch(f"Users/{uid}", {"op": "remove"}), 400, "noTarget")
    assert_error(
        scim.patch(f"Users/{uid}", {"op": "replace", "path": "id", "value": "x"}), 400, "mutability"
    )


def test_patch_path_naming_the_enterprise_extension_changes_its_object(scim: Scim) -> None:
    # Found by scim2-tester: "urn:…:enterprise:2.0:User" was read as attribute "User" of a
    # schema "urn:…:enterprise:2.0", and that bogus object was stored and sent back.
    uid = scim.create_user()["id"]
    doc = scim.patch(
        f"Users/{uid}", {"op": "add", "path": ENTERPRISE, "value": {"department": "Sales"}}
    ).json()
    assert doc[ENTERPRISE] == {"department": "Sales"} and ENTERPRISE in doc["schemas"]
    assert not [k for k in doc if k.lower().startswith("urn:") and k != ENTERPRISE]
    doc = scim.patch(
        f"Users/{uid}", {"op": "replace", "path": ENTERPRISE, "value": {"organization": "Contoso"}}
    ).json()
    assert doc[ENTERPRISE] == {"department": "Sales", "organization": "Contoso"}
    doc = scim.patch(f"Users/{uid}", {"op": "remove", "path": ENTERPRISE}).json()
    assert ENTERPRISE not in doc and doc["schemas"] == [USER]


def test_deactivate_and_reactivate(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    doc = scim.patch(f"Users/{uid}", {"op": "replace", "path": "active", "value": False}).json()
    assert doc["active"] is False and not User.objects.get().is_active
    doc = scim.patch(f"Users/{uid}", {"op": "replace", "path": "active", "value": True}).json()
    assert doc["active"] is True and User.objects.get().is_active


def test_delete_deactivates_by_default_and_forgets_the_link(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    assert scim.delete(f"Users/{uid}").status_code == 204
    assert_error(scim.get(f"Users/{uid}"), 404)
    assert User.objects.get().is_active is False
    assert not SCIMUser.objects.exists()


@override_settings(ENTRA_SSO_SCIM_DELETE="delete")
def test_delete_setting_deletes_the_django_user(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    assert scim.delete(f"Users/{uid}").status_code == 204
    assert not User.objects.exists()


def test_if_match(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    op = {"op": "replace", "path": "title", "value": "x"}
    assert_error(scim.patch(f"Users/{uid}", op, **{"If-Match": 'W/"7"'}), 412)
    assert scim.patch(f"Users/{uid}", op, **{"If-Match": 'W/"1"'}).status_code == 200


# -- sessions end when SCIM deactivates ---------------------------------------------------------


@pytest.mark.parametrize(
    "engine", ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cache"]
)
def test_scim_deactivation_ends_the_browser_session(
    client: Client, fake_idp: FakeIdP, connector: Connector, engine: str
) -> None:
    with override_settings(SESSION_ENGINE=engine):
        scim = Scim(connector)
        uid = scim.create_user(externalId="subject-alice")["id"]
        assert SignIn(client, fake_idp)().status_code == 302
        assert signed_in_user(client) is not None
        session_key = client.session.session_key
        store = import_module(settings.SESSION_ENGINE).SessionStore
        assert store().exists(session_key)
        response = scim.patch(f"Users/{uid}", {"op": "replace", "value": {"active": False}})
        assert response.status_code == 200
        assert not store().exists(session_key)
        assert not SSOSession.objects.exists()
        assert client.get("/private/").status_code == 302


# -- one person, one account ----------------------------------------------------------------------


def test_scim_user_signing_in_by_oidc_is_the_same_account(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    scim.create_user("someone@contoso.com", externalId="subject-alice")
    provisioned = User.objects.get()
    assert sign_in().status_code == 302
    assert signed_in_user(client).pk == provisioned.pk
    assert User.objects.count() == 1
    assert Identity.objects.get().user_id == provisioned.pk


def test_scim_user_without_external_id_is_matched_by_verified_email(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    scim.create_user("alice@contoso.com")
    assert sign_in().status_code == 302
    assert User.objects.count() == 1


def test_unverified_email_does_not_match_a_scim_user(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    scim.create_user("alice@contoso.com")
    assert sign_in(email_verified=False).status_code == 302
    assert User.objects.count() == 2


def test_another_connectors_scim_user_is_never_matched(
    client: Client, sign_in: SignIn, other: Scim
) -> None:
    other.create_user("alice@contoso.com", externalId="subject-alice")
    assert sign_in().status_code == 302
    assert User.objects.count() == 2


def test_entra_scim_external_id_is_the_oid(fake_idp: FakeIdP, client: Client) -> None:
    connector = make_connector(fake_idp, "contoso", domain="contoso.com", provider="entra_id")
    Scim(connector).create_user("alice@contoso.com", externalId="oid-alice")
    assert SignIn(client, fake_idp)(oid="oid-alice", email_verified=False).status_code == 302
    assert User.objects.count() == 1


def test_provisioning_someone_who_signed_in_takes_over_their_account(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    sign_in()
    scim.create_user("alice@contoso.com", externalId="subject-alice")
    assert User.objects.count() == 1 and SCIMUser.objects.get().user == Identity.objects.get().user


# -- Groups --------------------------------------------------------------------------------------


def test_group_crud_and_filters(scim: Scim) -> None:
    alice = scim.create_user()["id"]
    bob = scim.create_user("bob@contoso.com")["id"]
    group = scim.create_group("Readers", [alice], externalId="g-1")
    assert [m["value"] for m in group["members"]] == [alice]
    gid = group["id"]
    found = scim.get('Groups?filter=displayName eq "readers"').json()
    assert [g["id"] for g in found["Resources"]] == [gid]
    found = scim.client.get(
        scim.base + "Groups",
        {"filter": f'members[value eq "{bob}"]'},
        HTTP_AUTHORIZATION=f"Bearer {scim.token}",
    ).json()
    assert found["totalResults"] == 0
    assert "members" not in scim.get(f"Groups/{gid}?excludedAttributes=members").json()
    response = scim.put(
        f"Groups/{gid}", {"schemas": [GROUP], "displayName": "R2", "members": [{"value": bob}]}
    )
    assert [m["value"] for m in response.json()["members"]] == [bob]
    assert (
        scim.patch(
            f"Groups/{gid}", {"op": "replace", "path": "displayName", "value": "R3"}
        ).status_code
        == 204
    )
    assert SCIMGroup.objects.get().display_name == "R3"
    assert_error(scim.post("Groups", {"schemas": [GROUP], "displayName": "r3"}), 409, "uniqueness")
    assert scim.delete(f"Groups/{gid}").status_code == 204
    assert_error(scim.get(f"Groups/{gid}"), 404)


def test_group_patch_members_add_remove(scim: Scim) -> None:
    alice = scim.create_user()["id"]
    bob = scim.create_user("bob@contoso.com")["id"]
    gid = scim.create_group()["id"]
    scim.patch(
        f"Groups/{gid}",
        {"op": "add", "path": "members", "value": [{"value": alice}, {"value": bob}]},
    )
    assert SCIMGroup.objects.get().members.count() == 2
    scim.patch(f"Groups/{gid}", {"op": "remove", "path": f'members[value eq "{alice}"]'})
    assert [str(m.scim_id) for m in SCIMGroup.objects.get().members.all()] == [bob]


def test_group_membership_grants_mapped_django_groups(scim: Scim) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"Readers": ["Readers"]})
    alice = scim.create_user()["id"]
    gid = scim.create_group("Readers", [alice])["id"]
    user = User.objects.get()
    assert list(user.groups.values_list("name", flat=True)) == ["Readers"]
    scim.patch(f"Groups/{gid}", {"op": "remove", "path": "members", "value": [{"value": alice}]})
    assert not user.groups.exists()


def test_a_group_another_connectors_mapping_controls_is_never_granted(
    scim: Scim, other: Scim
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(
        group_mapping={"Staff": ["Staff", "Admins"]}
    )
    Connector.objects.filter(pk=other.connector.pk).update(group_mapping={"x": ["Admins"]})
    alice = scim.create_user()["id"]
    scim.create_group("Staff", [alice])
    assert sorted(User.objects.get().groups.values_list("name", flat=True)) == ["Staff"]


def test_adding_100_members_costs_a_fixed_number_of_queries(
    scim: Scim, django_assert_max_num_queries: Any
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"Readers": ["Readers"]})
    ids = [scim.create_user(f"u{n}@contoso.com")["id"] for n in range(100)]
    gid = scim.create_group()["id"]
    with django_assert_max_num_queries(30):
        response = scim.patch(
            f"Groups/{gid}", {"op": "add", "path": "members", "value": [{"value": i} for i in ids]}
        )
    assert response.status_code == 204
    assert Group.objects.get(name="Readers").user_set.count() == 100


# -- IdP quirks ----------------------------------------------------------------------------------


def test_entra_capitalised_ops_and_string_booleans(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    response = scim.patch(f"Users/{uid}", {"op": "Replace", "path": "active", "value": "False"})
    assert response.status_code == 200 and not User.objects.get().is_active
    scim.patch(
        f"Users/{uid}",
        {"op": "Add", "path": "title", "value": "x"},
        {"op": "Remove", "path": "title"},
    )
    assert "title" not in scim.get(f"Users/{uid}").json()


def test_entra_values_without_path_and_dotted_keys(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    response = scim.patch(
        f"Users/{uid}",
        {
            "op": "Replace",
            "value": {"active": False, "name.givenName": "Al", "displayName": "Al L"},
        },
    )
    assert response.status_code == 200, response.content
    user = User.objects.get()
    assert (user.is_active, user.first_name) == (False, "Al")
    assert response.json()["name"] == {"givenName": "Al", "familyName": "Liddell"}


def test_entra_remove_members_by_value_list(scim: Scim) -> None:
    alice = scim.create_user()["id"]
    gid = scim.create_group("G", [alice])["id"]
    response = scim.patch(
        f"Groups/{gid}", {"op": "Remove", "path": "members", "value": [{"value": alice}]}
    )
    assert response.status_code == 204 and not SCIMGroup.objects.get().members.exists()


def test_okta_deactivates_with_put_active_false(scim: Scim) -> None:
    created = scim.create_user(externalId="00u1")
    body = {k: v for k, v in created.items() if k != "meta"} | {"active": False}
    assert scim.put(f"Users/{created['id']}", body).status_code == 200
    assert not User.objects.get().is_active


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ("{not json", "invalidSyntax"),
        ('"a string"', "invalidSyntax"),
        ({"schemas": ["urn:example:unknown"], "userName": "x"}, "invalidSyntax"),
        ({"schemas": [USER, "urn:example:unknown"], "userName": "x"}, "invalidValue"),
        ({"schemas": [USER], "userName": 5}, "invalidValue"),
        ({"schemas": [USER]}, "invalidValue"),
        ({"schemas": [USER], "userName": "x", "active": "maybe"}, "invalidValue"),
        ({"schemas": [USER], "userName": "x", "name": "Alice"}, "invalidValue"),
        ({"schemas": [USER], "userName": "x", "emails": "a@b"}, "invalidValue"),
        ({"schemas": [USER], "userName": "x", "id": "mine"}, "mutability"),
    ],
)
def test_bad_user_bodies_are_400_and_write_nothing(scim: Scim, body: Any, scim_type: str) -> None:
    assert_error(scim.post("Users", body), 400, scim_type)
    assert not User.objects.exists() and not SCIMUser.objects.exists()


def test_a_body_over_one_mib_is_413(scim: Scim) -> None:
    body = {"schemas": [USER], "userName": "x", "title": "a" * (1024 * 1024)}
    assert_error(scim.post("Users", body), 413)
    assert not User.objects.exists()


def test_unknown_ids_are_404(scim: Scim) -> None:
    for path in ("Users/not-a-uuid", "Users/00000000-0000-0000-0000-000000000000", "Groups/x"):
        assert_error(scim.get(path), 404)


def test_a_failed_patch_changes_nothing(scim: Scim) -> None:
    uid = scim.create_user()["id"]
    response = scim.patch(
        f"Users/{uid}",
        {"op": "replace", "path": "name.givenName", "value": "Changed"},
        {"op": "replace", "path": "active", "value": "nope"},
    )
    assert_error(response, 400, "invalidValue")
    assert User.objects.get().first_name == "Alice"


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": ["wrong"], "Operations": [{"op": "add", "value": {}}]},
        {"schemas": [PATCH], "Operations": []},
        {"schemas": [PATCH], "Operations": [{"op": "move", "path": "title"}]},
    ],
)
def test_bad_patch_bodies(scim: Scim, body: Any) -> None:
    uid = scim.create_user()["id"]
    assert_error(scim.call("patch", f"Users/{uid}", body), 400, "invalidSyntax")


def test_method_not_allowed_is_a_scim_error(scim: Scim) -> None:
    assert_error(scim.delete("Users"), 405)


def test_unknown_paths_are_scim_404s_and_search_is_501(scim: Scim) -> None:
    # Found by scim2-tester: both were the site's HTML 404 page.
    assert_error(scim.get("NoSuchThing"), 404)
    assert_error(scim.post("Users/x/y", {}), 404)
    for path in (".search", "Users/.search", "Groups/.search"):
        assert_error(scim.post(path, {"schemas": []}), 501)
    assert_error(Client().get(scim.base + "NoSuchThing"), 401)


# -- discovery -----------------------------------------------------------------------------------


def test_discovery_endpoints(scim: Scim) -> None:
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True and config["etag"]["supported"] is True
    types = scim.get("ResourceTypes").json()
    assert {r["id"] for r in types["Resources"]} == {"User", "Group"}
    assert scim.get("ResourceTypes/User").json()["endpoint"] == "/Users"
    assert scim.get("Schemas").json()["totalResults"] == 3
    assert scim.get(f"Schemas/{USER}").json()["id"] == USER
    assert_error(Client().get(scim.base + "ServiceProviderConfig"), 401)


def test_group_schema_describes_members_as_they_are_rendered(scim: Scim) -> None:
    # Found by scim2-tester: "$ref" was sent but not described, and "display" and "type",
    # which the server fills in, were described as the client's to write.
    schema = scim.get(f"Schemas/{GROUP}").json()
    (members,) = [a for a in schema["attributes"] if a["name"] == "members"]
    subs = {a["name"]: a for a in members["subAttributes"]}
    assert subs["$ref"]["type"] == "reference" and subs["$ref"]["referenceTypes"] == ["User"]
    assert subs["display"]["mutability"] == subs["type"]["mutability"] == "readOnly"
    uid = scim.create_user()["id"]
    (member,) = scim.create_group(members=[uid])["members"]
    assert set(member) == set(subs)


# -- token management ----------------------------------------------------------------------------


def test_command_prints_a_new_token_once_and_replaces_the_old(scim: Scim) -> None:
    out = StringIO()
    call_command("sso_connector", "scim-token", "contoso", stdout=out)
    lines = out.getvalue().splitlines()
    token = lines[1]
    assert "/sso/scim/v2/contoso/" in lines[2]
    assert_error(scim.get("Users"), 401)
    scim.token = token
    assert scim.get("Users").status_code == 200


def test_admin_new_scim_token_button(admin_client: Client, connector: Connector) -> None:
    url = f"/admin/django_entra_sso/connector/{connector.pk}/scim-token/"
    page = admin_client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    assert url.encode() in page.content and b"new-scim-token" in page.content
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.status_code == 200
    token = response.context["token"]
    assert b"http://testserver/sso/scim/v2/contoso/" in response.content
    assert Scim(connector, token).get("Users").status_code == 200


def test_admin_scim_token_needs_change_permission(client: Client, connector: Connector) -> None:
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_connector"))
    client.force_login(staff)
    response = client.post(f"/admin/django_entra_sso/connector/{connector.pk}/scim-token/")
    assert response.status_code == 403 and not SCIMToken.objects.exists()


def test_a_deeply_nested_body_is_invalid_syntax_not_a_500(scim: Scim) -> None:
    response = scim.post("Users", b"[" * 100_000 + b"]" * 100_000)
    assert_error(response, 400, "invalidSyntax")
    assert not SCIMUser.objects.exists()


# -- found in review: inputs that were 500s, and tenants of one connector ---------------------------


@pytest.mark.parametrize(
    "query",
    [
        "id pr",
        "active pr",
        'meta.created gt "abc"',
        "(" * 400 + 'userName eq "x"' + ")" * 400,
        'emails[((((((((((((((((((((type eq "work"))))))))))))))))))))].value pr',
    ],
)
def test_odd_filters_are_scim_errors_not_500s(scim: Scim, query: str) -> None:
    scim.create_user("alice@contoso.com")
    response = scim.get(f"Users?filter={quote(query)}")
    assert response.status_code in (200, 400), response.content
    assert response["Content-Type"] == "application/scim+json"


def test_a_huge_start_index_is_an_empty_page(scim: Scim) -> None:
    scim.create_user("alice@contoso.com")
    response = scim.get("Users?startIndex=99999999999999999999")
    assert response.status_code == 200, response.content
    assert response.json()["Resources"] == []


def test_a_connector_of_several_tenants_never_links_by_scim(
    fake_idp: FakeIdP, client: Client
) -> None:
    from tests.helpers import OTHER_TENANT, TENANT, entra_common_connector, entra_issuer

    fake_idp.issuer_override = entra_issuer(fake_idp, "{tenantid}")
    connector = entra_common_connector(
        fake_idp, allowed_tenants=[TENANT, OTHER_TENANT], domain="contoso.com"
    )
    Scim(connector).create_user("mallory@contoso.com", externalId="oid-alice")
    claims = {"iss": entra_issuer(fake_idp, TENANT), "tid": TENANT}
    response = SignIn(client, fake_idp)(slug=connector.slug, oid="oid-alice", **claims)
    assert response.status_code == 302
    assert User.objects.count() == 2  # not the account another tenant's SCIM client made


def test_the_email_fallback_needs_one_of_the_connectors_domains(
    client: Client, fake_idp: FakeIdP
) -> None:
    connector = make_connector(fake_idp, "public")  # no domains
    Scim(connector).create_user("alice@contoso.com")
    signer = SignIn(client, fake_idp)
    params = fake_idp.authorize(client.get("/sso/login/?connector=public")["Location"])
    assert signer.callback("public", params).status_code == 302
    assert User.objects.count() == 2


def test_people_scim_does_not_provision_keep_following_their_claims(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"staff-id": ["Staff"]})
    scim.create_group("Others")  # the connector provisions groups, but not alice
    assert sign_in(groups=["staff-id"]).status_code == 302
    alice = User.objects.get()
    assert list(alice.groups.values_list("name", flat=True)) == ["Staff"]
    client.logout()
    assert sign_in(groups=[]).status_code == 302  # she left the IdP group
    assert not alice.groups.exists()


def test_a_person_taken_over_by_scim_gets_scims_groups(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    Connector.objects.filter(pk=scim.connector.pk).update(group_mapping={"staff-id": ["Staff"]})
    assert sign_in(groups=["staff-id"]).status_code == 302
    assert User.objects.get().groups.filter(name="Staff").exists()  # from her claims
    scim.create_group("Others")
    scim.create_user("alice@contoso.com", externalId="subject-alice")  # takes her over
    assert not User.objects.get().groups.exists()  # SCIM puts her in no mapped group


# -- found in review: concurrent writes, and the site's backend --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_patch_waits_for_a_deactivation_in_flight_and_never_reactivates(scim: Scim) -> None:
    if connection.vendor != "postgresql":
        if IN_CI:
            pytest.skip("runs in the PostgreSQL pass of CI")  # the SQLite pass has no writers
        pytest.skip("needs PostgreSQL (concurrent connections)")
    uid = scim.create_user("alice@contoso.com")["id"]
    user_pk = User.objects.get().pk
    deactivating, patched = threading.Event(), threading.Event()
    statuses: list[int] = []

    def rename() -> None:
        from django.db import connections

        try:
            deactivating.wait(timeout=10)
            response = scim.patch(
                f"Users/{uid}", {"op": "replace", "path": "displayName", "value": "Alice Renamed"}
            )
            statuses.append(response.status_code)
        finally:
            patched.set()
            connections.close_all()

    thread = threading.Thread(target=rename)
    thread.start()
    # Another SCIM write in flight: the connector's lock held, alice deactivated, not committed.
    with transaction.atomic():
        list(Connector.objects.select_for_update().filter(pk=scim.connector.pk).values_list("pk"))
        User.objects.filter(pk=user_pk).update(is_active=False)
        deactivating.set()
        assert not patched.wait(timeout=0.5)  # the rename waits for us
    thread.join(timeout=20)
    assert statuses == [200]
    alice = User.objects.get(pk=user_pk)
    assert alice.is_active is False  # the rename read the committed deactivation
    assert scim.get(f"Users/{uid}").json()["displayName"] == "Alice Renamed"


def test_scim_writes_lock_the_connector_and_reads_do_not(scim: Scim) -> None:
    uid = scim.create_user("alice@contoso.com")["id"]
    with CaptureQueriesContext(connection) as writes:
        scim.patch(f"Users/{uid}", {"op": "replace", "path": "displayName", "value": "A"})
    with CaptureQueriesContext(connection) as reads:
        scim.get(f"Users/{uid}")
    locks = [
        q["sql"]
        for q in writes.captured_queries
        if "entra_sso_connector" in q["sql"] and "FOR UPDATE" in q["sql"]
    ]
    if connection.features.has_select_for_update:
        assert len(locks) == 1
    assert not [q for q in reads.captured_queries if "FOR UPDATE" in q["sql"]]
    # On SQLite (one writer at a time anyway) the lock is the select it stands for.
    assert [
        q
        for q in writes.captured_queries
        if q["sql"].startswith('SELECT "django_entra_sso_connector"."id"')
    ]


class ProvisioningBackend(SSOBackend):
    """A site's backend: its own usernames, applied to provisioned people as well."""

    def get_username(self, claims: dict[str, Any]) -> str:
        return "company-" + claims["email"].split("@")[0]


def test_provisioned_users_go_through_the_sites_backend_and_signal(
    scim: Scim, settings: Any
) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        "tests.test_scim.ProvisioningBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    created: list[tuple[Any, Any]] = []
    sso_user_created.connect(
        lambda **kw: created.append((kw["sender"], kw["user"])), weak=False, dispatch_uid="scim"
    )
    try:
        scim.create_user("alice@contoso.com")
    finally:
        sso_user_created.disconnect(dispatch_uid="scim")
    alice = User.objects.get()
    assert alice.get_username() == "company-alice"
    assert created == [(ProvisioningBackend, alice)]


def test_taking_over_someone_who_signed_in_is_not_a_new_user(
    client: Client, sign_in: SignIn, scim: Scim
) -> None:
    assert sign_in().status_code == 302
    created: list[Any] = []
    sso_user_created.connect(lambda **kw: created.append(kw), weak=False, dispatch_uid="scim")
    try:
        scim.create_user("alice@contoso.com", externalId="subject-alice")
    finally:
        sso_user_created.disconnect(dispatch_uid="scim")
    assert created == []
