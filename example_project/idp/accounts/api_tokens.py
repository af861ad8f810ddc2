"""JWT access tokens for the bookstore's API (django-oauth-toolkit's ACCESS_TOKEN_GENERATOR).

django-oauth-toolkit (DOT) issues random access tokens that only it can look up. The
bookstore's API (``/api/books/``) checks JWTs with the IdP's published keys instead, as it
does Entra ID's, so a token whose scopes include one of the API's (``IDP_API_SCOPES``) is a
JWT (RFC 9068), signed like the ID tokens (RS256, ``OIDC_RSA_PRIVATE_KEY``, the ``kid`` of
``/o/.well-known/jwks.json``), header ``typ: at+jwt``, with the claims

    iss        the issuer (IDP_ISSUER)
    aud        the API (IDP_API_AUDIENCE)
    sub        the person's ``sub``, as in the ID token; for the client-credentials grant
               the client's own ID (RFC 9068 2.2: no person, the application itself)
    client_id  the client that asked
    scope      the granted scopes
    roles      client credentials only: the API scopes granted, which for an application
               are its application permissions (Entra ID puts those in ``roles`` too)
    iat, exp, jti

Every other token (the sign-ins' ``openid profile email`` ones) stays DOT's random string,
and so do refresh tokens (``REFRESH_TOKEN_GENERATOR``). DOT stores a JWT like any other
token, so userinfo, introspection and revocation keep working for it.

The demo IdP knows one API: ``aud`` is always ``IDP_API_AUDIENCE`` (an RFC 8707 ``resource``
parameter is not needed, and not looked at).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from jwcrypto import jwk, jwt
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.tokens import random_token_generator


def signing_key() -> jwk.JWK:
    """The OIDC signing key; its thumbprint is the ``kid`` DOT's JWKS publishes."""
    return jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode())


def access_token(request: Any) -> str:
    """The access token for an oauthlib token request: a JWT for the API, else random."""
    scopes = list(request.scopes or [])
    api_scopes = [scope for scope in scopes if scope in settings.IDP_API_SCOPES]
    if not api_scopes:
        return random_token_generator(request)
    client_id = request.client.client_id
    application = request.grant_type == "client_credentials" or request.user is None
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "aud": settings.IDP_API_AUDIENCE,
        "sub": client_id if application else str(request.user.pk),
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + int(request.expires_in),
        "jti": uuid.uuid4().hex,
    }
    if application:
        claims["roles"] = api_scopes
    key = signing_key()
    token = jwt.JWT(
        header={"alg": "RS256", "typ": "at+jwt", "kid": key.thumbprint()}, claims=claims
    )
    token.make_signed_token(key)
    return token.serialize()
