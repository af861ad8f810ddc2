"""Both sign-in stacks on one site: ours under /sso/, stock mozilla-django-oidc under /oidc/.

With Django REST framework installed (the ``drf`` extra), figure 10's two API endpoints:
the same view behind our ``BearerTokenAuthentication`` and behind DRF's
``SessionAuthentication``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path

#: Figure 10: the delegated scope the bearer endpoint asks for.
API_SCOPE = "Bench.Read"


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    text = f"signed in as {user.get_username()}" if user.is_authenticated else "signed out"
    return HttpResponse(text)


def _api_patterns() -> list[URLPattern | URLResolver]:
    try:
        from rest_framework.authentication import SessionAuthentication
        from rest_framework.permissions import IsAuthenticated
        from rest_framework.renderers import JSONRenderer
        from rest_framework.request import Request
        from rest_framework.response import Response
        from rest_framework.views import APIView

        from django_entra_sso.api import BearerTokenAuthentication
    except ImportError:  # figure 10 says what is missing
        return []

    class Whoami(APIView):  # type: ignore[misc]
        permission_classes = [IsAuthenticated]
        renderer_classes = [JSONRenderer]

        def get(self, request: Request) -> Response:
            return Response({"user": request.user.get_username()})

    class BearerWhoami(Whoami):
        authentication_classes = [BearerTokenAuthentication]
        required_scopes = [API_SCOPE]

    class SessionWhoami(Whoami):
        authentication_classes = [SessionAuthentication]

    views: dict[str, Any] = {"bearer": BearerWhoami, "session": SessionWhoami}
    return [
        path(f"api/{name}/", view.as_view(), name=f"api-{name}") for name, view in views.items()
    ]


urlpatterns = [
    path("sso/", include("django_entra_sso.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("home/", home, name="home"),
    *_api_patterns(),
]
