"""Access tokens for this site's API: which connector issued one, and whether it holds.

A bearer token is a JWT from a customer's IdP. Its ``iss`` names the connector
(``connectors``); the signature is checked with that connector's cached JWKS
(the sign-in's cache and refresh rules: no network call per request in steady
state); the algorithm must be allowed; ``aud`` must be one of the connector's
API audiences; ``exp``/``nbf``/``iat`` hold with the clock leeway; an Entra
multi-tenant connector's tenant allow-list and personal-account rule apply as
at sign-in. An ID token is not an access token: one that carries a ``nonce``,
``at_hash`` or ``c_hash``, or says it is one (header ``typ``; Keycloak's payload ``typ``
``ID``, Cognito's ``token_use`` ``id``), is refused.

A token that is no JWT is opaque: it is asked of the one connector that introspects
(``introspection``, RFC 7662), and must be active, for one of its API audiences, unexpired.

Failures raise ``AccessTokenError`` with RFC 6750's ``error`` and a reason for the
log; the response never says more than the error code.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import providers
from ..conf import app_settings
from ..errors import SignInError
from ..models import Connector
from ..oidc.adapter import check_hosted_domain, personal_account_refused
from ..oidc.metadata import MetadataError, get_metadata
from ..oidc.tokens import TokenError, read_header, verify_signature
from .connectors import connector_for_token
from .introspection import IntrospectionUnavailable, introspect, introspecting_connector

logger = logging.getLogger(__name__)

#: Claims only ID tokens carry (OpenID Connect Core §2, §3.3.2.11).
ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")
#: Payload claims in which some IdPs name the kind of token (Keycloak, Amazon Cognito).
ID_TOKEN_KINDS = ("typ", "token_use")
ACCESS_TOKEN_TYPES = frozenset({"", "jwt", "at+jwt", "application/at+jwt", "application/jwt"})


class AccessTokenError(Exception):
    """RFC 6750 §3.1: ``invalid_token`` (401), ``insufficient_scope`` (403),
    ``temporarily_unavailable`` (503, the IdP's keys could not be had)."""

    def __init__(self, error: str, reason: str):
        super().__init__(reason)
        self.error = error


@dataclass(frozen=True)
class AccessToken:
    """A checked access token: ``request.auth`` in DRF, Ninja and the decorator."""

    connector: Connector
    claims: Mapping[str, Any] = field(repr=False)
    #: Delegated permissions (``scp``; ``scope`` at IdPs that use RFC 9068's name).
    scopes: frozenset[str] = frozenset()
    #: App roles (``roles``): an application's, or the signed-in user's.
    roles: frozenset[str] = frozenset()
    #: Client credentials: no user, an application acting for itself.
    is_application: bool = False

    @property
    def client_id(self) -> str:
        """The calling application (Entra ``azp``/``appid``, RFC 9068 ``client_id``, Okta ``cid``)."""
        for name in ("azp", "appid", "client_id", "cid"):
            value = self.claims.get(name)
            if isinstance(value, str) and value:
                return value
        return ""

    @property
    def tenant_id(self) -> str:
        return str(self.claims.get("tid", ""))


def _values(claims: Mapping[str, Any], *names: str) -> frozenset[str]:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(str(v) for v in value if isinstance(v, (str, int)))
    return frozenset()


#: Where IdPs name the calling client in an access token (``cid``: Okta).
CLIENT_CLAIMS = ("client_id", "azp", "appid", "cid")
#: Keycloak's client-credentials tokens are those of the client's service-account user.
KEYCLOAK_SERVICE_ACCOUNT = "service-account-"


def is_application_token(connector: Connector, claims: Mapping[str, Any]) -> bool:
    """Client credentials (no user)?

    Entra: no ``scp``. Elsewhere: Auth0's ``gty`` ``client-credentials``, no ``sub`` at all,
    or (RFC 9068 §2.2) ``sub`` is the client's own ID (Okta names the client ``cid``), or
    Keycloak's service-account user
    (``preferred_username`` ``service-account-<client>``, whose ``sub`` looks like a
    person's). Anything else is a person, and must be one the connector knows.
    """
    if connector.provider == providers.ENTRA_ID:
        return "scp" not in claims
    if claims.get("gty") == "client-credentials":
        return True  # Auth0 says so (its daemons' sub is "<client ID>@clients")
    clients = {
        value for value in (claims.get(name) for name in CLIENT_CLAIMS) if isinstance(value, str)
    } - {""}
    sub = claims.get("sub")
    if sub is None or sub == "":
        return bool(clients)
    if not isinstance(sub, str):
        return False
    if sub in clients:
        return True
    username = claims.get("preferred_username")
    return isinstance(username, str) and any(
        username.lower() == KEYCLOAK_SERVICE_ACCOUNT + client.lower() for client in clients
    )


def check_access_token(token: str) -> AccessToken:
    """The checked access token, or ``AccessTokenError``."""
    if token.count(".") != 2:
        return _check_opaque(token)
    try:
        header = read_header(token)
    except TokenError as exc:
        raise AccessTokenError("invalid_token", str(exc)) from exc
    typ = str(header.get("typ", "")).lower()
    if typ not in ACCESS_TOKEN_TYPES:
        raise AccessTokenError("invalid_token", f"A token of type {typ!r} is no access token.")
    connector = connector_for_token(token)
    if connector is None:
        raise AccessTokenError("invalid_token", "No connector accepts tokens of this issuer.")
    try:
        metadata = get_metadata(connector)
        claims = verify_signature(token, metadata, leeway=app_settings.CLOCK_LEEWAY)
    except MetadataError as exc:
        raise AccessTokenError("temporarily_unavailable", f"{connector.slug}: {exc}") from exc
    except TokenError as exc:
        raise AccessTokenError("invalid_token", f"{connector.slug}: {exc}") from exc
    _check_claims(connector, metadata.issuer, claims)
    return _access_token(connector, claims)


def _for_api(connector: Connector, audience: Any) -> bool:
    """Is ``aud`` (a string or a list of them) one of the connector's API audiences?"""
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        return False
    return bool(set(audiences) & set(connector.api_audiences or []))


#: RFC 6750 §2.1's ``b64token``: what a bearer token may be made of.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _check_opaque(token: str) -> AccessToken:
    """An opaque token, asked of the one connector that introspects (RFC 7662)."""
    if len(token) > 4096 or not B64TOKEN.fullmatch(token):
        # Not shown to the IdP: a string no IdP could have issued.
        raise AccessTokenError("invalid_token", "not a token")
    connector = introspecting_connector()
    if connector is None:
        raise AccessTokenError("invalid_token", "an opaque token, and no connector introspects")
    try:
        answer = introspect(connector, token)
    except IntrospectionUnavailable as exc:
        raise AccessTokenError("temporarily_unavailable", str(exc)) from exc
    refuse = f"{connector.slug}: "
    if answer.get("active") is not True:
        raise AccessTokenError("invalid_token", refuse + "inactive (introspection)")
    # The identity is keyed by (issuer, subject): the issuer is this connector's, never
    # what the answer says (another connector's issuer would reach its people).
    iss = answer.get("iss")
    if iss is not None and iss != connector.issuer:
        raise AccessTokenError("invalid_token", refuse + f"introspection names issuer {iss!r}")
    token_type = answer.get("token_type")
    if token_type is not None and str(token_type).lower() not in ("bearer", "access_token"):
        raise AccessTokenError("invalid_token", refuse + f"a {str(token_type)[:40]!r} token")
    if not _for_api(connector, answer.get("aud")):
        raise AccessTokenError("invalid_token", refuse + f"audience {answer.get('aud')!r}")
    now, leeway = time.time(), app_settings.CLOCK_LEEWAY
    exp, nbf = answer.get("exp"), answer.get("nbf")
    for name, value in (("exp", exp), ("nbf", nbf)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise AccessTokenError("invalid_token", refuse + f"{name} is not a time")
    if exp is not None and exp < now - leeway:
        raise AccessTokenError("invalid_token", refuse + "expired")
    if nbf is not None and nbf > now + leeway:
        raise AccessTokenError("invalid_token", refuse + "not valid yet")
    return _access_token(connector, {**answer, "iss": connector.issuer})


def _access_token(connector: Connector, claims: dict[str, Any]) -> AccessToken:
    """The checked token: what it lets its bearer do, and whether it is an application's."""
    return AccessToken(
        connector=connector,
        claims=claims,
        scopes=_values(claims, "scp", "scope"),
        roles=_values(claims, "roles"),
        is_application=is_application_token(connector, claims),
    )


def _check_claims(connector: Connector, discovered_issuer: str, claims: Mapping[str, Any]) -> None:
    refuse = f"{connector.slug}: "
    found = [name for name in ID_TOKEN_CLAIMS if name in claims]
    if found:
        raise AccessTokenError(
            "invalid_token", refuse + f"an ID token ({found[0]}), not an access token"
        )
    said = next((str(claims[n]).lower() for n in ID_TOKEN_KINDS if n in claims), "")
    if said in ("id", "id_token"):
        # An ID token renewed without a nonce carries none of the claims above; the IdPs
        # that say what a token is say it here (Keycloak ``typ``, Cognito ``token_use``).
        raise AccessTokenError("invalid_token", refuse + f"an ID token ({said!r})")
    if connector.provider == providers.ENTRA_ID and not any(
        isinstance(claims.get(name), str) and claims.get(name) for name in ("azp", "appid")
    ):
        # Entra's access tokens name the client (v2 azp, v1 appid); its ID tokens never
        # do, with or without a nonce. Without this an ID token for an API that shares
        # the app registration, with no scp, would pass as an application with roles.
        raise AccessTokenError("invalid_token", refuse + "no azp/appid: not an access token")
    if not providers.access_token_issuer_matches(
        connector.provider, discovered_issuer, claims, accept_v1=connector.accept_v1_tokens
    ):
        raise AccessTokenError("invalid_token", refuse + f"issuer {claims.get('iss')!r}")
    tenants = connector.allowed_tenant_ids
    tid = str(claims.get("tid", "")).lower()
    if providers.is_personal_microsoft_account(connector.provider, claims):
        if personal_account_refused(connector, claims):
            raise AccessTokenError("invalid_token", refuse + "a personal Microsoft account")
    elif tenants and tid not in tenants:
        raise AccessTokenError("invalid_token", refuse + f"tenant {tid!r} is not allowed")
    elif connector.is_multi_tenant and not tenants and not connector.allow_any_tenant:
        raise AccessTokenError("invalid_token", refuse + "multi-tenant without an allow-list")
    if not _for_api(connector, claims.get("aud")):
        raise AccessTokenError("invalid_token", refuse + f"audience {claims.get('aud')!r}")
    try:
        # Google Workspace: the account must be of the connector's domains, as at sign-in
        # (a consumer account, or any service account, carries no hd).
        check_hosted_domain(connector, claims)
    except SignInError as exc:
        raise AccessTokenError("invalid_token", refuse + str(exc)) from None
    if "exp" not in claims:
        raise AccessTokenError("invalid_token", refuse + "no exp")
