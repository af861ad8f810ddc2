"""Leavers lose access: SSO sessions re-validated at the IdP, and an absolute lifetime.

A session signed in through a connector with ``revalidate_after`` is checked at
the identity provider again once that many seconds have passed since the last
check; with ``max_session_age`` it ends that long after its sign-in, whatever the
IdP says. ``SessionRevalidationMiddleware`` calls ``check`` on every request.

- Between windows ``check`` reads only the session (``sessions.VALIDATION_SESSION_KEY``):
  no query, no network call.
- When a window has passed, the refresh token kept (encrypted) on the session's
  ``SSOSession`` row is redeemed: one call per session per window, on any kind of
  request. The IdP saying no (``invalid_grant``, another ``sub``) ends the person's
  sessions at that connector (``sso_signed_out`` reason ``"revoked"``); the IdP not
  answering keeps the session and retries after a back-off. A lock in the cache
  lets one request of a session redeem the (single-use) token; the others go on.
- Without a refresh token, a silent ``prompt=none`` round trip is made, on a
  top-level GET navigation only: a form POST or a fetch is never sent to the IdP.
  It is served, unless the session is more than two windows overdue, when a fetch
  gets a 401 JSON answer and a form POST the sign-in page.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext_lazy as _

from .cache import cache_key, sso_cache, tolerant_add
from .conf import app_settings
from .crypto import SecretDecryptionError, decrypt_secret, encrypt_secret
from .errors import SignInError
from .links import safe_next
from .lookups import connector_by_slug
from .models import Connector, SSOSession
from .oidc import adapter
from .oidc.client import GrantRevoked
from .sessions import (
    CONNECTOR_SESSION_KEY,
    VALIDATION_SESSION_KEY,
    end_sessions_for_subject,
    validation_state,
)
from .signals import sso_signed_out
from .verified import VerifiedSignIn

logger = logging.getLogger(__name__)

#: Why a session ended, as the sign-in page's ``?ended=`` names it, and what it says.
REVOKED = "revoked"
EXPIRED = "expired"
ENDED_MESSAGES = {
    REVOKED: _(
        "Your organization has ended your session, or your account can no longer sign in. "
        "Please sign in again."
    ),
    EXPIRED: _("Your session has expired. Please sign in again."),
}
#: Answers to a silent ``prompt=none`` round trip that mean "the IdP could not say".
OUTAGE_CODES = frozenset(
    {
        "provider_unreachable",
        "token_failed",
        "temporarily_unavailable",
        "server_error",
        "unavailable",
    }
)
#: Longest wait between two attempts while the IdP cannot be reached (seconds).
MAX_BACK_OFF = 300


def check(request: HttpRequest) -> HttpResponse | None:
    """``None`` to serve the request, or the response that ends or re-validates the session."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return None  # no session to look at: leave it unread (no Vary: Cookie for it)
    session = getattr(request, "session", None)
    state = session.get(VALIDATION_SESSION_KEY) if session is not None else None
    if not isinstance(state, dict) or session is None or not session.get(SESSION_KEY):
        return None
    now = time.time()
    try:
        signed_in_at = float(state["signed_in_at"])
        validated_at = float(state["validated_at"])
        max_age = int(state.get("max_age") or 0)
        window = int(state.get("revalidate_after") or 0)
        retry_at = float(state.get("retry_at") or 0)
    except (KeyError, TypeError, ValueError):
        return None  # not ours to judge; Django's own expiry still applies
    expired = bool(max_age) and now - signed_in_at > max_age
    due = bool(window) and now - validated_at >= window and now >= retry_at
    if not (expired or due) or _is_own_url(request):
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None  # nobody is signed in on this request (say, the user was deactivated)
    if expired:
        return _end(request, reason=EXPIRED)
    return _revalidate(request, state, now=now, overdue=now - validated_at > 2 * window)


def _is_own_url(request: HttpRequest) -> bool:
    """The app's own URLs (sign-in, callback, sign-out) are never held up.

    The callback of a silent round trip is how a due session gets re-validated,
    and a person whose session just ended must reach the sign-in page. Only asked
    when something is due: ``reverse`` costs more than the rest of ``check``.
    """
    try:
        return resolve(request.path_info).namespace == "entra_sso"
    except Resolver404:
        return False


def _revalidate(
    request: HttpRequest, state: dict[str, Any], *, now: float, overdue: bool
) -> HttpResponse | None:
    session = request.session
    lock = cache_key("revalidate", str(session.session_key))
    if tolerant_add(lock, 1, int(app_settings.HTTP_TIMEOUT) * 2 + 5) is False:
        return None  # another request of this session is re-validating it
    try:
        row = (
            SSOSession.objects.select_related("connector")
            .filter(session_key=session.session_key)
            .first()
        )
        connector = row.connector if row is not None else _connector_of(request)
        if connector is None or not connector.enabled:
            return _end(request, reason=REVOKED, connector=connector)
        token = _refresh_token(row)
        if row is not None and token:
            return _redeem(request, state, row, connector, token, now=now)
        if is_navigation(request):
            return _silent_round_trip(request, state, connector, now=now)
        return _ended_response(request, REVOKED) if overdue else None
    finally:
        try:
            sso_cache().delete(lock)
        except Exception:  # noqa: BLE001 - the lock expires by itself
            logger.warning("Could not release the re-validation lock %s", lock)


def _redeem(
    request: HttpRequest,
    state: dict[str, Any],
    row: SSOSession,
    connector: Connector,
    token: str,
    *,
    now: float,
) -> HttpResponse | None:
    try:
        new_token = adapter.refresh_session(connector, token, subject=row.subject)
    except GrantRevoked as exc:
        logger.info("Re-validation at %s: the IdP said no (%s).", connector.slug, exc)
        return _end(request, reason=REVOKED, connector=connector, subject=row.subject)
    except adapter.RevalidationUnavailable as exc:
        logger.warning("Re-validation at %s could not be done: %s", connector.slug, exc)
        _back_off(request, state, now=now)
        return None
    if new_token != token:
        # The IdP rotated it (RFC 9700 §4.14): the old one is spent.
        SSOSession.objects.filter(pk=row.pk).update(
            refresh_token_encrypted=encrypt_secret(new_token)
        )
    mark_validated(request, connector, now=now)
    return None


def _silent_round_trip(
    request: HttpRequest, state: dict[str, Any], connector: Connector, *, now: float
) -> HttpResponse | None:
    user = request.user
    email = getattr(user, user.get_email_field_name(), "") if user.is_authenticated else ""
    try:
        url = adapter.start_sign_in(
            request,
            connector,
            login_hint=email if isinstance(email, str) else "",
            # Only a path of this site: //evil.example/ must not come back as a redirect.
            next_url=safe_next(request.get_full_path()),
            revalidate=True,
        )
    except SignInError as exc:
        logger.warning("Re-validation at %s could not start: %s", connector.slug, exc)
        _back_off(request, state, now=now)
        return None
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    return response


def complete(request: HttpRequest, verified: VerifiedSignIn) -> HttpResponse:
    """The IdP's answer to a silent round trip: the same person, so the session goes on."""
    connector = verified.person.connector
    row = SSOSession.objects.filter(
        session_key=request.session.session_key, connector=connector
    ).first()
    if row is None or row.subject != verified.idp_session.subject:
        subject = row.subject if row else ""
        return _end(
            request,
            reason=REVOKED,
            connector=connector,
            subject=subject,
            next_url=verified.next_url,
        )
    mark_validated(request, connector, now=time.time())
    return _go_on(verified.next_url)


def failed(request: HttpRequest, connector: Connector, exc: SignInError) -> HttpResponse:
    """A silent round trip came back with an error: the IdP said no, or could not say."""
    state = request.session.get(VALIDATION_SESSION_KEY)
    if exc.code in OUTAGE_CODES and isinstance(state, dict):
        _back_off(request, state, now=time.time())
        return _go_on(exc.next_url)
    row = SSOSession.objects.filter(session_key=request.session.session_key).first()
    subject = row.subject if row else ""
    return _end(
        request, reason=REVOKED, connector=connector, subject=subject, next_url=exc.next_url
    )


def mark_validated(request: HttpRequest, connector: Connector, *, now: float) -> None:
    state = request.session.get(VALIDATION_SESSION_KEY) or {}
    signed_in_at = float(state.get("signed_in_at") or now)
    request.session[VALIDATION_SESSION_KEY] = validation_state(
        connector, signed_in_at=signed_in_at, at=now
    )


def _back_off(request: HttpRequest, state: dict[str, Any], *, now: float) -> None:
    """Keep the session through an IdP outage; try again after a growing pause."""
    failures = int(state.get("failures") or 0) + 1
    window = int(state.get("revalidate_after") or 60)
    pause = min(MAX_BACK_OFF, max(5, window // 10) * 2 ** min(failures - 1, 6))
    request.session[VALIDATION_SESSION_KEY] = {
        **state,
        "failures": failures,
        "retry_at": now + pause,
    }


def _refresh_token(row: SSOSession | None) -> str:
    if row is None or not row.refresh_token_encrypted:
        return ""
    try:
        return decrypt_secret(row.refresh_token_encrypted)
    except SecretDecryptionError:
        logger.warning("The refresh token of an SSO session cannot be decrypted (keys rotated?).")
        return ""


def _connector_of(request: HttpRequest) -> Connector | None:
    slug = request.session.get(CONNECTOR_SESSION_KEY)
    return connector_by_slug(slug) if isinstance(slug, str) else None


def _end(
    request: HttpRequest,
    *,
    reason: str,
    connector: Connector | None = None,
    subject: str = "",
    next_url: str | None = None,
) -> HttpResponse:
    """End this session (and, when the IdP said no, the person's others at the connector).

    ``next_url`` is given for the answer of a silent round trip, a navigation
    back from the IdP: the person goes to the sign-in page with that ``next``.
    """
    if reason == REVOKED and connector is not None and subject:
        end_sessions_for_subject(connector, subject, reason=REVOKED, request=request)
    else:
        sso_signed_out.send(
            sender=Connector,
            request=request,
            user=request.user if request.user.is_authenticated else None,
            connector=connector or _connector_of(request),
            session_key=request.session.session_key,
            reason=reason,
        )
    logout(request)
    return _ended_response(request, reason, next_url=next_url)


def _ended_response(
    request: HttpRequest, reason: str, *, next_url: str | None = None
) -> HttpResponse:
    """Where a person whose session ended goes: never a lost request, never a loop."""
    navigation = next_url is not None or is_navigation(request)
    if next_url is None:
        next_url = request.get_full_path() if request.method == "GET" else request.path
    query = {"next": next_url, "ended": reason} if next_url else {"ended": reason}
    sign_in = f"{reverse('entra_sso:login')}?{urlencode(query)}"
    if navigation:
        response: HttpResponse = HttpResponseRedirect(sign_in)
    elif request.method == "POST" and not _is_script(request):
        # A form posted to a session that ended: the sign-in page, saying why, with next.
        response = TemplateResponse(
            request,
            "django_entra_sso/login.html",
            {"next": safe_next(next_url), "ended": ENDED_MESSAGES[reason]},
            status=401,
        ).render()
    else:
        response = JsonResponse(
            {"error": "session_ended", "reason": reason, "sign_in_url": sign_in}, status=401
        )
    response["Cache-Control"] = "no-store"
    return response


def _go_on(next_url: str) -> HttpResponse:
    target = safe_next(next_url) or resolve_url(app_settings.LOGIN_REDIRECT_URL)
    response = HttpResponseRedirect(target)
    response["Cache-Control"] = "no-store"
    return response


def _is_script(request: HttpRequest) -> bool:
    """A fetch/XHR rather than a page: it cannot follow a redirect to the IdP."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode:
        return mode != "navigate"
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def is_navigation(request: HttpRequest) -> bool:
    """A top-level GET the browser navigates to: the only request sent on to the IdP."""
    if request.method != "GET" or _is_script(request):
        return False
    if request.headers.get("Sec-Fetch-Mode") == "navigate":
        return request.headers.get("Sec-Fetch-Dest", "document") == "document"
    return "text/html" in request.headers.get("Accept", "")
