"""A connector's SCIM bearer token: made, stored as its SHA-256, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.http import HttpRequest
from django.utils import timezone

from ..models import Connector, SCIMToken
from .errors import SCIMError


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(connector: Connector) -> str:
    """A new token for ``connector``, replacing the old one; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    SCIMToken.objects.update_or_create(
        connector=connector,
        defaults={"token_hash": _digest(token), "created_at": timezone.now()},
    )
    return token


def authenticated_connector(request: HttpRequest, slug: str) -> Connector:
    """The enabled connector whose token the request bears; else a 401 with nothing in it."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    refused = SCIMError(401, "A valid bearer token for this endpoint is required.")
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise refused
    stored = (
        SCIMToken.objects.select_related("connector")
        .filter(connector__slug=slug, connector__enabled=True)
        .first()
    )
    # Compare even without a stored token, so that timing does not tell slugs apart.
    expected = stored.token_hash if stored is not None else "0" * 64
    if not hmac.compare_digest(_digest(token), expected) or stored is None:
        raise refused
    return stored.connector
