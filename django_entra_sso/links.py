"""The one place that builds this app's absolute URLs, and checks ``next`` values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

if TYPE_CHECKING:
    from .models import Connector


def redirect_uri(request: HttpRequest, connector: Connector) -> str:
    return request.build_absolute_uri(reverse("entra_sso:callback", args=[connector.slug]))


def frontchannel_logout_uri(request: HttpRequest, connector: Connector) -> str:
    return request.build_absolute_uri(
        reverse("entra_sso:frontchannel_logout", args=[connector.slug])
    )


def backchannel_logout_uri(request: HttpRequest, connector: Connector) -> str:
    return request.build_absolute_uri(
        reverse("entra_sso:backchannel_logout", args=[connector.slug])
    )


def initiate_login_uri(request: HttpRequest, connector: Connector) -> str:
    return request.build_absolute_uri(reverse("entra_sso:initiate", args=[connector.slug]))


def scim_base_uri(request: HttpRequest, connector: Connector) -> str:
    """The connector's SCIM base URL (Entra ID: "Tenant URL")."""
    return request.build_absolute_uri(reverse("entra_sso:scim", args=[connector.slug]))


def post_logout_redirect_uri(request: HttpRequest) -> str:
    """Where the IdP sends the browser after sign-out: register it at the IdP."""
    from django.shortcuts import resolve_url

    from .conf import app_settings

    return request.build_absolute_uri(resolve_url(app_settings.POST_LOGOUT_REDIRECT_URL))


def safe_next(value: Any) -> str:
    """``value`` when it is a path on this site, else ``""`` (no open redirects)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return ""
    if "\\" in value or any(ord(ch) < 32 for ch in value):
        return ""
    if not url_has_allowed_host_and_scheme(value, allowed_hosts=None):
        return ""
    return value


def next_of(request: HttpRequest) -> str:
    """The request's own ``next`` (query or form), when it is safe."""
    return safe_next(request.GET.get("next") or request.POST.get("next"))
