"""The migrations match the models."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_have_no_changes_missing_a_migration() -> None:
    out = StringIO()
    # --check exits non-zero (SystemExit) when a migration would be written.
    call_command("makemigrations", "django_entra_sso", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_domains_from_before_verification_are_verified_by_hand_each_with_its_own_token() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    app = "django_entra_sso"
    executor = MigrationExecutor(connection)
    executor.migrate([(app, "0010_saml_replay_register")])
    old = executor.loader.project_state([(app, "0010_saml_replay_register")]).apps
    connector = old.get_model(app, "Connector").objects.create(
        slug="contoso", name="Contoso", issuer="https://login.contoso.example", client_id="c"
    )
    domains = old.get_model(app, "EmailDomain")
    domains.objects.create(domain="contoso.com", connector=connector)
    domains.objects.create(domain="contoso.net", connector=connector)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([(app, "0011_setup_links")])
    new = executor.loader.project_state([(app, "0011_setup_links")]).apps
    rows = list(new.get_model(app, "EmailDomain").objects.order_by("domain"))
    assert [r.verification_method for r in rows] == ["manual", "manual"]
    assert all(r.verified_at is not None for r in rows)
    assert rows[0].verification_token != rows[1].verification_token

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes(app))
