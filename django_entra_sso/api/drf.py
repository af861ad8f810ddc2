"""``BearerTokenAuthentication`` for Django REST framework (the ``drf`` extra).

Put it in a view's ``authentication_classes`` (or ``DEFAULT_AUTHENTICATION_CLASSES``).
A view may ask for ``required_scopes`` and ``required_roles`` (``requests.check_permissions``
says how they combine); ``request.user`` is the caller, ``request.auth`` the token.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from .requests import authenticate, challenge, check_permissions
from .tokens import AccessTokenError

_ERROR = "_entra_sso_bearer_error"


class Unavailable(exceptions.APIException):  # type: ignore[misc]
    """The IdP's keys or introspection cannot be had now: 503, as the other integrations."""

    status_code = 503
    default_detail = "temporarily_unavailable"
    default_code = "temporarily_unavailable"


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = "insufficient_scope"
    auth_header = challenge("insufficient_scope")


class BearerTokenAuthentication(BaseAuthentication):  # type: ignore[misc]
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        try:
            found = authenticate(request._request)
        except AccessTokenError as exc:
            setattr(request._request, _ERROR, exc.error)
            if exc.error == "temporarily_unavailable":
                raise Unavailable() from None
            if exc.error == "invalid_request":
                raise exceptions.ParseError("invalid_request") from None
            raise exceptions.AuthenticationFailed("invalid_token") from None
        if found is None:
            return None
        caller, token = found
        view = (request.parser_context or {}).get("view")
        try:
            check_permissions(
                token,
                scopes=getattr(view, "required_scopes", ()),
                roles=getattr(view, "required_roles", ()),
            )
        except AccessTokenError:
            raise InsufficientScope() from None
        return caller, token

    def authenticate_header(self, request: Request) -> str:
        return challenge(getattr(request._request, _ERROR, None))
