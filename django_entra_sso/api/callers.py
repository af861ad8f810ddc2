"""Who is calling with an access token: a Django user, or an application.

A delegated token (a person signed in to an app that calls the API) is the same
Django user a browser sign-in of that person reaches: the accounts layer keys both
by the identity (Entra: tenant + object ID; elsewhere issuer + ``sub``). Known
people cost one indexed query and no write. Someone unknown is refused, unless the
connector creates users: then the accounts rules run once, as at a first sign-in.

An application token (client credentials) has no user: it is an
``ApplicationPrincipal`` with its roles, never a Django user, so no user permission,
staff flag or session ever applies to it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .. import accounts, providers
from ..cache import cache_key, tolerant_delete, tolerant_get_many, tolerant_set
from ..errors import SignInError
from ..oidc.adapter import person_from_claims
from ..validation import domain_of_email
from .tokens import AccessToken, AccessTokenError


class ApplicationPrincipal:
    """An application calling for itself. Authenticated, but no user and no permissions."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: AccessToken) -> None:
        self.token = token
        self.client_id = token.client_id
        self.roles = token.roles
        self.connector = token.connector

    def get_username(self) -> str:
        return f"app:{self.client_id}"

    def __str__(self) -> str:
        return f"application {self.client_id} ({self.connector.slug})"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False


def _identity_claims(token: AccessToken) -> dict[str, Any]:
    claims = dict(token.claims)
    tid = str(claims.get("tid", ""))
    provider = token.connector.provider
    if provider == providers.ENTRA_ID and claims.get("iss") == (f"https://sts.windows.net/{tid}/"):
        # v1 tokens: the same person as the v2.0 issuer's sign-ins.
        claims["iss"] = providers.entra_issuer_for_tenant(tid)
    if provider == providers.OKTA:
        # Okta's access tokens (and introspection answers) say the person's *login* in
        # ``sub`` and their user ID in ``uid``; its ID tokens' ``sub`` is the user ID.
        # A login can be changed and handed to someone else: never an identity.
        uid = claims.get("uid")
        if not isinstance(uid, str) or not uid:
            raise AccessTokenError("invalid_token", "an Okta token of a person without uid")
        claims["sub"] = uid
    return claims


#: Seconds a person's user pk is remembered between API calls (deactivation is read fresh).
KNOWN_USER_TTL = 60
#: A forgotten identity's mark outlives any pk a call that read it just before could still
#: write (see ``_known_user``) by this many seconds.
GONE_MARGIN = 60


def identity_key(connector_pk: Any, issuer: str, subject: str) -> str:
    return cache_key("api-identity", str(connector_pk), issuer, subject)


def _gone_key(connector_pk: Any, issuer: str, subject: str) -> str:
    return cache_key("api-identity-gone", str(connector_pk), issuer, subject)


#: Changed whenever an email domain is saved or deleted (``receivers``): a domain check
#: remembered under another value is asked again.
_DOMAINS_GENERATION = cache_key("api-domains", "generation")


def forget_domain_checks() -> None:
    """An email domain changed hands or went: every remembered domain check is stale."""
    tolerant_set(_DOMAINS_GENERATION, secrets.token_hex(8), None)


def _known_user(person: Any, hooks: Any) -> Any:
    """``accounts.known_user`` after the admission rules, remembered by pk: then one
    narrow query by primary key.

    The email domain's owner is asked when the pk is not remembered for this domain, or
    a domain changed since (a query); the other rules (``verify_claims``, staff) run at
    every call. ``receivers`` forgets the pk when the identity changes or goes; the user
    row is read every time, so a deactivated user is refused at once.
    """
    parts = (person.connector.pk, person.issuer, person.subject)
    key, gone = identity_key(*parts), _gone_key(*parts)
    domain = domain_of_email(person.email) if person.email else None
    found = tolerant_get_many([key, gone, _DOMAINS_GENERATION])
    # A call that read the identity just before it was unlinked may write its pk after
    # the unlink forgot it; the "gone" mark, read with it, makes such a pk unread.
    remembered = None if gone in found else found.get(key)
    domains = found.get(_DOMAINS_GENERATION)
    if (
        isinstance(remembered, dict)
        and remembered.get("domain") == domain
        and remembered.get("domains") == domains
    ):
        accounts.check_admission(person, hooks, domains=False)
        user = get_user_model()._default_manager.filter(pk=remembered.get("pk")).first()
        if user is not None and getattr(user, "is_active", True):
            return user
    user = accounts.known_user(person)
    if user is not None:
        accounts.check_admission(person, hooks)
        if gone not in found:
            remember = {"pk": user.pk, "domain": domain, "domains": domains}
            tolerant_set(key, remember, KNOWN_USER_TTL)
    return user


def forget_identity(connector_pk: Any, issuer: str, subject: str) -> None:
    """The identity changed, moved or went: forget its remembered user (``receivers``), and
    mark it gone for longer than any pk written by a call already under way lasts."""
    tolerant_set(_gone_key(connector_pk, issuer, subject), 1, KNOWN_USER_TTL + GONE_MARGIN)
    tolerant_delete(identity_key(connector_pk, issuer, subject))


def caller_for(token: AccessToken) -> Any:
    """The user (or application) ``token`` speaks for; ``AccessTokenError`` if nobody."""
    if token.is_application:
        return ApplicationPrincipal(token)
    try:
        person = person_from_claims(token.connector, _identity_claims(token))
    except (KeyError, TypeError) as exc:
        raise AccessTokenError("invalid_token", f"no subject: {exc!r}") from exc
    hooks = accounts.site_account_hooks()
    try:
        user = _known_user(person, hooks)
    except SignInError as exc:
        raise AccessTokenError("invalid_token", f"{token.connector.slug}: {exc}") from exc
    if user is not None:
        if not hooks.user_can_authenticate(user):
            raise AccessTokenError(
                "invalid_token", f"{token.connector.slug}: user {user.pk} refused"
            )
        return user
    if not token.connector.create_users:
        raise AccessTokenError("invalid_token", f"{token.connector.slug}: an unknown person")
    try:
        with transaction.atomic():
            return accounts.user_for(person, hooks=hooks)
    except SignInError as exc:
        raise AccessTokenError("invalid_token", f"{token.connector.slug}: {exc}") from exc
