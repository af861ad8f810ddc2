"""Telling the site's team that a customer finished their setup: a signal, and an email.

The signal is always sent; the email goes to ``ENTRA_SSO_SETUP_NOTIFY_EMAILS``
when the site lists any. A mail server that fails is logged, never shown to the
customer: their connector is activated (or the request recorded) either way.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.dispatch import Signal
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from ..conf import app_settings
from ..models import Connector, SetupLink
from ..signals import (
    sso_setup_activated,
    sso_setup_activation_requested,
    sso_setup_activation_withdrawn,
)

logger = logging.getLogger(__name__)


def activated(request: HttpRequest, connector: Connector, link: SetupLink) -> None:
    _tell(
        sso_setup_activated,
        request,
        connector,
        link,
        f"Single sign-on activated for {connector.name}",
        f"The customer activated connector {connector.slug} ({connector.name}) from its setup "
        "link. People of its verified email domains can sign in now.",
    )


def activation_requested(request: HttpRequest, connector: Connector, link: SetupLink) -> None:
    _tell(
        sso_setup_activation_requested,
        request,
        connector,
        link,
        f"{connector.name} asks to activate single sign-on",
        f"The customer finished setting up connector {connector.slug} ({connector.name}) and "
        "tried signing in successfully. Enable the connector in the admin to let their people in.",
    )


def activation_withdrawn(request: HttpRequest, connector: Connector, link: SetupLink) -> None:
    _tell(
        sso_setup_activation_withdrawn,
        request,
        connector,
        link,
        f"{connector.name} withdrew its request to activate single sign-on",
        f"The customer changed the identity provider values of connector {connector.slug} "
        f"({connector.name}) after asking you to activate it. Do not enable it: the values it "
        "holds now have not been tried. A new request will come when they try signing in again.",
    )


def _tell(
    signal: Signal,
    request: HttpRequest,
    connector: Connector,
    link: SetupLink,
    subject: str,
    body: str,
) -> None:
    """The signal, then the email (subject prefixed with the site's host)."""
    signal.send(sender=Connector, request=request, connector=connector, link=link)
    _mail(request, connector, f"[{request.get_host()}] {subject}", body)


def _mail(request: HttpRequest, connector: Connector, subject: str, body: str) -> None:
    recipients = app_settings.SETUP_NOTIFY_EMAILS
    if not recipients:
        return
    try:
        url = request.build_absolute_uri(
            reverse("admin:django_entra_sso_connector_change", args=[connector.pk])
        )
        body += f"\n\nConnector in the admin: {url}\n"
    except NoReverseMatch:  # a site without the admin
        pass
    try:
        send_mail(subject, body, None, recipients)
    except Exception:
        logger.exception("Could not send the setup notification for %s", connector.slug)
