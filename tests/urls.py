from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    text = f"signed in as {user.get_username()}" if user.is_authenticated else "signed out"
    return HttpResponse(text)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("sso/", include("django_entra_sso.urls")),
    path("home/", home, name="home"),
    path("private/", login_required(home), name="private"),
    path("", home, name="root"),
]

try:  # the API endpoints need the drf and ninja extras (in the test extra)
    from tests import api_views

    urlpatterns += [
        path("api/plain/books/", api_views.plain_books),
        path("api/drf/books/", api_views.DRFBooks.as_view()),
        path("api/ninja/", api_views.ninja_api.urls),
        path("api/ninja-as-is/", api_views.ninja_api_as_is.urls),
    ]
except ImportError:  # pragma: no cover - tests/test_api.py says what is missing
    pass
