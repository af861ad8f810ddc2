"""The cache this app keeps its state in (``ENTRA_SSO_CACHE_ALIAS``), and its keys.

Every key is built by ``cache_key`` so that all of them share one prefix and fit
any cache backend (memcached refuses keys over 250 characters or with spaces,
and URLs and token ids are neither short nor tame).

``tolerant_*`` calls are for what can be done without the cache, only slower or
with less protection (provider metadata, the JWKS refresh floor, logout token
replay markers): when the cache is down they log and carry on instead of
turning a sign-in or a logout into a 500.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import BaseCache, caches

from .conf import app_settings

logger = logging.getLogger(__name__)


def sso_cache() -> BaseCache:
    return caches[app_settings.CACHE_ALIAS]


def cache_key(kind: str, *parts: str) -> str:
    """``entra_sso:<kind>:<digest of parts>``: what is kept, and for which thing."""
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()[:40]
    return f"entra_sso:{kind}:{digest}"


def tolerant_get(key: str) -> Any:
    try:
        return sso_cache().get(key)
    except Exception as exc:  # noqa: BLE001 - a cache outage degrades, it does not fail
        logger.warning("Cache read of %s failed: %r", key, exc)
        return None


def tolerant_get_many(keys: list[str]) -> dict[str, Any]:
    """``cache.get_many``: one round trip; ``{}`` when the cache failed."""
    try:
        return dict(sso_cache().get_many(keys))
    except Exception as exc:  # noqa: BLE001
        logger.warning("Cache read of %s failed: %r", keys, exc)
        return {}


def tolerant_set(key: str, value: Any, timeout: int | None) -> None:
    try:
        sso_cache().set(key, value, timeout)
    except Exception as exc:  # noqa: BLE001
        logger.warning("Cache write of %s failed: %r", key, exc)


def tolerant_add(key: str, value: Any, timeout: int) -> bool | None:
    """``cache.add``: ``True`` when added, ``False`` when present, ``None`` when the cache failed."""
    try:
        return bool(sso_cache().add(key, value, timeout))
    except Exception as exc:  # noqa: BLE001
        logger.warning("Cache add of %s failed: %r", key, exc)
        return None


def tolerant_delete(key: str) -> None:
    try:
        sso_cache().delete(key)
    except Exception as exc:  # noqa: BLE001
        logger.warning("Cache delete of %s failed: %r", key, exc)
