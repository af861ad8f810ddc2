"""The bookstore's two pages: who you are (home) and the books (signed-in only)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_entra_sso.models import Connector
from django_entra_sso.sessions import signed_in_connector

SSO_BACKEND = "django_entra_sso.backends.SSOBackend"

BOOKS = [
    {"title": "Alice's Adventures in Wonderland", "author": "Lewis Carroll", "year": 1865},
    {"title": "Through the Looking-Glass", "author": "Lewis Carroll", "year": 1871},
    {"title": "A Christmas Carol", "author": "Charles Dickens", "year": 1843},
    {"title": "I Am a Cat", "author": "Natsume Sōseki", "year": 1905},
    {"title": "Kokoro", "author": "Natsume Sōseki", "year": 1914},
]


def _connector_of(request: HttpRequest) -> Connector | None:
    found = signed_in_connector(request)
    if found is not None:
        return found
    if request.session.get(BACKEND_SESSION_KEY) != SSO_BACKEND:
        return None  # signed in with a password (the admin)
    # Signed in through SSO but the slug is gone (say, the connector was renamed):
    # the identity the sign-in linked still names the connector.
    user: Any = request.user  # the site's user model: it has sso_identities
    identity = user.sso_identities.select_related("connector").order_by("-last_seen").first()
    return identity.connector if identity is not None else None


def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {}
    user: Any = request.user
    if user.is_authenticated:
        context = {
            "display_name": user.get_full_name() or user.get_username(),
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "connector": _connector_of(request),
        }
    return render(request, "bookstore/home.html", context)


@login_required
def books(request: HttpRequest) -> HttpResponse:
    return render(request, "bookstore/books.html", {"books": BOOKS})
