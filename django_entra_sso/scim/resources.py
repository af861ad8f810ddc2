"""Users and Groups: SCIM JSON in, Django users and groups out, and back again.

Every account rule (usernames, which email is stored, inactive users, one
account per person) is ``accounts``'; this module only reads and writes SCIM's
shapes. Each writer runs inside the view's transaction and raises ``SCIMError``
before anything is half-written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse

from .. import accounts
from ..conf import app_settings
from ..models import Connector, SCIMGroup, SCIMUser
from ..verified import VerifiedPerson
from . import groups as group_sync
from .errors import SCIMError, bad_request
from .filters import Field, as_datetime

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_SCHEMAS = frozenset({USER_SCHEMA, ENTERPRISE_SCHEMA})
GROUP_SCHEMAS = frozenset({GROUP_SCHEMA})
#: Never stored, never echoed.
NOT_STORED = frozenset({"id", "meta", "schemas", "password", "groups"})


def _get(doc: Mapping[str, Any], name: str) -> Any:
    for key, value in doc.items():
        if key.lower() == name:
            return value
    return None


def _text(doc: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = _get(doc, name)
    if value is None or value == "":
        if required:
            raise bad_request(f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string.")
    if len(value) > 255:
        raise bad_request(f"{name} is too long.")
    return value.strip()


def as_bool(value: Any, name: str) -> bool:
    """SCIM booleans, and Entra ID's strings ``"True"``/``"False"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_request(f"{name} must be a boolean.")


def _check_schemas(doc: Mapping[str, Any], core: str, known: frozenset[str]) -> None:
    schemas = _get(doc, "schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise bad_request("schemas must be a list of schema URNs.", "invalidSyntax")
    lowered = {s.lower() for s in schemas}
    if core.lower() not in lowered:
        raise bad_request(f"schemas must include {core}.", "invalidSyntax")
    unknown = lowered - {k.lower() for k in known}
    if unknown:
        raise bad_request(f"Unknown schema {sorted(unknown)[0]}.", "invalidValue")


def _check_id(doc: Mapping[str, Any], current: uuid.UUID | None) -> None:
    given = _get(doc, "id")
    if given is not None and (current is None or str(given) != str(current)):
        raise bad_request("id is assigned by the service provider.", "mutability")


def _meta(request: HttpRequest, kind: str, obj: SCIMUser | SCIMGroup, name: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": obj.created_at.isoformat(),
        "lastModified": obj.modified_at.isoformat(),
        "location": request.build_absolute_uri(
            reverse(f"entra_sso:scim_{name}", args=[obj.connector.slug, obj.scim_id])
        ),
        "version": etag(obj),
    }


def etag(obj: SCIMUser | SCIMGroup) -> str:
    return f'W/"{obj.version}"'


def _drop(doc: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k.lower() not in names}


# -- Users ------------------------------------------------------------------------------------

USER_FIELDS: dict[str, Any] = {
    "id": Field("scim_id", convert=lambda v: uuid.UUID(str(v))),
    "username": Field("user_name"),  # case-insensitive (RFC 7643, 4.1.1)
    "externalid": Field("external_id", case_exact=True),
    "active": Field("user__is_active", convert=lambda v: as_bool(v, "active")),
    "name.givenname": Field("user__first_name"),
    "name.familyname": Field("user__last_name"),
    "meta.lastmodified": Field("modified_at", convert=as_datetime),
    "meta.created": Field("created_at", convert=as_datetime),
}


def _email_type(op: str, value: Any) -> Q:
    # Filters look at the one email kept for searching: the work (or primary) one.
    if op == "pr" or (op == "eq" and isinstance(value, str) and value.lower() == "work"):
        return Q()
    return Q(pk__in=[])


def _email_primary(op: str, value: Any) -> Q:
    return Q() if op in ("pr", "eq") and value in (True, "true", "True") else Q(pk__in=[])


USER_SUB_FIELDS: dict[str, dict[str, Any]] = {
    "emails": {"value": Field("email"), "type": _email_type, "primary": _email_primary}
}


@dataclass(frozen=True)
class UserInput:
    user_name: str
    external_id: str
    #: ``None`` when the document does not say: a new user is active, an existing
    #: one stays as it is (a PUT or PATCH without ``active`` reactivates no one).
    active: bool | None
    given_name: str
    family_name: str
    email: str
    attributes: dict[str, Any]


def _email(doc: Mapping[str, Any]) -> str:
    emails = _get(doc, "emails")
    if emails is None:
        return ""
    if not isinstance(emails, list) or not all(isinstance(e, Mapping) for e in emails):
        raise bad_request("emails must be a list of objects.")
    values = []
    for item in emails:
        value = _get(item, "value")
        if value is not None and not isinstance(value, str):
            raise bad_request("emails.value must be a string.")
        if value:
            values.append((item, value.strip()))
    for test in (
        lambda i: _get(i, "primary") in (True, "true", "True"),
        lambda i: str(_get(i, "type") or "").lower() == "work",
        lambda i: True,
    ):
        for item, value in values:
            if test(item):
                return value[:254]
    return ""


def read_user(doc: Any) -> UserInput:
    if not isinstance(doc, Mapping):
        raise bad_request("The body must be a User object.", "invalidSyntax")
    _check_schemas(doc, USER_SCHEMA, USER_SCHEMAS)
    name = _get(doc, "name")
    if name is not None and not isinstance(name, Mapping):
        raise bad_request("name must be an object.")
    name = name or {}
    active = _get(doc, "active")
    return UserInput(
        user_name=_text(doc, "username", required=True),
        external_id=_text(doc, "externalid"),
        active=None if active is None else as_bool(active, "active"),
        given_name=_text(name, "givenname"),
        family_name=_text(name, "familyname"),
        email=_email(doc),
        attributes=_drop(doc, NOT_STORED | {"username", "externalid", "active"}),
    )


def _person(connector: Connector, data: UserInput, key: str) -> VerifiedPerson:
    # The IdP's provisioning pushes a directory entry; it does not verify emails. The
    # email is stored when ``accounts`` says so (the connector's own domains).
    return VerifiedPerson(
        connector=connector,
        issuer=connector.issuer,
        subject=data.external_id or f"scim:{key}",
        # Shaped like an ID token's claims, for a site's ``get_username``/``create_user``
        # overrides; what the IdP sent is under ``scim``.
        claims={
            key: value
            for key, value in {
                "sub": data.external_id,
                "email": data.email,
                "preferred_username": data.user_name,
                "given_name": data.given_name,
                "family_name": data.family_name,
            }.items()
            if value
        }
        | {"scim": data.attributes},
        email=data.email or None,
        email_verified=False,
        given_name=data.given_name or None,
        family_name=data.family_name or None,
    )


def _check_unique(connector: Connector, data: UserInput, link: SCIMUser | None) -> None:
    others = SCIMUser.objects.filter(connector=connector)
    if link is not None:
        others = others.exclude(pk=link.pk)
    # Lower(...) = lower value and a non-empty externalId: the forms the unique
    # indexes have, so the lookups use them (iexact compiles to LIKE, which cannot).
    if (
        others.annotate(lower_name=Lower("user_name"))
        .filter(lower_name=data.user_name.lower())
        .exists()
    ):
        raise SCIMError(409, "userName is already taken.", "uniqueness")
    if (
        data.external_id
        and others.exclude(external_id="").filter(external_id=data.external_id).exists()
    ):
        raise SCIMError(409, "externalId is already taken.", "uniqueness")


def create_user(connector: Connector, doc: Any, request: HttpRequest | None = None) -> SCIMUser:
    data = read_user(doc)
    _check_id(doc, None)
    _check_unique(connector, data, None)
    link = SCIMUser(connector=connector)
    person = _person(connector, data, str(link.scim_id))
    user = accounts.user_signed_in_through(connector, data.external_id)
    if user is not None and accounts.belongs_to_the_site(user, connector):
        # An account staff linked to this person (or the site's own staff) is the
        # site's: provisioning would hand its email, activity and groups to the IdP.
        raise SCIMError(
            409,
            "This person's account is managed by the site's staff; ask them to provision it.",
            "uniqueness",
        )
    if user is not None:
        user = accounts.update_provisioned_user(user, person, active=data.active)
    else:
        user = accounts.create_provisioned_user(
            person, active=data.active is not False, request=request
        )
    link.user = user
    _fill(link, data)
    link.save()
    if SCIMGroup.objects.filter(connector=connector).exists():
        # A person taken over from sign-ins: their mapped groups now follow SCIM's (a
        # connector that pushes no groups leaves them to the sign-ins' claims).
        group_sync.sync_members(connector, [link.pk])
    return link


def refuse_the_sites_own(link: SCIMUser) -> None:
    """409 for a change to an account the site made its own after provisioning."""
    if accounts.belongs_to_the_site(link.user, link.connector):
        raise SCIMError(
            409,
            "This person's account is managed by the site's staff now; ask them to change it.",
            "mutability",
        )


def replace_user(link: SCIMUser, doc: Any) -> SCIMUser:
    refuse_the_sites_own(link)
    data = read_user(doc)
    _check_id(doc, link.scim_id)
    _check_unique(link.connector, data, link)
    accounts.update_provisioned_user(
        link.user, _person(link.connector, data, str(link.scim_id)), active=data.active
    )
    _fill(link, data)
    link.version += 1
    link.save()
    return link


def _fill(link: SCIMUser, data: UserInput) -> None:
    link.user_name = data.user_name
    link.external_id = data.external_id
    link.email = data.email
    link.attributes = data.attributes


def delete_user(link: SCIMUser) -> None:
    user = link.user
    connector = link.connector
    the_sites = accounts.belongs_to_the_site(user, connector)
    # Out of its SCIM groups first, so that the Django groups they granted go too.
    link.groups.clear()
    group_sync.sync_members(connector, [link.pk])
    link.delete()
    if the_sites:
        # Unprovisioned only: the account is the site's (staff made it an administrator,
        # or the person signs in through another connector too).
        return
    if app_settings.SCIM_DELETE == "delete":
        user.delete()
        return
    if user.is_active:
        user.is_active = False
        user.save()  # post_save: receivers end the user's SSO sessions


def render_user(request: HttpRequest, link: SCIMUser) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(link.scim_id),
        "userName": link.user_name,
        **link.attributes,
        "active": bool(getattr(link.user, "is_active", True)),
        "meta": _meta(request, "User", link, "user"),
    }
    if link.external_id:
        doc["externalId"] = link.external_id
    if any(k.lower() == ENTERPRISE_SCHEMA.lower() for k in link.attributes):
        doc["schemas"].append(ENTERPRISE_SCHEMA)
    return doc


def users(connector: Connector) -> QuerySet[SCIMUser]:
    return SCIMUser.objects.filter(connector=connector).select_related("user", "connector")


# -- Groups -----------------------------------------------------------------------------------

GROUP_FIELDS: dict[str, Any] = {
    "id": Field("scim_id", convert=lambda v: uuid.UUID(str(v))),
    "displayname": Field("display_name"),
    "externalid": Field("external_id", case_exact=True),
    "meta.lastmodified": Field("modified_at", convert=as_datetime),
    "meta.created": Field("created_at", convert=as_datetime),
}


def _member(op: str, value: Any) -> Q:
    if op == "pr":
        return Q(members__isnull=False)
    try:
        member = uuid.UUID(str(value))
    except ValueError:
        return Q(pk__in=[])
    query = Q(pk__in=SCIMGroup.objects.filter(members__scim_id=member).values("pk"))
    return ~query if op == "ne" else query


GROUP_SUB_FIELDS: dict[str, dict[str, Any]] = {"members": {"value": _member}}


@dataclass(frozen=True)
class GroupInput:
    display_name: str
    external_id: str
    members: set[uuid.UUID] | None  # None: not given (keep them)


def read_group(doc: Any, *, members_required: bool) -> GroupInput:
    if not isinstance(doc, Mapping):
        raise bad_request("The body must be a Group object.", "invalidSyntax")
    _check_schemas(doc, GROUP_SCHEMA, GROUP_SCHEMAS)
    raw = _get(doc, "members")
    members: set[uuid.UUID] | None = None
    if raw is not None or members_required:
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise bad_request("members must be a list.")
        members = set()
        for item in raw:
            value = _get(item, "value") if isinstance(item, Mapping) else None
            try:
                members.add(uuid.UUID(str(value)))
            except ValueError as exc:
                raise bad_request(f"members: {value!r} is not a user id.") from exc
    return GroupInput(
        display_name=_text(doc, "displayname", required=True),
        external_id=_text(doc, "externalid"),
        members=members,
    )


def _check_group_unique(connector: Connector, data: GroupInput, group: SCIMGroup | None) -> None:
    others = SCIMGroup.objects.filter(connector=connector)
    if group is not None:
        others = others.exclude(pk=group.pk)
    if others.filter(display_name__iexact=data.display_name).exists():
        raise SCIMError(409, "displayName is already taken.", "uniqueness")
    if data.external_id and others.filter(external_id=data.external_id).exists():
        raise SCIMError(409, "externalId is already taken.", "uniqueness")


def _set_members(group: SCIMGroup, wanted: set[uuid.UUID] | None, renamed: bool) -> None:
    """Members by SCIM id, in a fixed number of queries whatever their number."""
    current = dict(group.members.values_list("scim_id", "pk"))
    changed: set[int] = set()
    if wanted is not None:
        new = wanted - set(current)
        # By the unique scim_id index alone (with the connector in the filter, SQLite
        # walks the connector's rows); another connector's users are dropped here.
        found = {
            scim_id: pk
            for scim_id, pk, connector_id in SCIMUser.objects.filter(scim_id__in=new).values_list(
                "scim_id", "pk", "connector_id"
            )
            if connector_id == group.connector_id
        }
        if len(found) != len(new):
            # Another connector's user, or no user at all: the same answer for both.
            raise bad_request("members: no such user.")
        gone = {pk for scim_id, pk in current.items() if scim_id not in wanted}
        through = SCIMGroup.members.through
        if gone:
            through.objects.filter(scimgroup_id=group.pk, scimuser_id__in=gone).delete()
        if found:
            through.objects.bulk_create(
                [through(scimgroup_id=group.pk, scimuser_id=pk) for pk in found.values()]
            )
        changed = gone | set(found.values())
    if renamed:
        changed |= set(current.values())
    group_sync.sync_members(group.connector, changed)


def create_group(connector: Connector, doc: Any) -> SCIMGroup:
    data = read_group(doc, members_required=False)
    _check_id(doc, None)
    _check_group_unique(connector, data, None)
    first = not SCIMGroup.objects.filter(connector=connector).exists()
    group = SCIMGroup.objects.create(
        connector=connector, display_name=data.display_name, external_id=data.external_id
    )
    _set_members(group, data.members or set(), renamed=False)
    if first:
        # From now on SCIM keeps the mapped groups of everyone it provisions, and their
        # sign-ins leave them alone: bring all of them in step once, or groups their
        # claims granted before would never be taken away.
        group_sync.sync_members(
            connector, SCIMUser.objects.filter(connector=connector).values_list("pk", flat=True)
        )
    return group


def replace_group(group: SCIMGroup, doc: Any, *, members_required: bool = True) -> SCIMGroup:
    data = read_group(doc, members_required=members_required)
    _check_id(doc, group.scim_id)
    _check_group_unique(group.connector, data, group)
    renamed = (data.display_name, data.external_id) != (group.display_name, group.external_id)
    group.display_name = data.display_name
    group.external_id = data.external_id
    group.version += 1
    group.save()
    _set_members(group, data.members, renamed)
    return group


def delete_group(group: SCIMGroup) -> None:
    members = list(group.members.values_list("pk", flat=True))
    connector = group.connector
    group.delete()
    group_sync.sync_members(connector, members)


def render_group(
    request: HttpRequest, group: SCIMGroup, *, with_members: bool = True
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.scim_id),
        "displayName": group.display_name,
        "meta": _meta(request, "Group", group, "group"),
    }
    if group.external_id:
        doc["externalId"] = group.external_id
    if with_members:
        # One reverse() for all members: a group of thousands renders in linear time.
        marker = "00000000-0000-0000-0000-000000000000"
        template = request.build_absolute_uri(
            reverse("entra_sso:scim_user", args=[group.connector.slug, marker])
        )
        doc["members"] = [
            {
                "value": str(scim_id),
                "display": user_name,
                "type": "User",
                "$ref": template.replace(marker, str(scim_id)),
            }
            for scim_id, user_name in group.members.order_by("pk").values_list(
                "scim_id", "user_name"
            )
        ]
    return doc


def scim_groups(connector: Connector) -> QuerySet[SCIMGroup]:
    return SCIMGroup.objects.filter(connector=connector).select_related("connector")
