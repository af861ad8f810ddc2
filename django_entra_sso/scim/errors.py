"""SCIM error objects (RFC 7644, 3.12) and the JSON responses every SCIM view sends."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse

CONTENT_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class SCIMError(Exception):
    """Becomes an error response: ``status``, an optional ``scim_type`` and a detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def bad_request(detail: str, scim_type: str = "invalidValue") -> SCIMError:
    return SCIMError(400, detail, scim_type)


def not_found(detail: str = "No such resource.") -> SCIMError:
    return SCIMError(404, detail)


def scim_response(data: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False) if data is not None else b"",
        status=status,
        content_type=CONTENT_TYPE if data is not None else None,
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def error_response(error: SCIMError) -> HttpResponse:
    body: dict[str, Any] = {
        "schemas": [ERROR_SCHEMA],
        "status": str(error.status),
        "detail": error.detail,
    }
    if error.scim_type:
        body["scimType"] = error.scim_type
    response = scim_response(body, error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    return response
