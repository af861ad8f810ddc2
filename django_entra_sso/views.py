"""Sign-in, callback, sign-out, front- and back-channel logout, third-party initiation.

Views are thin: they parse the request, call the protocol adapter (``oidc.adapter``)
outside any database transaction, and then, for a sign-in, open one short
transaction for ``accounts`` (through ``authenticate``), ``login`` and ``sessions``.
Refusals become the error page of ``errors``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import authenticate, login, logout
from django.db import DatabaseError, transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from . import links, revalidation, signin_log
from .conf import app_settings
from .errors import SignInError, error_response
from .lookups import connector_by_slug
from .models import Connector, EmailDomain
from .oidc import adapter, credentials, flow
from .oidc.metadata import MetadataError
from .oidc.tokens import TokenError
from .saml import adapter as saml_adapter
from .sessions import (
    bind_session,
    end_idp_session,
    end_sessions_for_sid,
    sign_out_hints,
    signed_in_connector,
)
from .setup import trial as setup_trial
from .signals import sso_signed_in, sso_signed_out
from .validation import domain_of_email
from .verified import VerifiedSignIn

logger = logging.getLogger(__name__)


def _param(data: Any, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def _start_sign_in(
    request: HttpRequest, connector: Connector, *, login_hint: str, next_url: str
) -> HttpResponse:
    try:
        if connector.is_saml:
            outgoing = saml_adapter.start_sign_in(
                request, connector, login_hint=login_hint, next_url=next_url
            )
            return send_saml(request, outgoing)
        url = adapter.start_sign_in(request, connector, login_hint=login_hint, next_url=next_url)
    except SignInError as exc:
        return _refused(request, connector, exc, email=login_hint)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    return response


def send_saml(request: HttpRequest, outgoing: saml_adapter.Outgoing) -> HttpResponse:
    """A SAML message to the IdP: a redirect, or a page that posts it (HTTP-POST binding)."""
    if outgoing.method == "POST":
        response: HttpResponse = TemplateResponse(
            request,
            "django_entra_sso/saml_post.html",
            {"url": outgoing.url, "fields": dict(outgoing.fields)},
        )
    else:
        response = HttpResponseRedirect(outgoing.url)
    response["Cache-Control"] = "no-store"
    return response


def _refused(
    request: HttpRequest,
    connector: Connector,
    exc: SignInError,
    *,
    email: str = "",
    subject: str = "",
) -> HttpResponse:
    signin_log.record_refusal(
        request, exc.code, connector=connector, detail=str(exc), email=email, subject=subject
    )
    return error_response(
        request, exc.code, log=f"{connector.slug}: {exc}", status=exc.status, next_url=exc.next_url
    )


def _failed(
    request: HttpRequest,
    code: str,
    *,
    connector: Connector | None = None,
    slug: str = "",
    log: str = "",
    email: str = "",
    subject: str = "",
) -> HttpResponse:
    """``error_response`` for a sign-in that did not complete, recorded in the sign-in log."""
    signin_log.record_refusal(
        request, code, connector=connector, slug=slug, detail=log, email=email, subject=subject
    )
    return error_response(request, code, log=log)


@method_decorator(never_cache, name="dispatch")
class LoginView(View):
    """Identifier-first sign-in: the email's domain picks the connector."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_entra_sso/login.html"

    def render(
        self, request: HttpRequest, *, email: str = "", error: str = "", status: int = 200
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            self.template_name,
            {
                "email": email,
                "error": error,
                "next": links.next_of(request),
                "password_login_url": app_settings.PASSWORD_LOGIN_URL,
                # Say so rather than make a signed-in person wonder why they are here.
                "signed_in_user": request.user if request.user.is_authenticated else None,
                "ended": revalidation.ENDED_MESSAGES.get(_param(request.GET, "ended"), ""),
            },
            status=status,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        next_url = links.safe_next(request.GET.get("next"))
        slug = _param(request.GET, "connector")
        if slug:
            connector = connector_by_slug(slug)
            if connector is None:
                return _failed(request, "unknown_connector", slug=slug)
            return _start_sign_in(
                request,
                connector,
                login_hint=_param(request.GET, "login_hint"),
                next_url=next_url,
            )
        return self.render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        email = _param(request.POST, "email").strip()[:320]
        next_url = links.next_of(request)
        domain = domain_of_email(email)
        if domain is None:
            return self.render(
                request, email=email, error=_("Enter a work email address, like alice@contoso.com.")
            )
        owner = (
            EmailDomain.objects.trusted().select_related("connector").filter(domain=domain).first()
        )
        if owner is None:
            return self.render(
                request,
                email=email,
                error=_("Single sign-on is not set up for %(domain)s.") % {"domain": domain},
            )
        if not owner.connector.enabled:
            return self.render(
                request,
                email=email,
                error=_("Single sign-on for %(domain)s is switched off at the moment.")
                % {"domain": domain},
            )
        return _start_sign_in(request, owner.connector, login_hint=email, next_url=next_url)


@method_decorator(never_cache, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("code", "id_token", "access_token"), name="dispatch")
class CallbackView(View):
    """The connector's redirect URI: query (GET) and form_post (POST)."""

    http_method_names = ["get", "post", "head", "options"]

    @sensitive_variables("data")
    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        # A cross-site POST carries no SameSite=Lax session cookie: keep what the
        # IdP posted and come back as a top-level GET, which does carry it.
        if not Connector.objects.filter(slug=slug).exists():
            return _failed(request, "unknown_connector", slug=slug)
        data = {name: request.POST[name] for name in flow.FORM_POST_FIELDS if name in request.POST}
        if not data:
            return _failed(request, "invalid_state", slug=slug, log="empty form_post callback")
        try:
            handle = flow.stash_form_post(data)
        except Exception as exc:  # noqa: BLE001 - a cache that is down must not be a 500
            return _failed(request, "unavailable", slug=slug, log=f"cache: {exc!r}")
        if handle is None:
            return _failed(
                request,
                "invalid_state",
                slug=slug,
                log="form_post without a well-formed state, or too long",
            )
        url = reverse("entra_sso:callback", args=[slug]) + "?" + urlencode({"resume": handle})
        response = HttpResponseRedirect(url, status=303)  # type: ignore[call-arg]
        response["Cache-Control"] = "no-store"
        return response

    @sensitive_variables("params")
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        params: dict[str, str] | None
        if "resume" in request.GET:
            try:
                params = flow.claim_form_post(_param(request.GET, "resume"))
            except Exception as exc:  # noqa: BLE001 - a cache that is down must not be a 500
                return _failed(request, "unavailable", slug=slug, log=f"cache: {exc!r}")
            if params is None:
                if _signed_in_through(request, slug):
                    return _already_signed_in()
                return _failed(request, "invalid_state", slug=slug, log="unknown form_post handle")
        else:
            params = {name: _param(request.GET, name) for name in flow.FORM_POST_FIELDS}
        return self.complete(request, slug, params)

    @sensitive_variables("params")
    def complete(self, request: HttpRequest, slug: str, params: dict[str, str]) -> HttpResponse:
        connector = connector_by_slug(slug)
        if connector is None:
            return _failed(request, "unknown_connector", slug=slug)
        try:
            verified = adapter.complete_sign_in(request.session, connector, params)
        except SignInError as exc:
            if exc.code == "invalid_state" and _signed_in_through(request, slug):
                # The back button or a reload after signing in: the state is spent,
                # but this browser is signed in through this connector already.
                return _already_signed_in()
            if exc.purpose == "revalidate" and _signed_in_through(request, slug):
                return revalidation.failed(request, connector, exc)
            if exc.purpose == "trial":
                return setup_trial.failed(request, connector, exc)
            return _refused(request, connector, exc)
        if verified.purpose == "trial":
            return setup_trial.finish(request, verified)  # a setup page's test: no sign-in
        if verified.purpose == "revalidate":
            # A silent check of a session already signed in: never a new sign-in.
            if _signed_in_through(request, slug):
                return revalidation.complete(request, verified)
            return _refused(request, connector, SignInError("invalid_state", "revalidation"))
        return self.sign_in(request, verified)

    def sign_in(self, request: HttpRequest, verified: VerifiedSignIn) -> HttpResponse:
        return finish_sign_in(request, verified)


def finish_sign_in(request: HttpRequest, verified: VerifiedSignIn) -> HttpResponse:
    """One short transaction: who the user is, ``login``, and the session index.

    Any protocol's verified sign-in ends here (OIDC callback, SAML ACS).
    """
    connector = verified.person.connector
    who = {"email": verified.person.email or "", "subject": verified.person.subject}
    signed_in = False
    try:
        with transaction.atomic():
            user = authenticate(request, sso_person=verified.person)
            if user is None:
                raise SignInError("refused", "No backend accepted the verified person.")
            login(request, user)  # with the backend that authenticated, a subclass too
            signed_in = True
            bind_session(request, connector, user, verified.idp_session)
    except SignInError as exc:
        _undo(request, signed_in)
        return _refused(request, connector, exc, **who)
    except DatabaseError as exc:
        _undo(request, signed_in)
        return _failed(request, "unavailable", connector=connector, log=f"database: {exc!r}", **who)
    sso_signed_in.send(
        sender=Connector,
        request=request,
        user=user,
        connector=connector,
        claims=dict(verified.person.claims),
    )
    target = verified.next_url or resolve_url(app_settings.LOGIN_REDIRECT_URL)
    return HttpResponseRedirect(target)


def _undo(request: HttpRequest, signed_in: bool) -> None:
    if signed_in:
        try:
            request.session.flush()
        except Exception:
            logger.exception("Could not flush the session after a failed sign-in")


def _signed_in_through(request: HttpRequest, slug: str) -> bool:
    connector = signed_in_connector(request) if request.user.is_authenticated else None
    return connector is not None and connector.slug == slug


def _already_signed_in() -> HttpResponse:
    response = HttpResponseRedirect(resolve_url(app_settings.LOGIN_REDIRECT_URL))
    response["Cache-Control"] = "no-store"
    return response


@method_decorator(never_cache, name="dispatch")
class LogoutView(View):
    """Sign out here and, for SSO sessions, at the identity provider (POST only)."""

    http_method_names = ["get", "post", "head", "options"]
    template_name = "django_entra_sso/logout.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return TemplateResponse(request, self.template_name, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        connector = signed_in_connector(request)
        hints = sign_out_hints(request)
        session_key = request.session.session_key
        user = request.user if request.user.is_authenticated else None
        logout(request)  # its user_logged_out signal drops the session's SSOSession rows
        post_logout = links.post_logout_redirect_uri(request)
        if connector is None:
            return HttpResponseRedirect(post_logout)
        sso_signed_out.send(
            sender=Connector,
            request=request,
            user=user,
            connector=connector,
            session_key=session_key,
            reason="local",
        )
        if connector.is_saml:
            outgoing = saml_adapter.logout_request(request, connector, hints)
            return send_saml(request, outgoing) if outgoing else HttpResponseRedirect(post_logout)
        idp_url = adapter.end_session_url(connector, hints, post_logout_redirect_uri=post_logout)
        return HttpResponseRedirect(idp_url or post_logout)


@method_decorator(never_cache, name="dispatch")
class SignedOutView(View):
    """Where the IdP sends the browser after sign-out: "You have been signed out".

    IdPs add their own parameters (``state``, ``iss``) on the way back; they mean
    nothing here, so the page drops them from the address bar first.
    """

    http_method_names = ["get", "head", "options"]
    template_name = "django_entra_sso/signed_out.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.GET:
            return HttpResponseRedirect(request.path)
        return TemplateResponse(request, self.template_name, {})


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-cache, no-store"
    response["Pragma"] = "no-cache"
    return response


@method_decorator(xframe_options_exempt, name="dispatch")
class FrontchannelLogoutView(View):
    """OpenID Connect Front-Channel Logout 1.0: the IdP frames this URL with ``sid``."""

    http_method_names = ["get", "head", "options"]
    template_name = "django_entra_sso/frontchannel_logout.html"

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        connector = connector_by_slug(slug)
        if connector is None:
            return _no_store(HttpResponseNotFound("Unknown connector."))
        sid = _param(request.GET, "sid")
        iss = _param(request.GET, "iss")
        if not sid or len(sid) > 255:
            return _no_store(HttpResponseBadRequest("The sid parameter is required."))
        if iss and not adapter.issuer_matches(connector, iss):
            return _no_store(HttpResponseBadRequest("The iss parameter is not this connector's."))
        ended = end_sessions_for_sid(connector, sid, reason="frontchannel", request=request)
        logger.info("Front-channel logout at %s ended %d session(s).", slug, ended)
        response = TemplateResponse(request, self.template_name, {"connector": connector})
        origin = urlsplit(connector.issuer)
        response["Content-Security-Policy"] = (
            f"frame-ancestors 'self' {origin.scheme}://{origin.netloc}"
        )
        return _no_store(response)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("logout_token"), name="dispatch")
class BackchannelLogoutView(View):
    """OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a signed ``logout_token``."""

    http_method_names = ["post", "options"]

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        connector = connector_by_slug(slug)
        if connector is None:
            return _no_store(JsonResponse({"error": "invalid_request"}, status=404))
        token = _param(request.POST, "logout_token")
        if not token:
            return self.refuse("invalid_request", "logout_token is missing")
        try:
            idp_session = adapter.verify_logout_token(connector, token)
        except MetadataError as exc:
            return self.refuse("temporarily_unavailable", str(exc))
        except TokenError as exc:
            return self.refuse("invalid_request", f"{slug}: {exc}")
        ended = end_idp_session(connector, idp_session, reason="backchannel")
        logger.info("Back-channel logout at %s ended %d session(s).", slug, ended)
        return _no_store(HttpResponse(status=200))

    @staticmethod
    def refuse(error: str, log: str) -> HttpResponse:
        logger.warning("Back-channel logout refused: %s", log)
        return _no_store(JsonResponse({"error": error}, status=400))


@method_decorator(never_cache, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
class InitiateView(View):
    """OpenID Connect Core §4: sign-in started by the IdP or another party."""

    http_method_names = ["get", "post", "head", "options"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return self.initiate(request, slug, request.GET)

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        return self.initiate(request, slug, request.POST)

    def initiate(self, request: HttpRequest, slug: str, data: Any) -> HttpResponse:
        connector = connector_by_slug(slug)
        if connector is None:
            return _failed(request, "unknown_connector", slug=slug)
        iss = _param(data, "iss")
        if not iss or not adapter.issuer_matches(connector, iss):
            return _failed(
                request, "wrong_callback", connector=connector, log=f"initiate {slug}: iss {iss!r}"
            )
        target = _param(data, "target_link_uri")
        next_url = ""
        if target:
            parts = urlsplit(target)
            if parts.netloc and url_has_allowed_host_and_scheme(
                target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ):
                target = parts.path + (f"?{parts.query}" if parts.query else "")
            next_url = links.safe_next(target)
        login_hint = _param(data, "login_hint")[:320]
        return _start_sign_in(request, connector, login_hint=login_hint, next_url=next_url)


class ClientJWKSView(View):
    """The connector's public client keys (``private_key_jwt``), for IdPs that fetch them.

    Empty for a connector that authenticates with a secret: nothing is made here.
    """

    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        connector = connector_by_slug(slug)
        if connector is None:
            return HttpResponseNotFound("Unknown connector.", content_type="text/plain")
        document = credentials.jwks(connector)
        response = JsonResponse(document)
        response["Content-Type"] = "application/jwk-set+json"
        # Short: a rotation publishes the next key, which IdPs should see soon.
        response["Cache-Control"] = "public, max-age=300"
        return response
