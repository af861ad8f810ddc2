"""``setup.dns.check_domain`` against a real DNS server on loopback (``tests.dnsserver``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import dns.resolver
import pytest
from django.test import override_settings
from dns.nameserver import Do53Nameserver

from django_entra_sso.setup import dns as domain_dns
from django_entra_sso.setup.dns import (
    DNSCheck,
    check_domain,
    expected_record,
    parse_nameserver,
    record_names,
)
from tests.dnsserver import LoopbackDNSServer, running_dns_server

TOKEN = "Zq3xT9-k2LmN8pR4vW7yB1cD"
DOMAIN = "contoso.com"
SUBDOMAIN = "_entra-sso.contoso.com"


@pytest.fixture
def server() -> Iterator[LoopbackDNSServer]:
    with (
        running_dns_server() as running,
        override_settings(ENTRA_SSO_DNS_NAMESERVERS=[running.address], ENTRA_SSO_DNS_TIMEOUT=1.0),
    ):
        yield running


def test_expected_record_and_names() -> None:
    assert expected_record("abc") == "entra-sso-verification=abc"
    assert record_names("contoso.com") == ("contoso.com", "_entra-sso.contoso.com")


def test_record_at_the_domain_verifies(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN))

    result = check_domain(DOMAIN, TOKEN)

    assert result == DNSCheck(
        verified=True, found_at=DOMAIN, message="Found the record at contoso.com."
    )


def test_record_at_the_subdomain_verifies(server: LoopbackDNSServer) -> None:
    server.set_txt(SUBDOMAIN, expected_record(TOKEN))

    result = check_domain(DOMAIN, TOKEN)

    assert result.verified
    assert result.found_at == SUBDOMAIN
    assert not result.unreachable
    assert result.message == "Found the record at _entra-sso.contoso.com."


def test_a_record_reached_through_a_cname_does_not_verify(server: LoopbackDNSServer) -> None:
    """A forgotten alias to a hosted service lets whoever publishes there prove the domain
    (found by the second setup review): the record must be at the name itself."""
    server.set_cname(SUBDOMAIN, "tenant-42.pages.hosting.example")
    server.set_txt("tenant-42.pages.hosting.example", expected_record(TOKEN))

    result = check_domain(DOMAIN, TOKEN)

    assert not result.verified
    assert not result.unreachable
    assert "alias (CNAME)" in result.message
    server.set_txt(DOMAIN, expected_record(TOKEN))
    assert check_domain(DOMAIN, TOKEN).verified  # published at the domain itself: proved


def test_domain_is_normalized_before_lookup(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN))

    result = check_domain("  Contoso.COM. ", TOKEN)

    assert result.verified
    assert result.found_at == DOMAIN


def test_record_with_another_token_does_not_verify(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record("someone-elses-token"))

    result = check_domain(DOMAIN, TOKEN)

    assert not result.verified
    assert not result.unreachable
    assert result.found_at == ""
    assert "at contoso.com, but its token is not this domain's" in result.message


def test_token_case_matters(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN.lower()))

    assert not check_domain(DOMAIN, TOKEN).verified
    assert check_domain(DOMAIN, TOKEN.lower()).verified


def test_prefix_alone_or_with_extra_text_does_not_verify(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN) + "x", expected_record(TOKEN)[:-1])

    assert not check_domain(DOMAIN, TOKEN).verified


def test_record_split_over_two_character_strings_verifies(server: LoopbackDNSServer) -> None:
    record = expected_record(TOKEN)
    server.set_txt(DOMAIN, (record[:10], record[10:]))

    result = check_domain(DOMAIN, TOKEN)

    assert result.verified
    assert result.found_at == DOMAIN


def test_record_among_other_txt_records_verifies(server: LoopbackDNSServer) -> None:
    server.set_txt(
        DOMAIN,
        "v=spf1 include:spf.protection.outlook.com -all",
        "MS=ms12345678",
        f"  {expected_record(TOKEN)}  ",
        "google-site-verification=abcdef",
    )

    assert check_domain(DOMAIN, TOKEN).verified


def test_nxdomain_at_both_names_is_a_plain_no(server: LoopbackDNSServer) -> None:
    result = check_domain("nowhere.example", TOKEN)

    assert result == DNSCheck(
        verified=False,
        found_at="",
        message=(
            "No TXT record entra-sso-verification=… was found at nowhere.example or "
            "_entra-sso.nowhere.example. DNS changes can take a while to appear; "
            "try again in a few minutes."
        ),
        unreachable=False,
    )


def test_names_without_txt_records_are_a_plain_no(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN)  # the name exists, with no TXT record
    server.set_txt(SUBDOMAIN)

    result = check_domain(DOMAIN, TOKEN)

    assert not result.verified
    assert not result.unreachable
    assert result.message.startswith("No TXT record entra-sso-verification=… was found at")


def test_servfail_is_unreachable_not_a_no(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN))
    server.mode = "fail"

    result = check_domain(DOMAIN, TOKEN)

    assert result == DNSCheck(
        verified=False,
        found_at="",
        message="The DNS lookup failed (the name servers could not answer); try again later.",
        unreachable=True,
    )


def test_failure_at_one_name_is_unreachable_when_the_other_has_no_record(
    server: LoopbackDNSServer,
) -> None:
    server.fail_at(SUBDOMAIN)

    result = check_domain(DOMAIN, TOKEN)

    assert not result.verified
    assert result.unreachable


def test_failure_at_one_name_does_not_hide_a_record_at_the_other(
    server: LoopbackDNSServer,
) -> None:
    server.fail_at(DOMAIN)
    server.set_txt(SUBDOMAIN, expected_record(TOKEN))

    result = check_domain(DOMAIN, TOKEN)

    assert result.verified
    assert not result.unreachable
    assert result.found_at == SUBDOMAIN


@override_settings(ENTRA_SSO_DNS_TIMEOUT=0.5)
def test_silent_server_is_unreachable_within_the_timeout(server: LoopbackDNSServer) -> None:
    server.set_txt(DOMAIN, expected_record(TOKEN))
    server.mode = "silent"

    started = time.monotonic()
    result = check_domain(DOMAIN, TOKEN)
    elapsed = time.monotonic() - started

    assert result.unreachable
    assert not result.verified
    assert result.message == "The DNS lookup failed (timeout); try again later."
    # Both names share the 0.5 s budget: not 0.5 s each.
    assert 0.4 < elapsed < 0.9


def test_silence_at_one_name_is_unreachable(server: LoopbackDNSServer) -> None:
    server.silent_at(SUBDOMAIN)

    with override_settings(ENTRA_SSO_DNS_TIMEOUT=0.5):
        result = check_domain(DOMAIN, TOKEN)

    assert result.unreachable
    assert result.message == "The DNS lookup failed (timeout); try again later."


@pytest.mark.parametrize(
    "domain",
    [
        "a" * 64 + ".com",  # a label longer than 63 octets
        "bad..com",
        "",
        ".",
        "two words.com",
        "*.contoso.com",
        # Fits in 255 octets itself, but not with "_entra-sso." in front.
        ".".join(["a" * 60] * 4) + ".com",
    ],
)
def test_invalid_domain_is_refused_without_a_lookup(server: LoopbackDNSServer, domain: str) -> None:
    server.mode = "silent"  # a lookup would make the result unreachable

    result = check_domain(domain, TOKEN)

    assert not result.verified
    assert not result.unreachable
    assert result.found_at == ""
    assert result.message.endswith("is not a valid domain name.")


def test_internationalized_domain_is_looked_up_as_punycode(server: LoopbackDNSServer) -> None:
    server.set_txt("xn--bcher-kva.example", expected_record(TOKEN))

    result = check_domain("bücher.example", TOKEN)

    assert result.verified
    assert result.found_at == "bücher.example"


def test_outcome_is_logged_without_the_token(
    server: LoopbackDNSServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.set_txt(DOMAIN, "v=spf1 -all", expected_record(TOKEN))

    with caplog.at_level(logging.INFO, logger="django_entra_sso.setup.dns"):
        check_domain(DOMAIN, TOKEN)
        check_domain(DOMAIN, "another-token")

    assert "contoso.com verified by the TXT record at contoso.com" in caplog.text
    assert "for another token" in caplog.text
    assert TOKEN not in caplog.text
    assert "another-token" not in caplog.text


def test_message_is_translated(server: LoopbackDNSServer) -> None:
    from django.utils import translation

    server.set_txt(DOMAIN, expected_record(TOKEN))
    calls: list[str] = []

    def fake_gettext(message: str) -> str:
        calls.append(message)
        return "[ja] " + message

    with translation.override("ja"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(domain_dns, "_", fake_gettext)
        result = check_domain(DOMAIN, TOKEN)

    assert calls == ["Found the record at %(name)s."]
    assert result.message == "[ja] Found the record at contoso.com."


@override_settings(ENTRA_SSO_DNS_NAMESERVERS=["dns.example.net"])
def test_unusable_nameserver_setting_is_unreachable_not_an_exception() -> None:
    result = check_domain(DOMAIN, TOKEN)

    assert result.unreachable
    assert not result.verified
    assert "no usable name server" in result.message


@override_settings(ENTRA_SSO_DNS_NAMESERVERS=[])
def test_system_resolver_without_configuration_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_configuration(self: dns.resolver.Resolver, *args: object) -> None:
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", no_configuration)

    result = check_domain(DOMAIN, TOKEN)

    assert result.unreachable
    assert "no usable name server" in result.message


def test_empty_nameserver_setting_uses_the_system_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured: list[bool] = []
    original = dns.resolver.Resolver.__init__

    def record(self: dns.resolver.Resolver, filename: str = "", configure: bool = True) -> None:
        configured.append(configure)
        original(self, configure=False)

    monkeypatch.setattr(dns.resolver.Resolver, "__init__", record)

    with override_settings(ENTRA_SSO_DNS_NAMESERVERS=[], ENTRA_SSO_DNS_TIMEOUT=3.0):
        resolver = domain_dns._make_resolver(3.0)
    assert configured == [True]
    assert resolver.lifetime == 3.0
    assert resolver.timeout == domain_dns.PER_SERVER_TIMEOUT


def test_configured_nameservers_are_asked_on_their_ports() -> None:
    with override_settings(ENTRA_SSO_DNS_NAMESERVERS=["127.0.0.1:5353", "192.0.2.1", "[::1]:53"]):
        resolver = domain_dns._make_resolver(0.5)

    servers = [ns for ns in resolver.nameservers if isinstance(ns, Do53Nameserver)]
    assert [(ns.address, ns.port) for ns in servers] == [
        ("127.0.0.1", 5353),
        ("192.0.2.1", 53),
        ("::1", 53),
    ]
    assert resolver.timeout == 0.5


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("192.0.2.1", ("192.0.2.1", 53)),
        (" 192.0.2.1:53 ", ("192.0.2.1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
        ("2001:db8::1", ("2001:db8::1", 53)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_nameserver(setting: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(setting) == expected


@pytest.mark.parametrize(
    "setting",
    [
        "dns.google",
        "dns.google:53",
        "",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:fifty",
        "127.0.0.1:\uff15\uff13",  # fullwidth "53": isdigit(), but not a port
        "[::1",
        "[::1]5353",
        "[::1]:",
        "300.1.1.1",
    ],
)
def test_parse_nameserver_refuses(setting: str) -> None:
    with pytest.raises(ValueError, match="Name server"):
        parse_nameserver(setting)
