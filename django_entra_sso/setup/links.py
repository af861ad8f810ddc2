"""Setup links: made with a random token shown once, stored as its SHA-256, found by the hash.

A link is bound to one connector. A new link replaces the connector's older
ones; a link is unusable once revoked, expired or activated. Finding a link
looks up the token's hash (an index lookup on a digest of 256 random bits), so
the comparison reveals nothing about stored tokens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ..cache import cache_key, sso_cache, tolerant_add
from ..conf import app_settings
from ..models import Connector, SetupEvent, SetupLink
from ..signin_log import coarse_network

logger = logging.getLogger(__name__)

#: What ``secrets.token_urlsafe(32)`` makes (43 characters), with room to spare.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")
#: POSTs (save, test) one link may make per window, and the window in seconds.
POST_LIMIT = 20
POST_WINDOW = 600
DETAIL_MAX_LENGTH = 1000


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def make_link(
    connector: Connector,
    *,
    created_by: str = "",
    lifetime: int | None = None,
    request: HttpRequest | None = None,
) -> tuple[str, SetupLink]:
    """A new setup link for ``connector``: ``(token, link)``. Only the token's hash is kept.

    The connector's older links that are still usable stop working (one link at a time).
    """
    seconds = app_settings.SETUP_LINK_LIFETIME if lifetime is None else int(lifetime)
    if seconds <= 0:
        raise ValueError("A setup link's lifetime must be a positive number of seconds.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        replaced = _revoke(connector, now)
        link = SetupLink.objects.create(
            connector=connector,
            token_hash=digest(token),
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
            created_by=created_by[:150],
        )
        detail = f"by {created_by or 'unknown'}; expires {link.expires_at.isoformat()}"
        if replaced:
            detail += f"; replaces {replaced} older link(s)"
        record(request, connector, "created", detail, link=link)
    return token, link


def _revoke(connector: Connector, now: Any) -> int:
    return SetupLink.objects.filter(
        connector=connector, revoked_at__isnull=True, activated_at__isnull=True, expires_at__gt=now
    ).update(revoked_at=now)


def revoke_links(
    connector: Connector, *, revoked_by: str = "", request: HttpRequest | None = None
) -> int:
    """Stop every usable setup link of ``connector``; how many there were."""
    with transaction.atomic():
        count = _revoke(connector, timezone.now())
        record(
            request,
            connector,
            "revoked",
            f"by {revoked_by or 'unknown'}; {count} link(s) revoked",
        )
    return count


def usable_link(token: Any) -> SetupLink | None:
    """The usable link ``token`` opens, with its connector; ``None`` for anything else."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    link = SetupLink.objects.select_related("connector").filter(token_hash=digest(token)).first()
    if link is None or not link.is_usable():
        return None
    return link


def active_links(connector: Connector) -> list[SetupLink]:
    """The connector's links that still work (for the admin)."""
    return list(
        SetupLink.objects.filter(
            connector=connector,
            revoked_at__isnull=True,
            activated_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
    )


def allow_post(link: SetupLink) -> bool:
    """Count one POST through ``link``; ``False`` once it made ``POST_LIMIT`` in this window.

    Without a working cache the POST is allowed: the limit guards against abuse of a
    link already given out, not against guessing (tokens are 256 random bits).
    """
    window = int(time.time() // POST_WINDOW)
    key = cache_key("setup_posts", str(link.pk), str(window))
    if tolerant_add(key, 0, POST_WINDOW + 5) is None:
        return True
    try:
        count = sso_cache().incr(key)
    except ValueError:  # expired between add and incr: this POST is the window's first
        return True
    except Exception as exc:  # noqa: BLE001 - a cache outage degrades, it does not fail
        logger.warning("Cache incr of %s failed: %r", key, exc)
        return True
    return int(count) <= POST_LIMIT


def record(
    request: HttpRequest | None,
    connector: Connector,
    action: str,
    detail: str = "",
    *,
    link: SetupLink | None = None,
) -> None:
    """One row of the setup audit (``action``: a ``SetupEvent.Action``); never a token or secret."""
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    text = str(detail or "")
    if len(text) > DETAIL_MAX_LENGTH:
        text = text[: DETAIL_MAX_LENGTH - 1] + "…"
    SetupEvent.objects.create(
        connector=connector,
        link=link,
        action=action,
        detail=text,
        client_network=coarse_network(address),
    )
