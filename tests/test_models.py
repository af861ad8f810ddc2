"""Connector and EmailDomain validation, and the settings a connector derives."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from django_entra_sso.models import Connector, EmailDomain
from tests import helpers
from tests.helpers import TENANT

pytestmark = pytest.mark.django_db


def make_connector(**fields: Any) -> Connector:
    """Unsaved, at a made-up issuer: for validation."""
    return helpers.make_connector(save=False, **fields)


def errors_of(instance: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        instance.full_clean()
    return info.value.message_dict


# -- issuer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "http://login.contoso.example",
        "http://localhost.contoso.example:8000",
        "http://127.0.0.1.nip.io",
        "ftp://login.contoso.example",
    ],
)
def test_issuer_must_be_https_off_loopback(issuer: str) -> None:
    errors = errors_of(make_connector(issuer=issuer))
    assert list(errors) == ["issuer"]
    assert "https://" in errors["issuer"][0]


@pytest.mark.parametrize(
    "issuer",
    ["http://localhost:8000/oidc", "http://127.0.0.1:9000", "http://[::1]:8443/realm"],
)
def test_issuer_over_plain_http_is_accepted_on_loopback(issuer: str) -> None:
    connector = make_connector(issuer=issuer)
    connector.full_clean()
    assert connector.issuer == issuer


@pytest.mark.parametrize("issuer", ["login.contoso.example", "", "https://"])
def test_issuer_that_is_not_a_url_is_refused(issuer: str) -> None:
    errors = errors_of(make_connector(issuer=issuer))
    assert "issuer" in errors


def test_issuer_with_query_string_is_refused() -> None:
    errors = errors_of(make_connector(issuer="https://login.contoso.example/?tenant=1"))
    assert "query string" in errors["issuer"][0]


def test_issuer_pasted_with_discovery_suffix_is_stripped() -> None:
    connector = make_connector(
        issuer=f"  https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration "
    )
    connector.full_clean()
    assert connector.issuer == f"https://login.microsoftonline.com/{TENANT}/v2.0"


def test_issuer_is_stripped_of_discovery_suffix_on_save_too() -> None:
    connector = make_connector(issuer="https://idp.example/.well-known/openid-configuration")
    connector.save()
    connector.refresh_from_db()
    assert connector.issuer == "https://idp.example"


# -- client ID and tenants -------------------------------------------------------


@pytest.mark.parametrize("client_id", ["", "   "])
def test_empty_client_id_is_refused(client_id: str) -> None:
    errors = errors_of(make_connector(client_id=client_id))
    assert "client_id" in errors


def test_client_id_is_stripped() -> None:
    connector = make_connector(client_id="  abc-123 ")
    connector.full_clean()
    assert connector.client_id == "abc-123"


@pytest.mark.parametrize(
    "tenants",
    [["contoso.onmicrosoft.com"], [TENANT, "not-a-guid"], TENANT, {"tenant": TENANT}, [42]],
)
def test_allowed_tenants_must_be_a_list_of_guids(tenants: Any) -> None:
    errors = errors_of(make_connector(provider="entra_id", allowed_tenants=tenants))
    assert list(errors) == ["allowed_tenants"]
    assert "GUID" in errors["allowed_tenants"][0]


def test_allowed_tenants_accepts_guids_in_any_case() -> None:
    connector = make_connector(
        provider="entra_id",
        issuer="https://login.microsoftonline.com/organizations/v2.0",
        allowed_tenants=[TENANT.upper(), TENANT],
    )
    connector.full_clean()
    assert connector.allowed_tenant_ids == {TENANT}
    assert connector.is_multi_tenant


def test_empty_allowed_tenants_is_valid() -> None:
    connector = make_connector(allowed_tenants=[])
    connector.full_clean()
    assert connector.allowed_tenant_ids == set()


@pytest.mark.parametrize(("field", "value"), [("group_mapping", []), ("group_mapping", "x")])
def test_json_settings_must_be_objects(field: str, value: Any) -> None:
    errors = errors_of(make_connector(**{field: value}))
    assert list(errors) == [field]


# -- email domains ---------------------------------------------------------------


@pytest.fixture
def saved_connector() -> Connector:
    connector = make_connector()
    connector.save()
    return connector


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Contoso.COM", "contoso.com"),
        (" contoso.com. ", "contoso.com"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("mail.CONTOSO.co.jp", "mail.contoso.co.jp"),
        # IDNA 2008, not 2003: ß is its own letter, not "ss" (strasse.de is another domain).
        ("straße.de", "xn--strae-oqa.de"),
        ("ÖBB.at", "xn--bb-eka.at"),
    ],
)
def test_email_domain_is_lower_cased_and_idna_encoded(
    saved_connector: Connector, typed: str, stored: str
) -> None:
    domain = EmailDomain(domain=typed, connector=saved_connector)
    domain.full_clean()
    assert domain.domain == stored
    domain.save()
    assert EmailDomain.objects.get().domain == stored


def test_an_email_at_an_idn_domain_is_not_an_email_at_its_ascii_look_alike() -> None:
    from django_entra_sso.validation import domain_of_email

    assert domain_of_email("kai@straße.de") == "xn--strae-oqa.de"
    assert domain_of_email("kai@strasse.de") == "strasse.de"
    assert domain_of_email("kai@☃.net") is None  # a symbol IDNA 2003 let through


@pytest.mark.parametrize("typed", ["1.2.3.4", "10.0.0.5", "xn--zz.com", "mail.xn--zz.example"])
def test_ip_addresses_and_broken_punycode_are_no_email_domains(typed: str) -> None:
    """Both were accepted (found by the second setup review); DNS proof made them harmless,
    but an admin or setup page should say at once that they are no domains."""
    from django.core.exceptions import ValidationError

    from django_entra_sso.validation import domain_of_email, normalize_domain

    with pytest.raises(ValidationError):
        normalize_domain(typed)
    assert domain_of_email(f"kai@{typed}") is None
    assert normalize_domain("xn--bcher-kva.example") == "xn--bcher-kva.example"


def test_email_domain_is_normalised_on_save_without_full_clean(
    saved_connector: Connector,
) -> None:
    EmailDomain.objects.create(domain="Bücher.Example", connector=saved_connector)
    assert EmailDomain.objects.get().domain == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("@contoso.com", "without “@”"),
        ("alice@contoso.com", "without “@”"),
        ("contoso", "with a dot"),
        ("https://contoso.com", "not a web address"),
        ("contoso.com/path", "not a web address"),
        ("   ", "Enter an email domain"),
        ("-contoso.com", "not a valid domain name"),
        ("con toso.com", "not a valid domain name"),
    ],
)
def test_email_domain_refuses_what_is_not_a_domain_and_says_why(
    saved_connector: Connector, typed: str, says: str
) -> None:
    errors = errors_of(EmailDomain(domain=typed, connector=saved_connector))
    assert list(errors) == ["domain"]
    assert says in errors["domain"][0]


def test_a_verified_domain_belongs_to_one_connector(saved_connector: Connector) -> None:
    from django.core.exceptions import NON_FIELD_ERRORS
    from django.utils import timezone

    EmailDomain.objects.create(
        domain="contoso.com", connector=saved_connector, verified_at=timezone.now()
    )
    other = make_connector(slug="fabrikam", name="Fabrikam")
    other.save()

    claim = EmailDomain(domain="CONTOSO.com", connector=other, verified_at=timezone.now())
    assert "already belongs to a connector" in str(errors_of(claim).get(NON_FIELD_ERRORS))
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailDomain.objects.create(
            domain="Contoso.com", connector=other, verified_at=timezone.now()
        )
    # An unverified claim by another connector may stand beside it (and can never be verified).
    EmailDomain.objects.create(domain="contoso.com", connector=other)
    rows = EmailDomain.objects.values_list("connector__slug", "verified_at")
    assert sorted((slug, when is not None) for slug, when in rows) == [
        ("contoso", True),
        ("fabrikam", False),
    ]
    # One connector lists a domain once.
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailDomain.objects.create(domain="contoso.com", connector=other)


def test_slug_is_unique(saved_connector: Connector) -> None:
    errors = errors_of(make_connector(name="Another"))
    assert "slug" in errors


def test_slug_must_be_url_safe() -> None:
    errors = errors_of(make_connector(slug="con toso/x"))
    assert "slug" in errors


# -- derived settings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "explicit", "effective"),
    [
        ("entra_id", "", "form_post"),
        ("oidc", "", "query"),
        ("okta", "", "query"),
        ("logto", "", "query"),
        ("google_workspace", "", "query"),
        ("entra_id", "query", "query"),
        ("oidc", "form_post", "form_post"),
    ],
)
def test_effective_response_mode(provider: str, explicit: str, effective: str) -> None:
    connector = make_connector(provider=provider, response_mode=explicit)
    assert connector.effective_response_mode == effective


def test_new_connector_defaults_to_entra_id_and_form_post() -> None:
    connector = Connector(slug="x", name="X", issuer="https://idp.example", client_id="c")
    assert connector.provider == "entra_id"
    assert connector.effective_response_mode == "form_post"


@pytest.mark.parametrize(
    ("extra", "scopes"),
    [
        ("", ["openid", "profile", "email"]),
        ("offline_access", ["openid", "profile", "email", "offline_access"]),
        (
            " email  User.Read openid offline_access User.Read ",
            ["openid", "profile", "email", "User.Read", "offline_access"],
        ),
    ],
)
def test_scopes_always_include_openid_profile_email_without_duplicates(
    extra: str, scopes: list[str]
) -> None:
    assert make_connector(extra_scopes=extra).scopes == scopes


def test_str_names_connector_and_domain(saved_connector: Connector) -> None:
    domain = EmailDomain.objects.create(domain="contoso.com", connector=saved_connector)
    assert str(saved_connector) == "Contoso (contoso)"
    assert str(domain) == "contoso.com"
