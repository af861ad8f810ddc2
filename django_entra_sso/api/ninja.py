"""``NinjaBearerAuth`` for Django Ninja (the ``ninja`` extra).

``NinjaBearerAuth(scopes=[...], roles=[...])`` as a route's or router's ``auth``.
``request.auth`` is the checked token, ``request.user`` the caller. A token that
lacks the scopes gets 403 ``insufficient_scope``; any other refusal Ninja's 401.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from .callers import caller_for
from .requests import check_permissions
from .tokens import AccessToken, AccessTokenError, check_access_token


class NinjaBearerAuth(HttpBearer):  # type: ignore[misc]
    def __init__(self, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> None:
        super().__init__()
        self.scopes, self.roles = tuple(scopes), tuple(roles)

    def authenticate(self, request: HttpRequest, token: str) -> AccessToken | None:
        try:
            checked = check_access_token(token)
            caller: Any = caller_for(checked)
            check_permissions(checked, scopes=self.scopes, roles=self.roles)
        except AccessTokenError as exc:
            if exc.error == "insufficient_scope":
                raise HttpError(403, "insufficient_scope") from None
            if exc.error == "temporarily_unavailable":
                raise HttpError(503, "temporarily_unavailable") from None
            return None
        request.user = caller
        return checked
