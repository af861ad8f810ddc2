"""Each SAML assertion and LogoutRequest is accepted once: a database row per ID.

An SP-initiated Response is also tied to the browser's pending request, which is used
up; an unsolicited one (IdP-initiated) and a LogoutRequest have only their ID between
a replay and a second sign-in or sign-out. The markers are rows, not cache entries,
because a cache may drop an entry early (see ``UsedSAMLMessage``).
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from ..models import Connector, UsedSAMLMessage


class ReplayRegisterUnavailable(Exception):
    """The database could not say whether the message was seen: refuse it."""


def first_use(connector: Connector, kind: str, message_id: str, remember_for: int) -> bool:
    """Record ``message_id`` for ``remember_for`` seconds; ``False`` when it was recorded
    before and is still remembered. Concurrent first uses: one wins, by the unique key."""
    now = timezone.now()
    digest = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    try:
        # Expired markers go first, so an ID remembered past its message's life (and
        # so refused on its times anyway) never blocks, and the table stays small.
        UsedSAMLMessage.objects.filter(expires_at__lte=now).delete()
        with transaction.atomic():  # a savepoint when the caller's transaction is open
            UsedSAMLMessage.objects.create(
                connector=connector,
                kind=kind,
                message_digest=digest,
                expires_at=now + dt.timedelta(seconds=max(remember_for, 0)),
            )
    except IntegrityError:
        return False
    except DatabaseError as exc:
        raise ReplayRegisterUnavailable(repr(exc)) from exc
    return True


def prune() -> int:
    """Drop markers past their time; the number dropped."""
    deleted, _ = UsedSAMLMessage.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
