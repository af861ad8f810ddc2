"""Setting up SAML connectors: the admin, ``sso_connector``, system checks, key rotation."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from django_entra_sso.crypto import decrypt_secret
from django_entra_sso.models import Connector, EmailDomain
from tests.saml_fake_idp import FakeSAMLIdP, make_key_pair
from tests.test_admin import form_data

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/django_entra_sso/connector/"


@pytest.fixture(scope="module")
def idp() -> FakeSAMLIdP:
    return FakeSAMLIdP()


def saml_form(idp: FakeSAMLIdP, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "protocol": "saml",
        "provider": "entra_id",
        "issuer": "",
        "client_id": "",
        "client_secret": "",
        "saml_metadata_xml": idp.metadata_xml(),
        "saml_attribute_map": "{}",
        **overrides,
    }
    return form_data(**values)


def run(*args: str) -> str:
    out = StringIO()
    call_command("sso_connector", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


# -- admin ----------------------------------------------------------------------------------


def test_admin_adds_a_saml_connector_from_pasted_metadata(
    admin_client: Client, idp: FakeSAMLIdP
) -> None:
    response = admin_client.post(CHANGELIST + "add/", saml_form(idp))
    assert response.status_code == 302, response.context["adminform"].form.errors
    connector = Connector.objects.get()
    assert connector.is_saml and connector.issuer == idp.entity_id
    assert connector.sp_certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in decrypt_secret(connector.sp_private_key_encrypted)
    assert "PRIVATE KEY" not in connector.sp_private_key_encrypted  # encrypted at rest
    assert list(connector.domains.values_list("domain", flat=True)) == ["acme.com"]


def test_admin_shows_what_to_paste_into_the_idp(admin_client: Client, idp: FakeSAMLIdP) -> None:
    admin_client.post(CHANGELIST + "add/", saml_form(idp))
    connector = Connector.objects.get()
    page = admin_client.get(f"{CHANGELIST}{connector.pk}/change/").content.decode()
    for value in (
        "http://testserver/sso/saml/metadata/acme/",
        "http://testserver/sso/saml/acs/acme/",
        "http://testserver/sso/saml/sls/acme/",
        "Identifier (Entity ID)",
        "Reply URL (Assertion Consumer Service URL)",
    ):
        assert value in page
    assert "/sso/callback/acme/" not in page  # OIDC's URLs are not offered


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"saml_metadata_xml": "<html/>"}, "saml_metadata_xml", "not SAML metadata"),
        ({"saml_metadata_xml": ""}, "saml_metadata_url", "one of them"),
        (
            {"saml_metadata_url": "http://idp.example/metadata", "saml_metadata_xml": ""},
            "saml_metadata_url",
            "https://",
        ),
        ({"saml_attribute_map": '{"mail": "x"}'}, "saml_attribute_map", "keys are among"),
        ({"revalidate_after": "600"}, "revalidate_after", "maximum session age"),
    ],
    ids=["not-metadata", "none", "plain-http", "unknown-field", "revalidation"],
)
def test_admin_refuses_an_unusable_saml_connector(
    admin_client: Client, idp: FakeSAMLIdP, overrides: dict[str, str], field: str, message: str
) -> None:
    response = admin_client.post(CHANGELIST + "add/", saml_form(idp, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not Connector.objects.exists()


def test_test_connection_lists_certificates_and_their_expiry(
    admin_client: Client, idp: FakeSAMLIdP
) -> None:
    old = make_key_pair("Old IdP cert", days_valid=10)
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        saml_metadata_xml=idp.metadata_xml(certs=[old, idp.key], slo_url=False),
    )
    page = admin_client.get(f"{CHANGELIST}{connector.pk}/test-connection/").content.decode()
    assert "Healthy" in page and idp.entity_id in page
    assert "CN=Old IdP cert" in page and "CN=Fake IdP" in page
    assert "expires in" in page  # the old one is close to its end
    assert "no single logout endpoint" in page


def test_test_connection_says_why_when_every_certificate_expired(
    admin_client: Client, idp: FakeSAMLIdP
) -> None:
    import datetime as dt

    expired = make_key_pair(
        "Expired", days_valid=1, not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=9)
    )
    connector = Connector.objects.create(
        slug="acme",
        name="Acme",
        protocol="saml",
        saml_metadata_xml=idp.metadata_xml(certs=[expired]),
    )
    page = admin_client.get(f"{CHANGELIST}{connector.pk}/test-connection/").content.decode()
    assert "Not healthy" in page and "has expired" in page


# -- sso_connector -------------------------------------------------------------------------


def test_cli_adds_a_saml_connector_from_a_metadata_file(tmp_path: Path, idp: FakeSAMLIdP) -> None:
    path = tmp_path / "federationmetadata.xml"
    path.write_text(idp.metadata_xml())
    out = run(
        "add", "acme", "--protocol", "saml", "--saml-metadata-file", str(path),
        "--domain", "acme.com", "--allow-idp-initiated", "--provider", "okta",
    )  # fmt: skip
    assert "Added connector acme" in out and "/sso/saml/acs/acme/" in out
    connector = Connector.objects.get()
    assert (connector.protocol, connector.provider, connector.issuer) == (
        "saml",
        "okta",
        idp.entity_id,
    )
    assert connector.allow_idp_initiated and connector.sp_certificate
    assert EmailDomain.objects.get().domain == "acme.com"
    assert "healthy. SAML entity" in run("test", "acme")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--protocol", "saml"], "--saml-metadata-url URL or --saml-metadata-file"),
        (["--protocol", "saml", "--saml-metadata-file", "/nonexistent.xml"], "No such file"),
        (
            ["--protocol", "saml", "--saml-metadata-url", "http://idp.example/m"],
            "https://",
        ),
        (
            ["--protocol", "saml", "--saml-metadata-url", "https://x", "--client-id", "a"],
            "not for a saml connector",
        ),
        (
            ["--saml-metadata-url", "https://x", "--issuer", "https://x", "--client-id", "a"],
            "only for",
        ),
    ],
    ids=["no-metadata", "missing-file", "plain-http", "client-id", "oidc-with-metadata"],
)
def test_cli_refuses_bad_saml_input_with_one_line(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("+", r"\+")):
        run("add", "acme", *args)
    assert not Connector.objects.exists()


def test_cli_refuses_metadata_that_is_not_metadata(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("<html><body>Sign in</body></html>")
    with pytest.raises(CommandError, match="SAML metadata: This is not SAML metadata"):
        run("add", "acme", "--protocol", "saml", "--saml-metadata-file", str(path))
    assert not Connector.objects.exists()


def test_rotating_keys_reencrypts_the_saml_private_key(tmp_path: Path, idp: FakeSAMLIdP) -> None:
    path = tmp_path / "m.xml"
    path.write_text(idp.metadata_xml())
    with override_settings(ENTRA_SSO_SECRET_KEYS=["old-key"]):
        run("add", "acme", "--protocol", "saml", "--saml-metadata-file", str(path))
        before = Connector.objects.get()
        private = decrypt_secret(before.sp_private_key_encrypted)
    with override_settings(ENTRA_SSO_SECRET_KEYS=["a-new-key", "old-key"]):
        assert "1 connector(s)" in run("rotate-secrets")
        after = Connector.objects.get()
        assert after.sp_private_key_encrypted != before.sp_private_key_encrypted
        assert decrypt_secret(after.sp_private_key_encrypted) == private
    with override_settings(ENTRA_SSO_SECRET_KEYS=["a-new-key"]):
        assert decrypt_secret(Connector.objects.get().sp_private_key_encrypted) == private


# -- model rules and the system check -------------------------------------------------------


def test_a_saml_connector_needs_no_issuer_or_client_id(idp: FakeSAMLIdP) -> None:
    connector = Connector(slug="acme", name="Acme", protocol="saml", saml_metadata_xml="<x/>")
    connector.full_clean()  # what the metadata says is checked by forms and the CLI
    with pytest.raises(ValidationError, match="one of them"):
        Connector(slug="b", name="B", protocol="saml").full_clean()


def test_the_system_check_names_saml_connectors_without_xmlsec1(idp: FakeSAMLIdP) -> None:
    Connector.objects.create(slug="acme", name="Acme", protocol="saml", saml_metadata_xml="<x/>")
    with override_settings(ENTRA_SSO_XMLSEC_BINARY=""), pytest.MonkeyPatch.context() as patch:
        patch.setattr("shutil.which", lambda name: None)
        found = [m for m in run_checks(databases=["default"]) if m.id == "django_entra_sso.E009"]
    assert found and "acme" in found[0].msg
    assert not [m for m in run_checks(databases=["default"]) if m.id == "django_entra_sso.E009"]
