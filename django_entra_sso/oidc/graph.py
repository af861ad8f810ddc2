"""Entra's group overage, resolved through Microsoft Graph with the sign-in's access token.

A person in more groups than fit in a token (over 200 in a JWT) gets no
``groups`` claim from Entra ID: ``_claim_names`` names ``groups`` instead (or,
in the implicit flow, ``hasgroups`` is true). ``resolve_group_overage`` leaves
such a person's groups unknown (``None``: their Django groups stay as they are),
unless the connector opted in (``resolve_group_overage``); then it asks Graph,
with the access token the sign-in's token answer held:

* ``POST /v1.0/me/checkMemberGroups`` with the group object IDs the connector
  cares about (GUID keys of ``group_mapping``, GUID ``staff_values`` and
  ``superuser_values``), when there are 1 to 20 of them (Graph's limit for one
  request): one small request, and Graph works out nested membership.
* ``GET /v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999``
  otherwise, following ``@odata.nextLink`` for at most ``MAX_PAGES`` pages.

The ``roles`` claim is never in overage: its values count beside the groups
Graph names. Each request has ``provider_http``'s timeout and size cap; the
token goes to the Graph origin of ``ENTRA_SSO_GRAPH_URL`` only, never to a next
link elsewhere. When Graph cannot say (no access token, timeout, HTTP error,
garbage, too many pages, a foreign next link) the connector's
``group_overage_failure`` decides: ``keep`` logs a warning and leaves the
groups unknown; ``refuse`` refuses the sign-in. A partial answer is never used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from django.views.decorators.debug import sensitive_variables

from .. import providers
from ..conf import app_settings
from ..errors import SignInError
from ..models import Connector
from ..provider_http import ProviderHTTPError, get_bearer_json, request_json
from ..verified import VerifiedPerson

logger = logging.getLogger(__name__)

#: Pages of ``transitiveMemberOf`` followed at most: with ``$top=999``, 9,990 groups.
MAX_PAGES = 10
PAGE_SIZE = 999
#: Graph's limit of group IDs in one ``checkMemberGroups`` request.
CHECK_LIMIT = 20
_GROUP_TYPE = "#microsoft.graph.group"


class GraphUnusable(Exception):
    """Graph could not say which groups the person is in; ``code`` is the page to refuse with."""

    def __init__(self, message: str, *, code: str = "provider_unreachable"):
        super().__init__(message)
        self.code = code


def is_overage(claims: Mapping[str, Any]) -> bool:
    """Did Entra leave the groups out of the token because there are too many?"""
    names = claims.get("_claim_names")
    if isinstance(names, dict) and "groups" in names:
        return True
    return claims.get("hasgroups") in (True, "true")


@sensitive_variables("access_token")
def resolve_group_overage(
    connector: Connector, person: VerifiedPerson, access_token: Any
) -> VerifiedPerson:
    """``person`` with the groups Graph names when the token held too many, else as is.

    Raises ``SignInError`` only for a connector whose overage policy is ``refuse``.
    """
    if not is_overage(person.claims):
        return person
    unknown = replace(person, groups=None)
    if not connector.resolve_group_overage or connector.provider != providers.ENTRA_ID:
        # Another provider's token has no business at Microsoft Graph.
        return unknown
    try:
        group_ids = _member_group_ids(connector, access_token)
    except GraphUnusable as exc:
        if connector.group_overage_failure == Connector.OverageFailure.REFUSE:
            logger.warning(
                "Connector %s: group overage could not be resolved through Microsoft Graph "
                "(%s); the sign-in was refused.",
                connector.slug,
                exc,
            )
            raise SignInError(exc.code, f"group overage: {exc}") from exc
        logger.warning(
            "Connector %s: group overage could not be resolved through Microsoft Graph (%s); "
            "groups were left unchanged.",
            connector.slug,
            exc,
        )
        return unknown
    return replace(person, groups=frozenset(group_ids) | _roles(person.claims))


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    # As the adapter reads them: app roles are never in overage.
    raw = claims.get("roles")
    if not isinstance(raw, list):
        return frozenset()
    return frozenset(str(v) for v in raw if isinstance(v, (str, int)))


def group_id_spellings(connector: Connector) -> dict[str, set[str]]:
    """Each group object ID the connector's settings name (role values are not GUIDs),
    lower-cased, with every spelling the settings use for it: the admin lower-cases
    ``staff_values`` but keeps mapping keys as typed."""
    values: list[Any] = list((connector.group_mapping or {}).keys())
    for name in ("staff_values", "superuser_values"):
        found = getattr(connector, name, None)
        if isinstance(found, list):
            values += found
    spellings: dict[str, set[str]] = {}
    for value in values:
        if providers.is_guid(value):
            spellings.setdefault(value.lower(), set()).add(value)
    return spellings


def group_ids_to_check(connector: Connector) -> list[str]:
    """The group object IDs to ask Graph about, once each, lower-cased."""
    # Sorted: a JSON field's key order is the database's (PostgreSQL's jsonb sorts keys).
    return sorted(group_id_spellings(connector))


@sensitive_variables("access_token")
def _member_group_ids(connector: Connector, access_token: Any) -> set[str]:
    if not isinstance(access_token, str) or not access_token:
        raise GraphUnusable("the token answer held no access token", code="misconfigured")
    base = app_settings.GRAPH_URL
    spellings = group_id_spellings(connector)
    wanted = sorted(spellings)
    try:
        if 0 < len(wanted) <= CHECK_LIMIT:
            found = _check_member_groups(base, access_token, wanted)
        else:
            found = _transitive_member_of(base, access_token)
    except ProviderHTTPError as exc:
        # 401/403: the token is not for Graph, or lacks the permission; retrying won't help.
        code = "misconfigured" if exc.status in (401, 403) else "provider_unreachable"
        raise GraphUnusable(str(exc), code=code) from None
    # Graph's IDs, and every spelling the connector's settings give them, so that the
    # mapping and the staff lists find them as they would a token's groups claim.
    return found | {spelling for group in found for spelling in spellings.get(group.lower(), ())}


@sensitive_variables("access_token")
def _check_member_groups(base: str, access_token: str, wanted: list[str]) -> set[str]:
    answer = request_json(
        "POST",
        f"{base}/v1.0/me/checkMemberGroups",
        json={"groupIds": wanted},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    value = answer.get("value")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GraphUnusable("checkMemberGroups answered no list of IDs")
    asked = set(wanted)
    return {v.lower() for v in value if v.lower() in asked}


@sensitive_variables("access_token")
def _transitive_member_of(base: str, access_token: str) -> set[str]:
    url = f"{base}/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top={PAGE_SIZE}"
    group_ids: set[str] = set()
    for _page in range(MAX_PAGES):
        answer = get_bearer_json(url, access_token)
        group_ids.update(_ids_of(answer.get("value")))
        next_link = answer.get("@odata.nextLink")
        if next_link is None:
            return group_ids
        url = _next_page(next_link, base)
    raise GraphUnusable(f"more than {MAX_PAGES} pages of groups")


def _next_page(next_link: Any, base: str) -> str:
    """The next page's URL, built on ``base``: only the answer's ``$skiptoken`` is taken.

    The access token goes to Graph only. Checking the link's origin is not enough on
    its own: URL parsers disagree (``https://evil.example\\@graph.microsoft.com/`` is
    Graph to ``urlsplit`` and evil.example to urllib3), so the host is never the answer's.
    """
    refused = f"a next link that is not Graph's: {str(next_link)[:200]!r}"
    if not isinstance(next_link, str) or not same_origin(next_link, base):
        raise GraphUnusable(refused)
    if "\\" in next_link or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in next_link):
        raise GraphUnusable(refused)
    skiptoken = parse_qs(urlsplit(next_link).query).get("$skiptoken", [])
    if len(skiptoken) != 1 or not skiptoken[0]:
        raise GraphUnusable("a next link without one $skiptoken")
    return (
        f"{base}/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top={PAGE_SIZE}"
        f"&$skiptoken={quote(skiptoken[0], safe='')}"
    )


def _ids_of(value: Any) -> Iterable[str]:
    if not isinstance(value, list):
        raise GraphUnusable("transitiveMemberOf answered no list")
    for item in value:
        if not isinstance(item, dict) or not providers.is_guid(item.get("id")):
            raise GraphUnusable("transitiveMemberOf listed something without an object ID")
        if item.get("@odata.type", _GROUP_TYPE) == _GROUP_TYPE:
            yield str(item["id"])


def same_origin(url: str, base: str) -> bool:
    """Same scheme, host and port (RFC 6454), default ports spelled out or not."""
    if "\\" in url:
        return False  # parsers disagree on where the host ends
    try:
        a, b = urlsplit(url), urlsplit(base)
        return (a.scheme.lower(), a.hostname, _port(a.scheme, a.port)) == (
            b.scheme.lower(),
            b.hostname,
            _port(b.scheme, b.port),
        )
    except ValueError:  # a port that is no number
        return False


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"https": 443, "http": 80}.get(scheme.lower())
