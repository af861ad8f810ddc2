"""Normalising and checking what site owners type: issuers and email domains."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import idna
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_issuer(value: str) -> str:
    """Strip whitespace and a pasted discovery suffix; keep everything else exact.

    The seed guide tells people to leave ``/.well-known/openid-configuration`` off,
    and many paste it anyway; the issuer the IdP puts in tokens never has it.
    """
    value = (value or "").strip()
    if value.endswith(DISCOVERY_SUFFIX):
        value = value[: -len(DISCOVERY_SUFFIX)]
    return value


def _split(value: str) -> Any:
    """``urlsplit``, or ``None`` for what it cannot read (``https://[::1/``)."""
    try:
        parts = urlsplit(value)
        parts.hostname  # noqa: B018 - reading it is what raises for a broken IPv6 literal
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        return None
    return parts


def validate_issuer(value: str) -> None:
    parts = _split(value)
    if parts is None or not parts.scheme or not parts.netloc:
        raise ValidationError(
            _(
                "Enter the issuer as a full URL, for example https://login.microsoftonline.com/…/v2.0."
            ),
            code="issuer_not_url",
        )
    if parts.query or parts.fragment:
        raise ValidationError(_("An issuer has no query string or fragment."), code="issuer_query")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ValidationError(
        _("The issuer must use https:// (plain http:// is accepted only on localhost)."),
        code="issuer_not_https",
    )


def validate_metadata_url(value: str) -> None:
    """A SAML metadata URL: https, or http on loopback (its certificates are trusted)."""
    parts = _split(value)
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValidationError(
            _("Enter the metadata URL as a full https:// URL."), code="metadata_not_url"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValidationError(
            _(
                "The metadata URL must use https:// (plain http:// is accepted only on "
                "localhost): the signing certificates come from it."
            ),
            code="metadata_not_https",
        )


def _is_internal_host(host: str) -> bool:
    """Loopback, private, link-local or otherwise non-public, by name or IP literal."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global or address.is_multicast


def endpoint_problem(url: str, *, issuer: str) -> str | None:
    """Why the client may not call ``url`` (from ``issuer``'s discovery document), or ``None``.

    Endpoints must be ``https://``, as issuers are; plain ``http://`` only on
    loopback, and only for a loopback issuer (a local IdP in development). An
    issuer on the internet may not point at loopback, private or link-local
    addresses: its document would make this server send its client credentials
    and a chosen ``code`` to the site's own internal services. Host names are
    not resolved here; the remaining trust in the document is the IdP's TLS
    certificate for the issuer itself.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # "https://[::1", say: the document is whoever runs the issuer's
        return "is not a URL"
    if not host or parts.scheme not in ("https", "http"):
        return "is not an https:// URL"
    issuer_on_loopback = is_loopback_host(urlsplit(issuer).hostname)
    if parts.scheme == "http" and not (issuer_on_loopback and is_loopback_host(host)):
        return "uses plain http:// (only loopback issuers may use loopback http:// endpoints)"
    if not issuer_on_loopback and _is_internal_host(host):
        return "points at a loopback, private or link-local address"
    return None


def _ascii_domain(raw: str) -> str:
    """The domain as DNS and mail servers name it: IDNA 2008 with UTS #46, not transitional.

    Python's own ``idna`` codec is IDNA 2003, which folds ``straße.de`` into
    ``strasse.de``: another registrable domain, whose proof must not cover this one.
    """
    if raw.isascii():
        return raw.lower()
    return str(idna.encode(raw, uts46=True, transitional=False).decode("ascii")).lower()


def normalize_domain(value: str) -> str:
    """Lower-case and IDNA-encode an email domain, refusing what is not one.

    Raises ``ValidationError`` with a sentence that says what was wrong.
    """
    raw = (value or "").strip()
    if not raw:
        raise ValidationError(_("Enter an email domain, such as contoso.com."), code="empty")
    if "@" in raw:
        raise ValidationError(
            _("Enter only the domain, without “@” (contoso.com, not @contoso.com)."),
            code="has_at",
        )
    if "://" in raw or "/" in raw:
        raise ValidationError(
            _("Enter only the domain, not a web address (contoso.com, not https://contoso.com)."),
            code="is_url",
        )
    raw = raw.rstrip(".")
    try:
        ascii_domain = _ascii_domain(raw)
    except (UnicodeError, idna.IDNAError) as exc:
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."), code="invalid", params={"value": raw}
        ) from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise ValidationError(
            _("Enter a full domain with a dot, such as contoso.com (not just “%(value)s”)."),
            code="no_dot",
            params={"value": raw},
        )
    if (
        len(ascii_domain) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()  # an IPv4 address: no email domain
        or not _a_labels_decode(labels)
    ):
        raise ValidationError(
            _("“%(value)s” is not a valid domain name."), code="invalid", params={"value": raw}
        )
    return ascii_domain


def _a_labels_decode(labels: list[str]) -> bool:
    """Every ``xn--`` label is real punycode of a valid IDNA 2008 name (``xn--zz`` is not)."""
    try:
        for label in labels:
            if label.startswith("xn--"):
                idna.decode(label)
    except (UnicodeError, idna.IDNAError):
        return False
    return True


def domain_of_email(email: str) -> str | None:
    """The normalised domain of an email address, or ``None`` when it is malformed."""
    email = (email or "").strip()
    if email.count("@") != 1 or len(email) > 320:
        return None
    local, _sep, domain = email.partition("@")
    if not local or any(ch.isspace() for ch in email):
        return None
    try:
        return normalize_domain(domain)
    except ValidationError:
        return None
