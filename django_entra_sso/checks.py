"""System checks, each with a stable id and a hint."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError
from django.utils.module_loading import import_string

from .conf import app_settings
from .crypto import keys_usable

BACKEND = "django_entra_sso.backends.SSOBackend"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _first_sso_backend(backends: list[str]) -> int | None:
    """Where ``SSOBackend`` or a subclass of it stands in ``backends``, or ``None``."""
    from .backends import SSOBackend

    for position, path in enumerate(backends):
        try:
            backend = import_string(path)
        except ImportError:
            continue  # Django's own checks and login() report a path that does not import.
        if isinstance(backend, type) and issubclass(backend, SSOBackend):
            return position
    return None


@register(Tags.security, Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    backends = [str(path) for path in getattr(settings, "AUTHENTICATION_BACKENDS", [])]
    sso_position = _first_sso_backend(backends)
    if sso_position is None:
        errors.append(
            Error(
                "Neither django_entra_sso.backends.SSOBackend nor a subclass of it is in "
                "AUTHENTICATION_BACKENDS.",
                hint=f'Add "{BACKEND}" (or your subclass) to AUTHENTICATION_BACKENDS, '
                "before ModelBackend.",
                id="django_entra_sso.E001",
            )
        )
    elif MODEL_BACKEND in backends and backends.index(MODEL_BACKEND) < sso_position:
        errors.append(
            Warning(
                "ModelBackend comes before SSOBackend in AUTHENTICATION_BACKENDS, so SSO-only "
                "domains cannot be kept from signing in with a password.",
                hint="List django_entra_sso.backends.SSOBackend first.",
                id="django_entra_sso.W001",
            )
        )
    installed = list(getattr(settings, "INSTALLED_APPS", []))
    if "django.contrib.sessions" not in installed:
        errors.append(
            Error(
                "django.contrib.sessions is not in INSTALLED_APPS.",
                hint="Single sign-on keeps pending sign-ins and SSO sessions in Django sessions.",
                id="django_entra_sso.E002",
            )
        )
    engine = getattr(settings, "SESSION_ENGINE", "django.contrib.sessions.backends.db")
    if engine == "django.contrib.sessions.backends.signed_cookies":
        errors.append(
            Error(
                "The signed-cookies session engine cannot be used with django-entra-sso.",
                hint=(
                    "Front- and back-channel logout end sessions on the server, which a "
                    "cookie-only session cannot do. Use the db, cache or cached_db engine."
                ),
                id="django_entra_sso.E003",
            )
        )
    reason = keys_usable()
    if reason:
        errors.append(
            Error(
                f"Client secrets cannot be encrypted: {reason}",
                hint="Set SECRET_KEY or ENTRA_SSO_SECRET_KEYS to a non-empty list of strings.",
                id="django_entra_sso.E004",
            )
        )
    cache_alias = app_settings.CACHE_ALIAS
    caches_setting = getattr(settings, "CACHES", {"default": {}})
    if cache_alias not in caches_setting:
        errors.append(
            Error(
                f"ENTRA_SSO_CACHE_ALIAS is {cache_alias!r}, which is not in CACHES.",
                hint="Name one of the caches in CACHES.",
                id="django_entra_sso.E005",
            )
        )
    elif caches_setting[cache_alias].get("BACKEND", "").endswith("DummyCache"):
        errors.append(
            Warning(
                "The cache django-entra-sso uses is a DummyCache.",
                hint=(
                    "form_post sign-ins and logout token replay checks need a working cache, "
                    "and every sign-in will fetch discovery and keys again."
                ),
                id="django_entra_sso.W002",
            )
        )
    if "django.contrib.auth.middleware.AuthenticationMiddleware" not in getattr(
        settings, "MIDDLEWARE", []
    ):
        errors.append(
            Error(
                "AuthenticationMiddleware is not in MIDDLEWARE.",
                hint="Add django.contrib.auth.middleware.AuthenticationMiddleware.",
                id="django_entra_sso.E006",
            )
        )
    for name in (
        "HTTP_TIMEOUT",
        "LOGIN_TIMEOUT",
        "METADATA_CACHE_TTL",
        "MAX_PENDING_LOGINS",
        "XMLSEC_TIMEOUT",
    ):
        try:
            value = getattr(app_settings, name)
        except (TypeError, ValueError):
            value = None
        if value is None or value <= 0:
            errors.append(
                Error(
                    f"ENTRA_SSO_{name} must be a positive number.",
                    hint="Remove the setting to use the default.",
                    id="django_entra_sso.E007",
                )
            )
    algorithms = set(app_settings.ALLOWED_ALGORITHMS)
    unsafe = sorted(a for a in algorithms if a.lower() == "none" or a.startswith("HS"))
    if unsafe:
        errors.append(
            Error(
                f"ENTRA_SSO_ALLOWED_ALGORITHMS contains {', '.join(unsafe)}.",
                hint="Only asymmetric algorithms (RS*, PS*, ES*) are safe with a public JWKS.",
                id="django_entra_sso.E008",
            )
        )
    errors += _setup_setting_errors()
    return errors


def _setup_setting_errors() -> list[Any]:
    """Self-service setup settings that would be misread silently."""
    from django.conf import settings

    from .setup.dns import parse_nameserver

    errors: list[Any] = []
    activation = getattr(settings, "ENTRA_SSO_SETUP_ACTIVATION", "customer")
    if activation not in ("customer", "site_owner"):
        errors.append(
            Error(
                f"ENTRA_SSO_SETUP_ACTIVATION is {activation!r}; it must be 'customer' or "
                "'site_owner'.",
                hint="Until it is fixed, customers cannot activate (as with 'site_owner').",
                id="django_entra_sso.E010",
            )
        )
    for server in app_settings.DNS_NAMESERVERS:
        try:
            parse_nameserver(server)
        except ValueError as exc:
            errors.append(
                Error(
                    f"ENTRA_SSO_DNS_NAMESERVERS: {server!r} is not a name server address ({exc}).",
                    hint="Give IP addresses, as '192.0.2.53', '192.0.2.53:5353' or '[::1]:5353'.",
                    id="django_entra_sso.E011",
                )
            )
    return errors


@register(Tags.database, Tags.security)
def check_connectors(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Connectors saved before a rule existed; run by ``migrate`` and ``check --database``."""
    if not databases:
        return []
    from .models import Connector

    warnings: list[Any] = []
    for alias in databases:
        try:
            connectors = list(Connector.objects.using(alias).order_by("slug"))
            problems = [(c, c.open_tenancy_problem()) for c in connectors]
        except DatabaseError:
            continue  # not migrated yet: nothing saved to check
        middleware = "django_entra_sso.middleware.SessionRevalidationMiddleware"
        if middleware not in getattr(settings, "MIDDLEWARE", []):
            timed = [c.slug for c in connectors if c.revalidate_after or c.max_session_age]
            if timed:
                warnings.append(
                    Warning(
                        f"Connector(s) {', '.join(timed)} re-validate sessions or limit their "
                        "age, but SessionRevalidationMiddleware is not in MIDDLEWARE, so "
                        "nothing does it.",
                        hint=f'Add "{middleware}" to MIDDLEWARE, after AuthenticationMiddleware.',
                        id="django_entra_sso.W004",
                    )
                )
        warnings += _client_certificates_ending(alias)
        saml = [c.slug for c in connectors if c.is_saml]
        if saml:
            from .saml.xmlsec import XmlsecMissing, xmlsec_binary

            try:
                xmlsec_binary()
            except XmlsecMissing as exc:
                warnings.append(
                    Error(
                        f"SAML connector(s) {', '.join(saml)} cannot sign anyone in: {exc}",
                        hint="Install xmlsec1 on every machine that serves the site.",
                        id="django_entra_sso.E009",
                    )
                )
        warnings += _api_issuers_shared(connectors)
        for connector, problem in problems:
            if problem:
                warnings.append(
                    Warning(
                        f"Connector {connector.slug!r} is open to every Entra tenant: {problem}",
                        hint=(
                            "Sign-ins through it are refused until it is fixed. Add the "
                            "customer's tenant ID to its allowed tenants (admin, or "
                            "sso_connector add SLUG ... --tenant TENANT_ID)."
                        ),
                        obj=connector,
                        id="django_entra_sso.W003",
                    )
                )
    return warnings


def _api_issuers_shared(connectors: list[Any]) -> list[Any]:
    """Enabled connectors that take API tokens under one issuer: a token names its issuer
    only, so neither knows the token is its own, and the API refuses them all."""
    by_issuer: dict[str, list[str]] = {}
    for connector in connectors:
        if connector.enabled and not connector.is_saml and connector.api_audiences:
            issuer = connector.issuer
            if connector.is_multi_tenant:
                # common, organizations and consumers all take any tenant's tokens (where
                # no connector of that tenant itself does): one issuer for the API.
                host = urlsplit(issuer).netloc
                issuer = f"https://{host}/<any tenant>/v2.0"
            by_issuer.setdefault(issuer, []).append(connector.slug)
    return [
        Warning(
            f"Connectors {', '.join(slugs)} take API tokens from one issuer ({issuer}); "
            "the API refuses that issuer's tokens, since it cannot tell whose they are.",
            hint="Leave API audiences on one of them only (each connector's admin page).",
            id="django_entra_sso.W006",
        )
        for issuer, slugs in sorted(by_issuer.items())
        if len(slugs) > 1
    ]


#: Client certificates (private_key_jwt) this close to their end get W005.
CERTIFICATE_WARNING_DAYS = 30


def _client_certificates_ending(alias: str) -> list[Any]:
    from datetime import timedelta

    from django.utils import timezone

    from .models import ClientKey

    soon = timezone.now() + timedelta(days=CERTIFICATE_WARNING_DAYS)
    ending = (
        ClientKey.objects.using(alias)
        .filter(state="active", not_after__lte=soon, connector__client_auth="private_key_jwt")
        .select_related("connector")
    )
    return [
        Warning(
            f"The client certificate of connector {key.connector.slug!r} "
            + ("has expired" if key.not_after <= timezone.now() else "expires")
            + f" on {key.not_after.date().isoformat()}: sign-ins stop working then.",
            hint=(
                f"python manage.py sso_connector certificate {key.connector.slug} --rotate, "
                "upload the new certificate to the IdP, then --confirm (or the admin's "
                "“New certificate” button)."
            ),
            obj=key.connector,
            id="django_entra_sso.W005",
        )
        for key in ending
    ]
