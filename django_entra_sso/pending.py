"""The sign-ins a browser has in flight, whatever the protocol, kept in its session.

Each started sign-in is kept under its own one-time handle (OIDC: ``state``;
SAML: ``RelayState``) so several tabs can sign in at once. Entries expire after
``ENTRA_SSO_LOGIN_TIMEOUT`` and at most ``ENTRA_SSO_MAX_PENDING_LOGINS`` are
kept, so sign-ins started and never finished cannot grow a session without bound.
The protocol modules own what an entry holds; this module only keeps them.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from .conf import app_settings

PENDING_SESSION_KEY = "entra_sso_pending"


def _pending(session: SessionBase) -> dict[str, dict[str, Any]]:
    value = session.get(PENDING_SESSION_KEY)
    return value if isinstance(value, dict) else {}


def _fresh(data: Any, now: float) -> bool:
    return (
        isinstance(data, dict)
        and now - float(data.get("created_at", 0)) <= app_settings.LOGIN_TIMEOUT
    )


def remember(session: SessionBase, handle: str, data: dict[str, Any]) -> None:
    """Keep ``data`` (with its ``created_at``) under ``handle``; drop expired and surplus ones."""
    now = time.time()
    pending = {key: value for key, value in _pending(session).items() if _fresh(value, now)}
    pending[handle] = data
    keep = max(app_settings.MAX_PENDING_LOGINS, 1)
    if len(pending) > keep:
        newest = sorted(pending.items(), key=lambda item: item[1].get("created_at", 0))[-keep:]
        pending = dict(newest)
    session[PENDING_SESSION_KEY] = pending


def take(session: SessionBase, handle: str) -> dict[str, Any] | None:
    """Remove and return what ``handle`` names, unless expired: each handle is used once."""
    pending = _pending(session)
    if not isinstance(handle, str) or handle not in pending:
        return None
    data = pending.pop(handle)
    session[PENDING_SESSION_KEY] = pending
    return data if _fresh(data, time.time()) else None


def peek_ids(session: SessionBase, field: str) -> dict[str, str]:
    """``{handle: data[field]}`` of every live entry that has ``field`` (SAML request IDs)."""
    now = time.time()
    return {
        handle: str(data[field])
        for handle, data in _pending(session).items()
        if _fresh(data, now) and isinstance(data.get(field), str)
    }
