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
        response = revalidation.check(request)
        return response if response is not None else self.get_response(request)
