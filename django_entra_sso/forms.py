"""The connector form: a write-only client secret and clear validation.

The secret is never rendered back to anyone: the widget never shows a value and
the admin shows only whether one is set and when it last changed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import Connector


class ConnectorForm(forms.ModelForm):
    client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Paste the secret's value from the IdP. It is stored encrypted and never shown "
            "again; leave blank to keep the stored secret."
        ),
    )

    class Meta:
        model = Connector
        fields = [
            "name",
            "slug",
            "provider",
            "issuer",
            "client_id",
            "client_secret",
            "extra_scopes",
            "response_mode",
            "prompt",
            "enabled",
            "allowed_tenants",
            "allow_any_tenant",
            "link_existing_by_email",
            "create_users",
            "use_userinfo",
            "group_mapping",
        ]
        # The JSON fields usually hold a short list or nothing: keep them small.
        widgets = {
            name: forms.Textarea(attrs={"rows": 2, "cols": 60})
            for name in ("allowed_tenants", "group_mapping")
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("client_secret") and not self.instance.has_client_secret:
            self.add_error("client_secret", _("Enter the client secret from the IdP."))
        return data

    def save(self, commit: bool = True) -> Connector:
        secret = self.cleaned_data.get("client_secret")
        if secret:
            self.instance.client_secret = secret
        return super().save(commit=commit)


class EmailDomainFormSet(forms.BaseInlineFormSet):
    """The connector's domains, checked against its tenancy once both are known.

    The admin saves the connector form (without committing) before it validates
    the inline domains, so ``self.instance`` here holds the tenancy being saved.
    """

    def clean(self) -> None:
        super().clean()
        has_domains = any(
            form.cleaned_data.get("domain") and not form.cleaned_data.get("DELETE")
            for form in self.forms
            if hasattr(form, "cleaned_data")
        )
        if not has_domains:
            return
        problem = self.instance.open_tenancy_problem(has_domains=True)
        if problem:
            raise ValidationError(problem, code="open_tenancy")
