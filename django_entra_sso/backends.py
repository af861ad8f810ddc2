"""``SSOBackend``: mozilla-django-oidc's backend, fed by the active connector.

mozilla-django-oidc reads one provider from global ``OIDC_*`` settings; here the
settings come from the ``Connector`` a sign-in runs through (``get_settings``),
and its gaps are closed: the ID token is checked fully by ``tokens.py`` (iss,
aud, azp, nonce, keys from the cached JWKS), userinfo is opt-in, and users are
found by who the IdP says they are, never by email.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any
from urllib.parse import quote_plus

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from . import providers
from .conf import app_settings
from .crypto import SecretDecryptionError
from .flow import PendingLogin
from .metadata import MetadataError, ProviderMetadata, get_metadata
from .models import Connector, EmailDomain, Identity
from .provider_http import ProviderHTTPError, get_bearer_json, post_form
from .signals import sso_user_created
from .tokens import TokenError, alg_of, check_access_token_hash, check_id_token
from .validation import domain_of_email

logger = logging.getLogger(__name__)


class SignInError(Exception):
    """A sign-in cannot go on. ``code`` picks the message the person sees;
    the exception's own message is for the log only."""

    def __init__(self, code: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.code = code
        self.status = status


class SSOBackend(OIDCAuthenticationBackend):
    """Authenticate a person through the connector their sign-in started at."""

    connector: Connector | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connector = None
        self.metadata: ProviderMetadata | None = None
        super().__init__(*args, **kwargs)

    # -- mozilla-django-oidc's settings hook -----------------------------------
    def get_settings(self, attr: str, *args: Any) -> Any:  # type: ignore[override]
        """Per-connector values instead of global ``OIDC_*`` settings.

        Before a connector is chosen (Django builds backends for every request)
        the library's own defaults are returned, so no ``OIDC_*`` setting is needed.
        """
        values = self._connector_settings()
        if attr in values:
            return values[attr]
        return args[0] if args else None

    def _connector_settings(self) -> dict[str, Any]:
        connector, metadata = self.connector, self.metadata
        if connector is None or metadata is None:
            return {}
        return {
            "OIDC_OP_TOKEN_ENDPOINT": metadata.token_endpoint,
            "OIDC_OP_USER_ENDPOINT": metadata.userinfo_endpoint,
            "OIDC_OP_JWKS_ENDPOINT": metadata.jwks_uri,
            "OIDC_RP_CLIENT_ID": connector.client_id,
            "OIDC_RP_CLIENT_SECRET": connector.client_secret,
            "OIDC_RP_SCOPES": " ".join(connector.scopes),
        }

    def configure(self, connector: Connector) -> None:
        """Point the backend (and mozilla-django-oidc's attributes) at ``connector``."""
        self.connector = connector
        self.metadata = get_metadata(connector)
        for name, value in self._connector_settings().items():
            setattr(self, name, value)

    # -- authenticate -----------------------------------------------------------
    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        sso_connector: Connector | None = None,
        sso_code: str | None = None,
        sso_pending: PendingLogin | None = None,
        sso_response_iss: str = "",
        **credentials: Any,
    ) -> Any:
        if sso_connector is None:
            # A password sign-in passing through: refuse SSO-only domains here,
            # before ModelBackend gets to check the password.
            self._refuse_password_for_sso_only(credentials)
            return None
        if not sso_code or sso_pending is None:
            return None
        try:
            self.configure(sso_connector)
        except MetadataError as exc:
            raise SignInError("provider_unreachable", str(exc), status=424) from exc
        except SecretDecryptionError as exc:
            raise SignInError("misconfigured", str(exc), status=424) from exc
        tokens = self.get_token(
            {
                "grant_type": "authorization_code",
                "code": sso_code,
                "redirect_uri": sso_pending.redirect_uri,
                "code_verifier": sso_pending.code_verifier,
            }
        )
        id_token = tokens.get("id_token")
        access_token = tokens.get("access_token")
        if not isinstance(id_token, str):
            raise SignInError("token_failed", "The token answer holds no id_token.", status=424)
        claims = self.check_id_token(id_token, nonce=sso_pending.nonce)
        if sso_response_iss and sso_response_iss != claims.get("iss"):
            # RFC 9207 for templated (Entra multi-tenant) issuers: the authorization
            # response's iss could only be compared once the token named its tenant.
            raise SignInError(
                "wrong_callback", f"The response's iss {sso_response_iss!r} is not the token's."
            )
        if isinstance(access_token, str):
            try:
                check_access_token_hash(claims, access_token, alg_of(id_token))
            except TokenError as exc:
                raise SignInError("invalid_token", str(exc)) from exc
        if self.connector is not None and self.connector.use_userinfo:
            claims = self.get_userinfo(access_token, id_token, claims)
        if not self.verify_claims(claims):
            raise SignInError("refused", "The claims were refused by verify_claims().", status=403)
        with transaction.atomic():
            user = self.resolve_user(claims, request)
        if not self.user_can_authenticate(user):
            raise SignInError("inactive", f"User {user.pk} is inactive.", status=403)
        if request is not None:
            request.entra_sso_result = {"claims": claims, "id_token": id_token}  # type: ignore[attr-defined]
        return user

    def _refuse_password_for_sso_only(self, credentials: dict[str, Any]) -> None:
        if credentials.get("password") is None:
            return
        user_model = get_user_model()
        username = credentials.get("username", credentials.get(user_model.USERNAME_FIELD))
        if not isinstance(username, str) or not username:
            return
        emails = [username] if "@" in username else []
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        email_field = user_model.get_email_field_name()
        if user is not None and getattr(user, email_field, None):
            emails.append(str(getattr(user, email_field)))
        domains = {d for d in (domain_of_email(e) for e in emails) if d}
        if domains and EmailDomain.objects.filter(domain__in=domains, sso_only=True).exists():
            # PermissionDenied stops Django from trying the remaining backends.
            raise PermissionDenied("This domain signs in with single sign-on only.")

    # -- the token request --------------------------------------------------------
    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Exchange the code, authenticating as the provider's discovery allows."""
        assert self.connector is not None and self.metadata is not None
        connector, metadata = self.connector, self.metadata
        data = {k: str(v) for k, v in payload.items()}
        headers: dict[str, str] = {}
        methods = metadata.token_endpoint_auth_methods_supported
        if "client_secret_basic" in methods or "client_secret_post" not in methods:
            # RFC 6749 §2.3.1: form-urlencode id and secret before Base64.
            pair = f"{quote_plus(connector.client_id)}:{quote_plus(connector.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            data["client_id"] = connector.client_id
            data["client_secret"] = connector.client_secret
        try:
            return post_form(metadata.token_endpoint, data, headers=headers)
        except ProviderHTTPError as exc:
            error = (exc.body or {}).get("error")
            logger.warning(
                "Token request to connector %s failed: %s (error=%r)", connector.slug, exc, error
            )
            raise SignInError("token_failed", str(exc), status=424) from exc

    def check_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        assert self.connector is not None and self.metadata is not None
        try:
            return check_id_token(
                id_token,
                provider=self.connector.provider,
                metadata=self.metadata,
                client_id=self.connector.client_id,
                nonce=nonce,
                allowed_tenants=self.connector.allowed_tenant_ids,
            )
        except TokenError as exc:
            logger.warning("ID token from connector %s refused: %s", self.connector.slug, exc)
            raise SignInError("invalid_token", str(exc)) from exc

    def get_userinfo(self, access_token: Any, id_token: str, payload: dict[str, Any]) -> Any:
        """Merge userinfo claims into the ID token's; only for connectors that ask."""
        assert self.metadata is not None
        endpoint = self.metadata.userinfo_endpoint
        if not endpoint or not isinstance(access_token, str):
            return payload
        try:
            info = get_bearer_json(endpoint, access_token)
        except ProviderHTTPError as exc:
            raise SignInError("token_failed", f"userinfo: {exc}", status=424) from exc
        if info.get("sub") != payload.get("sub"):
            raise SignInError("invalid_token", "userinfo's sub differs from the ID token's.")
        protected = {"iss", "aud", "sub", "tid", "oid", "nonce", "exp", "iat", "azp"}
        return {**payload, **{k: v for k, v in info.items() if k not in protected}}

    # -- who the user is ------------------------------------------------------------
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        """A connector with domains signs in only emails of its own domains."""
        connector = self.connector
        assert connector is not None
        email = claims.get("email")
        domain = domain_of_email(email) if isinstance(email, str) else None
        if domain is None:
            return True
        owner = (
            EmailDomain.objects.filter(domain=domain).values_list("connector_id", flat=True).first()
        )
        if owner is not None and owner != connector.pk:
            raise SignInError(
                "wrong_connector",
                f"Email domain {domain} belongs to another connector than {connector.slug}.",
                status=403,
            )
        if owner is None and connector.domains.exists():
            raise SignInError(
                "wrong_domain",
                f"Email domain {domain} is not one of connector {connector.slug}'s domains.",
                status=403,
            )
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        """Users linked to this IdP identity: by (issuer, subject), never by email."""
        assert self.connector is not None
        issuer, subject = providers.identity_key(self.connector.provider, claims)
        return self.UserModel.objects.filter(
            sso_identities__issuer=issuer, sso_identities__subject=subject
        )

    def get_or_create_user(self, access_token: Any, id_token: Any, payload: Any) -> Any:
        return self.resolve_user(payload, None)

    def resolve_user(self, claims: dict[str, Any], request: HttpRequest | None) -> Any:
        connector = self.connector
        assert connector is not None
        issuer, subject = providers.identity_key(connector.provider, claims)
        identity = Identity.objects.select_related("user").filter(issuer=issuer, subject=subject)
        found = identity.first()
        if found is not None:
            Identity.objects.filter(pk=found.pk).update(
                last_seen=timezone.now(), connector=connector
            )
            user = self.update_user(found.user, claims)
            self.sync_groups(user, claims)
            return user
        created = False
        user = self.linkable_user(claims)
        if user is None:
            if not connector.create_users:
                raise SignInError(
                    "no_account",
                    f"No account for {issuer} {subject}; creation is off.",
                    status=403,
                )
            try:
                with transaction.atomic():
                    user = self.create_user(claims)
                    created = True
                    self.link_identity(user, issuer, subject, claims)
            except IntegrityError:
                # A concurrent first sign-in of the same person won the race.
                found = identity.first()
                if found is None:
                    raise
                user, created = found.user, False
        else:
            self.link_identity(user, issuer, subject, claims)
        user = self.update_user(user, claims)
        self.sync_groups(user, claims)
        if created:
            sso_user_created.send(
                sender=self.__class__,
                request=request,
                user=user,
                connector=connector,
                claims=claims,
            )
        return user

    def link_identity(self, user: Any, issuer: str, subject: str, claims: dict[str, Any]) -> None:
        Identity.objects.create(
            connector=self.connector,
            issuer=issuer,
            subject=subject,
            tenant_id=str(claims.get("tid", ""))[:64],
            user=user,
        )

    def linkable_user(self, claims: dict[str, Any]) -> Any:
        """An existing account to attach, when the connector allows and the IdP vouches."""
        connector = self.connector
        assert connector is not None
        email = claims.get("email")
        if not connector.link_existing_by_email or not isinstance(email, str):
            return None
        domain = domain_of_email(email)
        if domain is None or not connector.domains.filter(domain=domain).exists():
            return None
        if not providers.email_is_verified(connector.provider, claims):
            return None
        email_field = self.UserModel.get_email_field_name()
        issuer, _subject = providers.identity_key(connector.provider, claims)
        candidates = list(
            self.UserModel._default_manager.filter(**{f"{email_field}__iexact": email})
            # An account already tied to another person at this issuer is theirs.
            .exclude(sso_identities__issuer=issuer)[:2]
        )
        # Two accounts with one email: linking either would be a guess.
        return candidates[0] if len(candidates) == 1 else None

    def get_username(self, claims: dict[str, Any]) -> str:
        """A username derived from the identity: stable, and it cannot collide."""
        assert self.connector is not None
        issuer, subject = providers.identity_key(self.connector.provider, claims)
        digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).digest()
        return app_settings.USERNAME_PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()

    def create_user(self, claims: dict[str, Any]) -> Any:
        user_model = self.UserModel
        fields = {user_model.USERNAME_FIELD: self.get_username(claims)}
        user = user_model(**fields)
        user.set_unusable_password()
        self._apply_claims(user, claims)
        user.save()
        return user

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        if self._apply_claims(user, claims):
            user.save()
        return user

    def _apply_claims(self, user: Any, claims: dict[str, Any]) -> bool:
        values = {
            "first_name": claims.get("given_name"),
            "last_name": claims.get("family_name"),
            self.UserModel.get_email_field_name(): claims.get("email"),
        }
        changed = False
        for field, value in values.items():
            if not isinstance(value, str) or not hasattr(user, field):
                continue
            max_length = getattr(user._meta.get_field(field), "max_length", None)
            value = value[:max_length] if max_length else value
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
        return changed

    def sync_groups(self, user: Any, claims: dict[str, Any]) -> None:
        """Keep the groups named in the connector's mapping in step with the claims."""
        connector = self.connector
        assert connector is not None
        names = claims.get("_claim_names")
        if isinstance(names, dict) and "groups" in names:
            logger.warning(
                "Connector %s: the user is in too many groups for the token (group overage); "
                "groups were left unchanged.",
                connector.slug,
            )
            return
        mapping = connector.group_mapping or {}
        if not isinstance(mapping, dict) or not mapping:
            return
        values: set[str] = set()
        for claim in ("groups", "roles"):
            raw = claims.get(claim)
            if isinstance(raw, list):
                values.update(str(v) for v in raw if isinstance(v, (str, int)))

        def names_of(target: Any) -> list[str]:
            return [target] if isinstance(target, str) else [str(t) for t in target or []]

        managed = {name for target in mapping.values() for name in names_of(target)}
        wanted = {
            name for key, target in mapping.items() if key in values for name in names_of(target)
        }
        current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
        if current == wanted:
            return
        user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in sorted(wanted)])
