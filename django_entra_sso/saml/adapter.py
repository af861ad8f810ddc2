"""The SAML 2.0 adapter: what the views call, one function per protocol step.

It turns a posted Response into a ``VerifiedSignIn`` (or a ``SignInError``), an
IdP's LogoutRequest into the IdP session to end, and a signed-in session into
the IdP's single logout URL, as the OIDC adapter does for its protocol. It never
decides who the Django user is (``accounts``) and never touches the session
index (``sessions``). The XML security (signatures, decryption, the
conditions of the assertion) is pysaml2's; what it does not check is checked
here: the shape of the message and SHA-1 (``messages``), the request this
browser made (``flow``), the issuer, the destination, the recipient and the
assertion ID used once.
"""

from __future__ import annotations

import base64
import calendar
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.request import LogoutRequest
from saml2.response import StatusError, UnsolicitedResponse
from saml2.s_utils import UnravelError
from saml2.saml import NameID
from saml2.sigver import SignatureError
from saml2.time_util import str_to_time
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from .. import links
from ..conf import app_settings
from ..errors import SignInError
from ..models import Connector, UsedSAMLMessage
from ..verified import IdPSession, VerifiedSignIn
from . import flow, redirect, replay
from .attributes import IdentityUnknown, person_from_assertion
from .client import SAMLConfigError, SPEndpoints, XmlsecTimeout, saml_client, timed_out
from .keys import signing_key
from .messages import (
    SAMLP,
    MessageRefused,
    PostedResponse,
    check_signature_placement,
    decode_posted,
    inspect_response,
    refuse_weak_signature,
)
from .metadata import IdPMetadata, MetadataUnreachable, SAMLMetadataError, get_idp_metadata
from .xmlsec import XmlsecMissing

logger = logging.getLogger(__name__)

#: SAML status codes (second level first) and the error page each gets.
STATUS_PAGES = {
    "urn:oasis:names:tc:SAML:2.0:status:RequestDenied": "access_denied",
    "urn:oasis:names:tc:SAML:2.0:status:NoPassive": "interaction_required",
    "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed": "idp_error",
    "urn:oasis:names:tc:SAML:2.0:status:Responder": "server_error",
}

#: The Web Browser SSO profile's subject confirmation method (SAML profiles §4.1.4.2).
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


@dataclass(frozen=True)
class Outgoing:
    """A SAML message on its way to the IdP through the browser.

    ``method`` ``"GET"``: redirect to ``url``. ``"POST"``: a page that posts
    ``fields`` to ``url`` (the HTTP-POST binding).
    """

    url: str
    method: str = "GET"
    fields: Mapping[str, str] = field(default_factory=dict)


def idp_metadata(connector: Connector) -> IdPMetadata:
    try:
        return get_idp_metadata(connector)
    except MetadataUnreachable as exc:
        raise SignInError("provider_unreachable", str(exc)) from exc
    except SAMLMetadataError as exc:  # expired, or not metadata at all: a set-up problem
        raise SignInError("misconfigured", str(exc)) from exc


def _usable(connector: Connector, *, purpose: str = "sign_in") -> None:
    # A customer tries a connector before activating it: a trial signs no one in.
    if not connector.enabled and purpose != "trial":
        raise SignInError("disabled", f"{connector.slug} is disabled.")


def start_sign_in(
    request: HttpRequest,
    connector: Connector,
    *,
    login_hint: str,
    next_url: str,
    purpose: str = "sign_in",
) -> Outgoing:
    """The AuthnRequest to send the browser with; the pending sign-in goes in its session.

    No ``Subject``/login hint: Entra ID refuses AuthnRequests that name one.
    """
    _usable(connector, purpose=purpose)
    idp = idp_metadata(connector)
    binding = idp.sso.binding
    post = binding == BINDING_HTTP_POST
    try:
        with saml_client(request, connector, idp, signs=post) as client:
            request_id, authn_request = client.create_authn_request(
                idp.sso.url,
                binding=BINDING_HTTP_POST,  # how the Response is to come back
                sign=post,  # Redirect: the query string is signed instead
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
    except (XmlsecMissing, SAMLConfigError) as exc:
        raise SignInError("misconfigured", str(exc)) from exc
    except XmlsecTimeout as exc:  # signing a POST-binding AuthnRequest
        raise SignInError("unavailable", f"AuthnRequest not signed: {exc}") from exc
    relay_state = flow.remember(
        request.session,
        connector=connector.slug,
        request_id=str(request_id),
        next_url=next_url,
        purpose=purpose,
    )
    return _send(connector, binding, str(authn_request), idp.sso.url, relay_state)


def _send(
    connector: Connector,
    binding: str,
    xml: str,
    destination: str,
    relay_state: str,
    *,
    kind: str = "SAMLRequest",
) -> Outgoing:
    """A message to the IdP through the browser: a signed Redirect, or a form to post.

    For the HTTP-POST binding ``xml`` carries its own (enveloped) signature.
    """
    if binding == BINDING_HTTP_REDIRECT:
        key = signing_key(connector)
        return Outgoing(url=redirect.signed_url(destination, kind, xml, relay_state, key))
    fields = {kind: base64.b64encode(xml.encode("utf-8")).decode("ascii")}
    if relay_state:
        fields["RelayState"] = relay_state
    return Outgoing(url=destination, method="POST", fields=fields)


@sensitive_variables("saml_response", "posted", "response")
def complete_sign_in(
    request: HttpRequest, connector: Connector, saml_response: str, relay_state: str
) -> VerifiedSignIn:
    """Check a Response posted to ``connector``'s ACS by this browser."""
    try:
        posted = inspect_response(decode_posted(saml_response))
    except MessageRefused as exc:
        raise SignInError("invalid_token", str(exc)) from exc
    pending = flow.take(
        request.session, relay_state=relay_state, in_response_to=posted.in_response_to
    )
    next_url = pending.next_url if pending else ""
    try:
        return _complete(request, connector, saml_response, posted, pending, relay_state)
    except SignInError as exc:
        exc.next_url = next_url
        exc.purpose = pending.purpose if pending else "sign_in"
        raise


@sensitive_variables("saml_response", "posted", "response")
def _complete(
    request: HttpRequest,
    connector: Connector,
    saml_response: str,
    posted: PostedResponse,
    pending: flow.PendingSAMLLogin | None,
    relay_state: str,
) -> VerifiedSignIn:
    if not posted.succeeded:
        # The IdP said no (the person cancelled, is not assigned to the app, ...).
        raise SignInError(
            STATUS_PAGES.get(posted.sub_status) or STATUS_PAGES.get(posted.status) or "idp_error",
            f"IdP status {posted.status} / {posted.sub_status}",
        )
    unsolicited = not posted.in_response_to
    if unsolicited:
        if not connector.allow_idp_initiated:
            raise SignInError("unsolicited", f"{connector.slug}: IdP-initiated sign-in is off.")
        next_url = links.safe_next(relay_state)
    else:
        if pending is None or pending.request_id != posted.in_response_to:
            raise SignInError(
                "invalid_state",
                f"InResponseTo {posted.in_response_to[:80]!r} is no request of ours",
            )
        if pending.connector != connector.slug:
            raise SignInError("wrong_callback", f"request of {pending.connector} came back here")
        next_url = pending.next_url
    purpose = pending.purpose if pending is not None and not unsolicited else "sign_in"
    _usable(connector, purpose=purpose)
    idp = idp_metadata(connector)
    if posted.issuer != idp.entity_id:
        raise SignInError("wrong_callback", f"Response issuer {posted.issuer[:200]!r}")
    endpoints = SPEndpoints.of(request, connector)
    if posted.destination and posted.destination != endpoints.acs:
        raise SignInError("wrong_callback", f"Destination {posted.destination[:200]!r}")
    outstanding = {} if unsolicited else {posted.in_response_to: next_url or "/"}
    try:
        with saml_client(request, connector, idp, allow_unsolicited=unsolicited) as client:
            response = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding
            )
    except (XmlsecMissing, SAMLConfigError) as exc:
        raise SignInError("misconfigured", str(exc)) from exc
    except StatusError as exc:
        raise SignInError("idp_error", f"IdP status: {exc}") from exc
    except UnsolicitedResponse as exc:
        raise SignInError("invalid_state", f"unsolicited: {exc}") from exc
    except Exception as exc:
        if timed_out(exc):  # our side's trouble, not a forged Response
            raise SignInError("unavailable", f"Response not checked: {exc!r}") from exc
        if isinstance(exc, (SignatureError, UnravelError)):
            raise SignInError("invalid_token", f"signature: {exc!r}") from exc
        raise SignInError("invalid_token", f"Response refused: {exc!r}"[:500]) from exc
    if response is None:
        raise SignInError("invalid_token", "pysaml2 found no Response")
    try:
        # Again on what pysaml2 verified and will hand over: decrypted, an assertion
        # could hide a second one (in Advice) and a signature it borrowed.
        check_signature_placement(_text(response.xmlstr), root_tag=f"{{{SAMLP}}}Response")
    except MessageRefused as exc:
        raise SignInError("invalid_token", str(exc)) from exc
    return _verified(
        connector,
        idp,
        endpoints,
        response,
        next_url=next_url,
        purpose=purpose,
        in_response_to="" if unsolicited else posted.in_response_to,
    )


def _text(xml: str | bytes) -> str:
    return xml.decode("utf-8") if isinstance(xml, bytes) else xml


def _verified(
    connector: Connector,
    idp: IdPMetadata,
    endpoints: SPEndpoints,
    response: Any,
    *,
    next_url: str,
    in_response_to: str,
    purpose: str = "sign_in",
) -> VerifiedSignIn:
    message = response.response
    assertions = list(response.assertions or [])
    if len(assertions) != 1 or response.assertion is not assertions[0]:
        raise SignInError("invalid_token", f"{len(assertions)} assertions after decryption")
    assertion = response.assertion
    try:
        refuse_weak_signature(
            message.signature, allow_sha1=connector.saml_allow_sha1, what="Response"
        )
        refuse_weak_signature(
            assertion.signature, allow_sha1=connector.saml_allow_sha1, what="assertion"
        )
    except MessageRefused as exc:
        raise SignInError("invalid_token", str(exc)) from exc
    if assertion.issuer is None or (assertion.issuer.text or "").strip() != idp.entity_id:
        raise SignInError("wrong_callback", "The assertion's issuer is not the IdP's.")
    _check_audience(assertion, endpoints)
    for confirmation in assertion.subject.subject_confirmation:
        if confirmation.method != BEARER:
            # The Web Browser SSO profile's only method; pysaml2 checks the times of
            # bearer confirmations alone, so another method would skip them.
            raise SignInError("invalid_token", f"SubjectConfirmation {confirmation.method!r}")
        data = confirmation.subject_confirmation_data
        if data is None or data.recipient != endpoints.acs:
            raise SignInError(
                "wrong_callback",
                f"SubjectConfirmationData Recipient {getattr(data, 'recipient', None)!r}",
            )
        if not data.not_on_or_after:
            # SAML profiles §4.1.4.2: a bearer confirmation has an end; without one the
            # assertion would outlive any replay register.
            raise SignInError("invalid_token", "SubjectConfirmationData has no NotOnOrAfter.")
        try:
            ended = _epoch(data.not_on_or_after) < time.time() - app_settings.CLOCK_LEEWAY
        except ValueError as exc:
            raise SignInError("invalid_token", str(exc)) from exc
        if ended:
            raise SignInError("invalid_token", "The subject confirmation has ended.")
        if (data.in_response_to or "") != in_response_to:
            # pysaml2 compares this only for assertions it read before decrypting: an
            # encrypted one answering another browser's request (or none) is refused here.
            raise SignInError(
                "invalid_state",
                f"SubjectConfirmationData InResponseTo {str(data.in_response_to)[:80]!r}",
            )
    _refuse_replay(connector, assertion)
    name_id = response.name_id
    attributes = _attributes(assertion)
    try:
        person = person_from_assertion(
            connector,
            attributes,
            entity_id=idp.entity_id,
            name_id=(name_id.text or "").strip() if name_id is not None else "",
            name_id_format=(name_id.format or "") if name_id is not None else "",
        )
    except IdentityUnknown as exc:
        raise SignInError("invalid_token", str(exc)) from exc
    session_index = ""
    ends_at = None
    if assertion.authn_statement:
        session_index = assertion.authn_statement[0].session_index or ""
        limit = assertion.authn_statement[0].session_not_on_or_after
        if limit:
            try:
                ends_at = _epoch(limit)
            except ValueError as exc:
                raise SignInError("invalid_token", str(exc)) from exc
    return VerifiedSignIn(
        person=person,
        idp_session=IdPSession(
            sid=session_index[:255],
            subject=(name_id.text or "").strip()[:255] if name_id is not None else "",
            sign_out=_sign_out_hints(name_id, session_index),
            ends_at=ends_at,
        ),
        next_url=next_url,
        purpose=purpose,
    )


def _attributes(assertion: Any) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            kept = values.setdefault(str(attribute.name), [])
            for value in attribute.attribute_value or []:
                text = (value.text or "").strip()
                if text:
                    kept.append(text[:1024])
    return values


def _check_audience(assertion: Any, endpoints: SPEndpoints) -> None:
    """An AudienceRestriction naming us is required (pysaml2 accepts none at all), and
    each one there names us (SAML core §2.5.1.4: all of them must hold)."""
    conditions = assertion.conditions
    restrictions = list(conditions.audience_restriction or []) if conditions is not None else []
    if not restrictions:
        raise SignInError("invalid_token", "The assertion has no AudienceRestriction.")
    for restriction in restrictions:
        audiences = [(a.text or "").strip() for a in restriction.audience or []]
        if endpoints.entity_id not in audiences:
            raise SignInError("wrong_callback", f"Audience {audiences[:3]!r} is not ours.")


def _refuse_replay(connector: Connector, assertion: Any) -> None:
    """Each assertion ID signs in once, remembered as long as any part of it is valid.
    A register that cannot say refuses: a replayed assertion is a sign-in as somebody else."""
    ends = []
    conditions = assertion.conditions
    if conditions is not None and conditions.not_on_or_after:
        ends.append(conditions.not_on_or_after)
    for confirmation in assertion.subject.subject_confirmation or []:
        data = confirmation.subject_confirmation_data
        if data is not None and data.not_on_or_after:
            ends.append(data.not_on_or_after)
    lifetime = 3600
    if ends:
        try:
            lifetime = max(int(_epoch(end) - time.time()) for end in ends)
        except ValueError as exc:
            raise SignInError("invalid_token", str(exc)) from exc
    ttl = max(lifetime, 0) + 2 * app_settings.CLOCK_LEEWAY
    try:
        first = replay.first_use(connector, UsedSAMLMessage.ASSERTION, str(assertion.id), ttl)
    except replay.ReplayRegisterUnavailable as exc:
        raise SignInError("unavailable", f"assertion replay register: {exc}") from exc
    if not first:
        raise SignInError("invalid_token", f"Assertion {assertion.id!r} was used before.")


def _sign_out_hints(name_id: Any, session_index: str) -> dict[str, str]:
    """What a LogoutRequest for this sign-in must name, kept in the Django session."""
    if name_id is None:
        return {"protocol": "saml"}
    hints = {
        "protocol": "saml",
        "name_id": (name_id.text or "").strip(),
        "name_id_format": name_id.format or "",
        "name_qualifier": name_id.name_qualifier or "",
        "sp_name_qualifier": name_id.sp_name_qualifier or "",
        "session_index": session_index,
    }
    return {key: value for key, value in hints.items() if value}


# -- single logout -------------------------------------------------------------------------


def logout_request(
    request: HttpRequest, connector: Connector, sign_out: Mapping[str, Any]
) -> Outgoing | None:
    """SP-initiated single logout: the signed LogoutRequest, or ``None`` to stay here."""
    if sign_out.get("protocol") != "saml" or not sign_out.get("name_id"):
        return None
    try:
        idp = get_idp_metadata(connector)
    except SAMLMetadataError as exc:
        logger.warning("Signed out locally only; %s metadata: %s", connector.slug, exc)
        return None
    if idp.slo is None:
        return None
    name_id = NameID(
        text=str(sign_out["name_id"]),
        format=sign_out.get("name_id_format") or None,
        name_qualifier=sign_out.get("name_qualifier") or None,
        sp_name_qualifier=sign_out.get("sp_name_qualifier") or None,
    )
    session_index = sign_out.get("session_index")
    post = idp.slo.binding == BINDING_HTTP_POST
    try:
        with saml_client(request, connector, idp, signs=post) as client:
            _id, message = client.create_logout_request(
                idp.slo.url,
                idp.entity_id,
                name_id=name_id,
                session_indexes=[session_index] if session_index else None,
                sign=post,
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
        return _send(connector, idp.slo.binding, str(message), idp.slo.url, "")
    except Exception:
        logger.exception("Could not build a LogoutRequest for %s", connector.slug)
        return None


@dataclass(frozen=True)
class LogoutAnswer:
    """An IdP's LogoutRequest, checked: the session to end and the response to send."""

    idp_session: IdPSession
    response: Outgoing | None


def _incoming(
    method: str, data: Mapping[str, str], query_string: str, kind: str
) -> tuple[str, str]:
    """``(xml, binding)`` of a message received at the SLS."""
    if method == "GET":
        return redirect.inflate(data.get(kind, "")), BINDING_HTTP_REDIRECT
    return decode_posted(data.get(kind, "")), BINDING_HTTP_POST


def handle_logout_request(
    request: HttpRequest,
    connector: Connector,
    data: Mapping[str, str],
    *,
    query_string: str,
) -> LogoutAnswer:
    """Check an IdP-initiated LogoutRequest: signed by the IdP, addressed to us.

    Raises ``MessageRefused`` for one that is not acceptable and
    ``SAMLMetadataError`` when the IdP's metadata cannot be had.
    """
    idp = get_idp_metadata(connector)
    xml, binding = _incoming(request.method or "GET", data, query_string, "SAMLRequest")
    if binding == BINDING_HTTP_REDIRECT:
        redirect.verify_signature(
            query_string,
            "SAMLRequest",
            idp.certificates,
            allow_sha1=connector.saml_allow_sha1,
        )
    check_signature_placement(xml, root_tag=f"{{{SAMLP}}}LogoutRequest")
    endpoints = SPEndpoints.of(request, connector)
    try:
        return _answer_logout_request(request, connector, idp, endpoints, xml, binding, data)
    except (SAMLConfigError, ValueError) as exc:  # ValueError: a time that is none
        raise MessageRefused(str(exc)) from exc


def _answer_logout_request(
    request: HttpRequest,
    connector: Connector,
    idp: IdPMetadata,
    endpoints: SPEndpoints,
    xml: str,
    binding: str,
    data: Mapping[str, str],
) -> LogoutAnswer:
    answers_by_post = idp.slo is not None and idp.slo.binding == BINDING_HTTP_POST
    with saml_client(request, connector, idp, signs=answers_by_post) as client:
        parsed = LogoutRequest(
            client.sec,
            [endpoints.sls],
            client.config.attribute_converters,
            timeslack=app_settings.CLOCK_LEEWAY,
        )
        try:
            parsed.loads(xml, binding, origdoc=xml, must=binding == BINDING_HTTP_POST)
            verified = parsed.verify()
        except Exception as exc:
            # pysaml2 raises for another Destination (OtherError), a version, a time...
            raise MessageRefused(f"LogoutRequest refused: {exc!r}"[:500]) from exc
        if verified is None:
            raise MessageRefused("The LogoutRequest is not addressed to us or has expired.")
        message = parsed.message
        if message.destination != endpoints.sls:
            # pysaml2 checks a Destination only when there is one: one signed for another
            # service provider, without it, would do here.
            raise MessageRefused(f"The LogoutRequest's Destination is {message.destination!r}.")
        _refuse_stale_or_replayed(connector, message)
        if binding == BINDING_HTTP_POST:
            refuse_weak_signature(
                message.signature, allow_sha1=connector.saml_allow_sha1, what="LogoutRequest"
            )
        if message.issuer is None or (message.issuer.text or "").strip() != idp.entity_id:
            raise MessageRefused("The LogoutRequest's issuer is not the connector's IdP.")
        if (
            message.not_on_or_after
            and _epoch(message.not_on_or_after) < time.time() - app_settings.CLOCK_LEEWAY
        ):
            raise MessageRefused("The LogoutRequest has expired.")
        name_id = message.name_id
        if name_id is None or not (name_id.text or "").strip():
            raise MessageRefused("The LogoutRequest names nobody (no plain NameID).")
        indexes = [(i.text or "").strip() for i in message.session_index or []]
        try:
            response = _logout_response(client, connector, idp, message, data.get("RelayState", ""))
        except XmlsecTimeout as exc:
            # The sign-out was asked for and checked: it happens; only the IdP's answer
            # (signed for the POST binding) is missing, as for an IdP without SLO.
            logger.warning("%s: LogoutResponse not signed: %s", connector.slug, exc)
            response = None
    return LogoutAnswer(
        idp_session=IdPSession(
            sid=indexes[0][:255] if len(indexes) == 1 else "",
            subject=(name_id.text or "").strip()[:255],
        ),
        response=response,
    )


def _epoch(value: Any) -> float:
    """A SAML time as seconds since the epoch; ``ValueError`` for anything else."""
    try:
        return float(calendar.timegm(str_to_time(str(value))))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{str(value)[:40]!r} is not a SAML time") from exc


#: Seconds a LogoutRequest stays acceptable after its IssueInstant (plus the clock
#: leeway). The IdP sends the browser here at once; pysaml2 alone allows a day, which
#: lets a request read from a browser history or a proxy log end sessions again.
LOGOUT_REQUEST_MAX_AGE = 300


def _refuse_stale_or_replayed(connector: Connector, message: Any) -> None:
    leeway = app_settings.CLOCK_LEEWAY
    issued = _epoch(message.issue_instant)
    if not time.time() - LOGOUT_REQUEST_MAX_AGE - leeway <= issued <= time.time() + leeway:
        raise MessageRefused(f"The LogoutRequest was issued at {message.issue_instant}.")
    kind = UsedSAMLMessage.LOGOUT_REQUEST
    try:
        first = replay.first_use(
            connector, kind, str(message.id), LOGOUT_REQUEST_MAX_AGE + 2 * leeway
        )
    except replay.ReplayRegisterUnavailable as exc:
        raise MessageRefused(f"LogoutRequest replay register: {exc}") from exc
    if not first:
        raise MessageRefused(f"LogoutRequest {message.id!r} was used before.")


def _logout_response(
    client: Any, connector: Connector, idp: IdPMetadata, message: Any, relay_state: str
) -> Outgoing | None:
    if idp.slo is None:
        return None
    destination = idp.slo.response_url or idp.slo.url
    post = idp.slo.binding == BINDING_HTTP_POST
    response = client._status_response(
        samlp.LogoutResponse,
        client._issuer(),
        None,
        post,  # enveloped signature for the POST binding (the client was made to sign)
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        destination=destination,
        in_response_to=message.id,
    )
    return _send(
        connector, idp.slo.binding, str(response), destination, relay_state, kind="SAMLResponse"
    )


def check_logout_response(
    request: HttpRequest, connector: Connector, data: Mapping[str, str], *, query_string: str
) -> str:
    """The IdP's answer to our LogoutRequest: ``""`` when it signed out, else why not.

    Signing out here happened before the browser went to the IdP; this only
    tells whether the IdP's session ended too.
    """
    try:
        idp = get_idp_metadata(connector)
        xml, binding = _incoming(request.method or "GET", data, query_string, "SAMLResponse")
        # Bounded, well-formed XML, signatures in place, before pysaml2 decodes the value
        # again (it tries DEFLATE on POSTed values too, with no bound).
        check_signature_placement(xml, root_tag=f"{{{SAMLP}}}LogoutResponse")
        if binding == BINDING_HTTP_REDIRECT:
            redirect.verify_signature(
                query_string, "SAMLResponse", idp.certificates, allow_sha1=connector.saml_allow_sha1
            )
        with saml_client(request, connector, idp) as client:
            response = client.parse_logout_request_response(data.get("SAMLResponse", ""), binding)
    except (MessageRefused, SAMLMetadataError) as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001
        return f"LogoutResponse refused: {exc!r}"[:500]
    if response is None:
        return "no LogoutResponse"
    code = getattr(getattr(response.response, "status", None), "status_code", None)
    if code is None:
        return "no status"  # pysaml2 lets a LogoutResponse without Status through
    status = code.value
    return "" if status == samlp.STATUS_SUCCESS else f"IdP status {status}"
