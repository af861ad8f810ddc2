"""From an HTTP request to a checked caller, and RFC 6750's answers.

``authenticate`` reads ``Authorization: Bearer <token>``, checks the token
(``tokens``) and finds the caller (``callers``). ``check_permissions`` says whether
the token may call a view that asks for ``scopes`` and ``roles``:

- a delegated token needs every scope of ``scopes`` (its ``scp``); when the view
  asks for no scope, every role of ``roles`` (the person's app roles);
- an application token needs every role of ``roles``; a view that asks only for
  scopes refuses applications (they have no delegated scopes).

Refusals never say more than RFC 6750's error code; the reason goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, JsonResponse

from .callers import caller_for
from .tokens import AccessToken, AccessTokenError, check_access_token

logger = logging.getLogger(__name__)

STATUS = {"invalid_request": 400, "invalid_token": 401, "insufficient_scope": 403}


def bearer_token(request: HttpRequest) -> str | None:
    """The bearer token of the request; ``None`` without one; ``invalid_request`` if garbled."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme: not ours to judge
    token = token.strip()
    if not token or " " in token:
        raise AccessTokenError("invalid_request", "a Bearer header without one token")
    return token


def authenticate(request: HttpRequest) -> tuple[Any, AccessToken] | None:
    """``(caller, token)`` for a request with a good bearer token; ``None`` without one."""
    token = bearer_token(request)
    if token is None:
        return None
    try:
        checked = check_access_token(token)
        return caller_for(checked), checked
    except AccessTokenError as exc:
        logger.warning("API access token refused (%s): %s", exc.error, exc)
        raise


def check_permissions(
    token: AccessToken, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
) -> None:
    wanted_scopes, wanted_roles = frozenset(scopes), frozenset(roles)
    if token.is_application:
        if wanted_scopes and not wanted_roles:
            missing: frozenset[str] = wanted_scopes
        else:
            missing = wanted_roles - token.roles
    elif wanted_scopes:
        missing = wanted_scopes - token.scopes
    else:
        missing = wanted_roles - token.roles
    if missing:
        logger.info("API call refused: the token lacks %s", sorted(missing))
        raise AccessTokenError("insufficient_scope", f"missing {sorted(missing)}")


def challenge(error: str | None) -> str:
    """The ``WWW-Authenticate`` value: ``Bearer``, with RFC 6750's error when there is one."""
    return f'Bearer error="{error}"' if error else "Bearer"


def refusal(error: str | None) -> JsonResponse:
    """401 (no token, a bad one), 400 (a garbled header), 403 (insufficient scope), 503."""
    status = STATUS.get(error or "", 503) if error else 401
    body = {"error": error} if error else {"error": "unauthorized"}
    response = JsonResponse(body, status=status)
    if status in (401, 403, 400):
        response["WWW-Authenticate"] = challenge(error)
    response["Cache-Control"] = "no-store"
    return response
