"""Email domains on the setup page: the customer adds them, and proves them by DNS.

A domain added through a setup link starts unverified: it routes no sign-ins and
vouches for no email until a DNS TXT record ``entra-sso-verification=<token>``
is found on the domain or on ``_entra-sso.<domain>`` (``dns.check_domain``).
Public mail domains and domains another connector already has are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from ..models import Connector, EmailDomain
from ..public_domains import refuse_public_mail_domain
from ..validation import normalize_domain
from . import dns

#: Domains one connector may hold through setup links (a customer has a handful).
MAX_DOMAINS = 20


class AddDomainForm(forms.Form):
    domain = forms.CharField(
        label=_("Email domain"),
        max_length=253,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "contoso.com"}
        ),
    )

    def __init__(self, connector: Connector, *args: Any, **kwargs: Any) -> None:
        self.connector = connector
        super().__init__(*args, **kwargs)

    def clean_domain(self) -> str:
        domain = normalize_domain(self.cleaned_data["domain"])
        refuse_public_mail_domain(domain)
        # Other organizations' claims are not said here (no oracle of who is a customer):
        # a domain another connector proved can be added, and never verified.
        if self.connector.domains.filter(domain=domain).exists():
            raise ValidationError(
                _("%(domain)s is already on the list."), params={"domain": domain}
            )
        if self.connector.domains.count() >= MAX_DOMAINS:
            raise ValidationError(_("This connector has as many domains as a setup link may add."))
        problem = self.connector.open_tenancy_problem(has_domains=True)
        if problem:
            raise ValidationError(problem)
        return domain

    def save(self) -> EmailDomain | None:
        """The new domain; ``None`` (with the form's error) when a concurrent request added it."""
        try:
            with transaction.atomic():
                return EmailDomain.objects.create(
                    connector=self.connector, domain=self.cleaned_data["domain"]
                )
        except IntegrityError:
            self.add_error(
                "domain",
                _("%(domain)s is already on the list.") % {"domain": self.cleaned_data["domain"]},
            )
            return None


@dataclass(frozen=True)
class Verification:
    """What "Verify" found: the DNS answer, and whether the domain is now this connector's."""

    check: dns.DNSCheck
    verified: bool
    message: str


def verify(domain: EmailDomain) -> Verification:
    """Look for the domain's TXT record; a record found verifies it (by DNS), for good.

    Unless another connector proved the domain first: one organization per domain.
    """
    check = dns.check_domain(domain.domain, domain.verification_token)
    if not check.verified or domain.is_verified:
        return Verification(check, domain.is_verified, check.message)
    taken = str(
        _(
            "%(domain)s is already verified by another organization on this site. Ask the "
            "site's team."
        )
        % {"domain": domain.domain}
    )
    if EmailDomain.objects.verified_elsewhere(domain.domain, domain.connector_id):
        return Verification(check, False, taken)
    domain.mark_verified("dns", f"TXT record at {check.found_at}")
    try:
        with transaction.atomic():
            domain.save(update_fields=["verified_at", "verification_method", "verified_by"])
    except IntegrityError:  # proved elsewhere a moment ago
        domain.verified_at = None
        return Verification(check, False, taken)
    return Verification(check, True, check.message)


@dataclass(frozen=True)
class DomainRow:
    """One domain as the setup page shows it."""

    domain: EmailDomain
    record_names: tuple[str, str]
    record_value: str
    #: The result of "Verify" on this domain in this request, if it was pressed.
    check: Verification | None


def rows(connector: Connector, dns_check: tuple[int, Verification] | None) -> list[DomainRow]:
    checked_pk, check = dns_check if dns_check else (None, None)
    return [
        DomainRow(
            domain=d,
            record_names=dns.record_names(d.domain),
            record_value=dns.expected_record(d.verification_token),
            check=check if d.pk == checked_pk else None,
        )
        for d in connector.domains.all()
    ]
