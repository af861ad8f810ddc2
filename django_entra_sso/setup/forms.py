"""What a customer fills in on the setup page, checked by the connector's own rules.

The form holds only the IdP's values (OpenID Connect: issuer, client ID, client
secret; SAML: the metadata URL or XML). It applies them to the link's connector
and runs the model's ``full_clean``, as the admin's ``ConnectorForm`` does, so
both refuse the same things; a SAML connector's metadata is read before saving.
The secret is write-only: never rendered back, blank keeps the stored one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext_lazy as _

from ..models import Connector
from .addresses import private_address_problem

OIDC_FIELDS = ("issuer", "client_id")
SAML_FIELDS = ("saml_metadata_url", "saml_metadata_xml")


class SetupForm(forms.Form):
    issuer = forms.CharField(
        label=_("Issuer"),
        max_length=500,
        required=False,
        widget=forms.URLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("The issuer URL, without /.well-known/openid-configuration."),
    )
    client_id = forms.CharField(
        label=_("Client ID"),
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        strip=True,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Stored encrypted and never shown again, not even here; leave blank to keep the "
            "stored secret (not when the issuer changes)."
        ),
    )
    saml_metadata_url = forms.CharField(
        label=_("Metadata URL"),
        max_length=1000,
        required=False,
        widget=forms.URLInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "The identity provider's federation metadata URL (preferred: certificate rollovers "
            "are picked up)."
        ),
    )
    saml_metadata_xml = forms.CharField(
        label=_("Metadata XML"),
        required=False,
        max_length=500_000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=_("Or paste the metadata itself, when there is no URL. Give one of the two."),
    )

    def __init__(self, connector: Connector, *args: Any, **kwargs: Any) -> None:
        self.connector = connector
        with_certificate = connector.client_auth == Connector.ClientAuth.PRIVATE_KEY_JWT
        names: tuple[str, ...] = (
            SAML_FIELDS
            if connector.is_saml
            else OIDC_FIELDS
            if with_certificate  # a certificate instead of a secret: nothing to enter
            else (*OIDC_FIELDS, "client_secret")
        )
        kwargs.setdefault("initial", {name: getattr(connector, name) for name in names[:2]})
        super().__init__(*args, **kwargs)
        for name in list(self.fields):
            if name not in names:
                del self.fields[name]
        self.changed: list[str] = []

    @property
    def editable_fields(self) -> tuple[str, ...]:
        return SAML_FIELDS if self.connector.is_saml else OIDC_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        connector = self.connector
        before = {name: getattr(connector, name) for name in self.editable_fields}
        for name in self.editable_fields:
            setattr(connector, name, data.get(name) or "")
        if not connector.is_saml:
            with_certificate = connector.client_auth == Connector.ClientAuth.PRIVATE_KEY_JWT
            needs_secret = not with_certificate and not connector.has_client_secret
            if needs_secret and not data.get("client_secret"):
                self.add_error("client_secret", _("Enter the client secret from the IdP."))
        try:
            connector.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            self._add_model_errors(exc)
        if (
            not connector.is_saml
            and connector.client_auth != Connector.ClientAuth.PRIVATE_KEY_JWT
            and connector.has_client_secret
            and connector.issuer != before["issuer"]  # as cleaned: a pasted suffix is no change
            and not data.get("client_secret")
            and "client_secret" not in self.errors
        ):
            # The stored secret goes only to the issuer it was entered for: whoever holds
            # the link could otherwise point the connector at a server of their own and
            # have "Try signing in" send it there.
            self.add_error(
                "client_secret", _("The issuer changed: enter the client secret for it again.")
            )
        for name in ("saml_metadata_url",) if connector.is_saml else ("issuer",):
            if name not in self.errors:
                problem = private_address_problem(getattr(connector, name))
                if problem:
                    self.add_error(name, problem)
        if connector.is_saml and not self.errors:
            self._read_saml_metadata()
        self.changed = [
            name for name in self.editable_fields if getattr(connector, name) != before[name]
        ]
        if data.get("client_secret"):
            self.changed.append("client_secret")
        return data

    def _add_model_errors(self, exc: ValidationError) -> None:
        """The model's errors on this form's fields; any other field's on the form itself."""
        for field, errors in (
            exc.error_dict.items()
            if hasattr(exc, "error_dict")
            else [(NON_FIELD_ERRORS, exc.error_list)]
        ):
            target = field if field in self.fields else None
            messages = [message for error in errors for message in error.messages]
            self.add_error(target, messages)

    def _read_saml_metadata(self) -> None:
        from ..forms import read_saml_metadata

        read_saml_metadata(self, self.connector)

    def save(self) -> list[str]:
        """Save the values on the connector (only its IdP fields); the names of those changed."""
        connector = self.connector
        fields = [*self.editable_fields, "updated_at"]
        secret = self.cleaned_data.get("client_secret")
        if secret:
            connector.client_secret = secret
            fields += ["client_secret_encrypted", "client_secret_changed_at"]
        if connector.is_saml:
            from ..saml.keys import ensure_key_pair

            ensure_key_pair(connector)
            fields.append("issuer")
        connector.save(update_fields=fields)
        return list(self.changed)
