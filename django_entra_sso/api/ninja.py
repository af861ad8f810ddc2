"""``NinjaBearerAuth`` for Django Ninja (the ``ninja`` extra).

``NinjaBearerAuth(scopes=[...], roles=[...])`` as a route's or router's ``auth``.
``request.auth`` is the checked token, ``request.user`` the caller. A refused token
raises ``BearerTokenRefused``: 401 ``invalid_token``, 403 ``insufficient_scope`` or
503. Ninja answers exceptions per API, so RFC 6750's ``WWW-Authenticate`` challenge
is added once ``NinjaBearerAuth.install(api)`` has registered the handler; without
it the status codes are the same and the body Ninja's ``{"detail": ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.security import HttpBearer

from .callers import caller_for
from .requests import STATUS, challenge, check_permissions
from .tokens import AccessToken, AccessTokenError, check_access_token

logger = logging.getLogger(__name__)


class BearerTokenRefused(HttpError):  # type: ignore[misc]
    """A refused bearer token, carrying RFC 6750's error code."""

    def __init__(self, error: str) -> None:
        super().__init__(STATUS.get(error, 503), error)
        self.error = error


class NinjaBearerAuth(HttpBearer):  # type: ignore[misc]
    def __init__(self, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> None:
        super().__init__()
        self.scopes, self.roles = tuple(scopes), tuple(roles)

    @staticmethod
    def install(api: NinjaAPI) -> None:
        """Answer ``api``'s refused tokens with RFC 6750's ``WWW-Authenticate`` challenge."""

        def answer(request: HttpRequest, exc: Any) -> HttpResponse:
            response: HttpResponse = api.create_response(
                request, {"detail": exc.error}, status=exc.status_code
            )
            if exc.status_code in (400, 401, 403):
                response["WWW-Authenticate"] = challenge(exc.error)
            response["Cache-Control"] = "no-store"
            return response

        api.add_exception_handler(BearerTokenRefused, answer)

    def authenticate(self, request: HttpRequest, token: str) -> AccessToken | None:
        try:
            checked = check_access_token(token)
            caller: Any = caller_for(checked)
            check_permissions(checked, scopes=self.scopes, roles=self.roles)
        except AccessTokenError as exc:
            if exc.error != "insufficient_scope":  # check_permissions logs its own
                logger.warning("API access token refused (%s): %s", exc.error, exc)
            raise BearerTokenRefused(exc.error) from None
        request.user = caller
        return checked
