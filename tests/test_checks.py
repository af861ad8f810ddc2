"""System checks: each id fires on the setting it guards, and a sound set-up reports none."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_entra_sso import checks

SSO = "django_entra_sso.backends.SSOBackend"
MODEL = "django.contrib.auth.backends.ModelBackend"


def ids_of(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def check_command_fails_with(check_id: str) -> SystemCheckError:
    with pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert check_id in str(info.value)
    return info.value


def test_sound_configuration_reports_none_of_our_checks() -> None:
    assert checks.check_settings() == []
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "django_entra_sso" not in out.getvalue() + err.getvalue()


@override_settings(AUTHENTICATION_BACKENDS=[MODEL])
def test_e001_sso_backend_missing() -> None:
    error = check_command_fails_with("django_entra_sso.E001")
    assert "AUTHENTICATION_BACKENDS" in str(error)


SUBCLASS = "tests.test_backends.CompanyBackend"


@override_settings(AUTHENTICATION_BACKENDS=[SUBCLASS, MODEL])
def test_e001_accepts_a_subclass_of_sso_backend() -> None:
    assert checks.check_settings() == []


@override_settings(AUTHENTICATION_BACKENDS=["tests.nowhere.Backend", MODEL])
def test_e001_backend_that_does_not_import_is_not_ours() -> None:
    assert "django_entra_sso.E001" in ids_of(checks.check_settings())


@pytest.mark.parametrize("sso", [SSO, SUBCLASS])
def test_w001_model_backend_before_sso_backend(sso: str) -> None:
    with override_settings(AUTHENTICATION_BACKENDS=[MODEL, sso]):
        messages = checks.check_settings()
    assert ids_of(messages) == ["django_entra_sso.W001"]
    assert messages[0].hint


@override_settings(AUTHENTICATION_BACKENDS=[SSO, MODEL])
def test_sso_backend_before_model_backend_is_fine() -> None:
    assert checks.check_settings() == []


def test_e002_sessions_app_missing() -> None:
    apps = [app for app in settings.INSTALLED_APPS if app != "django.contrib.sessions"]
    with override_settings(INSTALLED_APPS=apps):
        check_command_fails_with("django_entra_sso.E002")


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies")
def test_e003_signed_cookie_sessions() -> None:
    error = check_command_fails_with("django_entra_sso.E003")
    assert "signed-cookies" in str(error)


@pytest.mark.parametrize("keys", [[], ["", ""]])
def test_e004_no_usable_secret_key(keys: list[str]) -> None:
    with override_settings(ENTRA_SSO_SECRET_KEYS=keys):
        check_command_fails_with("django_entra_sso.E004")


@override_settings(ENTRA_SSO_CACHE_ALIAS="metadata")
def test_e005_cache_alias_not_in_caches() -> None:
    error = check_command_fails_with("django_entra_sso.E005")
    assert "'metadata'" in str(error)


@override_settings(
    ENTRA_SSO_CACHE_ALIAS="metadata",
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "metadata": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    },
)
def test_named_cache_alias_that_exists_is_fine() -> None:
    assert checks.check_settings() == []


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}})
def test_w002_dummy_cache() -> None:
    messages = checks.check_settings()
    assert ids_of(messages) == ["django_entra_sso.W002"]
    # A warning alone does not fail the check command.
    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)
    assert "django_entra_sso.W002" in err.getvalue()


def test_e006_authentication_middleware_missing() -> None:
    middleware = [
        m
        for m in settings.MIDDLEWARE
        if m != "django.contrib.auth.middleware.AuthenticationMiddleware"
    ]
    with override_settings(MIDDLEWARE=middleware):
        check_command_fails_with("django_entra_sso.E006")


@pytest.mark.parametrize(
    "name",
    ["HTTP_TIMEOUT", "LOGIN_TIMEOUT", "METADATA_CACHE_TTL", "MAX_PENDING_LOGINS", "XMLSEC_TIMEOUT"],
)
@pytest.mark.parametrize("value", [0, -5, "soon"])
def test_e007_non_positive_or_non_numeric_setting(name: str, value: Any) -> None:
    with override_settings(**{f"ENTRA_SSO_{name}": value}):
        assert ids_of(checks.check_settings()) == ["django_entra_sso.E007"]
        error = check_command_fails_with("django_entra_sso.E007")
    assert f"ENTRA_SSO_{name}" in str(error)


@pytest.mark.parametrize("algorithms", [["RS256", "HS256"], ["none"], ["ES256", "HS512"]])
def test_e008_symmetric_or_none_algorithm_allowed(algorithms: list[str]) -> None:
    with override_settings(ENTRA_SSO_ALLOWED_ALGORITHMS=algorithms):
        error = check_command_fails_with("django_entra_sso.E008")
    unsafe = [a for a in algorithms if a == "none" or a.startswith("HS")]
    for algorithm in unsafe:
        assert algorithm in str(error)


@pytest.mark.parametrize("value", ["site-owner", "Customer", ""])
def test_e010_unknown_setup_activation_keeps_activation_with_the_site(value: str) -> None:
    from django_entra_sso.conf import app_settings

    with override_settings(ENTRA_SSO_SETUP_ACTIVATION=value):
        error = check_command_fails_with("django_entra_sso.E010")
        assert app_settings.SETUP_ACTIVATION == "site_owner"
    assert repr(value) in str(error)


@pytest.mark.parametrize("server", ["dns.example.com", "192.0.2.1:99999", "[::1]:x"])
def test_e011_a_name_server_that_is_no_address(server: str) -> None:
    with override_settings(ENTRA_SSO_DNS_NAMESERVERS=["198.51.100.53", server]):
        error = check_command_fails_with("django_entra_sso.E011")
    assert repr(server) in str(error) and "198.51.100.53" not in str(error)


@override_settings(
    ENTRA_SSO_SETUP_ACTIVATION="site_owner",
    ENTRA_SSO_DNS_NAMESERVERS=["127.0.0.1:5353", "[::1]:53", "192.0.2.53"],
)
def test_good_setup_settings_are_fine() -> None:
    assert checks.check_settings() == []


@override_settings(ENTRA_SSO_ALLOWED_ALGORITHMS=["RS256", "PS256", "ES256"])
def test_asymmetric_algorithms_only_is_fine() -> None:
    assert checks.check_settings() == []


def test_every_check_id_in_the_module_is_tested() -> None:
    source = Path(checks.__file__).read_text(encoding="utf-8")
    declared = set(re.findall(r'id="(django_entra_sso\.[EW]\d{3})"', source))
    tested = {
        "django_entra_sso.E001",
        "django_entra_sso.E002",
        "django_entra_sso.E003",
        "django_entra_sso.E004",
        "django_entra_sso.E005",
        "django_entra_sso.E006",
        "django_entra_sso.E007",
        "django_entra_sso.E008",
        "django_entra_sso.E010",
        "django_entra_sso.E011",
        "django_entra_sso.W001",
        "django_entra_sso.W002",
        "django_entra_sso.W003",  # test_security_review.py, finding 5
        "django_entra_sso.W004",  # test_revalidation.py
        "django_entra_sso.E009",  # test_saml_setup.py
        "django_entra_sso.W005",  # test_client_certificates.py
        "django_entra_sso.W006",  # test_api.py
    }
    assert declared == tested
