"""Connector screens: domains inline, a write-only secret, URLs to copy, "Test connection"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from . import links
from .forms import ConnectorForm, EmailDomainFormSet
from .models import Connector, EmailDomain, Identity, SignInEvent, SSOSession
from .oidc.metadata import check_connection
from .sessions import end_sessions_for_user


class EmailDomainInline(admin.TabularInline):
    model = EmailDomain
    formset = EmailDomainFormSet
    extra = 1
    fields = ("domain", "sso_only")


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    inlines = [EmailDomainInline]
    list_display = ("name", "slug", "provider", "issuer", "enabled", "domain_list")
    list_filter = ("provider", "enabled")
    search_fields = ("name", "slug", "issuer", "client_id", "domains__domain")
    prepopulated_fields = {"slug": ("name",)}
    actions = ["test_connection_action"]
    change_form_template = "admin/django_entra_sso/connector/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "slug", "provider", "enabled")}),
        (
            _("From the identity provider's app registration"),
            {
                "fields": (
                    "issuer",
                    "client_id",
                    "client_secret_status",
                    "client_secret",
                    "extra_scopes",
                )
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
                    "group_mapping",
                )
            },
        ),
        (
            _("Leavers: session lifetime"),
            {"fields": ("revalidate_after", "max_session_age")},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("domains")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("client_secret_status", *super().get_readonly_fields(request, obj))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        """Without change permission every field is shown read-only: leave the secret out.

        A read-only field is rendered from the model attribute of its name, and
        ``client_secret`` is the decrypting property; only its status is shown.
        """
        fieldsets = super().get_fieldsets(request, obj)
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
            % {"when": formats.date_format(obj.client_secret_changed_at, "DATETIME_FORMAT")}
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
            if request.user.has_perm("django_entra_sso.view_signinevent"):
                extra_context["sign_in_log_url"] = (
                    reverse("admin:django_entra_sso_signinevent_changelist")
                    + f"?connector__id__exact={connector.pk}"
                )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def idp_urls(request: HttpRequest, connector: Connector) -> list[tuple[str, str, str]]:
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
        ]

    def test_connection_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        connector = get_object_or_404(Connector, pk=object_id)
        if not self.has_view_or_change_permission(request, connector):
            return HttpResponse(status=403)
        report = check_connection(connector)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "connector": connector,
            "report": report,
            "title": _("Test connection: %(name)s") % {"name": connector.name},
            "change_url": reverse("admin:django_entra_sso_connector_change", args=[connector.pk]),
        }
        return TemplateResponse(
            request, "admin/django_entra_sso/connector/test_connection.html", context
        )

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

    @admin.action(description=_("Test connection"))
    def test_connection_action(self, request: HttpRequest, queryset: Any) -> None:
        for connector in queryset:
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
