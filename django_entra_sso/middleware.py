"""``SessionRevalidationMiddleware``: put it after ``AuthenticationMiddleware``.

It ends SSO sessions past their connector's ``max_session_age`` and re-validates
them at the identity provider every ``revalidate_after`` seconds; the rules are in
``revalidation``. Between windows it reads only the session.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import revalidation


class SessionRevalidationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(_own_prefix()):
            response = revalidation.check(request)
            if response is not None:
                return response
        return self.get_response(request)


def _own_prefix() -> str:
    # The app's own URLs (sign-in, callback, logout) are never held up: the
    # callback of a silent round trip is how a session gets re-validated.
    from django.urls import reverse

    return reverse("entra_sso:login").rsplit("login/", 1)[0]
