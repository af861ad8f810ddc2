"""The authorization request and the sign-ins a browser has in flight.

Each started sign-in gets its own ``state``, ``nonce`` and PKCE verifier, kept in
the Django session under its ``state`` so several tabs can sign in at once.
They expire after ``ENTRA_SSO_LOGIN_TIMEOUT`` and at most
``ENTRA_SSO_MAX_PENDING_LOGINS`` are kept, so sign-ins started and never finished
cannot grow a session without bound.

``response_mode=form_post`` answers arrive as a cross-site POST, which carries
no ``SameSite=Lax`` session cookie. The callback stores the posted parameters in
the cache under a one-time handle and redirects the browser to itself with a
GET: a top-level GET navigation does carry Lax cookies, and the code stays out
of the URL. That POST is unauthenticated, so what it may store is bounded: a
``state`` of the shape this module makes, and each field under its cap
(``FORM_POST_MAX_LENGTHS``); anything else is refused before the cache is touched.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.sessions.backends.base import SessionBase

from .. import providers
from ..cache import cache_key, sso_cache
from ..conf import app_settings
from .metadata import ProviderMetadata

PENDING_SESSION_KEY = "entra_sso_pending"
FORM_POST_TTL = 120
FORM_POST_FIELDS = ("code", "state", "error", "error_description", "error_uri", "iss")
#: The longest value kept of each form_post field. Authorization codes are opaque
#: but stay under 2 KB at Entra ID, Okta, Google and node-oidc-provider.
FORM_POST_MAX_LENGTHS = {
    "code": 4096,
    "state": 128,
    "error": 128,
    "error_description": 2048,
    "error_uri": 2048,
    "iss": 512,
}
#: ``secrets.token_urlsafe(32)`` makes 43 characters; accept that alphabet only.
STATE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


@dataclass
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    connector: str
    redirect_uri: str
    next_url: str
    created_at: float
    #: ``"sign_in"``, or ``"revalidate"`` for a silent ``prompt=none`` check of a
    #: signed-in session (``revalidation``).
    purpose: str = "sign_in"

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) - self.created_at > app_settings.LOGIN_TIMEOUT


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _pending(session: SessionBase) -> dict[str, dict[str, Any]]:
    value = session.get(PENDING_SESSION_KEY)
    return value if isinstance(value, dict) else {}


def remember(session: SessionBase, login: PendingLogin) -> None:
    now = time.time()
    pending = {
        state: data
        for state, data in _pending(session).items()
        if isinstance(data, dict)
        and now - float(data.get("created_at", 0)) <= app_settings.LOGIN_TIMEOUT
    }
    pending[login.state] = asdict(login)
    keep = max(app_settings.MAX_PENDING_LOGINS, 1)
    if len(pending) > keep:
        newest = sorted(pending.items(), key=lambda item: item[1].get("created_at", 0))[-keep:]
        pending = dict(newest)
    session[PENDING_SESSION_KEY] = pending


def take(session: SessionBase, state: str) -> PendingLogin | None:
    """Remove and return the pending sign-in for ``state``: each state is used once."""
    pending = _pending(session)
    if not isinstance(state, str) or state not in pending:
        return None
    data = pending.pop(state)
    session[PENDING_SESSION_KEY] = pending
    try:
        login = PendingLogin(**data)
    except TypeError:
        return None
    return None if login.expired() else login


def start(
    session: SessionBase,
    *,
    connector_slug: str,
    authorization_endpoint: str,
    client_id: str,
    redirect_uri: str,
    scopes: list[str],
    response_mode: str,
    next_url: str,
    extra_params: dict[str, str],
    purpose: str = "sign_in",
) -> str:
    """Record a new pending sign-in and return the URL to send the browser to."""
    login = PendingLogin(
        purpose=purpose,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
        connector=connector_slug,
        redirect_uri=redirect_uri,
        next_url=next_url,
        created_at=time.time(),
    )
    remember(session, login)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": login.state,
        "nonce": login.nonce,
        "code_challenge": pkce_challenge(login.code_verifier),
        "code_challenge_method": "S256",
    }
    if response_mode != "query":
        params["response_mode"] = response_mode
    params.update({k: v for k, v in extra_params.items() if v})
    return with_query(authorization_endpoint, params)


def with_query(endpoint: str, params: dict[str, str]) -> str:
    """``endpoint`` with ``params`` added, keeping any query it already has."""
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def end_session_url(
    end_session_endpoint: str,
    *,
    client_id: str,
    post_logout_redirect_uri: str,
    id_token_hint: str | None,
    logout_hint: str | None,
) -> str:
    """RP-initiated logout: where to send the browser to sign out at the IdP."""
    params = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": client_id}
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    if logout_hint:
        # Entra's logout_hint (the login_hint claim) skips its account picker.
        params["logout_hint"] = logout_hint
    # No ``state``: nothing here would check it, and IdPs echo it onto the
    # post-logout address, where it only clutters the address bar.
    return with_query(end_session_endpoint, params)


def form_post_acceptable(data: dict[str, str]) -> bool:
    """Is this what an IdP posts back: a state of our shape, every field within its cap?"""
    if not isinstance(data.get("state"), str) or not STATE_SHAPE.match(data["state"]):
        return False
    return all(
        isinstance(data[name], str) and len(data[name]) <= limit
        for name, limit in FORM_POST_MAX_LENGTHS.items()
        if name in data
    )


def stash_form_post(data: dict[str, str]) -> str | None:
    """Keep a form_post answer for the browser's follow-up GET; return the handle.

    ``None`` (and nothing stored) when the answer is not acceptable.
    """
    if not form_post_acceptable(data):
        return None
    handle = secrets.token_urlsafe(24)
    kept = {name: data[name] for name in FORM_POST_FIELDS if name in data}
    sso_cache().set(cache_key("form_post", handle), kept, FORM_POST_TTL)
    return handle


def claim_form_post(handle: str) -> dict[str, str] | None:
    """The stashed answer for ``handle``, once."""
    if not isinstance(handle, str) or not 10 <= len(handle) <= 64:
        return None
    key = cache_key("form_post", handle)
    cache = sso_cache()
    data = cache.get(key)
    if data is not None:
        cache.delete(key)
    return data if isinstance(data, dict) else None


def response_issuer_acceptable(iss: str, metadata: ProviderMetadata) -> bool:
    """RFC 9207: the authorization response names its issuer (IdP mix-up defence).

    A templated Entra issuer cannot be compared before the token names its
    tenant: the backend compares it with the checked ID token's ``iss``.
    """
    if not iss:
        return not metadata.iss_parameter_supported
    return iss == metadata.issuer or providers.ENTRA_TENANT_PLACEHOLDER in metadata.issuer
