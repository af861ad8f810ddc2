"""Connectors (one per customer company), their email domains, and who signed in.

No network I/O here: fetching provider metadata lives in ``oidc/metadata.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import providers
from .crypto import decrypt_secret, encrypt_secret
from .validation import normalize_domain, normalize_issuer, validate_issuer

ALWAYS_SENT_SCOPES = ("openid", "profile", "email")


class Connector(models.Model):
    class Provider(models.TextChoices):
        ENTRA_ID = providers.ENTRA_ID, _("Microsoft Entra ID")
        LOGTO = providers.LOGTO, _("Logto")
        OKTA = providers.OKTA, _("Okta")
        GOOGLE_WORKSPACE = providers.GOOGLE_WORKSPACE, _("Google Workspace")
        OIDC = providers.OIDC, _("OpenID Connect (other)")

    class ResponseMode(models.TextChoices):
        FORM_POST = "form_post", _("form_post (recommended for Entra ID)")
        QUERY = "query", _("query")

    slug = models.SlugField(
        _("slug"),
        max_length=64,
        unique=True,
        validators=[validate_slug],
        help_text=_("Short URL-safe name; it appears in this connector's redirect URI."),
    )
    name = models.CharField(_("display name"), max_length=200)
    provider = models.CharField(
        _("provider type"), max_length=32, choices=Provider.choices, default=Provider.ENTRA_ID
    )
    issuer = models.CharField(
        _("issuer"),
        max_length=500,
        help_text=_(
            "The issuer URL without /.well-known/openid-configuration, e.g. "
            "https://login.microsoftonline.com/TENANT-ID/v2.0."
        ),
    )
    client_id = models.CharField(_("client ID"), max_length=255)
    client_secret_encrypted = models.TextField(_("client secret (encrypted)"), blank=True)
    client_secret_changed_at = models.DateTimeField(
        _("client secret last changed"), null=True, blank=True, editable=False
    )
    extra_scopes = models.CharField(
        _("extra scopes"),
        max_length=500,
        blank=True,
        help_text=_("Space-separated. “openid profile email” are always sent."),
    )
    response_mode = models.CharField(
        _("response mode"),
        max_length=16,
        choices=ResponseMode.choices,
        blank=True,
        help_text=_("Leave blank for the provider's default: form_post for Entra ID, else query."),
    )
    prompt = models.CharField(
        _("prompt"),
        max_length=64,
        blank=True,
        help_text=_("Optional OIDC prompt value, e.g. select_account or login."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    allowed_tenants = models.JSONField(
        _("allowed Entra tenants"),
        default=list,
        blank=True,
        help_text=_(
            "For multi-tenant issuers (common, organizations): the tenant IDs allowed "
            "to sign in. Leave empty only together with “allow any tenant”."
        ),
    )
    allow_any_tenant = models.BooleanField(
        _("allow any tenant"),
        default=False,
        help_text=_(
            "For multi-tenant issuers with an empty allow-list: let people of every Entra "
            "tenant sign in. Any tenant's administrator can then create an account with any "
            "email address and any roles, so this cannot be combined with email domains or a "
            "group mapping."
        ),
    )
    link_existing_by_email = models.BooleanField(
        _("link existing accounts by verified email"),
        default=False,
        help_text=_(
            "Attach an existing user whose email matches, only when the email is in "
            "this connector's domains and the IdP says it is verified."
        ),
    )
    create_users = models.BooleanField(_("create users on first sign-in"), default=True)
    revalidate_after = models.PositiveIntegerField(
        _("re-validate after (seconds)"),
        default=0,
        help_text=_(
            "Ask the identity provider again, at most this long after the last check, whether "
            "the person may still sign in (a disabled or revoked account loses access then). "
            "0: never. Needs SessionRevalidationMiddleware."
        ),
    )
    max_session_age = models.PositiveIntegerField(
        _("maximum session age (seconds)"),
        default=0,
        help_text=_(
            "End a session this long after its sign-in, whatever the identity provider says. "
            "0: only Django's own session expiry."
        ),
    )
    use_userinfo = models.BooleanField(
        _("call the userinfo endpoint"),
        default=False,
        help_text=_(
            "Claims normally come from the ID token; this adds a network call per sign-in."
        ),
    )
    group_mapping = models.JSONField(
        _("group mapping"),
        default=dict,
        blank=True,
        help_text=_(
            "Maps values of the groups/roles claim to Django group names, e.g. "
            '{"readers-guid": ["Readers"]}. Mapped groups are kept in sync at each sign-in.'
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SSO connector")
        verbose_name_plural = _("SSO connectors")
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    # -- the client secret, encrypted at rest -------------------------------
    @property
    def client_secret(self) -> str:
        return decrypt_secret(self.client_secret_encrypted)

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = encrypt_secret(value)
        self.client_secret_changed_at = timezone.now()

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    # -- derived settings -----------------------------------------------------
    @property
    def effective_response_mode(self) -> str:
        return self.response_mode or providers.default_response_mode(self.provider)

    @property
    def scopes(self) -> list[str]:
        scopes = list(ALWAYS_SENT_SCOPES)
        wanted = self.extra_scopes.split()
        if self.revalidate_after:
            # Re-validation redeems a refresh token: ask for one.
            wanted += providers.refresh_token_scopes(self.provider)
        for scope in wanted:
            if scope not in scopes:
                scopes.append(scope)
        return scopes

    @property
    def is_multi_tenant(self) -> bool:
        return providers.is_multi_tenant(self.provider, self.issuer)

    @property
    def allowed_tenant_ids(self) -> set[str]:
        return {str(t).strip().lower() for t in (self.allowed_tenants or []) if str(t).strip()}

    def open_tenancy_problem(self, *, has_domains: bool | None = None) -> str | None:
        """Why this connector's tenancy is unsafe, or ``None``.

        A multi-tenant Entra connector with no tenant allow-list signs in people of
        every tenant, and any tenant's administrator can mint users with any email
        and any roles: such a connector may not own email domains (it would speak
        for ``ceo@contoso.com``) or map roles to groups. ``allow_any_tenant`` is
        the site owner's explicit choice of an open connector; it still may not
        own domains or map groups. ``has_domains`` is passed by forms whose domains
        are not saved yet; by default the saved ones count.
        """
        if not self.is_multi_tenant or self.allowed_tenant_ids:
            return None
        if has_domains is None:
            has_domains = self.pk is not None and self.domains.exists()
        if has_domains:
            return str(
                _(
                    "A multi-tenant issuer without a tenant allow-list cannot own email domains: "
                    "any tenant could sign in as anyone of those domains. List the allowed "
                    "tenant IDs."
                )
            )
        if self.group_mapping:
            return str(
                _(
                    "A multi-tenant issuer without a tenant allow-list cannot map groups or "
                    "roles: any tenant's administrator assigns them. List the allowed tenant IDs."
                )
            )
        if not self.allow_any_tenant:
            return str(
                _(
                    "A multi-tenant issuer needs a tenant allow-list, or “allow any tenant” "
                    "ticked to let every Entra tenant sign in."
                )
            )
        return None

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        self.issuer = normalize_issuer(self.issuer)
        try:
            validate_issuer(self.issuer)
        except ValidationError as exc:
            errors["issuer"] = exc
        self.client_id = (self.client_id or "").strip()
        if not self.client_id:
            errors["client_id"] = _("Enter the client (application) ID from the IdP.")
        tenants = self.allowed_tenants or []
        if not isinstance(tenants, list) or not all(
            providers.is_guid(str(t).strip()) for t in tenants
        ):
            errors["allowed_tenants"] = _(
                'Enter a list of tenant IDs (GUIDs), e.g. ["9188040d-6c67-4c5b-b112-36a304b66dad"].'
            )
        if not isinstance(self.group_mapping, dict):
            errors["group_mapping"] = _("Enter a JSON object mapping claim values to group names.")
        if "allowed_tenants" not in errors and "issuer" not in errors:
            problem = self.open_tenancy_problem()
            if problem:
                errors["allowed_tenants"] = problem
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.issuer = normalize_issuer(self.issuer)
        super().save(*args, **kwargs)


class EmailDomain(models.Model):
    domain = models.CharField(
        _("email domain"),
        max_length=253,
        unique=True,
        error_messages={"unique": _("This domain already belongs to a connector.")},
        help_text=_("People whose email ends in this domain are sent to this connector."),
    )
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="domains", verbose_name=_("connector")
    )
    sso_only = models.BooleanField(
        _("SSO only"),
        default=False,
        help_text=_("People of this domain may not sign in with a password."),
    )

    class Meta:
        verbose_name = _("email domain")
        verbose_name_plural = _("email domains")
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain

    def clean(self) -> None:
        try:
            self.domain = normalize_domain(self.domain)
        except ValidationError as exc:
            raise ValidationError({"domain": exc}) from exc

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = normalize_domain(self.domain)
        super().save(*args, **kwargs)


class Identity(models.Model):
    """A person as one IdP knows them, linked to one Django user."""

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="identities", verbose_name=_("connector")
    )
    issuer = models.CharField(_("issuer"), max_length=500)
    subject = models.CharField(
        _("subject"), max_length=255, help_text=_("sub, or for Entra ID the object ID (oid).")
    )
    tenant_id = models.CharField(_("Entra tenant ID"), max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sso_identities",
        verbose_name=_("user"),
    )
    first_seen = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), auto_now=True)

    class Meta:
        verbose_name = _("SSO identity")
        verbose_name_plural = _("SSO identities")
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "subject"], name="entra_sso_identity_issuer_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class SSOSession(models.Model):
    """Which Django session a sign-in created, so the IdP can end it later.

    Front-channel logout names a ``sid``, back-channel a ``sid`` or ``sub``; both
    arrive without the browser's cookies, so this index is the only way from
    what the IdP says to the session to end.
    """

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("connector")
    )
    sid = models.CharField(_("IdP session ID (sid)"), max_length=255, blank=True)
    subject = models.CharField(_("subject (sub)"), max_length=255)
    session_key = models.CharField(_("Django session key"), max_length=64)
    #: The IdP's refresh token, encrypted like client secrets; re-validation redeems it.
    refresh_token_encrypted = models.TextField(_("refresh token (encrypted)"), blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sso_sessions",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("SSO session")
        verbose_name_plural = _("SSO sessions")
        indexes = [
            models.Index(fields=["connector", "sid"], name="entra_sso_session_sid"),
            models.Index(fields=["connector", "subject"], name="entra_sso_session_sub"),
            models.Index(fields=["session_key"], name="entra_sso_session_key"),
            models.Index(fields=["created_at"], name="entra_sso_session_created"),
        ]

    def __str__(self) -> str:
        return f"{self.user} via {self.connector.slug}"


class SignInEvent(models.Model):
    """One sign-in attempt or sign-out, for support ("why can't Alice sign in?").

    Written by ``signin_log`` only. Never a token, code, secret, ``state`` or
    query string: the outcome, its page's code, a reason for admins, who (when
    known) and a coarse client network.
    """

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", _("sign-in")
        SIGN_OUT = "sign_out", _("sign-out")

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("success")
        REFUSED = "refused", _("refused")
        ERROR = "error", _("error")
        # Sign-outs: how the session ended (``sso_signed_out``'s reason).
        LOCAL = "local", _("signed out here")
        FRONTCHANNEL = "frontchannel", _("front-channel logout")
        BACKCHANNEL = "backchannel", _("back-channel logout")
        DEACTIVATED = "deactivated", _("user deactivated")
        REVOKED = "revoked", _("refused at re-validation")
        EXPIRED = "expired", _("past its maximum age")
        ADMIN = "admin", _("signed out everywhere")

    # No index of its own: the (connector, time) index below starts with it.
    connector = models.ForeignKey(
        Connector,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,
        related_name="sign_in_events",
        verbose_name=_("connector"),
    )
    #: Kept beside the foreign key so rows still say which connector once it is deleted.
    connector_slug = models.CharField(_("connector slug"), max_length=64, blank=True)
    time = models.DateTimeField(_("time"), default=timezone.now)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    code = models.CharField(
        _("error code"),
        max_length=64,
        blank=True,
        help_text=_("The reference shown to the person on the error page, e.g. wrong_domain."),
    )
    detail = models.CharField(
        _("technical reason"),
        max_length=1000,
        blank=True,
        help_text=_("What the server log says about the refusal, for administrators."),
    )
    email = models.CharField(_("email"), max_length=320, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sso_sign_in_events",
        verbose_name=_("user"),
    )
    client_network = models.CharField(
        _("client network"),
        max_length=64,
        blank=True,
        help_text=_("The client's address cut to its network: IPv4 /24, IPv6 /48."),
    )

    class Meta:
        verbose_name = _("sign-in event")
        verbose_name_plural = _("sign-in log")
        ordering = ("-time", "-pk")
        indexes = [
            models.Index(fields=["time"], name="entra_sso_signin_time"),
            models.Index(fields=["connector", "time"], name="entra_sso_signin_conn_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_outcome_display()} ({self.connector_slug})"


# -- SCIM provisioning (``scim/``) ---------------------------------------------------------


class SCIMToken(models.Model):
    """A connector's SCIM bearer token, stored as its SHA-256: shown once, never again.

    One per connector: a new token replaces the old, which stops working at once.
    """

    connector = models.OneToOneField(
        Connector, on_delete=models.CASCADE, related_name="scim_token", verbose_name=_("connector")
    )
    token_hash = models.CharField(_("token hash (SHA-256)"), max_length=64)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("SCIM token")
        verbose_name_plural = _("SCIM tokens")

    def __str__(self) -> str:
        return f"SCIM token of {self.connector.slug}"


class SCIMUser(models.Model):
    """A Django user as one connector's SCIM client provisions them.

    ``scim_id`` is the resource's SCIM ``id``; ``attributes`` keeps what the IdP
    sent (names, emails, extensions) so that it reads back what it wrote.
    ``external_id`` is the IdP's own identifier of the person: Entra ID's object
    ID (its ``oid`` claim), Okta's user ID (its ``sub``); a later OIDC sign-in
    through the same connector lands in this user (``accounts.user_for``).
    """

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="scim_users", verbose_name=_("connector")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="scim_links",
        verbose_name=_("user"),
    )
    scim_id = models.UUIDField(_("SCIM id"), unique=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(_("external ID"), max_length=255, blank=True)
    user_name = models.CharField(_("user name"), max_length=255)
    #: The work (or primary) email as the IdP sent it, for filters.
    email = models.CharField(_("email"), max_length=254, blank=True)
    attributes = models.JSONField(_("SCIM attributes"), default=dict, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    modified_at = models.DateTimeField(_("modified"), auto_now=True)

    class Meta:
        verbose_name = _("SCIM user")
        verbose_name_plural = _("SCIM users")
        constraints = [
            # userName is case-insensitive (RFC 7643, 4.1.1).
            models.UniqueConstraint(
                models.F("connector"), Lower("user_name"), name="entra_sso_scimuser_username"
            ),
            models.UniqueConstraint(
                fields=["connector", "external_id"],
                condition=~models.Q(external_id=""),
                name="entra_sso_scimuser_external_id",
            ),
            models.UniqueConstraint(fields=["connector", "user"], name="entra_sso_scimuser_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_name} @ {self.connector.slug}"


class SCIMGroup(models.Model):
    """A group one connector's SCIM client provisions.

    Its members get the Django groups the connector's ``group_mapping`` maps its
    ``displayName`` or ``externalId`` to, except names another connector's mapping
    also controls (``scim.groups``).
    """

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="scim_groups", verbose_name=_("connector")
    )
    scim_id = models.UUIDField(_("SCIM id"), unique=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(_("external ID"), max_length=255, blank=True)
    display_name = models.CharField(_("display name"), max_length=255)
    members = models.ManyToManyField(
        SCIMUser, related_name="groups", blank=True, verbose_name=_("members")
    )
    version = models.PositiveIntegerField(_("version"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    modified_at = models.DateTimeField(_("modified"), auto_now=True)

    class Meta:
        verbose_name = _("SCIM group")
        verbose_name_plural = _("SCIM groups")
        constraints = [
            models.UniqueConstraint(
                models.F("connector"), Lower("display_name"), name="entra_sso_scimgroup_name"
            ),
            models.UniqueConstraint(
                fields=["connector", "external_id"],
                condition=~models.Q(external_id=""),
                name="entra_sso_scimgroup_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} @ {self.connector.slug}"
