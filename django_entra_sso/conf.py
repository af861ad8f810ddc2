"""Every ``ENTRA_SSO_*`` setting with its default, read at the moment it is used.

Nothing here is read at import time, so ``override_settings`` works in tests and a
site may change a setting without restarting anything but its own process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

#: Algorithms an ID token or logout token may be signed with. Only asymmetric
#: ones: a symmetric (HMAC) algorithm would let anyone holding a *public* key
#: from the JWKS forge tokens ("key confusion"), and ``none`` is never allowed.
DEFAULT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)


class AppSettings:
    """Typed access to the app's settings; one property per setting."""

    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, f"ENTRA_SSO_{name}", default)

    @property
    def SECRET_KEYS(self) -> list[str]:
        """Keys that encrypt connector client secrets; the first encrypts, all decrypt.

        Default: ``SECRET_KEY`` followed by ``SECRET_KEY_FALLBACKS``, so rotating
        Django's secret key the documented way keeps stored secrets readable.
        """
        keys = self._get("SECRET_KEYS", None)
        if keys is None:
            keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        if isinstance(keys, str):
            keys = [keys]
        return [str(key) for key in keys]

    @property
    def HTTP_TIMEOUT(self) -> float:
        """Seconds to wait for the identity provider on any one request."""
        return float(self._get("HTTP_TIMEOUT", 5.0))

    @property
    def METADATA_CACHE_TTL(self) -> int:
        """Seconds a discovery document or JWKS is used before it is fetched again."""
        return int(self._get("METADATA_CACHE_TTL", 3600))

    @property
    def METADATA_STALE_TTL(self) -> int:
        """Seconds a cached document is still served while the provider cannot be reached."""
        return int(self._get("METADATA_STALE_TTL", 7 * 24 * 3600))

    @property
    def JWKS_REFRESH_FLOOR(self) -> int:
        """Least seconds between two JWKS fetches caused by an unknown ``kid``."""
        return int(self._get("JWKS_REFRESH_FLOOR", 60))

    @property
    def CACHE_ALIAS(self) -> str:
        """Which of ``CACHES`` holds provider metadata, replay markers and form_post hand-offs."""
        return str(self._get("CACHE_ALIAS", "default"))

    @property
    def ALLOWED_ALGORITHMS(self) -> Sequence[str]:
        return tuple(self._get("ALLOWED_ALGORITHMS", DEFAULT_ALGORITHMS))

    @property
    def CLOCK_LEEWAY(self) -> int:
        """Seconds of clock difference tolerated on ``exp``, ``iat`` and ``nbf``."""
        return int(self._get("CLOCK_LEEWAY", 60))

    @property
    def MAX_TOKEN_AGE(self) -> int:
        """Oldest ``iat`` (seconds) accepted on an ID token or logout token."""
        return int(self._get("MAX_TOKEN_AGE", 600))

    @property
    def LOGIN_TIMEOUT(self) -> int:
        """Seconds a started sign-in may take before its ``state`` expires."""
        return int(self._get("LOGIN_TIMEOUT", 600))

    @property
    def MAX_PENDING_LOGINS(self) -> int:
        """Sign-ins one browser may have in flight at once (tabs); older ones are dropped."""
        return int(self._get("MAX_PENDING_LOGINS", 5))

    @property
    def PASSWORD_LOGIN_URL(self) -> str | None:
        """Where the sign-in page sends people whose domain has no connector.

        ``None`` (the default) shows no password option.
        """
        return self._get("PASSWORD_LOGIN_URL", None)

    @property
    def LOGIN_REDIRECT_URL(self) -> str:
        return str(self._get("LOGIN_REDIRECT_URL", settings.LOGIN_REDIRECT_URL))

    @property
    def POST_LOGOUT_REDIRECT_URL(self) -> str:
        """Where the IdP sends the browser after sign-out (made absolute; a URL name works).

        Default: this app's "You have been signed out" page (``entra_sso:signed_out``).
        """
        return str(self._get("POST_LOGOUT_REDIRECT_URL", "entra_sso:signed_out"))

    @property
    def USERNAME_PREFIX(self) -> str:
        """Prefix of usernames made for just-in-time users."""
        return str(self._get("USERNAME_PREFIX", "sso-"))

    @property
    def STORE_UNVERIFIED_EMAIL(self) -> bool:
        """Store an email the IdP did not verify, from a connector without domains.

        Default ``False``: such an email is only what the person typed into their
        profile at the IdP; storing it invited account pre-hijacking.
        """
        return bool(self._get("STORE_UNVERIFIED_EMAIL", False))

    @property
    def LOGOUT_TOKEN_REPLAY_TTL(self) -> int:
        """Seconds a back-channel logout token's ``jti`` is remembered to refuse replays.

        Never less than a token can be accepted for (``MAX_TOKEN_AGE`` plus the
        clock leeway on both sides), whatever the setting says.
        """
        window = self.MAX_TOKEN_AGE + 2 * self.CLOCK_LEEWAY
        return max(int(self._get("LOGOUT_TOKEN_REPLAY_TTL", window)), window)

    @property
    def SIGN_IN_LOG(self) -> bool:
        """Record sign-in attempts and sign-outs in the sign-in log (``SignInEvent``)."""
        return bool(self._get("SIGN_IN_LOG", True))

    @property
    def SIGN_IN_LOG_RETENTION_DAYS(self) -> int:
        """Days a sign-in log row is kept; ``sso_clear_sessions`` removes older ones.

        ``0`` (or less) keeps them forever.
        """
        return int(self._get("SIGN_IN_LOG_RETENTION_DAYS", 90))

    @property
    def SCIM_DELETE(self) -> str:
        """What a SCIM ``DELETE /Users/<id>`` does to the Django user.

        ``"deactivate"`` (default): the user is kept with ``is_active=False`` (their
        SSO sessions end) and only the SCIM link is removed, so their data stays.
        ``"delete"``: the Django user is deleted, unless they also sign in through
        another connector; then they are only deactivated.
        """
        value = str(self._get("SCIM_DELETE", "deactivate"))
        return value if value in ("deactivate", "delete") else "deactivate"

    @property
    def XMLSEC_BINARY(self) -> str:
        """Path of the ``xmlsec1`` program SAML signatures need; ``""``: found on ``PATH``."""
        return str(self._get("XMLSEC_BINARY", "") or "")

    @property
    def XMLSEC_TIMEOUT(self) -> float:
        """Seconds one ``xmlsec1`` run (a signature check, a decryption) may take."""
        return float(self._get("XMLSEC_TIMEOUT", 10))

    @property
    def SAML_MAX_RESPONSE_BYTES(self) -> int:
        """The largest SAML message accepted (as posted, base64); bigger ones are refused."""
        return int(self._get("SAML_MAX_RESPONSE_BYTES", 512 * 1024))

    @property
    def GRAPH_URL(self) -> str:
        """Microsoft Graph, where group overage is resolved (a national cloud's Graph there).

        The sign-in's access token is sent only to this origin, next links included.
        """
        return str(self._get("GRAPH_URL", "https://graph.microsoft.com")).rstrip("/")

    @property
    def INTROSPECTION_CACHE_TTL(self) -> int:
        """Seconds an introspection answer (RFC 7662) is reused; never past the token's exp."""
        return int(self._get("INTROSPECTION_CACHE_TTL", 60))

    @property
    def SETUP_LINK_LIFETIME(self) -> int:
        """Seconds a customer's self-service setup link stays usable (default 3 days)."""
        return int(self._get("SETUP_LINK_LIFETIME", 3 * 24 * 3600))

    @property
    def SETUP_ACTIVATION(self) -> str:
        """Who enables a connector set up through a link: ``"customer"`` or ``"site_owner"``."""
        value = str(self._get("SETUP_ACTIVATION", "customer"))
        # A misspelt value keeps activation with the site's team (check E010 names it).
        return value if value in ("customer", "site_owner") else "site_owner"

    @property
    def SETUP_NOTIFY_EMAILS(self) -> list[str]:
        """Addresses told when a customer activates (or asks to activate) a connector."""
        return [str(address) for address in self._get("SETUP_NOTIFY_EMAILS", [])]

    @property
    def REQUIRE_DOMAIN_VERIFICATION(self) -> bool:
        """Only verified email domains route sign-ins and vouch for emails (default ``True``)."""
        return bool(self._get("REQUIRE_DOMAIN_VERIFICATION", True))

    @property
    def DNS_NAMESERVERS(self) -> list[str]:
        """Name servers (``"IP"`` or ``"IP:port"``) that domain verification asks; ``[]``: the system's."""
        return [str(server) for server in self._get("DNS_NAMESERVERS", [])]

    @property
    def DNS_TIMEOUT(self) -> float:
        """Seconds one domain verification lookup may take in all."""
        return float(self._get("DNS_TIMEOUT", 5.0))


app_settings = AppSettings()
