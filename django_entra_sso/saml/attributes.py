"""Who a checked SAML assertion says the person is: identity key, names, email, groups.

Attribute names differ per IdP: Entra ID sends claim URIs, Okta and Google
Workspace whatever the customer's admin typed (``email``, ``firstName`` are the
usual ones). Each field is read from the first name present in the provider
type's list, unless the connector's ``saml_attribute_map`` names one.

The identity key is ``(IdP entity ID, NameID)``, except for Entra ID, whose
tenant and object ID claims give the key an OIDC sign-in of the same tenant
gets (``providers.identity_key``): a company that moves its connector from
SAML to OIDC keeps its Django accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import providers
from ..verified import VerifiedPerson

if TYPE_CHECKING:
    from ..models import Connector

_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_MS_CLAIMS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
ENTRA_TENANT_ID = "http://schemas.microsoft.com/identity/claims/tenantid"
ENTRA_OBJECT_ID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
#: Entra's group overage: too many groups for the token, sent as a Graph link instead.
ENTRA_GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

_COMMON: dict[str, tuple[str, ...]] = {
    "email": (
        f"{_CLAIMS}emailaddress",
        "email",
        "mail",
        "Email",
        "emailAddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    ),
    "given_name": (
        f"{_CLAIMS}givenname",
        "firstName",
        "givenName",
        "given_name",
        "FirstName",
        "urn:oid:2.5.4.42",
    ),
    "family_name": (
        f"{_CLAIMS}surname",
        "lastName",
        "sn",
        "surname",
        "family_name",
        "LastName",
        "urn:oid:2.5.4.4",
    ),
    "groups": (f"{_MS_CLAIMS}groups", f"{_MS_CLAIMS}role", "groups", "memberOf", "Groups", "role"),
    "tenant_id": (ENTRA_TENANT_ID,),
    "object_id": (ENTRA_OBJECT_ID,),
}


def attribute_names(connector: Connector, field: str) -> tuple[str, ...]:
    """The attribute names ``field`` is read from, first match wins."""
    override = (connector.saml_attribute_map or {}).get(field)
    if isinstance(override, str) and override:
        return (override,)
    return _COMMON[field]


def _values(attributes: Mapping[str, Sequence[str]], names: tuple[str, ...]) -> list[str]:
    for name in names:
        values = attributes.get(name)
        if values:
            return [v for v in values if isinstance(v, str)]
    return []


def _first(connector: Connector, attributes: Mapping[str, Sequence[str]], field: str) -> str | None:
    values = _values(attributes, attribute_names(connector, field))
    return values[0].strip() if values and values[0].strip() else None


class IdentityUnknown(Exception):
    """The assertion names nobody this app can key an account on; the message says why."""


def identity_key(
    connector: Connector,
    attributes: Mapping[str, Sequence[str]],
    *,
    entity_id: str,
    name_id: str,
    name_id_format: str,
) -> tuple[str, str, str]:
    """``(issuer, subject, tenant_id)`` of the account this assertion signs in.

    The issuer is this connector's own (``saml_issuer``): an IdP's entity ID is whatever
    its metadata says, and metadata can be pasted or served from anywhere, so two
    connectors' people must never share a key — neither with another SAML connector
    claiming the same entity ID, nor with an OpenID Connect connector (whose issuer the
    IdP proves by serving discovery and keys from it).
    """
    issuer = saml_issuer(connector, entity_id)
    if connector.provider == providers.ENTRA_ID:
        tenant = (_first(connector, attributes, "tenant_id") or "").lower()
        object_id = (_first(connector, attributes, "object_id") or "").lower()
        expected = providers.entra_saml_tenant(entity_id)
        if tenant and object_id and expected:
            # The object ID outlives a renamed UPN (Entra's default NameID); used only
            # when the IdP is that tenant's (https://sts.windows.net/<tenant>/).
            if expected != tenant:
                raise IdentityUnknown(
                    f"The assertion's tenant {tenant!r} is not the IdP's ({expected!r})."
                )
            return issuer, object_id, tenant
    if not name_id:
        raise IdentityUnknown("The assertion has no NameID.")
    if name_id_format == TRANSIENT:
        raise IdentityUnknown(
            "The assertion's NameID is transient (a new one each sign-in): set the IdP to send "
            "a persistent NameID, or (Entra ID) the tenant and object ID claims."
        )
    return issuer, name_id, ""


def saml_issuer(connector: Connector, entity_id: str) -> str:
    """The issuer of a SAML connector's identities: ``saml:<connector id>:<entity ID>``."""
    return f"saml:{connector.pk}:{entity_id}"[:500]


def person_from_assertion(
    connector: Connector,
    attributes: Mapping[str, Sequence[str]],
    *,
    entity_id: str,
    name_id: str,
    name_id_format: str,
) -> VerifiedPerson:
    issuer, subject, tenant = identity_key(
        connector,
        attributes,
        entity_id=entity_id,
        name_id=name_id,
        name_id_format=name_id_format,
    )
    groups: frozenset[str] | None
    if connector.provider == providers.ENTRA_ID and attributes.get(ENTRA_GROUPS_LINK):
        groups = None  # overage: the groups are not in the assertion; leave them as they are
    else:
        groups = frozenset(_values(attributes, attribute_names(connector, "groups")))
    claims: dict[str, object] = {name: list(values) for name, values in attributes.items()}
    claims["name_id"] = name_id
    if len(subject) > 255:
        # Cut to the column, two long NameIDs (DNs, URLs) sharing 255 characters would
        # be one person: refused instead.
        raise IdentityUnknown("The assertion's NameID is longer than 255 characters.")
    return VerifiedPerson(
        connector=connector,
        issuer=issuer,
        subject=subject,
        claims=claims,
        email=_first(connector, attributes, "email"),
        # SAML has no email_verified. The IdP is the customer's own, trusted for its
        # domains only: accounts still links and routes by this connector's domains.
        email_verified=True,
        given_name=_first(connector, attributes, "given_name"),
        family_name=_first(connector, attributes, "family_name"),
        tenant_id=tenant,
        groups=groups,
    )
