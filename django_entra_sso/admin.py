"""Connector screens: domains inline, a write-only secret, URLs to copy, "Test connection"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from . import links
from .forms import ConnectorForm, EmailDomainForm, EmailDomainFormSet
from .keypairs import sha1_thumbprint
from .models import ClientKey, Connector, EmailDomain, Identity, SignInEvent, SSOSession
from .oidc import credentials
from .oidc.metadata import check_connection
from .saml.metadata import check_saml_connection
from .sessions import end_sessions_for_user
from .setup import links as setup_links


class EmailDomainInline(admin.TabularInline):
    model = EmailDomain
    form = EmailDomainForm
    formset = EmailDomainFormSet
    extra = 1
    fields = ("domain", "sso_only", "verification", "mark_verified")
    readonly_fields = ("verification",)

    @admin.display(description=_("verification"))
    def verification(self, obj: EmailDomain) -> str:
        if obj.pk is None:
            return str(_("Verified by you when saved"))
        if obj.verified_at is not None:
            when = formats.date_format(timezone.localtime(obj.verified_at), "DATETIME_FORMAT")
            return str(
                _("%(method)s, %(detail)s, %(when)s")
                % {
                    "method": obj.get_verification_method_display(),
                    "detail": obj.verified_by,
                    "when": when,
                }
            )
        return str(
            _("Not verified: routes no sign-ins until the TXT record %(record)s is found")
            % {"record": f"entra-sso-verification={obj.verification_token}"}
        )


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    inlines = [EmailDomainInline]
    list_display = ("name", "slug", "provider", "protocol", "issuer", "enabled", "domain_list")
    list_filter = ("provider", "protocol", "enabled")
    search_fields = ("name", "slug", "issuer", "client_id", "domains__domain")
    prepopulated_fields = {"slug": ("name",)}
    actions = ["test_connection_action"]
    change_form_template = "admin/django_entra_sso/connector/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "slug", "provider", "protocol", "enabled")}),
        (
            _("OpenID Connect: from the identity provider's app registration"),
            {
                "fields": (
                    "issuer",
                    "client_id",
                    "client_auth",
                    "client_secret_status",
                    "client_secret",
                    "client_certificates",
                    "client_assertion_alg",
                    "extra_scopes",
                ),
                "description": _("Only for OpenID Connect connectors."),
            },
        ),
        (
            _("SAML 2.0: from the identity provider"),
            {
                "fields": (
                    "saml_metadata_url",
                    "saml_metadata_xml",
                    "allow_idp_initiated",
                    "saml_attribute_map",
                    "saml_allow_sha1",
                ),
                "description": _(
                    "Only for SAML connectors: the IdP's federation metadata, by URL (preferred: "
                    "certificate rollovers are picked up) or pasted."
                ),
            },
        ),
        (
            _("Sign-in behaviour"),
            {
                "fields": (
                    "response_mode",
                    "prompt",
                    "create_users",
                    "link_existing_by_email",
                    "use_userinfo",
                    "allowed_tenants",
                    "allow_any_tenant",
                    "allow_personal_accounts",
                    "group_mapping",
                    "resolve_group_overage",
                    "group_overage_failure",
                )
            },
        ),
        (
            _("Claims and roles"),
            {
                "fields": (
                    "claim_mapping",
                    "trust_preferred_username",
                    "staff_values",
                    "superuser_values",
                )
            },
        ),
        (
            _("API access tokens"),
            {"fields": ("api_audiences", "accept_v1_tokens")},
        ),
        (
            _("Leavers: session lifetime"),
            {"fields": ("revalidate_after", "max_session_age")},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("domains")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (
            "client_secret_status",
            "client_certificates",
            *super().get_readonly_fields(request, obj),
        )

    @admin.display(description=_("Client certificates"))
    def client_certificates(self, obj: Connector | None) -> str:
        """The private_key_jwt certificates: which signs, which waits, when each expires."""
        if obj is None or obj.pk is None:
            return str(_("Made when the connector is saved with private_key_jwt."))
        keys = credentials.published_keys(obj)
        if not keys:
            return str(_("None (this connector authenticates with its client secret)."))
        rows = format_html_join(
            "",
            '<li data-client-key="{}"><strong>{}</strong> · {} <code>{}</code>'
            ' · {} <code data-entra-thumbprint>{}</code> · {} {} · <a href="{}">{}</a></li>',
            (
                (
                    key.state,
                    key.get_state_display(),
                    _("thumbprint (x5t#S256)"),
                    key.kid,
                    _("Entra ID shows"),
                    sha1_thumbprint(key.certificate),
                    _("expires"),
                    formats.date_format(key.not_after, "DATE_FORMAT"),
                    reverse("admin:django_entra_sso_connector_certificate", args=[obj.pk, key.pk]),
                    _("download certificate"),
                )
                for key in keys
            ),
        )
        return format_html('<ul style="margin:0;padding-left:1em">{}</ul>', rows)

    def save_model(self, request: HttpRequest, obj: Connector, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.client_auth == Connector.ClientAuth.PRIVATE_KEY_JWT:
            credentials.active_key(obj)  # the certificate to upload, shown on the next page

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if isinstance(formset, EmailDomainFormSet):
            who = request.user.get_username() or "staff"  # type: ignore[union-attr]
            for domain_form in formset.forms:
                if isinstance(domain_form, EmailDomainForm) and domain_form.has_changed():
                    domain_form.vouch(who)
        super().save_formset(request, form, formset, change)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """Without change permission every field is shown read-only: leave the secret out.

        A read-only field is rendered from the model attribute of its name, and
        ``client_secret`` is the decrypting property; only its status is shown.
        """
        fieldsets = _fold_other_protocol(super().get_fieldsets(request, obj), obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "client_secret"]})
            for name, options in fieldsets
        ]

    @admin.display(description=_("Stored client secret"))
    def client_secret_status(self, obj: Connector | None) -> str:
        if obj is None or not obj.has_client_secret:
            return str(_("Not set"))
        if obj.client_secret_changed_at is None:
            return str(_("Set"))
        return str(
            _("Set (last changed %(when)s)")
            % {
                "when": formats.date_format(
                    timezone.localtime(obj.client_secret_changed_at), "DATETIME_FORMAT"
                )
            }
        )

    @admin.display(description=_("email domains"))
    def domain_list(self, obj: Connector) -> str:
        domains = ", ".join(d.domain for d in obj.domains.all())
        return domains or str(_("None: the sign-in page cannot send anyone here"))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not form.instance.domains.exists():
            self.message_user(
                request,
                _(
                    "%(name)s has no email domain, so the sign-in page cannot send anyone to it "
                    "(only links with ?connector=%(slug)s can). Add the company's email domains."
                )
                % {"name": form.instance.name, "slug": form.instance.slug},
                messages.WARNING,
            )

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<int:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="django_entra_sso_connector_test",
            ),
            path(
                "<int:object_id>/certificate/<int:key_id>/",
                self.admin_site.admin_view(self.certificate_view),
                name="django_entra_sso_connector_certificate",
            ),
            path(
                "<int:object_id>/rotate-certificate/",
                self.admin_site.admin_view(self.rotate_certificate_view),
                name="django_entra_sso_connector_rotate",
            ),
            path(
                "<int:object_id>/setup-link/",
                self.admin_site.admin_view(self.setup_link_view),
                name="django_entra_sso_connector_setup_link",
            ),
            path(
                "<int:object_id>/revoke-setup-links/",
                self.admin_site.admin_view(self.revoke_setup_links_view),
                name="django_entra_sso_connector_revoke_setup_links",
            ),
            path(
                "<int:object_id>/scim-token/",
                self.admin_site.admin_view(self.scim_token_view),
                name="django_entra_sso_connector_scim_token",
            ),
        ]
        return custom + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        connector = self.get_object(request, object_id)
        if connector is not None:
            extra_context["idp_urls"] = self.idp_urls(request, connector)
            extra_context["test_connection_url"] = reverse(
                "admin:django_entra_sso_connector_test", args=[connector.pk]
            )
            if self.has_change_permission(request, connector):
                extra_context["scim_token_url"] = reverse(
                    "admin:django_entra_sso_connector_scim_token", args=[connector.pk]
                )
                extra_context["setup_link_url"] = reverse(
                    "admin:django_entra_sso_connector_setup_link", args=[connector.pk]
                )
                extra_context["revoke_setup_links_url"] = reverse(
                    "admin:django_entra_sso_connector_revoke_setup_links", args=[connector.pk]
                )
                if connector.client_auth == Connector.ClientAuth.PRIVATE_KEY_JWT:
                    extra_context["rotate_url"] = reverse(
                        "admin:django_entra_sso_connector_rotate", args=[connector.pk]
                    )
                    waiting = credentials.waiting_key(connector)
                    extra_context["rotation_waiting"] = waiting.kid if waiting else ""
            extra_context["active_setup_links"] = setup_links.active_links(connector)
            extra_context["setup_events"] = list(connector.setup_events.all()[:50])
            if request.user.has_perm("django_entra_sso.view_signinevent"):
                extra_context["sign_in_log_url"] = (
                    reverse("admin:django_entra_sso_signinevent_changelist")
                    + f"?connector__id__exact={connector.pk}"
                )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def idp_urls(request: HttpRequest, connector: Connector) -> list[tuple[str, str, str]]:
        if connector.is_saml:
            return saml_urls(request, connector)
        return [
            (
                str(_("Redirect URI")),
                links.redirect_uri(request, connector),
                str(_("Entra: Authentication → Web → Redirect URIs.")),
            ),
            (
                str(_("Front-channel logout URL")),
                links.frontchannel_logout_uri(request, connector),
                str(_("Entra: Authentication → Front-channel logout URL.")),
            ),
            (
                str(_("Back-channel logout URL")),
                links.backchannel_logout_uri(request, connector),
                str(_("For IdPs that support OpenID Connect Back-Channel Logout.")),
            ),
            (
                str(_("Post-logout redirect URI")),
                links.post_logout_redirect_uri(request),
                str(_("Entra: Authentication → Web → Redirect URIs too (where sign-out returns).")),
            ),
            (
                str(_("Initiate login URI")),
                links.initiate_login_uri(request, connector),
                str(_("For sign-ins started from the IdP's app launcher.")),
            ),
            (
                str(_("Client JWKS URL")),
                links.client_jwks_uri(request, connector),
                str(
                    _(
                        "With a certificate (private_key_jwt): for IdPs that fetch the client's "
                        "public keys instead of taking an uploaded certificate."
                    )
                ),
            ),
        ]

    def test_connection_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_view_or_change_permission(request, connector):
            return HttpResponse(status=403)
        report: Any = (
            check_saml_connection(connector) if connector.is_saml else check_connection(connector)
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "connector": connector,
            "report": report,
            "saml": connector.is_saml,
            "title": _("Test connection: %(name)s") % {"name": connector.name},
            "change_url": reverse("admin:django_entra_sso_connector_change", args=[connector.pk]),
        }
        return TemplateResponse(
            request, "admin/django_entra_sso/connector/test_connection.html", context
        )

    def certificate_view(self, request: HttpRequest, object_id: int, key_id: int) -> HttpResponse:
        """One client certificate as a PEM file, to upload to the IdP (public: no secret)."""
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_view_or_change_permission(request, connector):
            return HttpResponse(status=403)
        key = get_object_or_404(ClientKey, pk=key_id, connector=connector)
        response = HttpResponse(key.certificate, content_type="application/x-pem-file")
        name = f"{connector.slug}-{key.state}-{key.kid[:8]}.pem"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def rotate_certificate_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """POST ``action=start``: a new certificate, published; ``action=finish``: it signs."""
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_change_permission(request, connector):
            return HttpResponse(status=403)
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        change_url = reverse("admin:django_entra_sso_connector_change", args=[connector.pk])
        if request.POST.get("action") == "finish":
            try:
                # The thumbprint the page showed: a rotation started since then elsewhere
                # is not confirmed by a page that never showed its certificate.
                kid = request.POST.get("kid", "")[:128]
                if not kid:
                    raise ValueError(_("Which certificate? Reload the page and try again."))
                credentials.finish_rotation(connector, kid)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("The new certificate signs from now on; the old one is gone."),
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(change_url)
        credentials.start_rotation(connector)
        self.message_user(
            request,
            _(
                "A new certificate is ready: download it and upload it to the identity "
                "provider (Entra ID: Certificates & secrets → Certificates → Upload "
                "certificate), then press “Use the new certificate”. Until then the old one "
                "keeps signing."
            ),
            messages.WARNING,
        )
        return HttpResponseRedirect(change_url)

    def scim_token_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """POST: a new SCIM token, shown once with the endpoint URL; the old one stops working."""
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_change_permission(request, connector):
            return HttpResponse(status=403)
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        from .scim.auth import new_token

        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "connector": connector,
            "token": new_token(connector),
            "endpoint": links.scim_base_uri(request, connector),
            "title": _("New SCIM token: %(name)s") % {"name": connector.name},
            "change_url": reverse("admin:django_entra_sso_connector_change", args=[connector.pk]),
        }
        response = TemplateResponse(
            request, "admin/django_entra_sso/connector/scim_token.html", context
        )
        response["Cache-Control"] = "no-store"
        return response

    def setup_link_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """POST: a new setup link for the customer, shown once; older links stop working."""
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_change_permission(request, connector):
            return HttpResponse(status=403)
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        try:
            token, link = setup_links.make_link(
                connector, created_by=request.user.get_username(), request=request
            )
        except setup_links.ConnectorIsLive as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:django_entra_sso_connector_change", args=[connector.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "connector": connector,
            "setup_url": request.build_absolute_uri(reverse("entra_sso:setup", args=[token])),
            "link": link,
            "title": _("Setup link: %(name)s") % {"name": connector.name},
            "change_url": reverse("admin:django_entra_sso_connector_change", args=[connector.pk]),
        }
        response = TemplateResponse(
            request, "admin/django_entra_sso/connector/setup_link.html", context
        )
        response["Cache-Control"] = "no-store"
        return response

    def revoke_setup_links_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """POST: every setup link of the connector stops working."""
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_change_permission(request, connector):
            return HttpResponse(status=403)
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        count = setup_links.revoke_links(
            connector, revoked_by=request.user.get_username(), request=request
        )
        self.message_user(
            request,
            _("%(count)d setup link(s) of %(name)s revoked.")
            % {"count": count, "name": connector.name},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:django_entra_sso_connector_change", args=[connector.pk])
        )

    @admin.action(description=_("Test connection"))
    def test_connection_action(self, request: HttpRequest, queryset: Any) -> None:
        for connector in queryset:
            if connector.is_saml:
                self._report_saml(request, connector)
                continue
            report = check_connection(connector)
            if report.ok:
                self.message_user(
                    request,
                    _("%(name)s: healthy — issuer %(issuer)s, %(count)d signing key(s).")
                    % {
                        "name": connector.name,
                        "issuer": report.issuer,
                        "count": report.signing_key_count,
                    },
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    _("%(name)s: not healthy — %(reason)s")
                    % {"name": connector.name, "reason": report.error},
                    messages.ERROR,
                )

    def _report_saml(self, request: HttpRequest, connector: Connector) -> None:
        saml_report = check_saml_connection(connector)
        if saml_report.ok:
            self.message_user(
                request,
                _("%(name)s: healthy — SAML entity %(entity)s, %(count)d signing certificate(s).")
                % {
                    "name": connector.name,
                    "entity": saml_report.entity_id,
                    "count": len(saml_report.certificates),
                },
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("%(name)s: not healthy — %(reason)s")
                % {"name": connector.name, "reason": saml_report.error},
                messages.ERROR,
            )


def _fold_other_protocol(fieldsets: Any, obj: Connector | None) -> list[Any]:
    """Fold away the other protocol's fields of a saved connector (still one click away)."""
    if obj is None:
        return list(fieldsets)
    other = "client_id" if obj.is_saml else "saml_metadata_url"
    return [
        (name, {**options, "classes": ("collapse",)} if other in options["fields"] else options)
        for name, options in fieldsets
    ]


def saml_urls(request: HttpRequest, connector: Connector) -> list[tuple[str, str, str]]:
    """What a SAML IdP is told about this site, with where Entra ID asks for each."""
    return [
        (
            str(_("Identifier (Entity ID)")),
            links.saml_metadata_uri(request, connector),
            str(_("Entra: Enterprise application → Single sign-on → Basic SAML Configuration.")),
        ),
        (
            str(_("Reply URL (Assertion Consumer Service URL)")),
            links.saml_acs_uri(request, connector),
            str(_("Entra: Basic SAML Configuration → Reply URL. Okta: Single sign-on URL.")),
        ),
        (
            str(_("Logout URL (single logout)")),
            links.saml_sls_uri(request, connector),
            str(_("Entra: Basic SAML Configuration → Logout Url.")),
        ),
        (
            str(_("SP metadata URL")),
            links.saml_metadata_uri(request, connector),
            str(
                _(
                    "For IdPs that import metadata (ADFS, Okta, Entra's “Upload metadata file”): "
                    "all of the above, with this connector's certificate."
                )
            ),
        ),
        (
            str(_("Sign on URL")),
            request.build_absolute_uri(reverse("entra_sso:login") + f"?connector={connector.slug}"),
            str(_("Optional: where the IdP's app launcher sends people to sign in here.")),
        ),
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
    """The person behind each row by name and email, not only the generated username."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("name"), ordering="user__last_name")
    def user_name(self, obj: Any) -> str:
        return str(obj.user.get_full_name() or "")

    @admin.display(description=_("email"), ordering="user__email")
    def user_email(self, obj: Any) -> str:
        return str(getattr(obj.user, obj.user.get_email_field_name(), "") or "")


@admin.register(Identity)
class IdentityAdmin(ReadOnlyAdmin):
    list_display = (
        "user_name",
        "user_email",
        "user",
        "connector",
        "subject",
        "tenant_id",
        "first_seen",
        "last_seen",
    )
    list_filter = ("connector",)
    search_fields = ("subject", "issuer", "user__username", "user__email", "user__last_name")
    list_select_related = ("user", "connector")


@admin.register(SSOSession)
class SSOSessionAdmin(ReadOnlyAdmin):
    list_display = ("user_name", "user_email", "user", "connector", "sid", "created_at")
    list_filter = ("connector",)
    search_fields = ("sid", "subject", "user__username", "user__email", "user__last_name")
    list_select_related = ("user", "connector")
    exclude = ("session_key", "refresh_token_encrypted")
    actions = ["sign_out_everywhere"]

    @admin.action(description=_("Sign these people out everywhere"), permissions=["delete"])
    def sign_out_everywhere(self, request: HttpRequest, queryset: Any) -> None:
        """End every SSO session of the selected rows' users, not only the selected ones."""
        users = {row.user for row in queryset.select_related("user")}
        ended = sum(end_sessions_for_user(user, reason="admin") for user in users)
        self.message_user(
            request,
            _("Signed out everywhere: %(people)d person(s), %(sessions)d session(s) ended.")
            % {"people": len(users), "sessions": ended},
            messages.SUCCESS,
        )

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        """No filtering on session keys: ``?session_key__startswith=`` is an oracle.

        A staff user who may only view this list could otherwise recover a live
        session key character by character from the row counts.
        """
        if lookup.split("__", 1)[0] == "session_key":
            return False
        # Django 5.2 passes the request; 4.2 does not know the argument.
        if request is None:
            return super().lookup_allowed(lookup, value)  # type: ignore[call-arg]
        return super().lookup_allowed(lookup, value, request)


@admin.register(SignInEvent)
class SignInEventAdmin(ReadOnlyAdmin):
    """The sign-in log: read-only; only superusers may delete rows."""

    list_display = ("time", "connector_name", "kind", "outcome", "code", "email", "user")
    list_filter = ("connector", "outcome", "kind")
    date_hierarchy = "time"
    search_fields = ("email", "subject")
    list_select_related = ("connector", "user")
    #: What the list may be filtered by: its filters and its date hierarchy, nothing else.
    filterable_fields = frozenset({"connector", "outcome", "kind", "time"})

    @admin.display(description=_("connector"), ordering="connector_slug")
    def connector_name(self, obj: SignInEvent) -> str:
        # The slug stays when the connector is deleted.
        return str(obj.connector) if obj.connector is not None else obj.connector_slug

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        if lookup.split("__", 1)[0] not in self.filterable_fields:
            return False
        # Django 5.2 passes the request; 4.2 does not know the argument.
        if request is None:
            return super().lookup_allowed(lookup, value)  # type: ignore[call-arg]
        return super().lookup_allowed(lookup, value, request)
