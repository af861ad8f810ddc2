"""What differs between identity provider types.

Microsoft Entra ID has tenant-templated issuers for multi-tenant apps, a
``domain_hint`` parameter, and keys users by tenant and object ID; its personal
Microsoft accounts come from one tenant of their own, and its B2B guests have
``#EXT#`` user principal names. Everything else here is plain OpenID Connect.
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
#: The tenant of personal Microsoft accounts (Outlook.com, Xbox, …): the ``tid`` of
#: their tokens, and the tenant of the ``consumers`` issuer's discovery document.
MICROSOFT_PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
#: What Entra puts in a B2B guest's user principal name: ``alice_contoso.com#EXT#@…``.
ENTRA_GUEST_MARK = "#ext#"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value.lower()))


def group_key(value: Any) -> str:
    """A group or role value as compared with a connector's settings.

    Group object IDs are GUIDs, which Entra sends lower-cased and its portal and
    Graph compare without case: a mapping key pasted in capitals still matches.
    Everything else (group names, app role values) is compared exactly.
    """
    text = str(value)
    return text.lower() if is_guid(text) else text


def folded_group_mapping(mapping: Any) -> dict[str, set[str]]:
    """A connector's ``group_mapping`` keyed by ``group_key``: claim value → Django group names.

    Two keys that differ only in the case of a GUID are one group; their targets add up.
    """
    folded: dict[str, set[str]] = {}
    if not isinstance(mapping, dict):
        return folded
    for key, target in mapping.items():
        names = {target} if isinstance(target, str) else {str(t) for t in target or []}
        folded.setdefault(group_key(key), set()).update(names)
    return folded


def default_response_mode(provider: str) -> str:
    # Entra recommends form_post: the code never lands in a URL, history or logs.
    return "form_post" if provider == ENTRA_ID else "query"


def entra_tenant_segment(issuer: str) -> str:
    """The first path segment of an Entra issuer: a tenant ID, a domain or ``common``."""
    path = urlsplit(issuer).path.strip("/")
    return path.split("/", 1)[0].lower() if path else ""


#: Entra's SAML entity ID is ``https://sts.windows.net/<tenant ID>/``.
ENTRA_SAML_ENTITY_HOST = "sts.windows.net"


def entra_issuer_for_tenant(tenant_id: str) -> str:
    """The ``iss`` of the tenant's v2.0 ID tokens: what OIDC sign-ins are keyed by."""
    return f"https://login.microsoftonline.com/{tenant_id.lower()}/v2.0"


def entra_saml_tenant(entity_id: str) -> str:
    """The tenant ID in an Entra SAML entity ID, or ``""`` for another IdP."""
    parts = urlsplit(entity_id)
    segment = entra_tenant_segment(entity_id)
    return segment if parts.hostname == ENTRA_SAML_ENTITY_HOST and is_guid(segment) else ""


def is_multi_tenant(provider: str, issuer: str) -> bool:
    return provider == ENTRA_ID and entra_tenant_segment(issuer) in ENTRA_MULTI_TENANT_SEGMENTS


def issuer_from_discovery_matches(provider: str, configured: str, discovered: str) -> bool:
    """Does the discovery document's ``issuer`` belong to the configured issuer?

    OpenID Connect Discovery §4.3 wants them identical. Entra's multi-tenant
    documents instead say ``https://login.microsoftonline.com/{tenantid}/v2.0``,
    and ``consumers`` names the personal accounts' tenant,
    ``https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0``.
    """
    if discovered == configured:
        return True
    if not is_multi_tenant(provider, configured):
        return False
    if not _same_origin(configured, discovered):
        # The tenants' issuers belong to the server the connector names: a document on
        # another host claiming Microsoft's issuers would let its keys sign tokens of
        # any Microsoft tenant, keyed like that tenant's real sign-ins.
        return False
    if entra_tenant_segment(configured) == "consumers":
        # Not templated: every token of ``consumers`` is of the personal accounts' tenant.
        return entra_tenant_segment(discovered) == MICROSOFT_PERSONAL_TENANT
    return entra_tenant_segment(discovered) == ENTRA_TENANT_PLACEHOLDER


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme.lower(), (a.netloc or "").lower()) == (
        b.scheme.lower(),
        (b.netloc or "").lower(),
    )


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


def is_personal_microsoft_account(provider: str, claims: Mapping[str, Any]) -> bool:
    """Is this a personal Microsoft account (tenant ``MICROSOFT_PERSONAL_TENANT``)?

    Anyone can make one, with any email address they can read mail at: the
    person belongs to no organisation. A personal account invited into a tenant
    as a B2B guest carries that tenant's ``tid`` and is that tenant's guest.
    """
    return provider == ENTRA_ID and str(claims.get("tid", "")).lower() == MICROSOFT_PERSONAL_TENANT


def is_guest_principal_name(value: Any) -> bool:
    """Is ``value`` an Entra B2B guest's UPN (``alice_contoso.com#EXT#@fabrikam.onmicrosoft.com``)?"""
    return isinstance(value, str) and ENTRA_GUEST_MARK in value.lower()


def guest_home_address(upn: str) -> str | None:
    """``alice@contoso.com`` from ``alice_contoso.com#EXT#@fabrikam.onmicrosoft.com``.

    Entra writes the guest's home address with its ``@`` turned into ``_``; a
    domain holds no ``_``, so the last one is the ``@``. Only a label (for a
    readable username): the tenant that minted the UPN does not own that domain.
    """
    home = upn[: upn.lower().find(ENTRA_GUEST_MARK)] if is_guest_principal_name(upn) else ""
    local, sep, domain = home.rpartition("_")
    return f"{local}@{domain}" if sep and local and domain else (home or None)


def access_token_issuer_matches(
    provider: str, discovered_issuer: str, claims: Mapping[str, Any], *, accept_v1: bool
) -> bool:
    """Is an access token's ``iss`` the connector's (Entra templates, and v1 when accepted)?"""
    iss = claims.get("iss")
    if not isinstance(iss, str):
        return False
    expected = expected_token_issuer(provider, discovered_issuer, claims)
    if expected is not None and iss == expected:
        return True
    if provider != ENTRA_ID or not accept_v1 or not is_guid(claims.get("tid")):
        return False
    tid = str(claims["tid"]).lower()
    # v1 access tokens: sts.windows.net, for the token's own tenant, which the connector's
    # issuer must be (or, for multi-tenant connectors, the allow-list checks it).
    if iss != f"https://sts.windows.net/{tid}/":
        return False
    return ENTRA_TENANT_PLACEHOLDER in discovered_issuer or tid in discovered_issuer.lower()


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
