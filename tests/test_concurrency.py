"""Two first sign-ins of the same person at the same moment make one user."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from django_entra_sso import accounts
from django_entra_sso.models import Connector, Identity
from tests.helpers import verified_person

User = get_user_model()


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_sign_ins_make_one_user(connector: Connector) -> None:
    if connection.vendor == "sqlite":
        # SQLite serialises writers, so the race cannot happen there; the
        # PostgreSQL pass of the suite runs this for real.
        pytest.skip("needs a database with concurrent writers (runs on PostgreSQL, also in CI)")
    barrier = threading.Barrier(4)
    users: list[Any] = []
    errors: list[BaseException] = []

    def first_sign_in() -> None:
        try:
            person = verified_person(
                Connector.objects.get(pk=connector.pk),
                sub="racing-subject",
                email="race@contoso.com",
                given_name="Race",
            )
            barrier.wait(timeout=10)
            with transaction.atomic():
                users.append(accounts.user_for(person).pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_sign_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(users) == 4
    assert len(set(users)) == 1
    assert User.objects.count() == 1
    assert Identity.objects.count() == 1
