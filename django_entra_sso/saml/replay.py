"""Each SAML assertion and LogoutRequest is accepted once: a database row per ID.

An SP-initiated Response is also tied to the browser's pending request, which is used
up; an unsolicited one (IdP-initiated) and a LogoutRequest have only their ID between
a replay and a second sign-in or sign-out. The markers are rows, not cache entries,
because a cache may drop an entry early (see ``UsedSAMLMessage``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from ..models import Connector, UsedSAMLMessage


class ReplayRegisterUnavailable(Exception):
    """The database could not say whether the message was seen: refuse it."""


#: One marker in this many also prunes every expired one (``sso_clear_sessions`` does too).
PRUNE_EVERY = 50
#: The longest a marker is kept: some IdPs write "never" as the year 9999, which no date
#: arithmetic reaches. Such an assertion stays refused for a century, which is as good.
LONGEST = dt.timedelta(days=36500)


def first_use(connector: Connector, kind: str, message_id: str, remember_for: int) -> bool:
    """Record ``message_id`` for ``remember_for`` seconds; ``False`` when it was recorded
    before and is still remembered. Concurrent first uses: one wins, by the unique key."""
    now = timezone.now()
    digest = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    markers = UsedSAMLMessage.objects
    try:
        # In a savepoint each (the request's own transaction, under ATOMIC_REQUESTS, stays
        # usable after an error), and touching only this ID's expired marker: pruning
        # them all at every sign-in would hold their row locks to the end of the request.
        with transaction.atomic():
            same = markers.filter(connector=connector, kind=kind, message_digest=digest)
            same.filter(expires_at__lte=now).delete()
            markers.create(
                connector=connector,
                kind=kind,
                message_digest=digest,
                expires_at=now + min(dt.timedelta(seconds=max(remember_for, 0)), LONGEST),
            )
    except IntegrityError:
        return False
    except DatabaseError as exc:
        raise ReplayRegisterUnavailable(repr(exc)) from exc
    if secrets.randbelow(PRUNE_EVERY) == 0:
        try:
            with transaction.atomic():
                prune()
        except DatabaseError:
            pass  # only housekeeping
    return True


def prune() -> int:
    """Drop markers past their time; the number dropped."""
    deleted, _ = UsedSAMLMessage.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
