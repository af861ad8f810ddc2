"""The one way this app talks HTTP to identity providers: timeouts, size caps, JSON."""

from __future__ import annotations

import json
from typing import Any

import requests

from .conf import app_settings

#: Discovery documents, JWKS and token answers are a few kilobytes; refuse megabytes.
MAX_RESPONSE_BYTES = 1024 * 1024

# One pooled session per process: the token request reuses the TLS connection.
_session = requests.Session()
_session.headers["User-Agent"] = "django-entra-sso"


class ProviderHTTPError(Exception):
    """The provider could not be reached or answered something unusable.

    ``status`` is the HTTP status when there was one; ``body`` the JSON object of
    an error answer (an OAuth ``error`` object), when there was one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, body: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.body = body


def request_json(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """Send one request and return the JSON object answered with HTTP 200."""
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    try:
        response = _session.request(
            method,
            url,
            timeout=app_settings.HTTP_TIMEOUT,
            stream=True,
            allow_redirects=False,
            headers=headers,
            **kwargs,
        )
        content = b""
        for chunk in response.iter_content(chunk_size=65536):
            content += chunk
            if len(content) > MAX_RESPONSE_BYTES:
                raise ProviderHTTPError(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes.")
    except requests.Timeout as exc:
        raise ProviderHTTPError(f"{url} did not answer in time.") from exc
    except requests.RequestException as exc:
        raise ProviderHTTPError(f"{url} could not be reached ({exc.__class__.__name__}).") from exc
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if response.status_code != 200:
        raise ProviderHTTPError(
            f"{url} answered HTTP {response.status_code}.",
            status=response.status_code,
            body=data if isinstance(data, dict) else None,
        )
    if not isinstance(data, dict):
        raise ProviderHTTPError(f"{url} did not answer with a JSON object.")
    return data


def get_json(url: str) -> dict[str, Any]:
    return request_json("GET", url)


def post_form(
    url: str, data: dict[str, str], *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return request_json("POST", url, data=data, headers=headers or {})


def get_bearer_json(url: str, access_token: str) -> dict[str, Any]:
    return request_json("GET", url, headers={"Authorization": f"Bearer {access_token}"})
