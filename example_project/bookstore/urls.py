"""URLs of the bookstore: home, books, its API, the admin, single sign-on and language switch."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("books/", views.books, name="books"),
    path("api/books/", api.BookList.as_view(), name="api-books"),
    path("sso/", include("django_entra_sso.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
