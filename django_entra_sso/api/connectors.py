"""Which connector an access token belongs to: one indexed lookup by issuer, cached.

The token's ``iss`` (read before the signature is checked, only to choose whose keys
check it) is looked up in ``Connector.issuer`` (indexed). An Entra tenant issuer that no
connector names exactly may belong to a multi-tenant connector (``common``,
``organizations``, ``consumers`` on the same host): those are looked up by their few
possible issuers, also through the index. Entra v1 tokens (``https://sts.windows.net/
<tenant>/``) count as the tenant's v2.0 issuer for connectors that accept them. The
answer (or that there is none) is cached for ``API_ISSUER_CACHE_TTL`` seconds, so a
steady stream of requests costs no query at all. Only enabled OpenID Connect
connectors with API audiences take part.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from .. import providers
from ..cache import cache_key, tolerant_get, tolerant_set
from ..models import Connector
from ..oidc.tokens import TokenError, _b64_json

API_ISSUER_CACHE_TTL = 60
_ENTRA_V2 = re.compile(r"^https://(?P<host>[^/]+)/(?P<tenant>[0-9a-fA-F-]{36})/v2\.0$")
_ENTRA_V1 = re.compile(r"^https://sts\.windows\.net/(?P<tenant>[0-9a-fA-F-]{36})/$")
_NONE = 0


def unverified_issuer(token: str) -> str:
    """The ``iss`` a token claims, unverified: only to choose whose keys check it."""
    try:
        payload = _b64_json(token.split(".")[1])
    except (ValueError, UnicodeError, IndexError, RecursionError, TokenError):
        return ""
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) and len(iss) <= 500 else ""


def _candidates(iss: str) -> Q:
    """Issuers a connector may have to own tokens of ``iss``."""
    names = {iss}
    v1 = _ENTRA_V1.match(iss)
    if v1:
        names.add(providers.entra_issuer_for_tenant(v1["tenant"]))
    v2 = _ENTRA_V2.match(iss) or (
        v1 and _ENTRA_V2.match(providers.entra_issuer_for_tenant(v1["tenant"]))
    )
    if v2:
        host = v2["host"]
        names |= {
            f"https://{host}/{segment}/v2.0" for segment in providers.ENTRA_MULTI_TENANT_SEGMENTS
        }
    return Q(issuer__in=sorted(names))


def _usable(connector: Connector, iss: str) -> bool:
    """Takes API tokens at all, and v1 tokens only when it accepts them."""
    v1_refused = bool(_ENTRA_V1.match(iss)) and not connector.accept_v1_tokens
    return bool(connector.api_audiences) and not v1_refused


def _find(iss: str) -> Connector | None:
    rows = list(
        Connector.objects.filter(_candidates(iss), enabled=True, protocol=Connector.Protocol.OIDC)
        .exclude(api_audiences=[])
        .order_by()  # not the model's ordering by name: nothing to sort for
    )
    usable = [c for c in rows if _usable(c, iss)]
    exact = [c for c in usable if c.issuer in (iss, _tenant_issuer(iss))]
    # A connector of the tenant itself wins over a multi-tenant one.
    chosen = exact or usable
    return chosen[0] if len(chosen) == 1 else None


def _tenant_issuer(iss: str) -> str:
    v1 = _ENTRA_V1.match(iss)
    return providers.entra_issuer_for_tenant(v1["tenant"]) if v1 else iss


def _generation() -> int:
    """Bumped on every connector change (``forget_connectors``): older answers are unread."""
    value = tolerant_get(cache_key("api-connectors", "generation"))
    return value if isinstance(value, int) else 0


def forget_connectors() -> None:
    """A connector was saved or deleted: every cached answer is stale (``receivers``)."""
    tolerant_set(cache_key("api-connectors", "generation"), _generation() + 1, 24 * 3600)


def connector_for_token(token: str) -> Connector | None:
    """The connector whose keys and rules check ``token``; ``None`` when no (single) one.

    The answer is the connector itself, cached: a steady stream of calls costs no
    query for it. A change to any connector makes every cached answer stale at once
    in a shared cache (Redis, Memcached); a per-process cache (LocMem) of another
    process keeps its answer for up to ``API_ISSUER_CACHE_TTL`` seconds.
    """
    iss = unverified_issuer(token)
    if not iss:
        return None
    key = cache_key("api-issuer", iss, str(_generation()))
    cached: Any = tolerant_get(key)
    if cached == _NONE:
        return None
    if isinstance(cached, Connector):
        return cached
    connector = _find(iss)
    tolerant_set(key, connector if connector else _NONE, API_ISSUER_CACHE_TTL)
    return connector
