"""``manage.py sso_connector`` (connectors as code) and ``manage.py sso_clear_sessions``."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command

from django_entra_sso.models import Connector, EmailDomain, SSOSession
from tests.fakeidp import FakeIdP
from tests.helpers import TENANT

pytestmark = pytest.mark.django_db


ENTRA_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def run(*args: str) -> str:
    out = StringIO()
    call_command("sso_connector", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def add(slug: str = "acme", *extra: str, issuer: str = ENTRA_ISSUER) -> str:
    return run(
        "add", slug, "--issuer", issuer, "--client-id", "app-id", "--client-secret", "s3cret",
        *extra,
    )  # fmt: skip


def snapshot() -> list[Any]:
    connectors = list(
        Connector.objects.order_by("slug").values(
            "slug",
            "name",
            "provider",
            "issuer",
            "client_id",
            "client_secret_encrypted",
            "extra_scopes",
            "response_mode",
            "allowed_tenants",
            "enabled",
        )
    )
    domains = list(
        EmailDomain.objects.order_by("domain").values_list("domain", "connector__slug", "sso_only")
    )
    return [connectors, domains]


def dead_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- add ---------------------------------------------------------------------------


def test_add_creates_a_connector_with_every_option() -> None:
    output = add(
        "acme",
        "--name", "Acme Corp",
        "--provider", "entra_id",
        "--domain", "Acme.COM",
        "--domain", "acme.co.jp",
        "--scopes", "openid offline_access User.Read",
        "--response-mode", "query",
        "--tenant", TENANT.upper(),
    )  # fmt: skip
    connector = Connector.objects.get(slug="acme")
    assert connector.name == "Acme Corp"
    assert connector.provider == "entra_id"
    assert connector.issuer == ENTRA_ISSUER
    assert connector.client_id == "app-id"
    assert connector.client_secret == "s3cret"
    assert "s3cret" not in connector.client_secret_encrypted
    assert connector.scopes == ["openid", "profile", "email", "offline_access", "User.Read"]
    assert connector.response_mode == "query"
    assert connector.allowed_tenants == [TENANT]
    assert connector.enabled
    assert sorted(connector.domains.values_list("domain", flat=True)) == ["acme.co.jp", "acme.com"]
    assert "Added connector acme" in output
    assert "s3cret" not in output


def test_add_defaults_name_to_slug_and_provider_to_entra_id() -> None:
    add("acme")
    connector = Connector.objects.get(slug="acme")
    assert connector.name == "acme"
    assert connector.provider == "entra_id"
    assert connector.effective_response_mode == "form_post"


def test_add_strips_a_pasted_discovery_suffix() -> None:
    add("acme", issuer=ENTRA_ISSUER + "/.well-known/openid-configuration")
    assert Connector.objects.get().issuer == ENTRA_ISSUER


def test_add_accepts_http_issuer_on_loopback() -> None:
    add("local", "--provider", "oidc", issuer="http://localhost:8080/oidc")
    assert Connector.objects.get().issuer == "http://localhost:8080/oidc"


def test_add_disabled_and_sso_only() -> None:
    add("acme", "--domain", "acme.com", "--sso-only", "--disabled")
    connector = Connector.objects.get()
    assert not connector.enabled
    assert connector.domains.get().sso_only


def test_add_on_an_existing_slug_updates_it() -> None:
    add("acme", "--name", "Acme", "--domain", "acme.com", "--scopes", "offline_access")
    pk = Connector.objects.get().pk

    output = run(
        "add", "acme", "--issuer", "https://idp.acme.example", "--client-id", "new-id",
        "--client-secret", "new-secret", "--provider", "okta", "--domain", "acme.org",
    )  # fmt: skip

    connector = Connector.objects.get()
    assert connector.pk == pk
    assert connector.name == "Acme"  # kept: not given again
    assert connector.provider == "okta"
    assert connector.issuer == "https://idp.acme.example"
    assert connector.client_id == "new-id"
    assert connector.client_secret == "new-secret"
    assert connector.extra_scopes == "offline_access"  # kept: --scopes not given
    assert set(connector.domains.values_list("domain", flat=True)) >= {"acme.com", "acme.org"}
    assert "Updated connector acme" in output


def test_add_may_move_its_own_domain_settings() -> None:
    add("acme", "--domain", "acme.com")
    add("acme", "--domain", "acme.com", "--sso-only")
    assert EmailDomain.objects.get().sso_only


@pytest.mark.parametrize(
    ("args", "issuer", "says"),
    [
        ((), "http://idp.acme.example", "https://"),
        (("--domain", "@acme.com"), ENTRA_ISSUER, "--domain"),
        (("--domain", "https://acme.com"), ENTRA_ISSUER, "--domain"),
        (("--domain", "acme"), ENTRA_ISSUER, "--domain"),
        (("--tenant", "acme.onmicrosoft.com"), ENTRA_ISSUER, "GUID"),
        (("--client-id", " "), ENTRA_ISSUER, "client"),
        (("--client-secret", ""), ENTRA_ISSUER, "--client-secret"),
        (("--provider", "keycloak"), ENTRA_ISSUER, "keycloak"),
        (("--response-mode", "fragment"), ENTRA_ISSUER, "fragment"),
        ((), "not a url", "issuer"),
    ],
)
def test_add_with_bad_input_fails_with_one_line_and_changes_nothing(
    args: tuple[str, ...], issuer: str, says: str
) -> None:
    add("acme", "--domain", "acme.com", "--name", "Acme")
    add("other", "--domain", "other.com")
    before = snapshot()

    for slug in ("acme", "new"):  # as an update and as a creation
        with pytest.raises((CommandError, SystemExit)) as info:
            add(slug, *args, issuer=issuer)
        message = str(info.value)
        assert says in message
        assert "\n" not in message.strip()
        assert snapshot() == before


def test_add_with_a_domain_owned_by_another_connector_fails_and_changes_nothing() -> None:
    add("other", "--domain", "contoso.com")
    add("acme", "--domain", "acme.com")
    before = snapshot()

    with pytest.raises(CommandError) as info:
        add("acme", "--domain", "acme.org", "--domain", "Contoso.com", "--name", "Renamed")

    assert str(info.value) == "--domain: contoso.com already belongs to connector other."
    assert snapshot() == before
    with pytest.raises(CommandError):
        add("brand-new", "--domain", "contoso.com")
    assert snapshot() == before


def test_add_without_required_options_fails() -> None:
    with pytest.raises((CommandError, SystemExit)) as info:
        run("add", "acme", "--issuer", ENTRA_ISSUER)
    assert "--client-id" in str(info.value)
    assert not Connector.objects.exists()


# -- list, test, remove --------------------------------------------------------------


def test_list_shows_each_connector_with_its_domains() -> None:
    add("acme", "--domain", "acme.com", "--domain", "acme.org")
    add("beta", "--provider", "okta", "--disabled", issuer="https://beta.okta.example")

    lines = run("list").splitlines()

    assert lines == [
        f"acme\tentra_id\tenabled\t{ENTRA_ISSUER}\tacme.com, acme.org\tno revalidation",
        "beta\tokta\tdisabled\thttps://beta.okta.example\t-\tno revalidation",
    ]


def test_list_with_no_connectors_says_so() -> None:
    assert run("list").strip() == "No connectors."


def test_test_is_healthy_against_a_working_idp(connector: Connector, fake_idp: FakeIdP) -> None:
    output = run("test", connector.slug)
    assert "contoso: healthy" in output
    assert fake_idp.issuer in output
    assert "2 signing key(s)" in output
    assert fake_idp.calls["/.well-known/openid-configuration"] == 1
    assert fake_idp.calls["/jwks"] == 1


def test_test_fails_with_a_reason_against_a_dead_port() -> None:
    add("dead", "--provider", "oidc", issuer=f"http://127.0.0.1:{dead_loopback_port()}")
    with pytest.raises(CommandError) as info:
        run("test", "dead")
    message = str(info.value)
    assert message.startswith("dead: not healthy:")
    assert "could not be reached" in message
    assert "\n" not in message


def test_test_fails_when_the_issuer_does_not_match(connector: Connector, fake_idp: FakeIdP) -> None:
    fake_idp.issuer_override = "https://someone-else.example"
    with pytest.raises(CommandError) as info:
        run("test", connector.slug)
    assert "https://someone-else.example" in str(info.value)


def test_remove_deletes_the_connector_and_its_domains() -> None:
    add("acme", "--domain", "acme.com")
    add("keep", "--domain", "keep.com")
    output = run("remove", "acme")
    assert "Removed connector acme." in output
    assert list(Connector.objects.values_list("slug", flat=True)) == ["keep"]
    assert list(EmailDomain.objects.values_list("domain", flat=True)) == ["keep.com"]


@pytest.mark.parametrize("action", ["test", "remove"])
def test_unknown_slug_fails(action: str) -> None:
    add("acme")
    with pytest.raises(CommandError, match="No connector with slug 'nope'"):
        run(action, "nope")
    assert Connector.objects.count() == 1


def test_no_action_fails() -> None:
    with pytest.raises((CommandError, SystemExit)):
        run()


# -- the real command line: exit codes ------------------------------------------------


def test_command_line_exit_codes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ENTRA_SSO_TEST_SQLITE": str(tmp_path / "db.sqlite3"),
        "PYTHONPATH": str(root),
    }
    env.pop("ENTRA_SSO_TEST_DB", None)

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert manage("migrate", "-v0").returncode == 0
    base = ["sso_connector", "add", "acme", "--client-id", "c", "--client-secret", "s"]
    good = manage(*base, "--issuer", ENTRA_ISSUER, "--domain", "acme.com")
    assert good.returncode == 0, good.stderr
    bad = manage(*base, "--issuer", "http://idp.acme.example", "--domain", "acme.org")
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "https://" in bad.stderr
    with closing(sqlite3.connect(tmp_path / "db.sqlite3")) as db:
        table = Connector._meta.db_table
        assert db.execute(f"SELECT slug, issuer FROM {table}").fetchall() == [
            ("acme", ENTRA_ISSUER)
        ]
        assert db.execute(f"SELECT domain FROM {EmailDomain._meta.db_table}").fetchall() == [
            ("acme.com",)
        ]


# -- sso_clear_sessions ---------------------------------------------------------------


def test_clear_sessions_removes_rows_whose_django_session_is_gone(connector: Connector) -> None:
    user = get_user_model().objects.create_user("alice")
    live = SessionStore()
    live["x"] = 1
    live.create()
    SSOSession.objects.create(
        connector=connector, sid="live", subject="s", session_key=live.session_key, user=user
    )
    SSOSession.objects.create(
        connector=connector, sid="gone", subject="s", session_key="no-such-session", user=user
    )
    out = StringIO()

    call_command("sso_clear_sessions", stdout=out)

    assert list(SSOSession.objects.values_list("sid", flat=True)) == ["live"]
    assert "Removed 1 stale SSO session row(s)." in out.getvalue()
