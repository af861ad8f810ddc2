"""Provider metadata: the discovery document and the JWKS, cached.

Both are fetched through ``provider_http`` (timeouts, size caps) and kept in Django's cache
(``ENTRA_SSO_CACHE_ALIAS``), keyed by issuer so connectors that share an issuer
share one copy. A copy older than ``METADATA_CACHE_TTL`` is refreshed; when the
provider cannot be reached, the old copy is served for up to
``METADATA_STALE_TTL`` ("stale if error"). An ID token signed with a key we do
not know triggers one JWKS refresh, at most once per ``JWKS_REFRESH_FLOOR``
seconds per issuer, so a flood of forged ``kid`` values cannot make us hammer
the provider.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

from .. import providers
from ..cache import cache_key, tolerant_add, tolerant_get, tolerant_set
from ..conf import app_settings
from ..provider_http import ProviderHTTPError, get_json
from ..validation import DISCOVERY_SUFFIX, endpoint_problem

if TYPE_CHECKING:
    from ..models import Connector

logger = logging.getLogger(__name__)

REQUIRED_DISCOVERY_FIELDS = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
ENDPOINT_FIELDS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
    "introspection_endpoint",
)


class MetadataError(Exception):
    """Discovery or JWKS could not be had; the message says why, for a person."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def response_modes_supported(self) -> list[str]:
        # Discovery §3: the default when absent is ["query", "fragment"].
        return list(self.raw.get("response_modes_supported") or ["query", "fragment"])

    @property
    def token_endpoint_auth_methods_supported(self) -> list[str]:
        # Discovery §3: the default when absent is client_secret_basic.
        return list(
            self.raw.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        )

    @property
    def introspection_endpoint(self) -> str | None:
        """RFC 7662 / RFC 8414: where opaque access tokens are checked (validated on parse)."""
        value = self.raw.get("introspection_endpoint")
        return value if isinstance(value, str) and value else None

    @property
    def iss_parameter_supported(self) -> bool:
        return self.raw.get("authorization_response_iss_parameter_supported") is True


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_SUFFIX


#: Seconds after a failed fetch before the next one (unless forced): while the IdP is down,
#: requests are answered from the stale copy, or refused, without a call each. Anyone can
#: send a token naming a connector's issuer, so without it an outage cost every request
#: a call (up to ``ENTRA_SSO_HTTP_TIMEOUT``) to the IdP.
RETRY_AFTER_FAILURE = 10


def _cached_fetch(kind: str, url: str, *, force: bool = False) -> tuple[dict[str, Any], float]:
    """Return ``(document, fetched_at)``, from the cache when fresh enough."""
    key = cache_key(kind, url)
    entry = tolerant_get(key)
    entry = entry if isinstance(entry, dict) else {}
    retry_at = entry.get("retry_at")
    retry_at = retry_at if isinstance(retry_at, (int, float)) else 0.0
    has_copy = {"doc", "fetched_at"} <= entry.keys()
    now = time.time()
    if (
        has_copy
        and not force
        and (now - entry["fetched_at"] < app_settings.METADATA_CACHE_TTL or now < retry_at)
    ):
        return entry["doc"], entry["fetched_at"]
    if not has_copy and not force and now < retry_at:
        raise MetadataError(f"{url} failed a moment ago: {entry.get('error', '')}")
    try:
        doc = get_json(url)
    except ProviderHTTPError as exc:
        retry_at = now + RETRY_AFTER_FAILURE
        if has_copy:
            logger.warning("Serving a cached %s for %s: %s", kind, url, exc)
            marked = {**entry, "retry_at": retry_at}
            # What is left of the copy's own stale window, not a new one: failures must not
            # keep a copy (keys the IdP has since withdrawn, say) alive while they go on.
            left = app_settings.METADATA_STALE_TTL - (now - entry["fetched_at"])
            if left >= 1:
                tolerant_set(key, marked, int(left))
            return entry["doc"], entry["fetched_at"]
        tolerant_set(key, {"error": str(exc)[:300], "retry_at": retry_at}, RETRY_AFTER_FAILURE)
        raise MetadataError(str(exc)) from exc
    tolerant_set(key, {"doc": doc, "fetched_at": now}, app_settings.METADATA_STALE_TTL)
    return doc, now


def parse_discovery(doc: dict[str, Any], *, issuer: str, url: str) -> ProviderMetadata:
    """The metadata in a discovery document fetched for ``issuer``, its endpoints checked.

    Every endpoint must pass ``validation.endpoint_problem``: the document comes
    from whoever runs the issuer, and the client sends its credentials to them.
    """
    missing = [name for name in REQUIRED_DISCOVERY_FIELDS if not isinstance(doc.get(name), str)]
    if missing:
        raise MetadataError(f"The discovery document at {url} lacks {', '.join(missing)}.")
    optional = {}
    for name in ("userinfo_endpoint", "end_session_endpoint"):
        value = doc.get(name)
        optional[name] = value if isinstance(value, str) and value else None
    for name in ENDPOINT_FIELDS:
        value = doc.get(name)
        problem = (
            endpoint_problem(value, issuer=issuer) if isinstance(value, str) and value else None
        )
        if problem:
            raise MetadataError(f"The discovery document at {url}: {name} {value!r} {problem}.")
    return ProviderMetadata(
        issuer=doc["issuer"],
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        raw=doc,
        **optional,
    )


def get_metadata(connector: Connector, *, force: bool = False) -> ProviderMetadata:
    """The connector's discovery document, checked to belong to its issuer."""
    url = discovery_url(connector.issuer)
    doc, _fetched = _cached_fetch("discovery", url, force=force)
    metadata = parse_discovery(doc, issuer=connector.issuer, url=url)
    if not providers.issuer_from_discovery_matches(
        connector.provider, connector.issuer, metadata.issuer
    ):
        raise MetadataError(
            f"The discovery document says its issuer is {metadata.issuer!r}, "
            f"but the connector's issuer is {connector.issuer!r}."
        )
    return metadata


# Parsed keys per JWKS copy: parsing an RSA key costs more than the rest of a
# token check, and the same copy serves thousands of sign-ins.
_parsed_keys: dict[str, list[jwt.PyJWK]] = {}


def _parse_jwks(doc: dict[str, Any]) -> list[jwt.PyJWK]:
    fingerprint = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    cached = _parsed_keys.get(fingerprint)
    if cached is not None:
        return cached
    keys = []
    raw_keys = doc.get("keys")
    for raw in raw_keys if isinstance(raw_keys, list) else []:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        try:
            keys.append(jwt.PyJWK(raw))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            logger.info("Skipping an unusable key (kid %r) in a JWKS.", raw.get("kid"))
    if len(_parsed_keys) > 256:
        _parsed_keys.clear()
    _parsed_keys[fingerprint] = keys
    return keys


def get_signing_keys(metadata: ProviderMetadata, *, force: bool = False) -> list[jwt.PyJWK]:
    doc, _fetched = _cached_fetch("jwks", metadata.jwks_uri, force=force)
    return _parse_jwks(doc)


def refresh_allowed(metadata: ProviderMetadata) -> bool:
    """May an unknown ``kid`` cause a JWKS fetch now? (rate limited per issuer)"""
    floor = app_settings.JWKS_REFRESH_FLOOR
    # Without a cache the floor cannot be kept: refuse the refresh rather than
    # let forged kids drive unbounded fetches.
    return bool(tolerant_add(cache_key("jwks-refresh", metadata.jwks_uri), 1, max(floor, 1)))


def find_signing_key(metadata: ProviderMetadata, kid: str | None, alg: str) -> jwt.PyJWK | None:
    """The key a token with this header was signed with, refreshing once on an unknown kid."""
    keys = get_signing_keys(metadata)
    key = _select(keys, kid, alg)
    if key is None and kid is not None and refresh_allowed(metadata):
        keys = get_signing_keys(metadata, force=True)
        key = _select(keys, kid, alg)
    return key


def _key_fits(key: jwt.PyJWK, alg: str) -> bool:
    declared = key._jwk_data.get("alg")
    if declared and declared != alg:
        return False
    family = {"RS": "RSA", "PS": "RSA", "ES": "EC"}.get(alg[:2])
    if key.key_type != family:
        return False
    if family == "EC":
        curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}.get(alg)
        return key._jwk_data.get("crv") == curve
    return True


def _select(keys: list[jwt.PyJWK], kid: str | None, alg: str) -> jwt.PyJWK | None:
    if kid is not None:
        matching = [k for k in keys if k.key_id == kid]
        return matching[0] if matching and _key_fits(matching[0], alg) else None
    # OIDC Core §10.1: without a kid there must be exactly one usable key.
    fitting = [k for k in keys if _key_fits(k, alg)]
    return fitting[0] if len(fitting) == 1 else None


@dataclass
class ConnectionReport:
    """What "Test connection" found, for the admin and the management command."""

    ok: bool
    discovery_url: str
    error: str = ""
    issuer: str = ""
    issuer_matches: bool = False
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    jwks_uri: str = ""
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    signing_key_count: int = 0
    response_modes_supported: list[str] = field(default_factory=list)
    auth_methods_supported: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def server_fetched_endpoints(metadata: ProviderMetadata) -> list[str]:
    """The discovery document's URLs this site itself calls (not the browser's)."""
    urls = [metadata.token_endpoint, metadata.jwks_uri, metadata.userinfo_endpoint or ""]
    for name in ("introspection_endpoint", "revocation_endpoint"):
        value = metadata.raw.get(name)
        urls.append(value if isinstance(value, str) else "")
    return [url for url in urls if url]


def check_connection(
    connector: Connector, *, endpoint_problem: Callable[[str], str | None] | None = None
) -> ConnectionReport:
    """Fetch discovery and JWKS afresh and say what was found, or why not.

    ``endpoint_problem`` (the setup page's address rules) may refuse an endpoint the
    document names before anything is fetched from it.
    """
    url = discovery_url(connector.issuer)
    report = ConnectionReport(ok=False, discovery_url=url)
    try:
        doc, _fetched = _cached_fetch("discovery", url, force=True)
        metadata = parse_discovery(doc, issuer=connector.issuer, url=url)
    except MetadataError as exc:
        report.error = str(exc)
        cause = exc.__cause__
        if isinstance(cause, ProviderHTTPError) and cause.status == 404:
            report.error += (
                " Check the issuer: it is the URL the provider names as its issuer, "
                "without /.well-known/openid-configuration."
            )
        return report
    report.issuer = metadata.issuer
    report.issuer_matches = providers.issuer_from_discovery_matches(
        connector.provider, connector.issuer, metadata.issuer
    )
    report.authorization_endpoint = metadata.authorization_endpoint
    report.token_endpoint = metadata.token_endpoint
    report.jwks_uri = metadata.jwks_uri
    report.userinfo_endpoint = metadata.userinfo_endpoint or ""
    report.end_session_endpoint = metadata.end_session_endpoint or ""
    report.response_modes_supported = metadata.response_modes_supported
    report.auth_methods_supported = metadata.token_endpoint_auth_methods_supported
    if endpoint_problem is not None:
        for endpoint in server_fetched_endpoints(metadata):
            problem = endpoint_problem(endpoint)
            if problem:
                report.error = problem
                return report
    try:
        report.signing_key_count = len(get_signing_keys(metadata, force=True))
    except MetadataError as exc:
        report.error = f"JWKS: {exc}"
        return report
    if not report.issuer_matches:
        report.problems.append(
            f"The provider's issuer is {metadata.issuer!r}, not {connector.issuer!r}."
        )
    if report.signing_key_count == 0:
        report.problems.append("The JWKS holds no usable signing key.")
    if connector.effective_response_mode not in report.response_modes_supported:
        report.problems.append(
            f"The provider does not list response mode {connector.effective_response_mode!r}."
        )
    methods = set(report.auth_methods_supported)
    if connector.client_auth and connector.client_auth not in methods:
        report.problems.append(
            f"The provider does not list {connector.client_auth} among its client "
            f"authentication methods ({', '.join(sorted(methods))})."
        )
    elif not connector.client_auth and not methods & {"client_secret_basic", "client_secret_post"}:
        report.problems.append(
            "The provider supports neither client_secret_basic nor client_secret_post."
        )
    report.ok = not report.problems
    if report.problems:
        report.error = " ".join(report.problems)
    return report
