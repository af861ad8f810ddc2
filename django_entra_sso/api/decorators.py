"""``access_token_required(scopes=..., roles=...)``: bearer tokens for plain Django views."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .requests import authenticate, check_permissions, refusal
from .tokens import AccessTokenError


def access_token_required(
    view: Callable[..., HttpResponse] | None = None,
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
) -> Any:
    """Let a view be called with an access token from a connector's IdP.

    ``request.user`` is the caller (a Django user, or an ``ApplicationPrincipal`` for
    client credentials) and ``request.auth`` the checked ``AccessToken``. The view is
    CSRF-exempt: a bearer token is not a cookie a browser sends by itself.
    """
    wanted_scopes, wanted_roles = tuple(scopes), tuple(roles)

    def decorator(view_func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view_func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                found = authenticate(request)
                if found is None:
                    return refusal(None)
                caller, token = found
                check_permissions(token, scopes=wanted_scopes, roles=wanted_roles)
            except AccessTokenError as exc:
                return refusal(exc.error)
            request.user = caller
            request.auth = token  # type: ignore[attr-defined]
            return view_func(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorator(view) if view is not None else decorator
