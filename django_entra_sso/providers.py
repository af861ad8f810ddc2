"""What differs between identity provider types.

Microsoft Entra ID has tenant-templated issuers for multi-tenant apps, a
``domain_hint`` parameter, and keys users by tenant and object ID; everything
else here is plain OpenID Connect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

ENTRA_ID = "entra_id"
LOGTO = "logto"
OKTA = "okta"
GOOGLE_WORKSPACE = "google_workspace"
OIDC = "oidc"

PROVIDER_LABELS = {
    ENTRA_ID: "Microsoft Entra ID",
    LOGTO: "Logto",
    OKTA: "Okta",
    GOOGLE_WORKSPACE: "Google Workspace",
    OIDC: "OpenID Connect (other)",
}

#: Entra's issuer path segments that stand for "any tenant" in the discovery URL.
ENTRA_MULTI_TENANT_SEGMENTS = frozenset({"common", "organizations", "consumers"})
ENTRA_TENANT_PLACEHOLDER = "{tenantid}"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value.lower()))


def default_response_mode(provider: str) -> str:
    # Entra recommends form_post: the code never lands in a URL, history or logs.
    return "form_post" if provider == ENTRA_ID else "query"


def entra_tenant_segment(issuer: str) -> str:
    """The first path segment of an Entra issuer: a tenant ID, a domain or ``common``."""
    path = urlsplit(issuer).path.strip("/")
    return path.split("/", 1)[0].lower() if path else ""


def is_multi_tenant(provider: str, issuer: str) -> bool:
    return provider == ENTRA_ID and entra_tenant_segment(issuer) in ENTRA_MULTI_TENANT_SEGMENTS


def issuer_from_discovery_matches(provider: str, configured: str, discovered: str) -> bool:
    """Does the discovery document's ``issuer`` belong to the configured issuer?

    OpenID Connect Discovery §4.3 wants them identical. Entra's multi-tenant
    documents instead say ``https://login.microsoftonline.com/{tenantid}/v2.0``.
    """
    if discovered == configured:
        return True
    return is_multi_tenant(provider, configured) and ENTRA_TENANT_PLACEHOLDER in discovered


def expected_token_issuer(
    provider: str, discovered_issuer: str, claims: Mapping[str, Any]
) -> str | None:
    """The exact ``iss`` a token must carry, or ``None`` when it cannot be known.

    For Entra's templated issuer the template is filled from the token's own
    ``tid``, which must be a GUID; the signature check already tied ``tid`` to
    Microsoft's keys, and the connector's tenant allow-list limits which tenants.
    """
    if ENTRA_TENANT_PLACEHOLDER not in discovered_issuer:
        return discovered_issuer
    if provider != ENTRA_ID:
        return None
    tid = claims.get("tid")
    if not is_guid(tid):
        return None
    return discovered_issuer.replace(ENTRA_TENANT_PLACEHOLDER, str(tid).lower())


def identity_key(provider: str, claims: Mapping[str, Any]) -> tuple[str, str]:
    """Who the IdP says this is, as ``(issuer, subject)``.

    Entra's ``sub`` is pairwise per application; ``oid`` is the user's object ID,
    stable across the tenant's apps. Its ``iss`` contains the tenant ID, so
    ``(iss, oid)`` is ``(tid, oid)``. Never the email, ``preferred_username`` or
    ``upn``: those are mutable and, at some IdPs, user-controlled.
    """
    if provider == ENTRA_ID and isinstance(claims.get("oid"), str) and claims["oid"]:
        return str(claims["iss"]), str(claims["oid"])
    return str(claims["iss"]), str(claims["sub"])


def email_is_verified(provider: str, claims: Mapping[str, Any]) -> bool:
    """Does the IdP vouch for the ``email`` claim?"""
    if claims.get("email_verified") is True or claims.get("email_verified") == "true":
        return True
    # Entra sends ``xms_edov`` (email domain owner verified) as an optional claim.
    if provider == ENTRA_ID:
        return claims.get("xms_edov") in (True, "true", "1", 1)
    return False


def authorize_extras(provider: str, email_domain: str | None) -> dict[str, str]:
    """Provider-specific authorize parameters."""
    if provider == ENTRA_ID and email_domain:
        return {"domain_hint": email_domain}
    if provider == GOOGLE_WORKSPACE and email_domain:
        return {"hd": email_domain}
    return {}


def refresh_token_scopes(provider: str) -> list[str]:
    """Scopes that make the provider issue a refresh token (for session re-validation).

    Google issues one for ``access_type=offline`` instead (``refresh_token_params``).
    """
    return [] if provider == GOOGLE_WORKSPACE else ["offline_access"]


def refresh_token_params(provider: str) -> dict[str, str]:
    """Authorize parameters a provider needs before it issues a refresh token.

    OpenID Connect Core §11: ``offline_access`` is ignored unless ``prompt=consent``
    is sent (Logto, node-oidc-provider and other plain OIDC providers follow it);
    Google wants ``access_type=offline`` and gives a refresh token only on consent.
    Entra ID and Okta issue one for ``offline_access`` alone.
    """
    if provider in (ENTRA_ID, OKTA):
        return {}
    if provider == GOOGLE_WORKSPACE:
        return {"access_type": "offline", "prompt": "consent"}
    return {"prompt": "consent"}
