""" "Try signing in" from a setup page: a real round trip to the IdP that signs no one in.

The customer's administrator signs in through the connector as it is saved and
sees what this site received: the claims it will use, the groups, which email
domain matched. The sign-in goes through the same checks as a real one (state,
PKCE, signature, issuer, audience, nonce; for SAML the Response's signature,
audience and times) but stops before the accounts layer: no Django user is made
or changed, no one is logged in, no SSO session is indexed, no signal is sent.
The result waits in the browser's own session for the setup page to show once;
the link remembers a success, which "Activate" needs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ..crypto import SecretDecryptionError, decrypt_secret, encrypt_secret
from ..errors import MESSAGES, SignInError
from ..models import Connector, SetupLink
from ..validation import domain_of_email
from ..verified import VerifiedSignIn
from . import addresses
from . import links as setup_links

logger = logging.getLogger(__name__)

RESULT_SESSION_KEY = "entra_sso_setup_trial"
#: Claims shown on the page: enough to recognise them, not a dump of a huge token.
MAX_CLAIMS = 60
MAX_VALUE_LENGTH = 300


def start(request: HttpRequest, link: SetupLink, token: str) -> HttpResponse:
    """Send the browser to the IdP for a trial sign-in through the link's connector."""
    from ..oidc import adapter
    from ..saml import adapter as saml_adapter
    from ..views import send_saml

    connector = link.connector
    back = reverse("entra_sso:setup", args=[token])
    way_back = _sealed_way_back(token)
    link.trying_fingerprint = setup_links.fingerprint(connector)
    link.save(update_fields=["trying_fingerprint"])
    try:
        problem = addresses.discovery_endpoints_problem(connector)
        if problem:
            raise SignInError("misconfigured", problem)
        if connector.is_saml:
            outgoing = saml_adapter.start_sign_in(
                request, connector, login_hint="", next_url=way_back, purpose="trial"
            )
            return send_saml(request, outgoing)
        url = adapter.start_sign_in(
            request, connector, login_hint="", next_url=way_back, purpose="trial"
        )
    except SignInError as exc:
        return _fail(request, link, back, exc)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    return response


#: A trial's way back, as its pending sign-in keeps it: the setup link's token, encrypted.
#: The session store (database, cache, files) keeps what the pending sign-in says, for as
#: long as the session lasts if the trial is never finished; the token in the clear there
#: would be a working link where the README promises only its SHA-256 is stored.
_SEALED = "setup-trial:"


def _sealed_way_back(token: str) -> str:
    return _SEALED + encrypt_secret(token)


def _link_of(next_url: str) -> tuple[SetupLink | None, str]:
    """The usable link a trial's sealed way back names, and its setup page's path."""
    if not next_url.startswith(_SEALED):
        return None, ""
    try:
        token = decrypt_secret(next_url[len(_SEALED) :])
    except SecretDecryptionError:  # the keys were rotated meanwhile, or it is no seal
        return None, ""
    link = setup_links.usable_link(token)
    return (link, reverse("entra_sso:setup", args=[token])) if link else (None, "")


def finish(request: HttpRequest, verified: VerifiedSignIn) -> HttpResponse:
    """A verified trial: keep what was received for the setup page; sign no one in."""
    from .views import invalid_link

    link, back = _link_of(verified.next_url)
    person = verified.person
    if link is None or link.connector_id != person.connector.pk:
        return invalid_link(request)
    summary = summarize(verified)
    link.tried_at = timezone.now()
    # What was tried is what was saved when the trial started and is still saved now (the
    # callback redeemed the code with the values of now): a save in another tab meanwhile
    # leaves nothing tried, and "Activate" asks for a new trial.
    now_saved = setup_links.fingerprint(person.connector)
    link.tried_fingerprint = now_saved if now_saved == link.trying_fingerprint else ""
    link.save(update_fields=["tried_at", "tried_fingerprint"])
    setup_links.record(
        request,
        link.connector,
        "tried",
        f"signed in: subject {person.subject[:80]}, email domain {summary['domain'] or '-'}",
        link=link,
    )
    _keep(request, link, summary)
    return HttpResponseRedirect(back)


def failed(request: HttpRequest, connector: Connector, exc: SignInError) -> HttpResponse:
    """A refused trial: say why on the setup page (the details go to the audit and the log)."""
    from ..errors import error_response

    link, back = _link_of(exc.next_url)
    if link is None or link.connector_id != connector.pk:
        return error_response(request, exc.code, log=f"{connector.slug} (trial): {exc}")
    return _fail(request, link, back, exc)


def _fail(request: HttpRequest, link: SetupLink, back: str, exc: SignInError) -> HttpResponse:
    logger.warning("Trial sign-in through %s refused: %s", link.connector.slug, exc)
    setup_links.record(request, link.connector, "tried", f"failed ({exc.code}): {exc}", link=link)
    title, happened, _what, _status = MESSAGES.get(exc.code, MESSAGES["idp_error"])
    _keep(
        request,
        link,
        {"ok": False, "code": exc.code, "title": str(title), "happened": str(happened)},
    )
    return HttpResponseRedirect(back)


def _keep(request: HttpRequest, link: SetupLink, result: dict[str, Any]) -> None:
    request.session[RESULT_SESSION_KEY] = {"link": link.pk, **result}


def take_result(request: HttpRequest, link: SetupLink) -> dict[str, Any] | None:
    """The trial result waiting for this link's page in this browser, shown once."""
    session = getattr(request, "session", None)
    if session is None or RESULT_SESSION_KEY not in session:
        return None
    result = session.pop(RESULT_SESSION_KEY)
    if not isinstance(result, dict) or result.get("link") != link.pk:
        return None
    return result


def summarize(verified: VerifiedSignIn) -> dict[str, Any]:
    """What the page shows of a trial: the fields this site will use, and every claim."""
    person = verified.person
    connector = person.connector
    domain = domain_of_email(person.email) if person.email else None
    owned = {d.domain: d for d in connector.domains.all()}
    matched = owned.get(domain or "")
    if matched is None:
        if owned and domain:
            verdict = _(
                "%(domain)s is not one of this connector's email domains: a person with this "
                "address could not sign in."
            ) % {"domain": domain}
        elif not domain:
            verdict = _("The IdP sent no email address this site can use.")
        else:
            verdict = _("This connector has no email domains yet.")
    elif not matched.is_verified:
        verdict = _(
            "%(domain)s is one of this connector's domains, but not verified yet: verify it "
            "below before people can sign in."
        ) % {"domain": domain}
    else:
        verdict = _("%(domain)s is one of this connector's verified domains.") % {"domain": domain}
    return {
        "ok": True,
        "fields": [
            (str(_("Identity key (issuer)")), person.issuer),
            (str(_("Identity key (subject)")), person.subject),
            (str(_("Email")), person.email or "-"),
            (
                str(_("Email verified by the IdP")),
                str(_("yes") if person.email_verified else _("no")),
            ),
            (str(_("Given name")), person.given_name or "-"),
            (str(_("Family name")), person.family_name or "-"),
            (str(_("Tenant")), person.tenant_id or "-"),
        ],
        "groups": None if person.groups is None else sorted(person.groups),
        "domain": domain or "",
        "domain_verdict": str(verdict),
        "domain_ok": matched is not None and matched.is_verified,
        "claims": _claims(person.claims),
    }


def _claims(claims: Mapping[str, Any]) -> list[tuple[str, str]]:
    shown = []
    for name in sorted(claims)[:MAX_CLAIMS]:
        value = claims[name]
        text = value if isinstance(value, str) else repr(value)
        if len(text) > MAX_VALUE_LENGTH:
            text = text[: MAX_VALUE_LENGTH - 1] + "…"
        shown.append((str(name), text))
    return shown
