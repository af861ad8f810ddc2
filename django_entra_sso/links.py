"""The one place that builds this app's absolute URLs for a connector."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from django.urls import reverse

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
