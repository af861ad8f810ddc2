"""SAML sign-ins in flight, and the cross-site POST to the assertion consumer service.

An SP-initiated sign-in is kept in the browser's session (``pending``) under a
random ``RelayState`` handle, with the AuthnRequest's ID: the Response must
answer that request of this browser (``InResponseTo``). No URL travels in
``RelayState``; ``next`` stays in the session.

The IdP posts the Response cross-site, which carries no ``SameSite=Lax`` session
cookie. As for OIDC's ``form_post``, the ACS keeps what was posted in the cache
under a one-time handle and sends the browser to itself with a GET, which
carries the cookie. What that unauthenticated POST may store is bounded.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass

from django.contrib.sessions.backends.base import SessionBase

from .. import pending
from ..cache import cache_key, sso_cache
from ..conf import app_settings

POST_TTL = 120
#: SAML bindings §3.4.3 caps RelayState at 80 bytes; IdP-initiated sign-ins from
#: some IdPs carry a URL there, so allow more, but not much more.
MAX_RELAY_STATE = 1024


@dataclass
class PendingSAMLLogin:
    relay_state: str
    request_id: str
    connector: str
    next_url: str
    created_at: float
    protocol: str = "saml"
    #: ``"sign_in"``, or ``"trial"``: a customer's "Try signing in" on a setup page.
    purpose: str = "sign_in"


def remember(
    session: SessionBase,
    *,
    connector: str,
    request_id: str,
    next_url: str,
    purpose: str = "sign_in",
) -> str:
    """Keep a started sign-in; return its ``RelayState``."""
    login = PendingSAMLLogin(
        purpose=purpose,
        relay_state=secrets.token_urlsafe(32),
        request_id=request_id,
        connector=connector,
        next_url=next_url,
        created_at=time.time(),
    )
    pending.remember(session, login.relay_state, asdict(login))
    return login.relay_state


def _as_login(data: dict[str, object] | None) -> PendingSAMLLogin | None:
    if data is None or data.get("protocol") != "saml":
        return None
    try:
        return PendingSAMLLogin(**data)  # type: ignore[arg-type]
    except TypeError:
        return None


def take(session: SessionBase, *, relay_state: str, in_response_to: str) -> PendingSAMLLogin | None:
    """The pending sign-in a Response answers, used up; ``None`` when there is none.

    Found by ``RelayState``, or, for IdPs that drop it, by the request ID the
    Response answers. Either way the request ID must be the one it answers.
    """
    login = _as_login(pending.take(session, relay_state)) if relay_state else None
    if login is None and in_response_to:
        for handle, request_id in pending.peek_ids(session, "request_id").items():
            if request_id == in_response_to:
                login = _as_login(pending.take(session, handle))
                break
    return login


def stash_post(saml_response: str, relay_state: str) -> str | None:
    """Keep a posted Response for the browser's follow-up GET; return the handle.

    ``None`` (and nothing stored) when what was posted is out of bounds.
    """
    if not saml_response or len(saml_response) > app_settings.SAML_MAX_RESPONSE_BYTES:
        return None
    if len(relay_state) > MAX_RELAY_STATE:
        return None
    handle = secrets.token_urlsafe(24)
    sso_cache().set(
        cache_key("saml-post", handle),
        {"SAMLResponse": saml_response, "RelayState": relay_state},
        POST_TTL,
    )
    return handle


def claim_post(handle: str) -> dict[str, str] | None:
    """The stashed Response for ``handle``, once."""
    if not isinstance(handle, str) or not 10 <= len(handle) <= 64:
        return None
    key = cache_key("saml-post", handle)
    cache = sso_cache()
    data = cache.get(key)
    if data is not None:
        cache.delete(key)
    return data if isinstance(data, dict) else None
