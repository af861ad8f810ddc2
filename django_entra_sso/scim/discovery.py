"""ServiceProviderConfig, ResourceTypes and Schemas (RFC 7644, 4): what this server supports."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from ..models import Connector
from .resources import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

MAX_RESULTS = 200
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def _base(request: HttpRequest, connector: Connector) -> str:
    return request.build_absolute_uri(reverse("entra_sso:scim", args=[connector.slug]))


def service_provider_config(request: HttpRequest, connector: Connector) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "The connector's SCIM token (admin or `sso_connector scim-token`).",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": _base(request, connector) + "ServiceProviderConfig",
        },
    }


def _attr(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


def _sub(*names: str) -> list[dict[str, Any]]:
    return [_attr(n) for n in names]


SCHEMAS: dict[str, dict[str, Any]] = {
    USER_SCHEMA: {
        "id": USER_SCHEMA,
        "name": "User",
        "attributes": [
            _attr("userName", required=True, uniqueness="server"),
            _attr("name", "complex", subAttributes=_sub("givenName", "familyName", "formatted")),
            _attr("displayName"),
            _attr("active", "boolean"),
            _attr(
                "emails",
                "complex",
                multiValued=True,
                subAttributes=[*_sub("value", "type"), _attr("primary", "boolean")],
            ),
        ],
    },
    GROUP_SCHEMA: {
        "id": GROUP_SCHEMA,
        "name": "Group",
        "attributes": [
            _attr("displayName", required=True, uniqueness="server"),
            _attr(
                "members",
                "complex",
                multiValued=True,
                # As rendered: a member is a User, named by the server (RFC 7643, 8.7.1).
                subAttributes=[
                    _attr("value"),
                    _attr("display", mutability="readOnly"),
                    _attr("type", mutability="readOnly", canonicalValues=["User"]),
                    _attr("$ref", "reference", referenceTypes=["User"]),
                ],
            ),
        ],
    },
    ENTERPRISE_SCHEMA: {
        "id": ENTERPRISE_SCHEMA,
        "name": "EnterpriseUser",
        "attributes": [_attr("employeeNumber"), _attr("department"), _attr("organization")],
    },
}


def schema(request: HttpRequest, connector: Connector, schema_id: str) -> dict[str, Any] | None:
    found = SCHEMAS.get(schema_id)
    if found is None:
        return None
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        **found,
        "meta": {
            "resourceType": "Schema",
            "location": _base(request, connector) + f"Schemas/{schema_id}",
        },
    }


RESOURCE_TYPES = {
    "User": ("Users", USER_SCHEMA, [ENTERPRISE_SCHEMA]),
    "Group": ("Groups", GROUP_SCHEMA, []),
}


def resource_type(request: HttpRequest, connector: Connector, name: str) -> dict[str, Any] | None:
    if name not in RESOURCE_TYPES:
        return None
    endpoint, core, extensions = RESOURCE_TYPES[name]
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": f"/{endpoint}",
        "schema": core,
        "schemaExtensions": [{"schema": e, "required": False} for e in extensions],
        "meta": {
            "resourceType": "ResourceType",
            "location": _base(request, connector) + f"ResourceTypes/{name}",
        },
    }


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
