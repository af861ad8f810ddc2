"""SAML endpoints of a connector: SP metadata, assertion consumer service, single logout.

Thin, like the OIDC views: parse the request, call ``saml.adapter`` outside any
transaction, then hand a verified sign-in to ``views.finish_sign_in`` (the same
short transaction as OIDC) or the IdP session to end to ``sessions``.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    HttpResponseRedirect,
    QueryDict,
)
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from .. import links
from ..errors import SignInError
from ..models import Connector
from ..sessions import end_idp_session
from ..setup import trial as setup_trial
from ..views import (
    _already_signed_in,
    _failed,
    _param,
    _refused,
    _signed_in_through,
    finish_sign_in,
    send_saml,
)
from . import adapter, flow
from .client import sp_metadata_xml
from .messages import MessageRefused
from .metadata import SAMLMetadataError
from .xmlsec import XmlsecMissing

logger = logging.getLogger(__name__)


def _saml_connector(slug: str) -> Connector | None:
    return Connector.objects.filter(slug=slug, protocol=Connector.Protocol.SAML).first()


class MetadataView(View):
    """The SP metadata the IdP is given; its URL is the SP entity ID."""

    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        connector = _saml_connector(slug)
        if connector is None:
            return HttpResponseNotFound("Unknown SAML connector.", content_type="text/plain")
        try:
            xml = sp_metadata_xml(request, connector)
        except XmlsecMissing as exc:
            logger.error("SAML metadata of %s: %s", slug, exc)
            return HttpResponse(str(exc), status=503, content_type="text/plain")
        response = HttpResponse(xml, content_type="application/samlmetadata+xml")
        response["Content-Disposition"] = f'inline; filename="{slug}-sp-metadata.xml"'
        return response


@method_decorator(never_cache, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("SAMLResponse"), name="dispatch")
class AssertionConsumerView(View):
    """HTTP-POST binding. The cross-site POST is kept and resumed as a same-site GET."""

    http_method_names = ["get", "post", "head", "options"]

    @sensitive_variables("saml_response")
    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        if _saml_connector(slug) is None:
            return _failed(request, "unknown_connector", slug=slug)
        saml_response = _param(request.POST, "SAMLResponse")
        if not saml_response:
            return _failed(
                request, "invalid_request", slug=slug, log="ACS POST without SAMLResponse"
            )
        try:
            handle = flow.stash_post(saml_response, _param(request.POST, "RelayState"))
        except Exception as exc:  # noqa: BLE001 - a cache that is down must not be a 500
            return _failed(request, "unavailable", slug=slug, log=f"cache: {exc!r}")
        if handle is None:
            return _failed(request, "invalid_request", slug=slug, log="SAMLResponse out of bounds")
        url = reverse("entra_sso:saml_acs", args=[slug]) + "?" + urlencode({"resume": handle})
        response = HttpResponseRedirect(url, status=303)  # type: ignore[call-arg]
        response["Cache-Control"] = "no-store"
        return response

    @sensitive_variables("posted")
    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        connector = _saml_connector(slug)
        if connector is None:
            return _failed(request, "unknown_connector", slug=slug)
        try:
            posted = flow.claim_post(_param(request.GET, "resume"))
        except Exception as exc:  # noqa: BLE001
            return _failed(request, "unavailable", connector=connector, log=f"cache: {exc!r}")
        if posted is None:
            if _signed_in_through(request, slug):
                return _already_signed_in()  # the back button after signing in
            return _failed(
                request, "invalid_state", connector=connector, log="unknown ACS resume handle"
            )
        try:
            verified = adapter.complete_sign_in(
                request, connector, posted.get("SAMLResponse", ""), posted.get("RelayState", "")
            )
        except SignInError as exc:
            if exc.purpose == "trial":
                return setup_trial.failed(request, connector, exc)
            return _refused(request, connector, exc)
        if verified.purpose == "trial":
            return setup_trial.finish(request, verified)  # a setup page's test: no sign-in
        return finish_sign_in(request, verified)


@method_decorator(never_cache, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
class SingleLogoutView(View):
    """Single logout, Redirect (GET) and POST bindings.

    A ``SAMLRequest`` is the IdP signing the person out (from another app): the
    sessions it names end here and a signed ``LogoutResponse`` goes back. A
    ``SAMLResponse`` answers our own LogoutRequest: this site signed out
    already, so the browser goes on to the signed-out page either way.
    """

    http_method_names = ["get", "post", "head", "options"]

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return self.handle(request, slug, request.GET)

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        return self.handle(request, slug, request.POST)

    def handle(self, request: HttpRequest, slug: str, data: QueryDict) -> HttpResponse:
        connector = _saml_connector(slug)
        if connector is None:
            return HttpResponseNotFound("Unknown SAML connector.", content_type="text/plain")
        names = ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature")
        if any(len(data.getlist(name)) > 1 for name in names):
            # The signature must cover the very message that is used: one of each.
            return HttpResponseBadRequest("A SAML parameter is repeated.")
        fields = {name: _param(data, name) for name in names}
        query_string = request.META.get("QUERY_STRING", "")
        if fields["SAMLRequest"]:
            return self.logout_request(request, connector, fields, query_string)
        if fields["SAMLResponse"]:
            problem = adapter.check_logout_response(
                request, connector, fields, query_string=query_string
            )
            if problem:
                logger.warning("SAML LogoutResponse at %s: %s", slug, problem)
            return HttpResponseRedirect(links.post_logout_redirect_uri(request))
        return HttpResponseBadRequest("SAMLRequest or SAMLResponse is required.")

    def logout_request(
        self, request: HttpRequest, connector: Connector, fields: dict[str, str], query: str
    ) -> HttpResponse:
        try:
            answer = adapter.handle_logout_request(request, connector, fields, query_string=query)
        except SAMLMetadataError as exc:
            logger.warning("SAML logout at %s: metadata: %s", connector.slug, exc)
            return HttpResponse("The identity provider's metadata is unavailable.", status=503)
        except (MessageRefused, XmlsecMissing) as exc:
            logger.warning("SAML LogoutRequest at %s refused: %s", connector.slug, exc)
            return HttpResponseBadRequest("The LogoutRequest was refused.")
        ended = end_idp_session(
            connector, answer.idp_session, reason="frontchannel", request=request
        )
        logger.info("SAML single logout at %s ended %d session(s).", connector.slug, ended)
        if answer.response is None:
            return HttpResponseRedirect(links.post_logout_redirect_uri(request))
        return send_saml(request, answer.response)
