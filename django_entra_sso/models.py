"""Connectors (one per customer company), their email domains, and who signed in.

No network I/O here: fetching provider metadata lives in ``oidc/metadata.py``.
"""

from __future__ import annotations

import secrets
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
from .validation import (
    normalize_domain,
    normalize_issuer,
    validate_issuer,
    validate_metadata_url,
)

ALWAYS_SENT_SCOPES = ("openid", "profile", "email")
#: What a connector's ``claim_mapping`` may fill from a claim of its choosing (``accounts``).
CLAIM_MAPPING_FIELDS = ("username", "email", "first_name", "last_name")
#: What a SAML connector's ``saml_attribute_map`` may rename (``saml.attributes``).
SAML_ATTRIBUTE_FIELDS = ("email", "given_name", "family_name", "groups", "tenant_id", "object_id")


class Connector(models.Model):
    class Provider(models.TextChoices):
        ENTRA_ID = providers.ENTRA_ID, _("Microsoft Entra ID")
        LOGTO = providers.LOGTO, _("Logto")
        OKTA = providers.OKTA, _("Okta")
        GOOGLE_WORKSPACE = providers.GOOGLE_WORKSPACE, _("Google Workspace")
        OIDC = providers.OIDC, _("OpenID Connect (other)")

    class Protocol(models.TextChoices):
        OIDC = "oidc", _("OpenID Connect")
        SAML = "saml", _("SAML 2.0")

    class ClientAuth(models.TextChoices):
        AUTO = "", _("what the provider offers (client secret)")
        BASIC = "client_secret_basic", _("client secret, HTTP Basic (client_secret_basic)")
        POST = "client_secret_post", _("client secret, in the form (client_secret_post)")
        PRIVATE_KEY_JWT = "private_key_jwt", _("certificate (private_key_jwt)")

    class AssertionAlgorithm(models.TextChoices):
        AUTO = "", _("the provider's usual (PS256 for Entra ID, else RS256)")
        PS256 = "PS256", "PS256"
        RS256 = "RS256", "RS256"

    class OverageFailure(models.TextChoices):
        KEEP = "keep", _("keep the groups of the last sign-in")
        REFUSE = "refuse", _("refuse the sign-in")

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
    protocol = models.CharField(
        _("protocol"),
        max_length=8,
        choices=Protocol.choices,
        default=Protocol.OIDC,
        help_text=_("How the identity provider signs people in: OpenID Connect or SAML 2.0."),
    )
    issuer = models.CharField(
        _("issuer"),
        max_length=500,
        blank=True,
        db_index=True,  # API tokens find their connector by issuer (api.connectors)
        help_text=_(
            "The issuer URL without /.well-known/openid-configuration, e.g. "
            "https://login.microsoftonline.com/TENANT-ID/v2.0. For SAML: filled in from the "
            "identity provider's metadata (its entity ID)."
        ),
    )
    client_id = models.CharField(_("client ID"), max_length=255, blank=True)
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
    client_auth = models.CharField(
        _("client authentication"),
        max_length=32,
        choices=ClientAuth.choices,
        blank=True,
        help_text=_(
            "How this site proves itself at the token endpoint. A certificate "
            "(private_key_jwt) is what Microsoft recommends for production; the "
            "connector makes the key pair, you upload its certificate to the IdP."
        ),
    )
    client_assertion_alg = models.CharField(
        _("client assertion algorithm"),
        max_length=8,
        choices=AssertionAlgorithm.choices,
        blank=True,
        help_text=_("For private_key_jwt: the signature algorithm of the client assertion."),
    )
    allow_personal_accounts = models.BooleanField(
        _("allow personal Microsoft accounts"),
        default=False,
        help_text=_(
            "For common and consumers issuers: let personal Microsoft accounts (Outlook.com, "
            "Xbox, …) sign in. Off: only work or school accounts."
        ),
    )
    resolve_group_overage = models.BooleanField(
        _("resolve group overage through Microsoft Graph"),
        default=False,
        help_text=_(
            "When a person is in too many groups for the token, ask Microsoft Graph for them "
            "with the sign-in's access token (add a Graph scope such as User.Read to the extra "
            "scopes)."
        ),
    )
    group_overage_failure = models.CharField(
        _("when Graph cannot say"),
        max_length=8,
        choices=OverageFailure.choices,
        default=OverageFailure.KEEP,
    )
    claim_mapping = models.JSONField(
        _("claim mapping"),
        default=dict,
        blank=True,
        help_text=_(
            "Which claim fills username, email, first_name and last_name, e.g. "
            '{"username": "preferred_username"}. Empty: the defaults.'
        ),
    )
    trust_preferred_username = models.BooleanField(
        _("use preferred_username as the email"),
        default=False,
        help_text=_(
            "For accounts without an email claim: take preferred_username (the UPN at Entra "
            "ID) as their email. Never used to link existing accounts."
        ),
    )
    staff_values = models.JSONField(
        _("staff when the groups or roles claim has"),
        default=list,
        blank=True,
        help_text=_("Claim values (app roles or group IDs) that make a person staff."),
    )
    superuser_values = models.JSONField(
        _("superuser when the groups or roles claim has"),
        default=list,
        blank=True,
        help_text=_("Claim values that make a person a superuser. Refreshed at every sign-in."),
    )
    api_audiences = models.JSONField(
        _("API audiences"),
        default=list,
        blank=True,
        help_text=_(
            "Access tokens for this site's API are accepted from this connector's IdP when "
            "their audience is one of these, e.g. api://<application ID> and the application "
            "ID itself. Empty: no API access through this connector."
        ),
    )
    accept_v1_tokens = models.BooleanField(
        _("accept Entra v1 access tokens"),
        default=False,
        help_text=_(
            "Also accept access tokens issued by https://sts.windows.net/<tenant>/ (APIs "
            "whose app registration has accessTokenAcceptedVersion 1 or null)."
        ),
    )
    introspect_tokens = models.BooleanField(
        _("introspect opaque access tokens"),
        default=False,
        help_text=_(
            "Check access tokens that are not JWTs at the IdP's introspection endpoint (RFC "
            "7662), with this connector's client credentials; answers are cached briefly. "
            "Only one connector may do this."
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
    # -- SAML 2.0 (``saml/``) ----------------------------------------------------
    saml_metadata_url = models.CharField(
        _("SAML metadata URL"),
        max_length=1000,
        blank=True,
        help_text=_(
            "The identity provider's federation metadata URL (Entra ID: “App Federation "
            "Metadata Url”). Fetched, cached and refreshed; leave empty to paste the XML instead."
        ),
    )
    saml_metadata_xml = models.TextField(
        _("SAML metadata XML"),
        blank=True,
        help_text=_("The identity provider's metadata, pasted, when it has no metadata URL."),
    )
    allow_idp_initiated = models.BooleanField(
        _("allow IdP-initiated sign-in"),
        default=False,
        help_text=_(
            "Accept sign-ins the identity provider starts (its app launcher, Entra's “Test "
            "this application”). Off by default: such a response answers no request of ours."
        ),
    )
    saml_attribute_map = models.JSONField(
        _("SAML attribute names"),
        default=dict,
        blank=True,
        help_text=_(
            "Overrides of the attribute names read for email, given_name, family_name and "
            'groups, e.g. {"email": "mail"}. The provider type gives the defaults.'
        ),
    )
    saml_allow_sha1 = models.BooleanField(
        _("accept SHA-1 signatures"),
        default=False,
        help_text=_("Only for old identity providers (ADFS 2.0) that cannot sign with SHA-256."),
    )
    #: The connector's own SAML key pair: decrypts encrypted assertions and signs
    #: requests; the certificate is in the SP metadata. Made on first use.
    sp_private_key_encrypted = models.TextField(
        _("SP private key (encrypted)"), blank=True, editable=False
    )
    sp_certificate = models.TextField(_("SP certificate"), blank=True, editable=False)
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

    @property
    def is_saml(self) -> bool:
        return self.protocol == self.Protocol.SAML

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
        # A SAML connector trusts one IdP entity: one Entra tenant.
        return not self.is_saml and providers.is_multi_tenant(self.provider, self.issuer)

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
        if self.group_mapping or self.staff_values or self.superuser_values:
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
        if self.is_saml:
            self._clean_saml(errors)
        else:
            self._clean_oidc(errors)
        if not isinstance(self.group_mapping, dict):
            errors["group_mapping"] = _("Enter a JSON object mapping claim values to group names.")
        mapping = self.claim_mapping
        if not isinstance(mapping, dict) or not all(
            key in CLAIM_MAPPING_FIELDS and isinstance(value, str) and value
            for key, value in mapping.items()
        ):
            errors["claim_mapping"] = _(
                "Enter a JSON object whose keys are among username, email, first_name and "
                'last_name and whose values are claim names, e.g. {"email": "upn"}.'
            )
        audiences = self.api_audiences
        if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
            errors["api_audiences"] = _('Enter a list of audiences, e.g. ["api://9f2b…", "9f2b…"].')
        for name in ("staff_values", "superuser_values"):
            values = getattr(self, name)
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                errors[name] = _('Enter a list of claim values, e.g. ["Admin"].')
        if errors:
            raise ValidationError(errors)

    def _clean_oidc(self, errors: dict[str, Any]) -> None:
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
                'Enter a list of tenant IDs (GUIDs), e.g. ["72f988bf-86f1-41af-91ab-2d7cd011db47"].'
            )
        if "allowed_tenants" not in errors and "issuer" not in errors:
            problem = self.open_tenancy_problem()
            if problem:
                errors["allowed_tenants"] = problem

    def _clean_saml(self, errors: dict[str, Any]) -> None:
        """The metadata's source; what it says is checked by ``saml.metadata`` (forms, CLI)."""
        self.saml_metadata_url = (self.saml_metadata_url or "").strip()
        self.saml_metadata_xml = (self.saml_metadata_xml or "").strip()
        if bool(self.saml_metadata_url) == bool(self.saml_metadata_xml):
            errors["saml_metadata_url"] = _(
                "Give the identity provider's metadata URL or paste its metadata XML (one of them)."
            )
        elif self.saml_metadata_url:
            try:
                validate_metadata_url(self.saml_metadata_url)
            except ValidationError as exc:
                errors["saml_metadata_url"] = exc
        if self.revalidate_after:
            errors["revalidate_after"] = _(
                "SAML sessions are not re-validated at the identity provider: set a maximum "
                "session age instead (and SCIM to end leavers' sessions at once)."
            )
        mapping = self.saml_attribute_map
        if not isinstance(mapping, dict) or not all(
            key in SAML_ATTRIBUTE_FIELDS and isinstance(value, str) and value
            for key, value in mapping.items()
        ):
            errors["saml_attribute_map"] = _(
                "Enter a JSON object whose keys are among email, given_name, family_name, "
                'groups, tenant_id, object_id, e.g. {"email": "mail"}.'
            )

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.issuer = normalize_issuer(self.issuer)
        super().save(*args, **kwargs)


class ClientKey(models.Model):
    """A connector's key pair for ``private_key_jwt`` (RFC 7523) client authentication.

    One ``active`` key signs client assertions; during a rotation a ``next`` key is
    published too (JWKS, admin) until the site owner confirms the IdP has it.
    The private key is encrypted like client secrets.
    """

    class State(models.TextChoices):
        ACTIVE = "active", _("active: signs client assertions")
        NEXT = "next", _("next: published, signs once confirmed")

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="client_keys", verbose_name=_("connector")
    )
    #: The certificate's SHA-256 thumbprint, base64url: the JWKS ``kid`` and ``x5t#S256``.
    kid = models.CharField(_("key ID"), max_length=64)
    certificate = models.TextField(_("certificate (PEM)"))
    private_key_encrypted = models.TextField(_("private key (encrypted)"), editable=False)
    state = models.CharField(_("state"), max_length=8, choices=State.choices)
    not_after = models.DateTimeField(_("certificate expires"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("client key")
        verbose_name_plural = _("client keys")
        ordering = ("connector", "-created_at")
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "state"], name="entra_sso_clientkey_one_per_state"
            )
        ]

    def __str__(self) -> str:
        return f"{self.connector.slug} {self.state} {self.kid[:12]}"


def new_verification_token() -> str:
    """The value a domain's DNS TXT record must carry (``entra-sso-verification=<token>``)."""
    return secrets.token_urlsafe(24)


def client_network_field() -> models.CharField:
    """Where a logged request came from: its address cut to a network, never the address."""
    return models.CharField(
        _("client network"),
        max_length=64,
        blank=True,
        help_text=_("The client's address cut to its network: IPv4 /24, IPv6 /48."),
    )


class EmailDomainQuerySet(models.QuerySet["EmailDomain"]):
    def trusted(self) -> EmailDomainQuerySet:
        """Domains that may route sign-ins and vouch for emails: the verified ones.

        All of them when ``ENTRA_SSO_REQUIRE_DOMAIN_VERIFICATION`` is off (the
        behaviour before domain verification existed).
        """
        from .conf import app_settings

        if not app_settings.REQUIRE_DOMAIN_VERIFICATION:
            # Several connectors may claim a domain unverified: the verified one first.
            return self.order_by(models.F("verified_at").desc(nulls_last=True), "pk")
        return self.filter(verified_at__isnull=False)

    def verified_elsewhere(self, domain: str, connector_id: Any) -> bool:
        """Another connector proved ``domain`` already (it is theirs until staff say not)."""
        return (
            self.filter(domain=domain, verified_at__isnull=False)
            .exclude(connector_id=connector_id)
            .exists()
        )


class EmailDomain(models.Model):
    class Verification(models.TextChoices):
        DNS = "dns", _("DNS TXT record")
        MANUAL = "manual", _("by hand (site staff)")

    # Unique once verified, not before: a customer's unproved claim (through a setup
    # link) must not lock out the company that really holds the domain.
    domain = models.CharField(
        _("email domain"),
        max_length=253,
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
    verified_at = models.DateTimeField(
        _("verified"),
        null=True,
        blank=True,
        help_text=_(
            "When the domain was proved to be the customer's. Unverified domains route no sign-ins."
        ),
    )
    verification_method = models.CharField(
        _("verified by"), max_length=16, choices=Verification.choices, blank=True
    )
    verified_by = models.CharField(
        _("verification detail"),
        max_length=200,
        blank=True,
        help_text=_("Who marked it verified, or where the DNS record was found."),
    )
    verification_token = models.CharField(
        _("verification token"), max_length=64, default=new_verification_token, editable=False
    )

    objects = EmailDomainQuerySet.as_manager()

    class Meta:
        verbose_name = _("email domain")
        verbose_name_plural = _("email domains")
        ordering = ("domain",)
        constraints = [
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(verified_at__isnull=False),
                name="entra_sso_domain_verified_once",
                violation_error_message=_("This domain already belongs to a connector."),
            ),
            models.UniqueConstraint(
                fields=["domain", "connector"],
                name="entra_sso_domain_per_connector",
                violation_error_message=_("This domain is already on the list."),
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    def clean(self) -> None:
        from .public_domains import refuse_public_mail_domain

        try:
            self.domain = normalize_domain(self.domain)
            refuse_public_mail_domain(self.domain)
        except ValidationError as exc:
            raise ValidationError({"domain": exc}) from exc

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = normalize_domain(self.domain)
        super().save(*args, **kwargs)

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    def mark_verified(self, method: str, detail: str) -> None:
        """Record that (and how) the domain was proved; saved by the caller."""
        self.verified_at = timezone.now()
        self.verification_method = method
        self.verified_by = detail[:200]


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
    client_network = client_network_field()

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


class UsedSAMLMessage(models.Model):
    """A SAML assertion or LogoutRequest ID already accepted from a connector's IdP.

    Kept in the database, not the cache: a cache may evict an entry to make room (LocMem
    keeps 300, Redis under ``maxmemory``), and anonymous ACS posts can fill it, so a
    marker there could vanish while its assertion is still valid, and an unsolicited
    assertion could sign in twice. Rows live until ``expires_at``, when the message is
    refused on its times anyway; ``sso_clear_sessions`` and each new marker prune them.
    """

    ASSERTION = "assertion"
    LOGOUT_REQUEST = "logout_request"

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="+", verbose_name=_("connector")
    )
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=[(ASSERTION, _("assertion")), (LOGOUT_REQUEST, _("LogoutRequest"))],
    )
    #: SHA-256 of the message's ID: IDs are the IdP's and of any length.
    message_digest = models.CharField(_("message ID (SHA-256)"), max_length=64)
    expires_at = models.DateTimeField(_("remembered until"))

    class Meta:
        verbose_name = _("used SAML message")
        verbose_name_plural = _("used SAML messages")
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "kind", "message_digest"], name="entra_sso_saml_used_once"
            )
        ]
        indexes = [models.Index(fields=["expires_at"], name="entra_sso_saml_used_expires")]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_digest[:12]} ({self.connector_id})"


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


# -- Customer self-service setup (``setup/``) ---------------------------------------------


class SetupLink(models.Model):
    """A one-time link that lets a customer configure one connector, stored as its SHA-256.

    The token is shown once (admin, ``sso_connector invite``) and never again. A link
    is usable until it expires, is revoked (a newer link replaces it) or is activated.
    """

    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, related_name="setup_links", verbose_name=_("connector")
    )
    token_hash = models.CharField(_("token hash (SHA-256)"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    #: The last "Try signing in" through this link that succeeded, since the last
    #: change of the IdP's values: "Activate" needs one.
    tried_at = models.DateTimeField(_("sign-in tried"), null=True, blank=True)
    #: ``setup.links.fingerprint`` of the values a trial was started with, and of those
    #: its success was for: "Activate" turns on nothing else.
    trying_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    tried_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    #: The customer pressed "Activate" while the site owner keeps activation for
    #: themselves (``ENTRA_SSO_SETUP_ACTIVATION = "site_owner"``).
    activation_requested_at = models.DateTimeField(_("activation requested"), null=True, blank=True)

    class Meta:
        verbose_name = _("setup link")
        verbose_name_plural = _("setup links")
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"setup link of {self.connector.slug} ({self.created_at:%Y-%m-%d})"

    def is_usable(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.activated_at is None and self.expires_at > now


class SetupEvent(models.Model):
    """What happened through a connector's setup links, for the site's administrators.

    Never a token or a secret: the action, which fields changed, a test's result,
    and the client's network (as the sign-in log keeps it).
    """

    class Action(models.TextChoices):
        CREATED = "created", _("link created")
        REVOKED = "revoked", _("links revoked")
        SAVED = "saved", _("saved")
        REFUSED = "refused", _("not saved (invalid)")
        TESTED = "tested", _("connection tested")
        TRIED = "tried", _("sign-in tried")
        DOMAIN_ADDED = "domain_added", _("domain added")
        DOMAIN_REMOVED = "domain_removed", _("domain removed")
        DOMAIN_CHECKED = "domain_checked", _("domain checked")
        ACTIVATED = "activated", _("activated")
        REQUESTED = "requested", _("activation requested")

    connector = models.ForeignKey(
        Connector,
        on_delete=models.CASCADE,
        related_name="setup_events",
        verbose_name=_("connector"),
    )
    link = models.ForeignKey(
        SetupLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("setup link"),
    )
    time = models.DateTimeField(_("time"), default=timezone.now)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    detail = models.CharField(_("detail"), max_length=1000, blank=True)
    client_network = client_network_field()

    class Meta:
        verbose_name = _("setup event")
        verbose_name_plural = _("setup events")
        ordering = ("-time", "-pk")
        indexes = [models.Index(fields=["connector", "time"], name="entra_sso_setup_conn_time")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} ({self.connector.slug})"
