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

from .models import Connector, EmailDomain


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
        attrs={"rows": 3, "cols": 44, "placeholder": "72f988bf-86f1-41af-91ab-2d7cd011db47"}
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


class ValueListField(forms.Field):
    """Claim values, one per line: a list for the JSON field (JSON accepted too)."""

    widget = forms.Textarea(attrs={"rows": 2, "cols": 44, "placeholder": "Admin"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return [str(item).strip() for item in value if str(item).strip()]
        text = value.strip() if isinstance(value, str) else ""
        if text.startswith("["):
            return self.to_python(_json(text, TenantListField()))
        return [line.strip() for line in text.splitlines() if line.strip()]


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

    staff_values = ValueListField(
        label=capfirst(_("staff when the groups or roles claim has")),
        required=False,
        help_text=_(
            "Claim values (app roles or group IDs), one per line, that make a person staff. "
            "Empty: sign-ins never change who is staff."
        ),
    )
    superuser_values = ValueListField(
        label=capfirst(_("superuser when the groups or roles claim has")),
        required=False,
        help_text=_(
            "Claim values, one per line, that make a person a superuser. Empty: sign-ins "
            "never change who is a superuser."
        ),
    )
    api_audiences = ValueListField(
        label=capfirst(_("API audiences")),
        required=False,
        help_text=_(
            "One per line: the audiences of access tokens this site's API accepts from this "
            "connector's IdP, e.g. api://<application ID> and the application ID. Empty: none."
        ),
    )
    claim_mapping = forms.JSONField(
        label=capfirst(_("claim mapping")),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_(
            "Which claim fills username, email, first_name and last_name, e.g. "
            '{"username": "preferred_username"}. Empty: the defaults.'
        ),
    )
    saml_attribute_map = forms.JSONField(
        label=capfirst(_("SAML attribute names")),
        required=False,
        help_text=_(
            "Overrides of the attribute names read for email, given_name, family_name and "
            'groups, e.g. {"email": "mail"}. The provider type gives the defaults.'
        ),
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )

    class Meta:
        model = Connector
        fields = [
            "name",
            "slug",
            "provider",
            "protocol",
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
            "saml_metadata_url",
            "saml_metadata_xml",
            "allow_idp_initiated",
            "saml_attribute_map",
            "saml_allow_sha1",
            "client_auth",
            "client_assertion_alg",
            "allow_personal_accounts",
            "resolve_group_overage",
            "group_overage_failure",
            "claim_mapping",
            "trust_preferred_username",
            "staff_values",
            "superuser_values",
            "api_audiences",
            "accept_v1_tokens",
        ]

    def clean_saml_attribute_map(self) -> Any:
        return self.cleaned_data.get("saml_attribute_map") or {}

    def clean_claim_mapping(self) -> Any:
        return self.cleaned_data.get("claim_mapping") or {}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        is_saml = data.get("protocol") == Connector.Protocol.SAML
        with_certificate = data.get("client_auth") == Connector.ClientAuth.PRIVATE_KEY_JWT
        needs_secret = not is_saml and not with_certificate
        if needs_secret and not data.get("client_secret") and not self.instance.has_client_secret:
            self.add_error("client_secret", _("Enter the client secret from the IdP."))
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # the model's rules first: one source, https
        if self.instance.is_saml and not self.errors:
            self._read_saml_metadata()

    def _read_saml_metadata(self) -> None:
        read_saml_metadata(self, self.instance)

    def save(self, commit: bool = True) -> Connector:
        secret = self.cleaned_data.get("client_secret")
        if secret:
            self.instance.client_secret = secret
        if self.instance.is_saml:
            from .saml.keys import ensure_key_pair

            ensure_key_pair(self.instance)
        return super().save(commit=commit)


def read_saml_metadata(form: forms.BaseForm, connector: Connector) -> None:
    """Read a SAML connector's IdP metadata now, so that a typo is found in ``form``, not at
    sign-in; the metadata's field gets the error. (The admin's form and the setup page's.)"""
    from .saml.metadata import SAMLMetadataError, get_idp_metadata

    field = "saml_metadata_xml" if connector.saml_metadata_xml else "saml_metadata_url"
    try:
        metadata = get_idp_metadata(connector, force=True)
    except SAMLMetadataError as exc:
        form.add_error(field, str(exc))
        return
    # Shown in lists and searches: the IdP's entity ID is the SAML "issuer".
    connector.issuer = metadata.entity_id[:500]


class EmailDomainForm(forms.ModelForm):
    """One email domain in the admin. Staff who add a domain vouch for it (verified by hand);
    a domain a customer added through a setup link can be marked verified here."""

    mark_verified = forms.BooleanField(
        label=_("Mark verified"),
        required=False,
        help_text=_("You checked yourself that the domain is the customer's."),
    )

    class Meta:
        model = EmailDomain
        fields = ("domain", "sso_only")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.is_verified:
            self.fields["mark_verified"].disabled = True
            self.fields["mark_verified"].initial = True

    def clean_domain(self) -> str:
        domain = self.cleaned_data.get("domain", "")
        # The model's clean() says the same, but a public domain is said on its field.
        from .public_domains import refuse_public_mail_domain
        from .validation import normalize_domain

        normalized = normalize_domain(domain)
        refuse_public_mail_domain(normalized)
        return str(domain)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        domain, instance = data.get("domain"), self.instance
        will_be_verified = (
            instance.is_verified or instance._state.adding or data.get("mark_verified")
        )
        if domain and will_be_verified and not data.get("DELETE"):
            from .validation import normalize_domain

            if EmailDomain.objects.verified_elsewhere(
                normalize_domain(domain), instance.connector_id
            ):
                self.add_error("domain", _("This domain already belongs to a connector."))
        return data

    def vouch(self, who: str) -> None:
        """Record the staff member's word for a new domain, or for one ticked "Mark verified"."""
        instance: EmailDomain = self.instance
        if instance.is_verified:
            return
        if instance._state.adding or self.cleaned_data.get("mark_verified"):
            instance.mark_verified("manual", f"by {who}")


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
