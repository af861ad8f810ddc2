"""Groups and roles from the provider's claims in a real browser: staff follows a claim value.

node-oidc-provider 9.x puts ``groups`` in its ID tokens (alice: readers; bob: readers,
editors); the connector makes ``editors`` staff and maps ``readers`` to a Django group.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.e2e


def test_staff_and_groups_follow_the_claims_and_the_admin_shows_the_rules(
    e2e: Any, page: Any, browser: Any, new_page: Any, save_screenshot: Any
) -> None:
    connector = e2e.make_connector(
        "acme", group_mapping={"readers": ["Readers"]}, staff_values=["editors"]
    )
    e2e.sign_in(page, "acme", "bob", "bob@acme.test")
    alice_page = new_page(browser)
    try:
        e2e.sign_in(alice_page, "acme", "alice", "alice@acme.test")
    finally:
        alice_page.context.close()
    users = {u.email: u for u in get_user_model().objects.all()}
    bob, alice = users["bob@acme.test"], users["alice@acme.test"]
    assert bob.is_staff and not bob.is_superuser and not alice.is_staff
    assert [g.name for g in bob.groups.all()] == ["Readers"] == [g.name for g in alice.groups.all()]

    get_user_model().objects.create_superuser("admin", "admin@example.com", "e2e-admin-pw")
    admin = new_page(browser)
    try:
        admin.set_viewport_size({"width": 1280, "height": 900})
        admin.goto(f"{e2e.site}/admin/login/")
        admin.fill("#id_username", "admin")
        admin.fill("#id_password", "e2e-admin-pw")
        admin.click("input[type=submit]")
        admin.wait_for_url(f"{e2e.site}/admin/")
        admin.goto(f"{e2e.site}/admin/django_entra_sso/connector/{connector.pk}/change/")
        assert admin.input_value("#id_staff_values") == "editors"
        admin.evaluate("document.querySelector('#id_group_mapping').scrollIntoView()")
        save_screenshot(admin, "claims-and-roles.png")
    finally:
        admin.context.close()
