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
from django.utils.translation import gettext as _

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
#: Page views one link may make per window (a person reloads; a script loops).
GET_LIMIT = 120
#: Unusable links (made up, expired, revoked) one client network may try per window.
BAD_TOKEN_LIMIT = 30
DETAIL_MAX_LENGTH = 1000


class ConnectorIsLive(ValueError):
    """A setup link was asked for a connector that is switched on."""


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
    if connector.enabled:
        # Its IdP values decide who every person of its verified domains is: whoever
        # holds a link must not change them while it signs people in.
        raise ConnectorIsLive(
            _(
                "Connector %(slug)s is switched on: a setup link only configures a connector "
                "that is off. Switch it off first (its people cannot sign in meanwhile), or "
                "change its values in the admin yourself."
            )
            % {"slug": connector.slug}
        )
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


def revoke_links_of_live_connector(connector: Connector) -> int:
    """Stop the links of a connector that is on; audited when there were any."""
    count = _revoke(connector, timezone.now())
    if count:
        record(
            None, connector, "revoked", f"the connector was switched on; {count} link(s) revoked"
        )
    return count


def usable_link(token: Any) -> SetupLink | None:
    """The usable link ``token`` opens, with its connector; ``None`` for anything else."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    link = SetupLink.objects.select_related("connector").filter(token_hash=digest(token)).first()
    if link is None or not link.is_usable() or link.connector.enabled:
        # A connector switched on (by "Activate", or by the site's team) is not the
        # link's any more.
        return None
    return link


def fingerprint(connector: Connector) -> str:
    """What a trial sign-in tried: the IdP values, so that "Activate" turns on only those."""
    values = [
        connector.protocol,
        connector.provider,
        connector.issuer,
        connector.client_id,
        connector.client_auth,
        connector.client_secret_encrypted,
        connector.saml_metadata_url,
        connector.saml_metadata_xml,
    ]
    return hashlib.sha256("\x1f".join(str(v) for v in values).encode("utf-8")).hexdigest()


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
    return _count("setup_posts", str(link.pk)) <= POST_LIMIT


def allow_get(link: SetupLink) -> bool:
    """Count one page view through ``link``; ``False`` past ``GET_LIMIT`` in this window."""
    return _count("setup_gets", str(link.pk)) <= GET_LIMIT


def network_refused(request: HttpRequest) -> bool:
    """Whether the client's network sent ``BAD_TOKEN_LIMIT`` unusable links in this window.

    Asked only for a link that does not work: a working link is never refused
    because others on its network (behind one proxy, say) tried made-up ones.
    """
    return _count("setup_bad", _network(request), add=0) >= BAD_TOKEN_LIMIT


def count_bad_token(request: HttpRequest) -> None:
    _count("setup_bad", _network(request))


def _network(request: HttpRequest) -> str:
    return coarse_network(request.META.get("REMOTE_ADDR", "")) or "unknown"


def _count(kind: str, who: str, *, add: int = 1) -> int:
    """Add ``add`` to this window's counter of ``kind`` for ``who``; the count (0 if no cache)."""
    window = int(time.time() // POST_WINDOW)
    key = cache_key(kind, who, str(window))
    if tolerant_add(key, 0, POST_WINDOW + 5) is None:
        return 0
    try:
        cache = sso_cache()
        return int(cache.incr(key, add) if add else (cache.get(key) or 0))
    except ValueError:  # expired between add and incr: this is the window's first
        return add
    except Exception as exc:  # noqa: BLE001 - a cache outage degrades, it does not fail
        logger.warning("Cache counter %s failed: %r", key, exc)
        return 0


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
