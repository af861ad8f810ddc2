"""The customer's setup page, ``setup/<token>/``: a guide, the values to paste, a form, a test.

No Django account is needed: the link's token is the credential, and it opens
one connector's IdP fields and nothing else (not its email domains, which would
route sign-ins, nor any other setting). Every answer is ``never_cache``, not to
be indexed, and sends no Referer to other sites (the token is in the URL). A link that does
not work answers one 404 page, whatever the reason; too many POSTs through a
link answer 429.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from .. import links as urls
from ..conf import app_settings
from ..keypairs import sha1_thumbprint
from ..models import ClientKey, Connector, EmailDomain, SetupLink
from . import addresses, domains, guides, notify, trial
from . import links as setup_links
from .forms import SetupForm

logger = logging.getLogger(__name__)

#: The token is in the URL: no other site may see it in a Referer (the guides link to
#: the IdPs' consoles). Not ``no-referrer``: with it Chromium sends ``Origin: null`` on
#: the page's own POSTs, which Django's CSRF check refuses (found by the browser test).
REFERRER_POLICY = "same-origin"


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


def trial_matches(link: SetupLink, connector: Connector) -> bool:
    """A trial succeeded with the values the connector holds now."""
    return link.tried_at is not None and link.tried_fingerprint == setup_links.fingerprint(
        connector
    )


def certificates(connector: Connector) -> list[ClientKey]:
    """The client certificates to upload (``private_key_jwt``): made when there is none yet."""
    if connector.is_saml or connector.client_auth != Connector.ClientAuth.PRIVATE_KEY_JWT:
        return []
    from ..oidc.credentials import active_key, published_keys

    active_key(connector)
    return published_keys(connector)


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int) -> Any:
    response = TemplateResponse(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = REFERRER_POLICY
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
    #: The page's forms, by the ``action`` they post.
    actions = {
        "save": "save",
        "test": "test",
        "try": "try_sign_in",
        "add_domain": "add_domain",
        "verify_domain": "verify_domain",
        "remove_domain": "remove_domain",
        "activate": "activate",
    }

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        link = setup_links.usable_link(kwargs.get("token"))
        if link is None:
            if setup_links.network_refused(request):
                return too_many(request)
            setup_links.count_bad_token(request)
            return invalid_link(request)
        self.link = link
        response = super().dispatch(request, *args, **kwargs)
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Referrer-Policy"] = REFERRER_POLICY
        return response

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        if not setup_links.allow_get(self.link):
            return too_many(request)
        if "certificate" in request.GET:
            return self.certificate(request, str(request.GET["certificate"]))
        return self.render(
            request,
            SetupForm(self.link.connector),
            trial_result=trial.take_result(request, self.link),
        )

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        if not setup_links.allow_post(link):
            logger.warning("Setup link %s of %s: too many POSTs.", link.pk, link.connector.slug)
            return too_many(request)
        method = self.actions.get(str(request.POST.get("action", "save")))
        if method is None:
            return self.render(request, SetupForm(link.connector), status=400)
        response: HttpResponse = getattr(self, method)(request, token)
        return response

    def save(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        connector = link.connector
        form = SetupForm(connector, request.POST)
        if not form.is_valid():
            fields = ", ".join(sorted(form.errors)) or "-"
            setup_links.record(request, connector, "refused", f"invalid: {fields}", link=link)
            # The model instance may hold the refused values: read the saved ones again.
            link.connector = Connector.objects.get(pk=connector.pk)
            return self.render(request, form, status=400)
        changed = form.save()
        withdrawn = bool(changed) and link.activation_requested_at is not None
        if changed and (link.tried_at is not None or link.activation_requested_at is not None):
            # What was tried is not what is saved now: "Activate" (or the request to the
            # site's team) needs a new try.
            link.tried_at = None
            link.activation_requested_at = None
            link.save(update_fields=["tried_at", "activation_requested_at"])
        setup_links.record(
            request,
            connector,
            "saved",
            "changed: "
            + (", ".join(changed) or "nothing")
            + ("; activation request withdrawn" if withdrawn else ""),
            link=link,
        )
        if withdrawn:
            # The team may be about to switch on what they were asked to: tell them the
            # values they would switch on are not the ones the customer tried.
            notify.activation_withdrawn(request, connector, link)
        return self.render(request, SetupForm(connector), saved=True)

    def test(self, request: HttpRequest, token: str) -> HttpResponse:
        from ..oidc.metadata import check_connection
        from ..saml.metadata import check_saml_connection

        connector = self.link.connector
        report: Any = (
            check_saml_connection(connector)
            if connector.is_saml
            else check_connection(connector, endpoint_problem=addresses.private_address_problem)
        )
        setup_links.record(
            request,
            connector,
            "tested",
            "healthy" if report.ok else f"not healthy: {report.error}",
            link=self.link,
        )
        return self.render(request, SetupForm(connector), report=report)

    def certificate(self, request: HttpRequest, kid: str) -> HttpResponse:
        """One of the connector's published client certificates, to upload to the IdP."""
        key = next((k for k in certificates(self.link.connector) if k.kid == kid), None)
        if key is None:
            return self.render(request, SetupForm(self.link.connector), status=404)
        response = HttpResponse(key.certificate, content_type="application/x-pem-file")
        name = f"{self.link.connector.slug}-{key.state}-{key.kid[:8]}.pem"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def try_sign_in(self, request: HttpRequest, token: str) -> HttpResponse:
        return trial.start(request, self.link, token)

    def add_domain(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        if not app_settings.REQUIRE_DOMAIN_VERIFICATION:
            # Unproved domains route sign-ins on such a site: a link holder could take
            # any domain no connector has yet, the site's own staff's included.
            setup_links.record(
                request, link.connector, "refused", "domains are the site's team's", link=link
            )
            return self.render(request, SetupForm(link.connector), status=403)
        form = domains.AddDomainForm(link.connector, request.POST)
        if not form.is_valid():
            setup_links.record(request, link.connector, "refused", "domain not added", link=link)
            return self.render(request, SetupForm(link.connector), domain_form=form, status=400)
        added = form.save()
        if added is None:
            return self.render(request, SetupForm(link.connector), domain_form=form, status=409)
        setup_links.record(request, link.connector, "domain_added", added.domain, link=link)
        return self.render(request, SetupForm(link.connector), domain_added=added)

    def _own_domain(self, request: HttpRequest) -> EmailDomain | None:
        value = str(request.POST.get("domain_id", ""))
        # isdecimal() alone lets "¹" and other non-ASCII digits through to int().
        if not (value.isascii() and value.isdecimal()) or len(value) > 18:
            return None
        return self.link.connector.domains.filter(pk=int(value)).first()

    def verify_domain(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        domain = self._own_domain(request)
        if domain is None:
            return self.render(request, SetupForm(link.connector), status=400)
        result = domains.verify(domain)
        check = result.check
        if result.verified:
            outcome = f"{domain.domain}: verified at {check.found_at}"
        elif check.verified:
            outcome = f"{domain.domain}: record found, but verified by another connector"
        else:
            outcome = f"{domain.domain}: {'DNS unreachable' if check.unreachable else 'no record'}"
        setup_links.record(request, link.connector, "domain_checked", outcome, link=link)
        return self.render(request, SetupForm(link.connector), dns_check=(domain.pk, result))

    def remove_domain(self, request: HttpRequest, token: str) -> HttpResponse:
        link = self.link
        domain = self._own_domain(request)
        if domain is None or domain.is_verified:
            # A verified domain routes sign-ins: the site's team removes it, not a link.
            return self.render(request, SetupForm(link.connector), status=400)
        domain.delete()
        setup_links.record(request, link.connector, "domain_removed", domain.domain, link=link)
        return self.render(request, SetupForm(link.connector))

    def activate(self, request: HttpRequest, token: str) -> HttpResponse:
        site_owner = app_settings.SETUP_ACTIVATION == "site_owner"
        with transaction.atomic():
            # Locked and read again: two presses, a save in another tab or a revocation
            # meanwhile must not turn on something else, or anything twice.
            link = SetupLink.objects.select_for_update().get(pk=self.link.pk)
            connector = Connector.objects.select_for_update().get(pk=link.connector_id)
            self.link = link
            if not link.is_usable() or connector.enabled:
                return invalid_link(request)
            if not trial_matches(link, connector):
                return self.render(
                    request, SetupForm(connector), activation_refused=True, status=400
                )
            now = timezone.now()
            if site_owner:
                first = link.activation_requested_at is None
                if first:
                    link.activation_requested_at = now
                    link.save(update_fields=["activation_requested_at"])
                    setup_links.record(request, connector, "requested", "", link=link)
            else:
                link.activated_at = now  # the link is used up (not revoked by switching on)
                link.save(update_fields=["activated_at"])
                connector.enabled = True
                connector.save(update_fields=["enabled", "updated_at"])
                setup_links.record(request, connector, "activated", "connector enabled", link=link)
        if site_owner:
            if first:
                notify.activation_requested(request, connector, link)
            return self.render(request, SetupForm(connector))
        notify.activated(request, connector, link)
        return _page(
            request,
            "django_entra_sso/setup/activated.html",
            {
                "connector": connector,
                "domains": [d for d in connector.domains.all() if d.is_verified],
                "site": request.get_host(),
            },
            200,
        )

    def render(
        self,
        request: HttpRequest,
        form: SetupForm,
        *,
        status: int = 200,
        saved: bool = False,
        report: Any = None,
        trial_result: dict[str, Any] | None = None,
        domain_form: Any = None,
        domain_added: Any = None,
        dns_check: Any = None,
        activation_refused: bool = False,
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
            "domains": domains.rows(connector, dns_check),
            "domain_form": domain_form or domains.AddDomainForm(connector),
            "domains_by_site_team": not app_settings.REQUIRE_DOMAIN_VERIFICATION,
            "domain_added": domain_added,
            "site": request.get_host(),
            "has_secret": connector.has_client_secret,
            "certificates": [
                (key, sha1_thumbprint(key.certificate)) for key in certificates(connector)
            ],
            "saved": saved,
            "report": report,
            "trial": trial_result,
            "can_activate": trial_matches(link, connector),
            "activation_by_site_owner": app_settings.SETUP_ACTIVATION == "site_owner",
            "activation_refused": activation_refused,
        }
        return TemplateResponse(request, "django_entra_sso/setup/page.html", context, status=status)
