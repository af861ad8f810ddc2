"""Opaque access tokens (not JWTs), checked at the IdP by RFC 7662 token introspection.

A connector with ``introspect_tokens`` (at most one may have it: an opaque token names
no issuer, and it must never be shown to another IdP) asks its IdP's introspection
endpoint, authenticated with its own client credentials. Answers are cached under the
token's SHA-256 for ``ENTRA_SSO_INTROSPECTION_CACHE_TTL`` seconds (never past the
token's ``exp``), inactive answers too, so a client that repeats a token costs one
call per window.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.views.decorators.debug import sensitive_variables

from ..cache import cache_key, tolerant_get, tolerant_set
from ..conf import app_settings
from ..crypto import SecretDecryptionError
from ..models import Connector
from ..oidc import client
from ..oidc.metadata import MetadataError, get_metadata
from ..provider_http import ProviderHTTPError


class IntrospectionUnavailable(Exception):
    """The IdP could not say (down, misconfigured): ``temporarily_unavailable``."""


def introspecting_connector() -> Connector | None:
    """The one enabled connector that introspects, or ``None`` (none, or several)."""
    found = list(
        Connector.objects.filter(
            introspect_tokens=True, enabled=True, protocol=Connector.Protocol.OIDC
        ).exclude(api_audiences=[])[:2]
    )
    return found[0] if len(found) == 1 else None


@sensitive_variables("token")
def introspect(connector: Connector, token: str) -> dict[str, Any]:
    """The IdP's answer for ``token`` (``{"active": false}`` when it is not one)."""
    key = cache_key("introspection", str(connector.pk), hashlib.sha256(token.encode()).hexdigest())
    cached = tolerant_get(key)
    if isinstance(cached, dict):
        return cached
    try:
        answer = client.introspect(connector, get_metadata(connector), token)
    except (MetadataError, ProviderHTTPError, SecretDecryptionError) as exc:
        raise IntrospectionUnavailable(f"{connector.slug}: {exc}") from exc
    if not isinstance(answer.get("active"), bool):
        raise IntrospectionUnavailable(f"{connector.slug}: the answer has no boolean active")
    ttl = app_settings.INTROSPECTION_CACHE_TTL
    exp = answer.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool) and math.isfinite(exp):
        # (JSON as Python reads it may say NaN or Infinity; the check refuses those.)
        ttl = min(ttl, int(exp - time.time()))
    if ttl > 0:
        tolerant_set(key, answer, ttl)
    return answer
