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


@sensitive_variables("code", "code_verifier", "secret", "data", "headers", "pair")
def redeem_code(
    connector: Connector,
    metadata: ProviderMetadata,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Exchange an authorization code at the token endpoint; return the token answer."""
    try:
        secret = connector.client_secret
    except SecretDecryptionError as exc:
        raise SignInError("misconfigured", str(exc)) from exc
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers: dict[str, str] = {}
    methods = metadata.token_endpoint_auth_methods_supported
    if "client_secret_basic" in methods or "client_secret_post" not in methods:
        # RFC 6749 §2.3.1: form-urlencode id and secret before Base64.
        pair = f"{quote_plus(connector.client_id)}:{quote_plus(secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        data["client_id"] = connector.client_id
        data["client_secret"] = secret
    try:
        return post_form(metadata.token_endpoint, data, headers=headers)
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
