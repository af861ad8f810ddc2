"""The client's own calls to the provider: the token request and (opt-in) userinfo.

The token request authenticates as the provider's discovery document allows
(``client_secret_basic`` unless only ``client_secret_post`` is offered). Both
calls go through ``provider_http`` and raise ``SignInError`` with the page a
person should see; the details go to the log.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from django.views.decorators.debug import sensitive_variables

from ..crypto import SecretDecryptionError
from ..errors import SignInError
from ..models import Connector
from ..provider_http import ProviderHTTPError, get_bearer_json, post_form
from .metadata import ProviderMetadata

logger = logging.getLogger(__name__)

#: Claims that identify and bind the ID token; userinfo may not replace them.
PROTECTED_CLAIMS = frozenset({"iss", "aud", "sub", "tid", "oid", "nonce", "exp", "iat", "azp"})


@sensitive_variables("secret", "data", "headers", "pair")
def _token_request(
    connector: Connector, metadata: ProviderMetadata, data: dict[str, str]
) -> dict[str, Any]:
    """POST ``data`` to the token endpoint, authenticated as the client; raises
    ``SecretDecryptionError`` and ``ProviderHTTPError``."""
    secret = connector.client_secret
    data = dict(data)
    headers: dict[str, str] = {}
    methods = metadata.token_endpoint_auth_methods_supported
    if "client_secret_basic" in methods or "client_secret_post" not in methods:
        # RFC 6749 §2.3.1: form-urlencode id and secret before Base64.
        pair = f"{quote_plus(connector.client_id)}:{quote_plus(secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        data["client_id"] = connector.client_id
        data["client_secret"] = secret
    return post_form(metadata.token_endpoint, data, headers=headers)


@sensitive_variables("code", "code_verifier", "data")
def redeem_code(
    connector: Connector,
    metadata: ProviderMetadata,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Exchange an authorization code at the token endpoint; return the token answer."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    try:
        return _token_request(connector, metadata, data)
    except SecretDecryptionError as exc:
        raise SignInError("misconfigured", str(exc)) from exc
    except ProviderHTTPError as exc:
        error = (exc.body or {}).get("error")
        logger.warning(
            "Token request to connector %s failed: %s (error=%r)", connector.slug, exc, error
        )
        raise SignInError("token_failed", str(exc)) from exc


@sensitive_variables("access_token")
def merge_userinfo(
    metadata: ProviderMetadata, access_token: Any, claims: Mapping[str, Any]
) -> dict[str, Any]:
    """The ID token's claims with userinfo's added; for connectors that ask for it."""
    endpoint = metadata.userinfo_endpoint
    if not endpoint or not isinstance(access_token, str):
        return dict(claims)
    try:
        info = get_bearer_json(endpoint, access_token)
    except ProviderHTTPError as exc:
        raise SignInError("token_failed", f"userinfo: {exc}") from exc
    if info.get("sub") != claims.get("sub"):
        raise SignInError("invalid_token", "userinfo's sub differs from the ID token's.")
    return {**claims, **{k: v for k, v in info.items() if k not in PROTECTED_CLAIMS}}


#: Token-endpoint errors that mean "this grant is over" (RFC 6749 §5.2): the
#: person's access was revoked, expired, or their account disabled.
GRANT_OVER_ERRORS = frozenset({"invalid_grant"})


class GrantRevoked(Exception):
    """The IdP refused the refresh token: the person may no longer be signed in."""


@sensitive_variables("refresh_token", "data")
def redeem_refresh_token(
    connector: Connector, metadata: ProviderMetadata, refresh_token: str
) -> dict[str, Any]:
    """The refresh-token grant (RFC 6749 §6); return the token answer.

    Raises ``GrantRevoked`` when the IdP says the grant is over, and
    ``ProviderHTTPError`` when it could not say (outage, garbage, or a problem
    with this site's own credentials, which is no reason to end anyone's session).
    """
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    try:
        return _token_request(connector, metadata, data)
    except SecretDecryptionError as exc:
        raise ProviderHTTPError(f"client secret: {exc}") from exc
    except ProviderHTTPError as exc:
        error = (exc.body or {}).get("error")
        if exc.status in (400, 401) and error in GRANT_OVER_ERRORS:
            raise GrantRevoked(f"{connector.slug}: the IdP answered {error!r}") from None
        raise
