"""Binding a signed-in browser to its IdP session, and ending sessions; no protocol here.

A sign-in's Django session is recorded in the ``SSOSession`` index under what
the IdP will name it by later (``sid``, ``subject``), with what the adapter
needs to end the IdP session (``sign_out``) kept in the session itself.

Works with any server-side session engine (``db``, ``cache``, ``cached_db``,
``file``): a session is ended through the engine's own ``SessionStore.delete``,
so a logout handled by one app process ends a session another process created,
as long as they share the session storage. Lookups go through the indexes on
``SSOSession`` (connector+sid, connector+subject, session_key), so the cost of
ending a session does not depend on how many sessions are stored.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.utils import timezone

from .crypto import encrypt_secret
from .lookups import connector_by_slug
from .models import Connector, SSOSession
from .signals import sso_signed_out
from .verified import IdPSession

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

#: The slug of the connector the session signed in through (read by sites too).
CONNECTOR_SESSION_KEY = "entra_sso_connector"
#: The adapter's ``IdPSession.sign_out``: what ending the IdP session will need.
SIGN_OUT_SESSION_KEY = "entra_sso_sign_out"
#: When the session signed in and was last validated at the IdP, and the connector's
#: windows: all ``SessionRevalidationMiddleware`` needs between windows.
VALIDATION_SESSION_KEY = "entra_sso_validation"


def session_store_class() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore  # type: ignore[no-any-return]


def bind_session(
    request: HttpRequest, connector: Connector, user: AbstractBaseUser, idp_session: IdPSession
) -> SSOSession:
    """Remember which IdP session this (already cycled) Django session belongs to."""
    session = request.session
    session[CONNECTOR_SESSION_KEY] = connector.slug
    session[SIGN_OUT_SESSION_KEY] = dict(idp_session.sign_out)
    if connector.revalidate_after or connector.max_session_age:
        now = time.time()
        session[VALIDATION_SESSION_KEY] = validation_state(connector, signed_in_at=now, at=now)
    if idp_session.ends_at is not None:
        # The IdP's limit on the session here: Django ends it then, on any engine.
        left = max(int(idp_session.ends_at - time.time()), 1)
        if left < session.get_expiry_age():
            session.set_expiry(left)
    if session.session_key is None:
        session.save()
    return SSOSession.objects.create(
        connector=connector,
        sid=idp_session.sid,
        subject=idp_session.subject,
        session_key=session.session_key,
        user=user,
        refresh_token_encrypted=(
            encrypt_secret(idp_session.refresh_token)
            if idp_session.refresh_token and connector.revalidate_after
            else ""
        ),
    )


def validation_state(connector: Connector, *, signed_in_at: float, at: float) -> dict[str, Any]:
    """The session's re-validation record: validated ``at``, with the connector's windows."""
    return {
        "signed_in_at": signed_in_at,
        "validated_at": at,
        "revalidate_after": connector.revalidate_after,
        "max_age": connector.max_session_age,
        "retry_at": 0.0,
        "failures": 0,
    }


def signed_in_connector(request: HttpRequest) -> Connector | None:
    """The connector this browser's session signed in through; ``None`` for other sessions."""
    slug = request.session.get(CONNECTOR_SESSION_KEY)
    return connector_by_slug(slug) if isinstance(slug, str) else None


def sign_out_hints(request: HttpRequest) -> dict[str, Any]:
    """What the adapter kept at sign-in to end the IdP session (``IdPSession.sign_out``)."""
    hints = request.session.get(SIGN_OUT_SESSION_KEY)
    return dict(hints) if isinstance(hints, dict) else {}


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


def end_idp_session(
    connector: Connector,
    idp_session: IdPSession,
    *,
    reason: str,
    request: HttpRequest | None = None,
) -> int:
    """End what the IdP says has ended: its session when it names one, else the person's."""
    if idp_session.sid:
        return end_sessions_for_sid(connector, idp_session.sid, reason=reason, request=request)
    return end_sessions_for_subject(connector, idp_session.subject, reason=reason, request=request)


def end_sessions_for_user(
    user: AbstractBaseUser, *, reason: str, request: HttpRequest | None = None
) -> int:
    """End every SSO session of ``user``, at every connector; return how many.

    Deactivating a user calls this (``receivers``); call it yourself after a
    bulk ``update(is_active=False)``, which sends no signal.
    """
    rows = list(SSOSession.objects.filter(user=user).select_related("connector", "user"))
    return _end(rows, reason=reason, request=request) if rows else 0


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
