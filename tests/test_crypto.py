"""Client secrets are encrypted at rest, with rotatable keys."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from django_entra_sso.conf import app_settings
from django_entra_sso.crypto import (
    SecretDecryptionError,
    decrypt_secret,
    encrypt_secret,
    keys_usable,
)
from django_entra_sso.models import Connector

pytestmark = pytest.mark.django_db


SECRET = "Xy7~s3cr3t.value-from-the-IdP"


def new_connector(slug: str = "contoso", secret: str = SECRET) -> Connector:
    connector = Connector(
        slug=slug, name=slug, provider="oidc", issuer="https://idp.example", client_id="c"
    )
    connector.client_secret = secret
    connector.save()
    return connector


def stored_column(pk: int) -> str:
    table = Connector._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_secret_encrypted FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_secret_is_not_stored_in_plaintext() -> None:
    connector = new_connector()
    column = stored_column(connector.pk)
    assert column
    assert SECRET not in column
    assert SECRET.encode().hex() not in column


def test_secret_round_trips_through_the_database() -> None:
    connector = new_connector()
    assert Connector.objects.get(pk=connector.pk).client_secret == SECRET
    assert connector.has_client_secret


def test_same_secret_encrypts_differently_each_time() -> None:
    assert encrypt_secret(SECRET) != encrypt_secret(SECRET)


def test_empty_secret_is_stored_empty() -> None:
    connector = new_connector(secret="")
    assert stored_column(connector.pk) == ""
    assert connector.client_secret == ""
    assert not connector.has_client_secret


def test_unicode_secret_round_trips() -> None:
    assert decrypt_secret(encrypt_secret("パスワード✓")) == "パスワード✓"


def test_key_rotation_keeps_old_ciphertext_readable_until_rotate_secrets() -> None:
    with override_settings(ENTRA_SSO_SECRET_KEYS=["old-key"]):
        pk = new_connector().pk
        old_column = stored_column(pk)

    with (
        override_settings(ENTRA_SSO_SECRET_KEYS=["new-key"]),
        pytest.raises(SecretDecryptionError),
    ):
        _ = Connector.objects.get(pk=pk).client_secret

    with override_settings(ENTRA_SSO_SECRET_KEYS=["new-key", "old-key"]):
        assert Connector.objects.get(pk=pk).client_secret == SECRET
        call_command("sso_connector", "rotate-secrets", stdout=StringIO())
        assert stored_column(pk) != old_column

    with override_settings(ENTRA_SSO_SECRET_KEYS=["new-key"]):
        assert Connector.objects.get(pk=pk).client_secret == SECRET


def test_rotate_secrets_reports_how_many() -> None:
    new_connector("a")
    new_connector("b")
    new_connector("c", secret="")
    out = StringIO()
    call_command("sso_connector", "rotate-secrets", stdout=out)
    assert "Re-encrypted the secrets of 3 connector(s) and 0 client key(s)." in out.getvalue()


def test_rotate_secrets_re_encrypts_client_certificate_keys_too() -> None:
    from django_entra_sso.crypto import decrypt_secret
    from django_entra_sso.oidc import credentials

    with override_settings(ENTRA_SSO_SECRET_KEYS=["old-key"]):
        connector = new_connector("cyberdyne")
        key = credentials.active_key(connector)
        pem = decrypt_secret(key.private_key_encrypted)
    with override_settings(ENTRA_SSO_SECRET_KEYS=["new-key", "old-key"]):
        out = StringIO()
        call_command("sso_connector", "rotate-secrets", stdout=out)
        assert "and 1 client key(s)." in out.getvalue()
    key.refresh_from_db()
    with override_settings(ENTRA_SSO_SECRET_KEYS=["new-key"]):  # the old key dropped
        assert decrypt_secret(key.private_key_encrypted) == pem


def test_rotate_secrets_with_an_unreadable_secret_changes_nothing() -> None:
    with override_settings(ENTRA_SSO_SECRET_KEYS=["old-key"]):
        readable = new_connector("readable").pk
    with override_settings(ENTRA_SSO_SECRET_KEYS=["lost-key"]):
        lost = new_connector("lost").pk
    before = {pk: stored_column(pk) for pk in (readable, lost)}

    with (
        override_settings(ENTRA_SSO_SECRET_KEYS=["new-key", "old-key"]),
        pytest.raises(CommandError, match="lost"),
    ):
        call_command("sso_connector", "rotate-secrets")

    assert {pk: stored_column(pk) for pk in (readable, lost)} == before


def test_wrong_key_raises_secret_decryption_error_with_a_readable_message() -> None:
    with override_settings(ENTRA_SSO_SECRET_KEYS=["key-one"]):
        ciphertext = encrypt_secret(SECRET)
    with (
        override_settings(ENTRA_SSO_SECRET_KEYS=["key-two"]),
        pytest.raises(SecretDecryptionError) as info,
    ):
        decrypt_secret(ciphertext)
    message = str(info.value)
    assert "ENTRA_SSO_SECRET_KEYS" in message
    assert "cannot be decrypted" in message
    assert ciphertext not in message


def test_garbage_ciphertext_raises_secret_decryption_error() -> None:
    with pytest.raises(SecretDecryptionError):
        decrypt_secret("not a fernet token")


@override_settings(SECRET_KEY="django-key-now", SECRET_KEY_FALLBACKS=["django-key-before"])
def test_default_keys_follow_secret_key_and_its_fallbacks() -> None:
    assert app_settings.SECRET_KEYS == ["django-key-now", "django-key-before"]


def test_rotating_django_secret_key_keeps_stored_secrets_readable() -> None:
    with override_settings(SECRET_KEY="django-key-before", SECRET_KEY_FALLBACKS=[]):
        pk = new_connector().pk
    with (
        override_settings(SECRET_KEY="django-key-now", SECRET_KEY_FALLBACKS=[]),
        pytest.raises(SecretDecryptionError),
    ):
        _ = Connector.objects.get(pk=pk).client_secret
    with override_settings(SECRET_KEY="django-key-now", SECRET_KEY_FALLBACKS=["django-key-before"]):
        assert Connector.objects.get(pk=pk).client_secret == SECRET


@override_settings(ENTRA_SSO_SECRET_KEYS="a-single-key")
def test_a_single_string_key_is_accepted() -> None:
    assert app_settings.SECRET_KEYS == ["a-single-key"]
    assert decrypt_secret(encrypt_secret(SECRET)) == SECRET


@pytest.mark.parametrize("keys", [[], [""]])
def test_no_usable_key_is_reported(keys: list[str]) -> None:
    with override_settings(ENTRA_SSO_SECRET_KEYS=keys):
        reason = keys_usable()
        with pytest.raises(SecretDecryptionError):
            encrypt_secret(SECRET)
    assert reason is not None
    assert "ENTRA_SSO_SECRET_KEYS" in reason


def test_configured_keys_are_usable() -> None:
    assert keys_usable() is None
