"""Who the Django user is: every account rule, for every way in.

Protocol adapters hand a ``VerifiedPerson`` here; nothing in this module speaks a
protocol, makes a network call or opens a transaction of its own beyond the
savepoint that settles a race. The rules:

- **Identity keying.** A person is the adapter's ``(issuer, subject)`` (for Entra
  ID: tenant and object ID), stored as an ``Identity``; never the email. An
  identity is its connector's: another connector, even at the same issuer, never
  reaches it (staff move identities with ``sso_connector move-identities``).
- **Domain ownership.** A connector with email domains signs in only emails of
  its own domains; a domain that belongs to another connector is refused.
- **Linking.** An existing account is attached by email only when the connector
  allows it, the email's domain is one of the connector's, the IdP vouches for
  the email, exactly one account has it and it has no SSO identity at all
  (an account that signs in through another connector is linked by an admin,
  never by email: that is how pre-hijacked accounts would absorb a victim).
  An email the adapter took from another claim than the IdP's email claim
  (a claim mapping, ``preferred_username``) is never vouched for, so never links.
- **Emails are stored only when vouched for**: the IdP says the email is verified,
  or its domain is one of the connector's own (the connector speaks for its
  domains). Otherwise a user's email is left as it was, and so is the email of an
  account with a usable password (its password resets go there).
- **Personal (consumer) accounts** (``VerifiedPerson.personal_account``) belong to no
  organisation: the connector's domains never vouch for their email, and they are
  never linked or matched to an existing or provisioned user.
- **Just-in-time users** when the connector creates users; two first sign-ins of
  one person at the same moment make one user. The username is the one the
  connector's claim mapping names (made valid and unused), else derived.
- **Claims refreshed** (names, email) and **mapped groups** kept in step at every
  sign-in; when the IdP could not say which groups (overage), groups stay.
- **Staff and superuser from claims**: a connector with ``staff_values`` (or
  ``superuser_values``) sets ``is_staff`` (``is_superuser``) at every sign-in to
  whether the person's groups and roles hold one of them; a connector without
  them never touches the flag; unknown groups (overage) leave it as it is. A
  connector open to every Entra tenant may not have them.
- **Inactive users** are refused; **SSO-only domains** refuse password sign-ins.
- **One person, one account** with SCIM: a person the connector provisioned
  (``SCIMUser``) who signs in through the same connector is that user. The SCIM
  ``externalId`` is the IdP's identifier of the person, the subject its sign-ins
  carry (Entra ID's object ID, ``oid``; Okta's user ID, ``sub``); otherwise a
  provisioned user is matched by ``userName`` equal to the sign-in's email, only
  when the IdP vouches for the email and the user has no identity yet. SCIM takes
  over an account that signs in through its connector, never the site's own (staff,
  superusers, people of another connector too).
- **Groups by SCIM**: for a person a connector provisions, and once it provisions
  groups (``SCIMGroup``), SCIM keeps their mapped groups; their sign-ins leave them
  as they are. Everyone else's follow the token's claims as before.

A site changes the steps marked as hooks by subclassing ``SSOBackend``, which is
an ``AccountHooks``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import unicodedata
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from . import providers
from .conf import app_settings
from .errors import SignInError
from .lookups import trusted_domain_owner
from .models import EmailDomain, Identity, SCIMGroup, SCIMUser
from .signals import sso_user_created
from .validation import domain_of_email
from .verified import VerifiedPerson

logger = logging.getLogger(__name__)

#: A lookup not made yet (``None`` is an answer: no owner).
UNKNOWN: Any = object()
#: Within one ``user_for``: each email domain's trusted owner (a connector pk, or
#: ``None``) as ``check_domain_ownership`` found it. ``None`` outside ``user_for``.
_domain_owners: ContextVar[dict[str, Any] | None] = ContextVar(
    "django_entra_sso_domain_owners", default=None
)


class AccountHooks:
    """The steps of ``user_for`` a site may change, with their defaults.

    ``SSOBackend`` is one: subclass it and override these with mozilla-django-oidc's
    signatures. While they run, ``self.person`` is the ``VerifiedPerson`` being
    signed in (its connector, identity key and claims).
    """

    person: VerifiedPerson

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """``False`` refuses the sign-in ("refused"); the built-in rules have run already."""
        return True

    def get_username(self, claims: dict[str, Any]) -> str:
        return derived_username(self.person)

    def create_user(self, claims: dict[str, Any]) -> Any:
        user_model = get_user_model()
        user = user_model(**{user_model.USERNAME_FIELD: self.get_username(claims)})
        user.set_unusable_password()
        apply_profile(user, self.person)
        user.save()
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        changed = apply_profile(user, self.person)
        if changed:
            # Only what changed: a full save would write back the ``is_active`` read at
            # the start of the sign-in over a deactivation (SCIM, the admin) meanwhile.
            user.save(update_fields=changed)
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        # As ModelBackend: users without is_active may sign in.
        return bool(getattr(user, "is_active", True))


def user_for(
    person: VerifiedPerson, *, request: HttpRequest | None = None, hooks: AccountHooks | None = None
) -> Any:
    """The Django user ``person`` is: found, linked or created, refreshed. Raises ``SignInError``.

    Run it inside the caller's transaction, so that a refusal after a write (say,
    the session cannot be bound) leaves nothing behind.
    """
    hooks = hooks if hooks is not None else AccountHooks()
    claims = dict(person.claims)
    remembered = _domain_owners.set({})
    try:
        return _user_for(person, request, hooks, claims)
    finally:
        _domain_owners.reset(remembered)


def _user_for(
    person: VerifiedPerson, request: HttpRequest | None, hooks: AccountHooks, claims: dict[str, Any]
) -> Any:
    check_admission(person, hooks)
    found = _identity(person)
    created = False
    if found is not None and found.connector_id != person.connector.pk:
        # An identity is its connector's: never reached, nor taken, through another, even
        # at the same issuer. Entra signs a tenant's people into any app registration,
        # so a connector another customer set up at that tenant's issuer (with their own
        # multi-tenant app) would otherwise take the person over, and with them their
        # SCIM, email and flags. A SAML connector's issuer is whatever its metadata says.
        # Staff move an identity in the admin when a company replaces its connector.
        raise SignInError(
            "wrong_organization",
            f"{person.connector.slug}: the identity belongs to connector {found.connector_id}",
        )
    if found is not None:
        Identity.objects.filter(pk=found.pk).update(last_seen=timezone.now())
        user = _usable(hooks, found.user)
        user = hooks.update_user(user, claims)
    else:
        user = provisioned_user(person)
        if user is None:
            user = linkable_user(person)
        if user is not None:
            _usable(hooks, user)
            link_identity(user, person)
            user = hooks.update_user(user, claims)
        else:
            user, created = _create_or_take_the_winners(hooks, person, claims)
    sync_groups(user, person)
    sync_staff_flags(user, person)
    if created:
        sso_user_created.send(
            sender=type(hooks),
            request=request,
            user=user,
            connector=person.connector,
            claims=claims,
        )
    return user


def check_admission(person: VerifiedPerson, hooks: AccountHooks, *, domains: bool = True) -> None:
    """What every way in checks before it looks at accounts: the email's domain is this
    connector's (``domains``: a caller that checked it for this domain already may skip
    the query), the connector may make staff, and the site's ``verify_claims`` agrees.
    Raises ``SignInError``."""
    hooks.person = person
    if domains:
        check_domain_ownership(person)
    check_staff_rules(person.connector)
    if not hooks.verify_claims(dict(person.claims)):
        raise SignInError("refused", "The claims were refused by verify_claims().")


def _identity(person: VerifiedPerson) -> Identity | None:
    # At most one row ((issuer, subject) is unique): no ORDER BY for .first() to add.
    found = (
        Identity.objects.select_related("user")
        .filter(issuer=person.issuer, subject=person.subject)
        .order_by()[:1]
    )
    return next(iter(found), None)


def known_user(person: VerifiedPerson) -> Any:
    """The active user ``person`` already is, by identity alone; ``None`` otherwise.

    For callers that must not write (an API request per call): no linking, no
    creating, no profile refresh. The person's connector must be the identity's.
    """
    found = _identity(person)
    if found is None or found.connector_id != person.connector.pk:
        return None
    user = found.user
    return user if getattr(user, "is_active", True) else None


def _usable(hooks: AccountHooks, user: Any) -> Any:
    if not hooks.user_can_authenticate(user):
        raise SignInError("inactive", f"User {user.pk} is inactive.")
    return user


def _create_or_take_the_winners(
    hooks: AccountHooks, person: VerifiedPerson, claims: dict[str, Any]
) -> tuple[Any, bool]:
    connector = person.connector
    if not connector.create_users:
        raise SignInError(
            "no_account", f"No account for {person.issuer} {person.subject}; creation is off."
        )
    try:
        with transaction.atomic():
            user = hooks.create_user(claims)
            link_identity(user, person)
            return user, True
    except IntegrityError:
        # A concurrent first sign-in of the same person won the race: theirs is ours.
        found = _identity(person)
        if found is None:
            raise
        return hooks.update_user(_usable(hooks, found.user), claims), False


def check_domain_ownership(person: VerifiedPerson) -> None:
    """A connector with domains signs in only emails of its own domains."""
    domain = domain_of_email(person.email) if person.email else None
    if domain is None:
        return
    connector = person.connector
    # A domain restricts its connector as soon as it is added, but it is only another
    # connector's (and routes or vouches) once verified: an unverified claim by one
    # customer cannot lock another out of their own domain.
    owner = trusted_domain_owner(domain)
    remembered = _domain_owners.get()
    if remembered is not None:
        remembered[domain] = owner
    if owner is not None and owner != connector.pk:
        raise SignInError(
            "wrong_connector",
            f"Email domain {domain} belongs to another connector than {connector.slug}.",
        )
    if owner is None and connector.domains.exists():
        raise SignInError(
            "wrong_domain",
            f"Email domain {domain} is not one of connector {connector.slug}'s domains.",
        )


def linkable_user(person: VerifiedPerson) -> Any:
    """An existing account to attach, when the connector allows and the IdP vouches."""
    connector, email = person.connector, person.email
    if not connector.link_existing_by_email or not email or not person.email_verified:
        return None
    if person.personal_account:
        return None  # anyone can make one, with any address they read mail at
    domain = domain_of_email(email)
    if domain is None or not connector_trusts(connector, domain):
        return None
    user_model = get_user_model()
    email_field = user_model.get_email_field_name()
    candidates = list(
        user_model._default_manager.filter(**{f"{email_field}__iexact": email})
        # An account that already signs in through SSO anywhere is someone's:
        # its email may have been stored unverified, or set by its holder.
        .filter(sso_identities__isnull=True)[:2]
    )
    # Two accounts with one email: linking either would be a guess.
    return candidates[0] if len(candidates) == 1 else None


def provisioned_user(person: VerifiedPerson) -> Any:
    """The user this connector's SCIM client provisioned for ``person``, if any.

    By ``externalId`` = the sign-in's subject; else, for a provisioned user no one
    signs in as yet, by ``userName`` = the email the IdP vouches for, of one of the
    connector's domains. Whatever its ``externalId``: what the IdP pushes as the
    person's ID is not always the subject its sign-ins carry (Okta's SAML NameID is
    the username by default while its SCIM sends the user ID; a plain OIDC connector
    at Entra gets the pairwise ``sub``, SCIM the object ID), and a second account
    would survive the SCIM deactivation of the first. Not for a connector several tenants sign in
    through: a subject or an email means nothing without its tenant, and one
    tenant's SCIM client must not claim another tenant's people, nor a personal
    account (of no organisation) anyone's.
    """
    if person.personal_account or not _one_tenant(person.connector):
        return None
    links = SCIMUser.objects.filter(connector=person.connector).select_related("user")
    link = links.filter(external_id=person.subject).first()
    domain = domain_of_email(person.email) if person.email else None
    if (
        link is None
        and person.email
        and person.email_verified
        and domain is not None
        and connector_trusts(person.connector, domain)
    ):
        link = (
            links.filter(user_name__iexact=person.email)
            .filter(user__sso_identities__isnull=True)
            .first()
        )
    return link.user if link is not None else None


def user_signed_in_through(connector: Any, subject: str) -> Any:
    """The user who signs in through ``connector`` as ``subject`` and has no SCIM link there.

    SCIM's ``POST /Users`` with that ``externalId`` takes this user over instead
    of making a second account for the same person.
    """
    if not subject or not _one_tenant(connector):
        return None
    identity = (
        Identity.objects.filter(connector=connector, subject=subject)
        .exclude(user__scim_links__connector=connector)
        # A personal account is nobody's to provision (see ``provisioned_user``).
        .exclude(tenant_id=providers.MICROSOFT_PERSONAL_TENANT)
        .select_related("user")
        .first()
    )
    return identity.user if identity is not None else None


def belongs_to_the_site(user: Any, connector: Any) -> bool:
    """Is ``user`` more than this connector's person: staff or a superuser the site made
    (not through this connector's own ``staff_values``/``superuser_values``), or someone
    who also signs in through another connector? A customer's SCIM may not take them
    over, change, deactivate or delete them."""
    made_staff = getattr(user, "is_staff", False) and not connector.staff_values
    made_superuser = getattr(user, "is_superuser", False) and not connector.superuser_values
    return (
        bool(made_staff or made_superuser)
        or Identity.objects.filter(user=user).exclude(connector=connector).exists()
    )


def _one_tenant(connector: Any) -> bool:
    """Is everyone who signs in through ``connector`` of one organisation (one issuer)?"""
    return not connector.is_multi_tenant or len(connector.allowed_tenant_ids) == 1


def site_account_hooks() -> AccountHooks:
    """A fresh instance of the site's ``SSOBackend`` (sub)class from ``AUTHENTICATION_BACKENDS``.

    People a connector provisions (SCIM) and API callers go through the same
    ``verify_claims``, ``get_username``, ``create_user``… a site overrides for
    browser sign-ins; without a listed backend, the defaults (check E001). A new
    instance per call, as Django's ``authenticate`` makes: the hooks hold the
    person being handled.
    """
    for path in getattr(settings, "AUTHENTICATION_BACKENDS", ()):
        try:
            backend = import_string(path)
        except ImportError:
            continue
        if isinstance(backend, type) and issubclass(backend, AccountHooks):
            return backend()
    return AccountHooks()


def create_provisioned_user(
    person: VerifiedPerson, *, active: bool, request: HttpRequest | None = None
) -> Any:
    """A new user for a person a connector provisions (SCIM): the sign-in's rules for names,
    the username and which email is stored; no identity until they sign in.

    ``verify_claims`` is not asked: a provisioning push is the customer's decision,
    and a refused push would leave the IdP and the site disagreeing about who exists.
    """
    hooks = site_account_hooks()
    hooks.person = person
    claims = dict(person.claims)
    user = hooks.create_user(claims)
    if getattr(user, "is_active", True) != active:
        user.is_active = active
        user.save()
    sso_user_created.send(
        sender=type(hooks), request=request, user=user, connector=person.connector, claims=claims
    )
    return user


def update_provisioned_user(user: Any, person: VerifiedPerson, *, active: bool | None) -> Any:
    """Names, vouched-for email and ``is_active`` (unless ``None``) from the provisioning push.

    Saved with ``save()``, so deactivating sends ``post_save`` and ``receivers``
    ends the user's SSO sessions.
    """
    changed = apply_profile(user, person)
    if active is not None and hasattr(user, "is_active") and user.is_active != active:
        user.is_active = active
        changed.append("is_active")
    if changed:
        user.save(update_fields=changed)
    return user


def link_identity(user: Any, person: VerifiedPerson) -> Identity:
    return Identity.objects.create(
        connector=person.connector,
        issuer=person.issuer,
        subject=person.subject,
        tenant_id=person.tenant_id[:64],
        user=user,
    )


def derived_username(person: VerifiedPerson) -> str:
    """A readable username that is not taken: ``sso-alice``, else ``sso-alice-k3f9qa``.

    The one the connector's claim mapping names (``person.username``), as it is
    but for characters a username cannot hold (each run becomes ``.``), without
    the prefix. Else made from the vouched-for email's local part, else the given
    and family names, else the local part of the name the person signs in with
    (a B2B guest's home address, not the ``#EXT#`` UPN). When that is taken (in any
    letter case), six
    characters of a hash of the identity key are added, and when even that is
    taken (or nothing readable is known) the prefixed hash, which cannot collide.
    Only a label: the identity stays keyed by issuer and subject (``Identity``),
    so a person renamed at the IdP keeps their account.
    """
    digest = base64.b32encode(
        hashlib.sha256(f"{person.issuer}\n{person.subject}".encode()).digest()
    )
    digest_text = digest.decode().rstrip("=").lower()
    prefix = app_settings.USERNAME_PREFIX
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    max_length = getattr(user_model._meta.get_field(field), "max_length", None) or 150
    mapped = _valid_username(person.username or "")[: max(max_length - 7, 0)]
    if mapped:
        candidates = [mapped, f"{mapped}-{digest_text[:6]}"]
    else:
        readable = _readable_name(person)[: max(max_length - len(prefix) - 7, 0)]
        candidates = (
            [f"{prefix}{readable}", f"{prefix}{readable}-{digest_text[:6]}"] if readable else []
        )
    for candidate in candidates:
        # Case-insensitively, as Django's UserCreationForm checks (4.2+): an IdP's "Admin"
        # beside the site's "admin" reads as the same person in lists and logs. This
        # scans the user table where there is no index on the folded name, but only
        # when an account is made, not at every sign-in.
        lookup = {f"{field}__iexact": candidate}
        if not user_model._default_manager.filter(**lookup).exists():
            return candidate
    return (prefix + digest_text)[:max_length]


def _readable_name(person: VerifiedPerson) -> str:
    """``alice.liddell`` from ``Alice.Liddell@contoso.com`` (or from the names); ``""`` if none."""
    if person.email and email_is_vouched_for(person):
        source = person.email.rpartition("@")[0]
    else:
        source = ".".join(n for n in (person.given_name, person.family_name) if n)
    if not source.strip() and person.login_name:
        local, _at, _domain = person.login_name.rpartition("@")
        source = local or person.login_name
    normal = unicodedata.normalize("NFKC", source.strip()).lower()
    cleaned = re.sub(r"[^\w.+-]+", ".", normal, flags=re.UNICODE).strip(".-+")
    return cleaned[:40]


def _valid_username(value: str) -> str:
    """``value`` as Django's username validator accepts it: letters, digits, ``@.+-_``;
    NFKC-normalised first, as ``AbstractBaseUser.normalize_username`` does (full-width
    ``ADMIN`` is ``ADMIN``)."""
    normal = unicodedata.normalize("NFKC", value.strip())
    return re.sub(r"[^\w.@+-]+", ".", normal, flags=re.UNICODE).strip(".")


def email_is_vouched_for(person: VerifiedPerson) -> bool:
    """May ``person.email`` be stored as the user's email?

    When the IdP says it verified it, or when the email's domain is one of the
    connector's own (domain ownership has checked that no other connector owns
    it), unless the person's account is a personal one, which the connector does
    not speak for. An unverified email from a connector without domains is only
    what the person typed into their IdP profile.
    """
    if not person.email:
        return False
    if person.email_verified or app_settings.STORE_UNVERIFIED_EMAIL:
        return True
    if person.personal_account:
        return False
    domain = domain_of_email(person.email)
    return domain is not None and connector_trusts(person.connector, domain)


def connector_trusts(connector: Any, domain: str) -> bool:
    """Is ``domain`` one of ``connector``'s trusted (verified) email domains?

    Within ``user_for`` the answer comes from what ``check_domain_ownership`` found
    (the domain's trusted owner, or that it has none) when it can: one query fewer for
    each question a sign-in asks about its email (storing it, linking, SCIM matching).
    """
    remembered = _domain_owners.get()
    owner = remembered.get(domain, UNKNOWN) if remembered is not None else UNKNOWN
    if owner is None or owner == connector.pk:
        return owner is not None
    # Not asked yet, or another connector owns it (such a sign-in is refused before
    # anyone asks; with verification off several connectors may list it): ask.
    return bool(connector.domains.trusted().filter(domain=domain).exists())


def apply_profile(user: Any, person: VerifiedPerson) -> list[str]:
    """Copy names and (vouched-for) email from the IdP onto ``user``; the fields it changed.

    The email of an account that can sign in with a password is left alone: Django
    sends its password resets there, and a customer's IdP must not be able to point
    them at an address of its choosing (an account staff linked, a site's own staff).
    """
    keeps_email = bool(getattr(user, "pk", None)) and user.has_usable_password()
    values = {
        "first_name": person.given_name,
        "last_name": person.family_name,
        get_user_model().get_email_field_name(): (
            person.email if email_is_vouched_for(person) and not keeps_email else None
        ),
    }
    changed: list[str] = []
    for field, value in values.items():
        if not isinstance(value, str) or not hasattr(user, field):
            continue
        max_length = getattr(user._meta.get_field(field), "max_length", None)
        value = value[:max_length] if max_length else value
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    return changed


def sync_groups(user: Any, person: VerifiedPerson) -> None:
    """Keep the groups named in the connector's mapping in step with the IdP's values."""
    connector = person.connector
    if person.groups is None:
        logger.warning(
            "Connector %s: the user is in too many groups for the token (group overage); "
            "groups were left unchanged.",
            connector.slug,
        )
        return
    mapping = connector.group_mapping or {}
    if not isinstance(mapping, dict) or not mapping:
        return
    if (
        SCIMUser.objects.filter(connector=connector, user=user).exists()
        and SCIMGroup.objects.filter(connector=connector).exists()
    ):
        return  # SCIM keeps this person's groups at this connector (scim/groups.py).

    folded = providers.folded_group_mapping(mapping)
    held = {providers.group_key(value) for value in person.groups}
    managed = {name for names in folded.values() for name in names}
    wanted = {name for key, names in folded.items() if key in held for name in names}
    current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    if current == wanted:
        return
    user.groups.remove(*Group.objects.filter(name__in=current - wanted))
    user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in sorted(wanted)])


def check_staff_rules(connector: Any) -> None:
    """A connector open to every Entra tenant may not make staff or superusers.

    Every tenant's administrator assigns their own people any role and group, so
    ``staff_values`` there would make anyone staff (``Connector.open_tenancy_problem``
    says the same of group mappings).
    """
    if not (connector.staff_values or connector.superuser_values):
        return
    if connector.is_multi_tenant and not connector.allowed_tenant_ids:
        raise SignInError(
            "misconfigured",
            f"{connector.slug}: staff or superuser values on a connector open to any tenant.",
        )


def sync_staff_flags(user: Any, person: VerifiedPerson) -> None:
    """``is_staff`` / ``is_superuser`` from the connector's ``staff_values`` / ``superuser_values``.

    Each flag is set to whether the person's groups and roles (the values group
    mapping reads) hold one of the connector's values for it, at every sign-in,
    so it is also taken away. A connector without values for a flag never
    touches it. When the IdP could not say which groups (overage), the app roles
    (never in overage) still grant a flag, and take away one whose values are all
    role names; a flag a group object ID could grant is left as it is.
    """
    connector = person.connector
    rules = [
        (flag, {providers.group_key(v) for v in values})
        for flag, values in (
            ("is_staff", connector.staff_values),
            ("is_superuser", connector.superuser_values),
        )
        if isinstance(values, list) and values and hasattr(user, flag)
    ]
    if not rules:
        return
    groups = None if person.groups is None else {providers.group_key(g) for g in person.groups}
    roles = {providers.group_key(r) for r in person.roles}
    changed = []
    for flag, values in rules:
        if groups is not None:
            wanted = not values.isdisjoint(groups)
        elif not values.isdisjoint(roles):
            wanted = True  # an app role (never in overage) grants it
        elif not any(providers.is_guid(v) for v in values):
            # Values that are no group object IDs can only be app roles, and the roles
            # are known: the flag is taken away as at any sign-in.
            wanted = False
        else:
            logger.warning(
                "Connector %s: group overage; %s was left unchanged (a group could grant it).",
                connector.slug,
                flag,
            )
            continue
        if getattr(user, flag) != wanted:
            setattr(user, flag, wanted)
            changed.append(flag)
    if changed:
        user.save(update_fields=changed)


def refuse_password_for_sso_only(credentials: dict[str, Any]) -> None:
    """Stop a password sign-in of an SSO-only domain before any backend checks the password.

    Looks at every credential that looks like an email (``username``, ``email``,
    or whatever a site's backend takes) and at the user the model's manager finds
    by natural key, as ``ModelBackend`` does (a case-insensitive manager finds
    ``ALICE`` too). Raises ``PermissionDenied``, which makes Django try no
    further backend.
    """
    if credentials.get("password") is None:
        return
    emails = [
        value
        for name, value in credentials.items()
        if name != "password" and isinstance(value, str) and "@" in value
    ]
    user = _user_by_natural_key(credentials)
    email_field = get_user_model().get_email_field_name()
    if user is not None and getattr(user, email_field, None):
        emails.append(str(getattr(user, email_field)))
    domains = {d for d in (domain_of_email(e) for e in emails) if d}
    if domains and EmailDomain.objects.filter(domain__in=domains, sso_only=True).exists():
        raise PermissionDenied("This domain signs in with single sign-on only.")


def _user_by_natural_key(credentials: dict[str, Any]) -> Any:
    user_model = get_user_model()
    username = credentials.get("username", credentials.get(user_model.USERNAME_FIELD))
    if not isinstance(username, str) or not username:
        return None
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except (user_model.DoesNotExist, user_model.MultipleObjectsReturned):
        return None
