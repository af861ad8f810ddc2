"""The OpenID Connect adapter: what the views call, one function per protocol step.

It turns an authorization response into a ``VerifiedSignIn`` (or a
``SignInError``), a logout token into the IdP session to end, and a signed-in
session into the provider's end-session URL. It never decides who the Django
user is (that is ``accounts``) and never touches the session index (that is
``sessions``). Every network call of the protocol happens here or below, and
the views call it before they open a database transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from .. import links, providers
from ..errors import SignInError, page_for_idp_error
from ..models import Connector
from ..provider_http import ProviderHTTPError
from ..validation import domain_of_email
from ..verified import IdPSession, VerifiedPerson, VerifiedSignIn
from . import client, flow
from .metadata import MetadataError, ProviderMetadata, get_metadata
from .tokens import (
    TokenError,
    alg_of,
    check_access_token_hash,
    check_id_token,
    check_logout_token,
    check_refreshed_id_token,
    refuse_replayed_logout_token,
)

logger = logging.getLogger(__name__)


def _metadata(connector: Connector) -> ProviderMetadata:
    try:
        return get_metadata(connector)
    except MetadataError as exc:
        raise SignInError("provider_unreachable", str(exc)) from exc


def _usable(connector: Connector) -> None:
    """Refuse a connector that is off, or whose tenancy would let anyone in."""
    if not connector.enabled:
        raise SignInError("disabled", f"{connector.slug} is disabled.")
    problem = connector.open_tenancy_problem()
    if problem:
        # Saved before the rule existed (system check W003 names it): refuse.
        raise SignInError("misconfigured", f"{connector.slug}: {problem}")


def start_sign_in(
    request: HttpRequest,
    connector: Connector,
    *,
    login_hint: str,
    next_url: str,
    revalidate: bool = False,
) -> str:
    """The authorization URL to send the browser to; the pending sign-in goes in its session.

    ``revalidate=True``: a silent ``prompt=none`` check that the signed-in person
    still may be (no page at the IdP; ``login_required`` if not).
    """
    _usable(connector)
    metadata = _metadata(connector)
    domain = domain_of_email(login_hint) if login_hint else None
    extras = {"prompt": connector.prompt}
    if connector.revalidate_after:
        extras.update(providers.refresh_token_params(connector.provider))
        if connector.prompt:
            extras["prompt"] = connector.prompt  # the site owner's choice wins
    if revalidate:
        extras = {"prompt": "none"}
    return flow.start(
        request.session,
        connector_slug=connector.slug,
        authorization_endpoint=metadata.authorization_endpoint,
        client_id=connector.client_id,
        redirect_uri=links.redirect_uri(request, connector),
        scopes=connector.scopes,
        response_mode=connector.effective_response_mode,
        next_url=next_url,
        extra_params={
            "login_hint": login_hint,
            **extras,
            **providers.authorize_extras(connector.provider, domain),
        },
        purpose="revalidate" if revalidate else "sign_in",
    )


@sensitive_variables("params", "pending", "code", "tokens", "id_token", "access_token")
def complete_sign_in(
    session: SessionBase, connector: Connector, params: Mapping[str, str]
) -> VerifiedSignIn:
    """Check an authorization response from ``connector`` and redeem its code.

    ``params`` are the response's parameters (query or form_post). The pending
    sign-in they name is used up, whatever the outcome.
    """
    pending = flow.take(session, params.get("state", ""))
    if pending is None:
        raise SignInError("invalid_state", "unknown state")
    try:
        return _complete(connector, params, pending)
    except SignInError as exc:
        exc.next_url = pending.next_url
        exc.purpose = pending.purpose
        raise


@sensitive_variables("params", "pending", "code", "tokens", "id_token", "access_token")
def _complete(
    connector: Connector, params: Mapping[str, str], pending: flow.PendingLogin
) -> VerifiedSignIn:
    if pending.connector != connector.slug:
        raise SignInError("wrong_callback", f"state of {pending.connector} came back here")
    _usable(connector)
    metadata = _metadata(connector)
    response_iss = params.get("iss", "")
    if not flow.response_issuer_acceptable(response_iss, metadata):
        raise SignInError("wrong_callback", f"iss {response_iss!r}")
    error = params.get("error", "")
    if error:
        description = params.get("error_description", "")[:500]
        raise SignInError(page_for_idp_error(error), f"IdP error {error!r}: {description!r}")
    code = params.get("code", "")
    if not code:
        raise SignInError("invalid_request", "no code")
    tokens = client.redeem_code(
        connector,
        metadata,
        code=code,
        redirect_uri=pending.redirect_uri,
        code_verifier=pending.code_verifier,
    )
    id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
    if not isinstance(id_token, str):
        raise SignInError("token_failed", "The token answer holds no id_token.")
    claims = _checked_id_token(connector, metadata, id_token, nonce=pending.nonce)
    if response_iss and response_iss != claims.get("iss"):
        # RFC 9207 for templated (Entra multi-tenant) issuers: the authorization
        # response's iss could only be compared once the token named its tenant.
        raise SignInError(
            "wrong_callback", f"The response's iss {response_iss!r} is not the token's."
        )
    if isinstance(access_token, str):
        try:
            check_access_token_hash(claims, access_token, alg_of(id_token))
        except TokenError as exc:
            raise SignInError("invalid_token", str(exc)) from exc
    if connector.use_userinfo:
        claims = client.merge_userinfo(metadata, access_token, claims)
    check_hosted_domain(connector, claims)
    refresh_token = tokens.get("refresh_token")
    return VerifiedSignIn(
        person=person_from_claims(connector, claims),
        idp_session=idp_session_from(
            claims, id_token, refresh_token=refresh_token if isinstance(refresh_token, str) else ""
        ),
        next_url=pending.next_url,
        purpose=pending.purpose,
    )


@sensitive_variables("id_token")
def _checked_id_token(
    connector: Connector, metadata: ProviderMetadata, id_token: str, *, nonce: str
) -> dict[str, Any]:
    try:
        return check_id_token(
            id_token,
            provider=connector.provider,
            metadata=metadata,
            client_id=connector.client_id,
            nonce=nonce,
            allowed_tenants=connector.allowed_tenant_ids,
        )
    except TokenError as exc:
        logger.warning("ID token from connector %s refused: %s", connector.slug, exc)
        raise SignInError("invalid_token", str(exc)) from exc


def check_hosted_domain(connector: Connector, claims: Mapping[str, Any]) -> None:
    """Google Workspace: the account must belong to one of the connector's domains.

    The ``hd`` authorize parameter is only a hint to Google's account chooser; the
    ``hd`` claim is what says which Workspace the account belongs to, and a
    personal Google account has none. Google's guidance is to check it.
    """
    if connector.provider != providers.GOOGLE_WORKSPACE:
        return
    hd = claims.get("hd")
    domains = set(connector.domains.values_list("domain", flat=True))
    if not isinstance(hd, str) or not hd or (domains and hd.lower() not in domains):
        raise SignInError(
            "wrong_organization",
            f"Google hd {hd!r} is not one of connector {connector.slug}'s domains.",
        )


def person_from_claims(connector: Connector, claims: Mapping[str, Any]) -> VerifiedPerson:
    """The protocol-neutral person a checked ID token (plus userinfo) describes."""
    issuer, subject = providers.identity_key(connector.provider, claims)
    email = claims.get("email")
    return VerifiedPerson(
        connector=connector,
        issuer=issuer,
        subject=subject,
        claims=claims,
        email=email if isinstance(email, str) else None,
        email_verified=providers.email_is_verified(connector.provider, claims),
        given_name=_text(claims, "given_name"),
        family_name=_text(claims, "family_name"),
        tenant_id=str(claims.get("tid", ""))[:64],
        groups=_groups(claims),
    )


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _groups(claims: Mapping[str, Any]) -> frozenset[str] | None:
    names = claims.get("_claim_names")
    if isinstance(names, dict) and "groups" in names:
        # Entra's group overage: too many groups for a token; they are elsewhere.
        return None
    values: set[str] = set()
    for claim in ("groups", "roles"):
        raw = claims.get(claim)
        if isinstance(raw, list):
            values.update(str(v) for v in raw if isinstance(v, (str, int)))
    return frozenset(values)


@sensitive_variables("id_token", "refresh_token")
def idp_session_from(
    claims: Mapping[str, Any], id_token: str, *, refresh_token: str = ""
) -> IdPSession:
    """The provider session the sign-in came from, and what RP-initiated logout will need."""
    sid = claims.get("sid")
    sign_out = {"id_token_hint": id_token}
    login_hint = claims.get("login_hint")
    if isinstance(login_hint, str):
        # Entra's login_hint claim, sent back as logout_hint, skips its account picker.
        sign_out["logout_hint"] = login_hint
    return IdPSession(
        sid=sid if isinstance(sid, str) else "",
        subject=str(claims["sub"]),
        sign_out=sign_out,
        refresh_token=refresh_token[:8192],
    )


def issuer_matches(connector: Connector, iss: str) -> bool:
    """Is ``iss`` (front-channel logout, third-party initiation) this connector's issuer?"""
    if iss == connector.issuer:
        return True
    try:
        return iss == get_metadata(connector).issuer
    except MetadataError:
        return False


def verify_logout_token(connector: Connector, token: str) -> IdPSession:
    """The IdP session a back-channel logout token ends, once per token.

    Raises ``MetadataError`` when the provider's keys cannot be had and
    ``TokenError`` for a token that is not acceptable (replays included).
    """
    claims = check_logout_token(
        token,
        provider=connector.provider,
        metadata=get_metadata(connector),
        client_id=connector.client_id,
        allowed_tenants=connector.allowed_tenant_ids,
    )
    refuse_replayed_logout_token(claims, scope=str(connector.pk))
    sid, sub = claims.get("sid"), claims.get("sub")
    return IdPSession(sid=sid if isinstance(sid, str) else "", subject=str(sub or ""))


def end_session_url(
    connector: Connector, sign_out: Mapping[str, Any], *, post_logout_redirect_uri: str
) -> str | None:
    """Where to send the browser to sign out at the IdP, or ``None`` to stay here."""
    try:
        endpoint = get_metadata(connector).end_session_endpoint
    except MetadataError as exc:
        logger.warning("Signed out locally only; %s metadata: %s", connector.slug, exc)
        return None
    if not endpoint:
        return None
    id_token, login_hint = sign_out.get("id_token_hint"), sign_out.get("logout_hint")
    return flow.end_session_url(
        endpoint,
        client_id=connector.client_id,
        post_logout_redirect_uri=post_logout_redirect_uri,
        id_token_hint=id_token if isinstance(id_token, str) else None,
        logout_hint=login_hint if isinstance(login_hint, str) else None,
    )


class RevalidationUnavailable(Exception):
    """The IdP could not say whether the person may still be signed in (try again later)."""


@sensitive_variables("refresh_token", "answer", "id_token", "new_token")
def refresh_session(connector: Connector, refresh_token: str, *, subject: str) -> str:
    """Ask the IdP whether ``subject``'s session may go on; return the refresh token to keep.

    Raises ``client.GrantRevoked`` when it may not (the grant is over, or a new ID
    token names another person) and ``RevalidationUnavailable`` when the IdP
    could not say. The IdP may rotate the refresh token: the new one is returned.
    """
    try:
        metadata = get_metadata(connector)
        answer = client.redeem_refresh_token(connector, metadata, refresh_token)
    except (MetadataError, ProviderHTTPError) as exc:
        raise RevalidationUnavailable(str(exc)) from exc
    id_token = answer.get("id_token")
    if isinstance(id_token, str):
        try:
            check_refreshed_id_token(
                id_token,
                provider=connector.provider,
                metadata=metadata,
                client_id=connector.client_id,
                subject=subject,
                allowed_tenants=connector.allowed_tenant_ids,
            )
        except TokenError as exc:
            if exc.code == "other_subject":
                raise client.GrantRevoked(str(exc)) from exc
            raise RevalidationUnavailable(f"refreshed ID token: {exc}") from exc
    new_token = answer.get("refresh_token")
    return new_token if isinstance(new_token, str) and new_token else refresh_token
