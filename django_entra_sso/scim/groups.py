"""SCIM group membership → Django groups, through the connector's ``group_mapping``.

The rule: a SCIM group's ``displayName`` or ``externalId`` is looked up in its
connector's ``group_mapping`` as a claim value would be, and its members get the
Django groups named there. A Django group that another connector's mapping also
names is never granted or taken by SCIM (whoever provisions connector A's people
cannot hand out a group that connector B's mapping controls); such a clash is
logged. Django groups no mapping names are never touched.

Every step is a bulk query, so a change of a hundred members costs what one does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from .. import providers
from ..models import Connector, SCIMGroup, SCIMUser

logger = logging.getLogger(__name__)


def _names(target: Any) -> set[str]:
    return {target} if isinstance(target, str) else {str(t) for t in target or []}


def _mapped(mapping: Any) -> set[str]:
    if not isinstance(mapping, dict):
        return set()
    return {name for target in mapping.values() for name in _names(target)}


def managed_groups(connector: Connector) -> set[str]:
    """The Django group names SCIM may grant for ``connector``: its mapping's, not shared."""
    own = _mapped(connector.group_mapping)
    if not own:
        return set()
    foreign: set[str] = set()
    for mapping in Connector.objects.exclude(pk=connector.pk).values_list(
        "group_mapping", flat=True
    ):
        foreign |= _mapped(mapping)
    shared = own & foreign
    if shared:
        logger.warning(
            "Connector %s: SCIM does not manage %s, which another connector's group mapping "
            "also names.",
            connector.slug,
            ", ".join(sorted(shared)),
        )
    return own - shared


def _mapping_keys(display_name: str, external_id: str) -> list[str]:
    """The mapping keys a SCIM group stands for.

    Its ``externalId`` (Entra: the group's object ID), and its ``displayName`` only
    when that is no object ID: a display name is whatever a group's owner renames it
    to, and a group renamed to the administrators' object ID must not become them.
    """
    keys = [providers.group_key(external_id)] if external_id else []
    if display_name and not providers.is_guid(display_name):
        keys.append(providers.group_key(display_name))
    return keys


def sync_members(connector: Connector, link_ids: Iterable[int]) -> None:
    """Bring the mapped Django groups of these SCIM users in step with their SCIM groups."""
    link_ids = set(link_ids)
    mapping = connector.group_mapping
    if not link_ids or not isinstance(mapping, dict) or not mapping:
        return
    managed = managed_groups(connector)
    if not managed:
        return
    users = dict(SCIMUser.objects.filter(pk__in=link_ids).values_list("pk", "user_id"))
    wanted: dict[int, set[str]] = {user_id: set() for user_id in users.values()}
    memberships = SCIMGroup.members.through.objects.filter(scimuser_id__in=users).values_list(
        "scimuser_id", "scimgroup__display_name", "scimgroup__external_id"
    )
    folded = providers.folded_group_mapping(mapping)
    for link_id, display_name, external_id in memberships:
        for key in _mapping_keys(display_name, external_id):
            if key in folded:
                wanted[users[link_id]] |= folded[key] & managed
    groups = {g.name: g for g in Group.objects.filter(name__in=managed)}
    missing = {name for names in wanted.values() for name in names} - set(groups)
    if missing:
        Group.objects.bulk_create([Group(name=n) for n in sorted(missing)], ignore_conflicts=True)
        groups = {g.name: g for g in Group.objects.filter(name__in=managed)}
    through: Any = get_user_model().groups.through  # type: ignore[attr-defined]
    current = through.objects.filter(user_id__in=wanted, group__name__in=managed).values_list(
        "pk", "user_id", "group__name"
    )
    have: set[tuple[int, str]] = set()
    stale: list[int] = []
    for pk, user_id, name in current:
        if name in wanted[user_id]:
            have.add((user_id, name))
        else:
            stale.append(pk)
    if stale:
        through.objects.filter(pk__in=stale).delete()
    add = [
        through(user_id=user_id, group_id=groups[name].pk)
        for user_id, names in wanted.items()
        for name in sorted(names)
        if (user_id, name) not in have
    ]
    if add:
        through.objects.bulk_create(add, ignore_conflicts=True)
