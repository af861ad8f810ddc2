"""The index from what an IdP names (sid, sub) to Django sessions, and ending them.

Works with any server-side session engine (``db``, ``cache``, ``cached_db``,
``file``): a session is ended through the engine's own ``SessionStore.delete``,
so a logout handled by one app process ends a session another process created,
as long as they share the session storage. Lookups go through the indexes on
``SSOSession`` (connector+sid, connector+subject, session_key), so the cost of
ending a session does not depend on how many sessions are stored.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone

from .models import Connector, SSOSession
from .signals import sso_signed_out

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

ID_TOKEN_SESSION_KEY = "entra_sso_id_token"
CONNECTOR_SESSION_KEY = "entra_sso_connector"
LOGIN_HINT_SESSION_KEY = "entra_sso_login_hint"


def session_store_class() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore  # type: ignore[no-any-return]


def bind_session(
    request: HttpRequest,
    connector: Connector,
    user: AbstractBaseUser,
    claims: dict[str, Any],
    id_token: str,
) -> SSOSession:
    """Remember which IdP session this (already cycled) Django session belongs to."""
    session = request.session
    session[ID_TOKEN_SESSION_KEY] = id_token
    session[CONNECTOR_SESSION_KEY] = connector.slug
    login_hint = claims.get("login_hint")
    if isinstance(login_hint, str):
        session[LOGIN_HINT_SESSION_KEY] = login_hint
    if session.session_key is None:
        session.save()
    sid = claims.get("sid")
    return SSOSession.objects.create(
        connector=connector,
        sid=sid if isinstance(sid, str) else "",
        subject=str(claims["sub"]),
        session_key=session.session_key,
        user=user,
    )


def _end(rows: list[SSOSession], *, reason: str, request: HttpRequest | None) -> int:
    store_class = session_store_class()
    for row in rows:
        store_class(session_key=row.session_key).delete(row.session_key)
        sso_signed_out.send(
            sender=Connector,
            request=request,
            user=row.user,
            connector=row.connector,
            session_key=row.session_key,
            reason=reason,
        )
    SSOSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def _bound_rows(connector: Connector, **lookup: str) -> list[SSOSession]:
    # No join to the connector (the caller holds it): given that join, SQLite's
    # planner walks the one-column connector_id index, i.e. every session of the
    # connector, instead of the (connector, sid|subject) index.
    rows = list(SSOSession.objects.filter(connector=connector, **lookup).select_related("user"))
    for row in rows:
        row.connector = connector
    return rows


def end_sessions_for_sid(
    connector: Connector, sid: str, *, reason: str, request: HttpRequest | None = None
) -> int:
    """End every Django session bound to this IdP session; return how many."""
    if not sid:
        return 0
    return _end(_bound_rows(connector, sid=sid), reason=reason, request=request)


def end_sessions_for_subject(
    connector: Connector, subject: str, *, reason: str, request: HttpRequest | None = None
) -> int:
    """End every Django session of this subject at this connector; return how many."""
    if not subject:
        return 0
    return _end(_bound_rows(connector, subject=subject), reason=reason, request=request)


def forget_session(session_key: str | None) -> None:
    """Drop the index rows of a session that ended here (local sign-out)."""
    if session_key:
        SSOSession.objects.filter(session_key=session_key).delete()


def clear_stale_sessions(*, batch_size: int = 1000) -> int:
    """Delete index rows whose Django session has expired or is gone; return how many.

    Rows older than ``SESSION_COOKIE_AGE`` are dropped without a look; younger
    ones are checked against the session engine.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    removed, _ = SSOSession.objects.filter(created_at__lt=cutoff).delete()
    store = session_store_class()()
    gone: list[int] = []
    for pk, key in SSOSession.objects.values_list("pk", "session_key").iterator(
        chunk_size=batch_size
    ):
        if not store.exists(key):
            gone.append(pk)
    for start in range(0, len(gone), batch_size):
        removed += SSOSession.objects.filter(pk__in=gone[start : start + batch_size]).delete()[0]
    return removed
