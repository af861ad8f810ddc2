"""The one way this app talks HTTP to identity providers: timeouts, size caps, JSON."""

from __future__ import annotations

import http.cookiejar
import json
import logging
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables

from .conf import app_settings

#: Discovery documents, JWKS and token answers are a few kilobytes; refuse megabytes.
MAX_RESPONSE_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)

# One pooled session per process: the token request reuses the TLS connection.
_session = requests.Session()
_session.headers["User-Agent"] = "django-entra-sso"
# One session serves every person and connector: a cookie one answer sets (Entra's token
# endpoint sets several) must never ride along with somebody else's request.
_session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


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


@sensitive_variables("kwargs", "headers", "content", "chunk", "data")
def request_json(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """Send one request and return the JSON object answered with HTTP 200.

    Redirects are not followed: a token request redirected elsewhere would take
    the client's credentials and the code with it. Whatever goes wrong, the
    caller gets a ``ProviderHTTPError`` whose traceback stops here: frames below
    (requests', urllib3's, json's) hold the credentials and the token answer in
    their locals, which no ``sensitive_variables`` can hide from an error report.
    """
    headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
    try:
        status, content = _send(method, url, headers=headers, **kwargs)
        data = _json_or_none(content)
    except ProviderHTTPError:
        raise
    except Exception:
        logger.exception("Unexpected failure talking to %s", url)
        raise ProviderHTTPError(f"{url} could not be used (unexpected failure).") from None
    if status != 200:
        raise ProviderHTTPError(
            f"{url} answered HTTP {status}.",
            status=status,
            body=data if isinstance(data, dict) else None,
        )
    if not isinstance(data, dict):
        raise ProviderHTTPError(f"{url} did not answer with a JSON object.")
    return data


@sensitive_variables("content")
def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        # RecursionError: thousands of nested brackets fit in the size cap.
        return None


@sensitive_variables("kwargs", "headers", "content", "chunk")
def _send(method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
    try:
        response = _session.request(
            method,
            url,
            timeout=app_settings.HTTP_TIMEOUT,
            stream=True,
            allow_redirects=False,
            **kwargs,
        )
        content = b""
        for chunk in response.iter_content(chunk_size=65536):
            content += chunk
            if len(content) > MAX_RESPONSE_BYTES:
                raise ProviderHTTPError(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes.")
    except requests.Timeout:
        raise ProviderHTTPError(f"{url} did not answer in time.") from None
    except requests.RequestException as exc:
        raise ProviderHTTPError(f"{url} could not be reached ({exc.__class__.__name__}).") from None
    return response.status_code, content


def get_json(url: str) -> dict[str, Any]:
    return request_json("GET", url)


def get_bytes(url: str) -> bytes:
    """The body of a GET answered with HTTP 200 (SAML metadata XML), size-capped."""
    try:
        status, content = _send("GET", url, headers={"Accept": "application/xml, text/xml"})
    except ProviderHTTPError:
        raise
    except Exception:
        logger.exception("Unexpected failure talking to %s", url)
        raise ProviderHTTPError(f"{url} could not be used (unexpected failure).") from None
    if status != 200:
        raise ProviderHTTPError(f"{url} answered HTTP {status}.", status=status)
    return content


@sensitive_variables("data", "headers")
def post_form(
    url: str, data: dict[str, str], *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return request_json("POST", url, data=data, headers=headers or {})


@sensitive_variables("access_token")
def get_bearer_json(url: str, access_token: str) -> dict[str, Any]:
    return request_json("GET", url, headers={"Authorization": f"Bearer {access_token}"})
