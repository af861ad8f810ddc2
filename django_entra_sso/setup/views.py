"""The customer's setup page, ``setup/<token>/``: a guide, the values to paste, a form, a test.

No Django account is needed: the link's token is the credential, and it opens
one connector's IdP fields and nothing else (not its email domains, which would
route sign-ins, nor any other setting). Every answer is ``never_cache``, not to
be indexed, and sends no Referer (the token is in the URL). A link that does
not work answers one 404 page, whatever the reason; too many POSTs through a
link answer 429.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .. import links as urls
from ..models import Connector, SetupLink
from . import guides
from . import links as setup_links
from .forms import SetupForm

logger = logging.getLogger(__name__)


def paste_values(request: HttpRequest, connector: Connector) -> list[tuple[str, str, str]]:
    """``(label, URL, element id)`` of what the customer pastes into the IdP's console."""
    if connector.is_saml:
        return [
            (_("Entity ID"), urls.saml_metadata_uri(request, connector), "entity-id"),
            (
                _("Assertion Consumer Service URL"),
                urls.saml_acs_uri(request, connector),
                "acs-url",
            ),
            (_("Single logout URL"), urls.saml_sls_uri(request, connector), "sls-url"),
            (_("SP metadata URL"), urls.saml_metadata_uri(request, connector), "sp-metadata-url"),
        ]
    return [
        (_("Redirect URI"), urls.redirect_uri(request, connector), "redirect-uri"),
        (
            _("Front-channel logout URL"),
            urls.frontchannel_logout_uri(request, connector),
            "frontchannel-logout-url",
        ),
        (
            _("Post-logout redirect URI"),
            urls.post_logout_redirect_uri(request),
            "post-logout-redirect-uri",
        ),
    ]


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int) -> Any:
    response = TemplateResponse(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def invalid_link(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "django_entra_sso/setup/unavailable.html",
        {
            "title": _("Setup link not valid"),
            "message": _(
                "This setup link is not valid any more: it expired, was replaced or was never "
                "valid. Ask for a new one."
            ),
        },
        404,
    )


def too_many(request: HttpRequest) -> HttpResponse:
    response = _page(
        request,
        "django_entra_sso/setup/unavailable.html",
        {
            "title": _("Too many attempts"),
            "message": _(
                "This setup link was used too often in the last minutes. Wait ten minutes, "
                "then try again."
            ),
        },
        429,
    )
    response["Retry-After"] = str(setup_links.POST_WINDOW)
    return response


@method_decorator(never_cache, name="dispatch")
@method_decorator(sensitive_post_parameters("client_secret"), name="dispatch")
class SetupView(View):
    http_method_names = ["get", "post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        link = setup_links.usable_link(kwargs.get("token"))
        if link is None:
            return invalid_link(request)
        self.link = link
        response = super().dispatch(request, *args, **kwargs)
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Referrer-Policy"] = "no-referrer"
        return response

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        return self.render(request, SetupForm(self.link.connector))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        if not setup_links.allow_post(link):
            logger.warning("Setup link %s of %s: too many POSTs.", link.pk, link.connector.slug)
            return too_many(request)
        if request.POST.get("action") == "test":
            return self.test(request)
        connector = link.connector
        form = SetupForm(connector, request.POST)
        if not form.is_valid():
            fields = ", ".join(sorted(form.errors)) or "-"
            setup_links.record(request, connector, "refused", f"invalid: {fields}", link=link)
            # The model instance may hold the refused values: read the saved ones again.
            link.connector = Connector.objects.get(pk=connector.pk)
            return self.render(request, form, status=400)
        changed = form.save()
        setup_links.record(
            request,
            connector,
            "saved",
            "changed: " + (", ".join(changed) or "nothing"),
            link=link,
        )
        return self.render(request, SetupForm(connector), saved=True)

    def test(self, request: HttpRequest) -> HttpResponse:
        from ..oidc.metadata import check_connection
        from ..saml.metadata import check_saml_connection

        connector = self.link.connector
        report: Any = (
            check_saml_connection(connector) if connector.is_saml else check_connection(connector)
        )
        setup_links.record(
            request,
            connector,
            "tested",
            "healthy" if report.ok else f"not healthy: {report.error}",
            link=self.link,
        )
        return self.render(request, SetupForm(connector), report=report)

    def render(
        self,
        request: HttpRequest,
        form: SetupForm,
        *,
        status: int = 200,
        saved: bool = False,
        report: Any = None,
    ) -> HttpResponse:
        link: SetupLink = self.link
        connector = link.connector
        context = {
            "connector": connector,
            "link": link,
            "form": form,
            "saml": connector.is_saml,
            "steps": guides.steps_for(connector.provider, saml=connector.is_saml),
            "paste_values": paste_values(request, connector),
            "domains": [d.domain for d in connector.domains.all()],
            "site": request.get_host(),
            "has_secret": connector.has_client_secret,
            "saved": saved,
            "report": report,
        }
        return TemplateResponse(request, "django_entra_sso/setup/page.html", context, status=status)
