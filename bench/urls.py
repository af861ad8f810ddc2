"""Both sign-in stacks on one site: ours under /sso/, stock mozilla-django-oidc under /oidc/."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    text = f"signed in as {user.get_username()}" if user.is_authenticated else "signed out"
    return HttpResponse(text)


urlpatterns = [
    path("sso/", include("django_entra_sso.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("home/", home, name="home"),
]
