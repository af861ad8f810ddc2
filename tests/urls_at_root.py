"""The test site with the app included at the root (``path("", include(...))``)."""

from __future__ import annotations

from django.urls import include, path

from tests.urls import home

urlpatterns = [
    path("home/", home, name="home"),
    path("", include("django_entra_sso.urls")),
]
