"""Checking ID tokens and logout tokens. One checker; no database access.

ID tokens follow OpenID Connect Core §3.1.3.7 plus Microsoft Entra's rules;
logout tokens follow Back-Channel Logout 1.0 §2.6 (with the 2023 errata), and
their replay memory (each ``jti`` once, kept in the cache) lives here too.
Any failure raises ``TokenError`` whose message is for the log; nothing else
escapes, whatever the input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from .. import providers
from ..cache import cache_key, tolerant_add
from ..conf import app_settings
from .metadata import MetadataError, ProviderMetadata, find_signing_key

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: ``typ`` values a logout token may carry (RFC 7515 §4.1.9: compared without case,
#: ``application/`` may be left off): the explicit type Back-Channel Logout 1.0
#: recommends, the generic ``JWT`` many IdPs send, or none at all.
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "jwt"})
MAX_TOKEN_LENGTH = 16 * 1024


class TokenError(Exception):
    """The token is not acceptable; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _same(given: str, expected: str) -> bool:
    """Constant-time equality; on bytes, because ``compare_digest`` refuses non-ASCII str."""
    return hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def _b64_json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def read_header(token: Any) -> dict[str, Any]:
    """The JOSE header of a compact JWS, checked for shape only."""
    if not isinstance(token, str) or not token:
        raise TokenError("malformed", "The token is missing or not a string.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", "The token is too long.")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "The token is not a signed JWT (three segments).")
    try:
        header = _b64_json(parts[0])
    except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
        # RecursionError: a header of thousands of nested brackets fits in the size cap.
        raise TokenError("malformed", "The token header is not base64url JSON.") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed", "The token header is not a JSON object.")
    return header


def _verify_signature(token: str, metadata: ProviderMetadata, *, leeway: int) -> dict[str, Any]:
    header = read_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in app_settings.ALLOWED_ALGORITHMS:
        # Covers "none" and HMAC algorithms (key confusion with a public key).
        raise TokenError("bad_alg", f"Signing algorithm {alg!r} is not allowed.")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("malformed", "The token's kid is not a string.")
    if header.get("crit") is not None:
        raise TokenError("malformed", "The token has critical header parameters we do not know.")
    try:
        key = find_signing_key(metadata, kid, alg)
    except MetadataError as exc:
        raise TokenError("no_keys", f"The provider's keys could not be fetched: {exc}") from exc
    if key is None:
        raise TokenError(
            "unknown_key",
            "No signing key fits the token "
            + (f"(kid {kid!r})." if kid else "(it names no kid and the JWKS has several keys)."),
        )
    try:
        claims = jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_aud": False,  # checked below, with azp
                "verify_iss": False,  # checked below, Entra templates included
                "verify_exp": True,
                "verify_iat": True,
                "verify_nbf": True,
                # Both REQUIRED of ID tokens (Core §2) and logout tokens (BCL §2.4).
                "require": ["iat", "exp"],
            },
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("expired", "The token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("not_yet_valid", "The token is not valid yet (nbf/iat).") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("bad_signature", "The token's signature does not verify.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("missing_claim", f"The token lacks {exc.claim!r}.") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise TokenError("invalid", f"The token is invalid: {exc.__class__.__name__}.") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed", "The token's payload is not a JSON object.")
    return claims


def _check_common(
    claims: Mapping[str, Any],
    *,
    provider: str,
    metadata: ProviderMetadata,
    client_id: str,
    allowed_tenants: Iterable[str],
    leeway: int,
) -> None:
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise TokenError("bad_iss", "The token has no issuer.")
    if (
        provider == providers.ENTRA_ID
        and "tid" in claims
        and not providers.is_guid(claims.get("tid"))
    ):
        raise TokenError("bad_tid", "The token's tid is not a tenant ID.")
    expected = providers.expected_token_issuer(provider, metadata.issuer, claims)
    if expected is None or not _same(iss, expected):
        raise TokenError("bad_iss", f"The token's issuer {iss!r} is not the connector's.")
    tenants = set(allowed_tenants)
    if tenants and str(claims.get("tid", "")).lower() not in tenants:
        raise TokenError("bad_tenant", "The token's tenant is not in the connector's allow-list.")

    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenError("bad_aud", "The token has no audience.")
    if client_id not in audiences:
        raise TokenError("bad_aud", "The token was not issued to this client.")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise TokenError("bad_azp", "The token's authorized party (azp) is not this client.")

    iat = claims.get("iat")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise TokenError("missing_claim", "The token's iat is missing or not a number.")
    if iat < time.time() - app_settings.MAX_TOKEN_AGE - leeway:
        raise TokenError("too_old", "The token was issued too long ago.")


def _verify(
    token: str,
    *,
    provider: str,
    metadata: ProviderMetadata,
    client_id: str,
    allowed_tenants: Iterable[str],
) -> dict[str, Any]:
    """What ID tokens and logout tokens share: signature, iss, tenant, aud, azp, iat."""
    leeway = app_settings.CLOCK_LEEWAY
    claims = _verify_signature(token, metadata, leeway=leeway)
    _check_common(
        claims,
        provider=provider,
        metadata=metadata,
        client_id=client_id,
        allowed_tenants=allowed_tenants,
        leeway=leeway,
    )
    return claims


def check_id_token(
    token: str,
    *,
    provider: str,
    metadata: ProviderMetadata,
    client_id: str,
    nonce: str,
    allowed_tenants: Iterable[str] = (),
) -> dict[str, Any]:
    """Verify an ID token and return its claims, or raise ``TokenError``."""
    claims = _verify(
        token,
        provider=provider,
        metadata=metadata,
        client_id=client_id,
        allowed_tenants=allowed_tenants,
    )
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenError("missing_claim", "The token has no subject (sub).")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not _same(token_nonce, nonce):
        raise TokenError("bad_nonce", "The token's nonce does not match this sign-in.")
    if provider == providers.ENTRA_ID and "oid" in claims and not isinstance(claims["oid"], str):
        raise TokenError("bad_oid", "The token's oid is not a string.")
    return claims


def check_refreshed_id_token(
    token: str,
    *,
    provider: str,
    metadata: ProviderMetadata,
    client_id: str,
    subject: str,
    allowed_tenants: Iterable[str] = (),
) -> dict[str, Any]:
    """An ID token from a refresh-token answer (OpenID Connect Core §12.2), or ``TokenError``.

    Checked like the first one (signature, ``iss``, ``aud``, ``azp``, ``exp``,
    ``iat``), without a nonce of this sign-in, and ``sub`` must be the person's.
    """
    claims = _verify(
        token,
        provider=provider,
        metadata=metadata,
        client_id=client_id,
        allowed_tenants=allowed_tenants,
    )
    if "exp" not in claims:
        raise TokenError("missing_claim", "The token lacks 'exp'.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _same(sub, subject):
        raise TokenError("other_subject", "The refreshed ID token names another person.")
    return claims


def check_access_token_hash(claims: Mapping[str, Any], access_token: str, alg: str) -> None:
    """When the ID token carries ``at_hash``, it must match the access token."""
    at_hash = claims.get("at_hash")
    if at_hash is None:
        return
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    half = digest(access_token.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(half[: len(half) // 2]).rstrip(b"=").decode()
    if not isinstance(at_hash, str) or not _same(at_hash, expected):
        raise TokenError("bad_at_hash", "The ID token's at_hash does not match the access token.")


def check_logout_token(
    token: str,
    *,
    provider: str,
    metadata: ProviderMetadata,
    client_id: str,
    allowed_tenants: Iterable[str] = (),
) -> dict[str, Any]:
    """Verify a back-channel logout token and return its claims, or raise ``TokenError``."""
    typ = read_header(token).get("typ")
    if typ is not None and _media_type(typ) not in LOGOUT_TOKEN_TYPES:
        # Another kind of token (an access token, say) signed by the same keys.
        raise TokenError("bad_typ", f"A token of type {typ!r} is not a logout token.")
    claims = _verify(
        token,
        provider=provider,
        metadata=metadata,
        client_id=client_id,
        allowed_tenants=allowed_tenants,
    )
    events = claims.get("events")
    if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events:
        raise TokenError("bad_events", "The logout token lacks the back-channel logout event.")
    if not isinstance(events[BACKCHANNEL_LOGOUT_EVENT], dict):
        raise TokenError("bad_events", "The back-channel logout event is not a JSON object.")
    if "nonce" in claims:
        raise TokenError("has_nonce", "A logout token must not carry a nonce.")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
        raise TokenError("missing_claim", "The logout token names neither sub nor sid.")
    for name in ("sub", "sid", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError("malformed", f"The logout token's {name} is not a string.")
    # REQUIRED (§2.4): without a jti a replay cannot be told apart (exp: in _verify).
    if not claims.get("jti"):
        raise TokenError("missing_claim", "The logout token has no jti.")
    return claims


def _media_type(typ: Any) -> str:
    value = str(typ).strip().lower()
    return value.removeprefix("application/")


def refuse_replayed_logout_token(claims: Mapping[str, Any], *, scope: str) -> None:
    """Remember a logout token's ``jti`` under ``scope`` (the connector); raise on a replay.

    The ``jti`` is kept for as long as the token could be accepted
    (``LOGOUT_TOKEN_REPLAY_TTL``, never shorter than ``MAX_TOKEN_AGE`` plus leeway).
    When the cache is down the token counts as new: ending a session twice is
    harmless, refusing a real logout is not.
    """
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        return
    first_use = tolerant_add(
        cache_key("logout-jti", scope, jti), 1, app_settings.LOGOUT_TOKEN_REPLAY_TTL
    )
    if first_use is False:
        raise TokenError("replayed", "The logout token was used before (same jti).")


def alg_of(token: str) -> str:
    return str(read_header(token).get("alg", ""))
