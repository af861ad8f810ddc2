"""What a protocol adapter hands to the core: a verified person and their IdP session.

An adapter (``oidc/`` today; SAML, SCIM and API tokens later) turns what an
identity provider sent into these, or refuses with ``SignInError``. ``accounts``
decides from a ``VerifiedPerson`` who the Django user is; ``sessions`` binds the
browser's Django session to an ``IdPSession`` so that the IdP can end it later.
Neither of them speaks a protocol: everything they need is spelled out here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Connector


@dataclass(frozen=True)
class VerifiedPerson:
    """``connector`` vouches that this person, keyed ``(issuer, subject)``, has these claims."""

    connector: Connector
    #: The identity key: never an email. For Entra ID, the tenant's issuer and the object ID.
    issuer: str
    subject: str
    #: The claims as the protocol delivered them, checked: for site hooks and signals.
    claims: Mapping[str, Any] = field(repr=False)
    email: str | None = None
    #: Whether the IdP vouches for ``email`` (``email_verified``, Entra's ``xms_edov``).
    #: Never for an email taken from another claim (a claim mapping, ``preferred_username``).
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None
    tenant_id: str = ""
    #: Group and role values the IdP named; ``None`` when it could not say (Entra's
    #: group overage), which leaves the user's groups as they are.
    groups: frozenset[str] | None = frozenset()
    #: The app-role values the IdP named (Entra's ``roles``). Never in overage: they
    #: stay known when ``groups`` is ``None``, so staff flags that only roles grant can
    #: still be taken away.
    roles: frozenset[str] = frozenset()
    #: The username the connector's claim mapping asks for, as the IdP sent it;
    #: ``accounts`` makes it a valid, unused one. ``None``: a username is derived.
    username: str | None = None
    #: The name the person signs in with at the IdP (OIDC ``preferred_username``; a B2B
    #: guest's home address instead of the ``#EXT#`` UPN): a label for usernames only.
    login_name: str | None = None
    #: A consumer account anyone can make at the IdP (a personal Microsoft account),
    #: managed by no organisation: the connector's domains do not vouch for its email,
    #: and it is never linked or matched to an existing or provisioned user.
    personal_account: bool = False


@dataclass(frozen=True)
class IdPSession:
    """The identity provider's session a sign-in came from, as its logout messages name it."""

    #: The IdP's session ID (OIDC ``sid``); ``""`` when it names none.
    sid: str
    #: How the IdP names the person in logout messages (OIDC ``sub``).
    subject: str
    #: What the adapter needs later to end the IdP session (OIDC: ``id_token_hint``,
    #: ``logout_hint``). Kept in the Django session, so no client secret belongs here.
    sign_out: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: A refresh token, when the IdP issued one: re-validation redeems it. Stored
    #: encrypted on the session's index row, never in the session itself.
    refresh_token: str = field(default="", repr=False)
    #: When the IdP says the session here must end at the latest (SAML's
    #: ``SessionNotOnOrAfter``), seconds since the epoch; ``None`` when it says nothing.
    ends_at: float | None = None


@dataclass(frozen=True)
class VerifiedSignIn:
    """A sign-in the adapter has verified end to end, ready for one short transaction."""

    person: VerifiedPerson
    idp_session: IdPSession
    #: Where to go afterwards: a same-site path, or ``""`` for the default.
    next_url: str = ""
    #: ``"sign_in"``, or ``"revalidate"``: the answer to a silent re-validation of a
    #: session already signed in, which must not sign anyone in.
    purpose: str = "sign_in"
