"""Bearer access tokens from the connectors' IdPs, for this site's API.

``access_token_required`` (plain views) needs nothing more; ``BearerTokenAuthentication``
needs Django REST framework and ``NinjaBearerAuth`` Django Ninja (the ``drf`` and
``ninja`` extras): importing either without it says which package to install.
"""

from __future__ import annotations

from typing import Any

from .callers import ApplicationPrincipal
from .decorators import access_token_required
from .tokens import AccessToken, AccessTokenError, check_access_token

__all__ = [
    "AccessToken",
    "AccessTokenError",
    "ApplicationPrincipal",
    "BearerTokenAuthentication",
    "NinjaBearerAuth",
    "access_token_required",
    "check_access_token",
]

#: name -> (module here, the package it needs, its top-level import, the extra)
_OPTIONAL = {
    "BearerTokenAuthentication": (".drf", "djangorestframework", "rest_framework", "drf"),
    "NinjaBearerAuth": (".ninja", "django-ninja", "ninja", "ninja"),
}


def __getattr__(name: str) -> Any:
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, package, top_level, extra = _OPTIONAL[name]
    from importlib import import_module

    try:
        return getattr(import_module(module, __name__), name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != top_level:
            raise
        raise ImportError(
            f"django_entra_sso.api.{name} needs {package}: pip install "
            f"'django-entra-sso[{extra}]' (or pip install {package})."
        ) from exc
