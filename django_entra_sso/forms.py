"""The connector form: a write-only client secret and clear validation.

The secret is never rendered back to anyone: the widget never shows a value and
the admin shows only whether one is set and when it last changed.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from .models import Connector


def _json(text: str, field: forms.Field) -> Any:
    """JSON as earlier versions of this form took it (and as people paste it)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            _("This looks like JSON but is not valid JSON."), code="json"
        ) from exc
    expected = list if isinstance(field, TenantListField) else dict
    if not isinstance(value, expected):
        raise ValidationError(_("This looks like JSON but is not valid JSON."), code="json")
    return value


class TenantListField(forms.Field):
    """Tenant IDs, one per line (or separated by commas or spaces): a list for the JSON field."""

    widget = forms.Textarea(
        attrs={"rows": 3, "cols": 44, "placeholder": "9188040d-6c67-4c5b-b112-36a304b66dad"}
    )

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(item).strip().lower() for item in value if str(item).strip()]
        text = value.strip() if isinstance(value, str) else ""
        if text.startswith("["):
            return self.to_python(_json(text, self))
        return [item.lower() for item in text.replace(",", " ").split()]


class GroupMappingField(forms.Field):
    """Claim value → Django groups, one rule per line: ``claim value = Group, Other group``."""

    widget = forms.Textarea(
        attrs={
            "rows": 4,
            "cols": 60,
            "placeholder": "readers-group-id = Readers\nAdmin = Staff, Editors",
        }
    )

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            lines = []
            for claim, groups in value.items():
                names = [groups] if isinstance(groups, str) else list(groups or [])
                lines.append(f"{claim} = {', '.join(str(name) for name in names)}")
            return "\n".join(lines)
        return value

    def to_python(self, value: Any) -> dict[str, list[str]]:
        if isinstance(value, dict):
            return value
        text = value.strip() if isinstance(value, str) else ""
        if text.startswith("{"):
            return self.to_python(_json(text, self))
        mapping: dict[str, list[str]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            claim, sep, groups = line.partition("=")
            names = [name.strip() for name in groups.split(",") if name.strip()]
            if not sep or not claim.strip() or not names:
                raise ValidationError(
                    _(
                        "Line %(number)d: write the claim value, “=”, then one or more group "
                        "names separated by commas, e.g. “readers-group-id = Readers”."
                    ),
                    code="bad_rule",
                    params={"number": number},
                )
            mapping.setdefault(claim.strip(), [])
            mapping[claim.strip()] += [n for n in names if n not in mapping[claim.strip()]]
        return mapping


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

    allowed_tenants = TenantListField(
        label=capfirst(_("allowed Entra tenants")),
        required=False,
        help_text=_(
            "For multi-tenant issuers (common, organizations): the tenant IDs allowed to sign "
            "in, one per line."
        ),
    )
    group_mapping = GroupMappingField(
        label=capfirst(_("group mapping")),
        required=False,
        help_text=_(
            "One rule per line: a value of the groups or roles claim, “=”, then the Django "
            "groups it grants, separated by commas. Mapped groups are kept in sync at each "
            "sign-in."
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
            "revalidate_after",
            "max_session_age",
        ]

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
