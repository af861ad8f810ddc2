"""The DNS half of email-domain verification: is the domain's TXT record published?

A customer proves they control a domain by publishing the TXT record
``entra-sso-verification=<token>`` at the domain itself or at
``_entra-sso.<domain>`` (for companies whose apex records another team owns).
``check_domain`` asks for both and says, in a sentence for the person, what it
found. A lookup that could not be made is *unreachable*, never a "no": a broken
resolver must not count against the customer.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.utils.translation import gettext as _

from ..conf import app_settings

RECORD_PREFIX = "entra-sso-verification="
SUBDOMAIN = "_entra-sso"

#: Seconds one name server gets per attempt. Shorter than a generous
#: ``DNS_TIMEOUT`` so that a silent server leaves time to ask the next one.
PER_SERVER_TIMEOUT = 2.0

# A label of a hostname once IDNA-encoded; "_" for names like _entra-sso. Rules out
# what DNS allows but no email domain has: spaces, "*", escaped dots.
_LABEL = re.compile(rb"[a-z0-9_-]+")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DNSCheck:
    """What one verification lookup found.

    ``found_at`` is the DNS name holding the matching record (``""`` if none);
    ``message`` a translated sentence for the person; ``unreachable`` means DNS
    could not be asked, so the caller must not treat it as the record missing.
    """

    verified: bool
    found_at: str
    message: str
    unreachable: bool = False


def expected_record(token: str) -> str:
    """The TXT record's text that proves control of the domain for ``token``."""
    return RECORD_PREFIX + token


def record_names(domain: str) -> tuple[str, str]:
    """The two names where the record may be published: the domain, then ``_entra-sso.``."""
    return (domain, f"{SUBDOMAIN}.{domain}")


def parse_nameserver(server: str) -> tuple[str, int]:
    """``"IP"``, ``"IP:port"``, ``"IPv6"`` or ``"[IPv6]:port"`` as (address, port); port 53 by default.

    Raises ``ValueError`` with a sentence naming the bad entry.
    """
    text = server.strip()
    port_text: str | None = None
    if text.startswith("["):
        address, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(
                f"Name server {server!r}: write an IPv6 address with a port as [IP]:port."
            )
        if rest:
            port_text = rest[1:]
    elif text.count(":") == 1:
        # One colon is IPv4 with a port; more is a bare IPv6 address.
        address, _sep, port_text = text.partition(":")
    else:
        address = text
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"Name server {server!r} is not an IP address (host names cannot be used here)."
        ) from None
    if port_text is None:
        return address, 53
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"Name server {server!r}: the port must be a number from 1 to 65535.")
    return address, int(port_text)


def check_domain(domain: str, token: str) -> DNSCheck:
    """Look for ``expected_record(token)`` at the domain and at ``_entra-sso.<domain>``.

    Never raises for DNS trouble. Both names share one ``DNS_TIMEOUT`` budget, so
    a silent name server holds the caller for that long at most.
    """
    domain = domain.strip().lower().removesuffix(".")
    names = record_names(domain)
    qnames = _dns_names(names)
    if qnames is None:
        logger.info("Domain verification: %r is not a valid domain name.", domain)
        return DNSCheck(
            verified=False,
            found_at="",
            message=_("“%(domain)s” is not a valid domain name.") % {"domain": domain},
        )

    budget = app_settings.DNS_TIMEOUT
    try:
        resolver = _make_resolver(budget)
    except (ValueError, OSError, dns.exception.DNSException):
        # A setting to fix, not a moment of bad luck: worth an error in the log.
        logger.exception("Domain verification: no usable name server to ask about %s.", domain)
        return _unreachable(
            _(
                "The DNS lookup could not be made (this site has no usable name server); "
                "please tell the site's administrators."
            )
        )

    expected = expected_record(token).encode()
    deadline = time.monotonic() + budget
    failure = ""  # the message for the first name that could not be asked
    other_token_at = ""
    aliased_at = ""  # a name whose records were another name's, through a CNAME
    for name, qname in zip(names, qnames, strict=True):
        try:
            # Once the budget is spent dnspython raises LifetimeTimeout without asking.
            values, aliased = _txt_values(resolver, qname, deadline - time.monotonic())
        except dns.exception.Timeout:
            logger.info("Domain verification: the lookup of %s timed out.", name)
            failure = failure or _("The DNS lookup failed (timeout); try again later.")
            continue
        except dns.exception.DNSException as error:
            # SERVFAIL, REFUSED, network errors: dnspython gives up on each server.
            logger.info("Domain verification: the lookup of %s failed: %s", name, error)
            failure = failure or _(
                "The DNS lookup failed (the name servers could not answer); try again later."
            )
            continue
        except Exception:
            # dnspython's own surprises must not turn a setup page into a 500.
            logger.exception("Domain verification: the lookup of %s failed unexpectedly.", name)
            failure = failure or _("The DNS lookup failed; try again later.")
            continue
        if aliased:
            # A CNAME (or a wildcard one) hands the name's records to whoever controls
            # its target: a forgotten alias to a hosted service would prove the domain
            # for anyone who can publish there.
            aliased_at = aliased_at or name
            continue
        if any(hmac.compare_digest(value.encode(), expected) for value in values):
            logger.info("Domain verification: %s verified by the TXT record at %s.", domain, name)
            return DNSCheck(
                verified=True,
                found_at=name,
                message=_("Found the record at %(name)s.") % {"name": name},
            )
        if not other_token_at and any(value.startswith(RECORD_PREFIX) for value in values):
            other_token_at = name

    if failure:
        return _unreachable(failure)
    if aliased_at:
        logger.info(
            "Domain verification: %s is an alias (CNAME); its records do not count.", aliased_at
        )
        message = _(
            "%(name)s is an alias (CNAME) of another name, so its records cannot prove this "
            "domain. Publish the TXT record at %(domain)s, or at %(subdomain)s without a CNAME."
        ) % {"name": aliased_at, "domain": names[0], "subdomain": names[1]}
        return DNSCheck(verified=False, found_at="", message=message)
    if other_token_at:
        logger.info(
            "Domain verification: %s has a verification record at %s, but for another token.",
            domain,
            other_token_at,
        )
        message = _(
            "A TXT record %(prefix)s… was found at %(name)s, but its token is not this domain's. "
            "Copy the record shown on this page exactly (the token is case-sensitive). "
            "DNS changes can take a while to appear; try again in a few minutes."
        ) % {"prefix": RECORD_PREFIX, "name": other_token_at}
    else:
        logger.info("Domain verification: no verification record at %s or %s.", *names)
        message = _(
            "No TXT record %(prefix)s… was found at %(domain)s or %(subdomain)s. "
            "DNS changes can take a while to appear; try again in a few minutes."
        ) % {"prefix": RECORD_PREFIX, "domain": names[0], "subdomain": names[1]}
    return DNSCheck(verified=False, found_at="", message=message)


def _dns_names(names: tuple[str, str]) -> list[dns.name.Name] | None:
    """The names as absolute DNS names, or ``None`` if either is no valid hostname."""
    try:
        qnames = [dns.name.from_text(name) for name in names]
    except (dns.exception.DNSException, ValueError):
        # EmptyLabel ("a..com"), LabelTooLong (> 63), NameTooLong (> 255 with the
        # _entra-sso prefix), IDNA errors (UnicodeError is a ValueError).
        return None
    labels = qnames[0].labels[:-1]  # without the root label
    if not labels or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return qnames


def _make_resolver(budget: float) -> dns.resolver.Resolver:
    """A resolver asking the configured name servers (the system's if none are)."""
    servers = app_settings.DNS_NAMESERVERS
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        # Nameserver objects carry their own port, so servers on different ports mix.
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_nameserver(server)) for server in servers
        ]
    else:
        resolver = dns.resolver.Resolver(configure=True)
    resolver.lifetime = budget
    resolver.timeout = min(budget, PER_SERVER_TIMEOUT)
    return resolver


def _txt_values(
    resolver: dns.resolver.Resolver, qname: dns.name.Name, lifetime: float
) -> tuple[list[str], bool]:
    """The TXT records at ``qname`` as text (``[]`` when the name or its TXT records don't
    exist), and whether they were reached through an alias (CNAME or DNAME)."""
    try:
        answer = resolver.resolve(qname, dns.rdatatype.TXT, lifetime=lifetime, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.YXDOMAIN):
        # YXDOMAIN: a DNAME made the name too long, so it cannot exist either.
        return [], False
    # One TXT record may be split into several character-strings of at most 255
    # bytes each; a long record is meant to be read as their concatenation.
    values = [b"".join(rdata.strings).decode("utf-8", errors="replace").strip() for rdata in answer]
    return values, answer.canonical_name != qname


def _unreachable(message: str) -> DNSCheck:
    return DNSCheck(verified=False, found_at="", message=message, unreachable=True)
