"""Addresses a setup link may not point this site at: its own machine and private networks.

Until setup links, only the site's staff chose an issuer or a metadata URL. A link
holder choosing ``http://127.0.0.1:6379/`` or ``https://10.0.0.5/`` would make
"Test connection" and "Try signing in" fetch from inside the site's network and
report what answered (server-side request forgery). Staff still may (an IdP on
the intranet is theirs to trust); a setup page refuses such addresses unless
``ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES`` is on (development, tests, the demo).

The host's addresses are checked when the value is saved, and the endpoints the
issuer's discovery document names (token, JWKS, userinfo, introspection) before
"Test connection" or "Try signing in" calls them; a name that resolves elsewhere
later (DNS rebinding), or a document changed after the trial, is the known limit
of any check made before use.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _


def allowed() -> bool:
    return bool(getattr(settings, "ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES", False))


def private_address_problem(url: str) -> str | None:
    """A sentence when ``url``'s host is this machine or a private network, else ``None``."""
    if not url or allowed():
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None  # the field's own validation says what is wrong with it
    if not host:
        return None
    refused = _(
        "%(host)s is on this site's own machine or a private network: enter the address "
        "your identity provider has on the internet."
    ) % {"host": host}
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return refused
    try:
        return None if ipaddress.ip_address(host).is_global else refused
    except ValueError:
        pass  # a name: look at what it resolves to
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None  # unknown here: fetching it will fail with its own message
    for _family, _type, _proto, _name, sockaddr in answers:
        try:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            continue
        if not address.is_global:
            return refused
    return None


def discovery_endpoints_problem(connector: Any) -> str | None:
    """A sentence when the connector's discovery document names a private endpoint.

    Reads the document through the metadata cache (the page just fetched it); a
    document that cannot be read is left to the sign-in's own error.
    """
    if allowed() or connector.is_saml:
        return None
    from ..oidc.metadata import MetadataError, get_metadata, server_fetched_endpoints

    try:
        metadata = get_metadata(connector)
    except MetadataError:
        return None
    for endpoint in server_fetched_endpoints(metadata):
        problem = private_address_problem(endpoint)
        if problem:
            return problem
    return None
