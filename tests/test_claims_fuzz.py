"""Whatever the IdP puts in its claims, a sign-in ends on a page: never a 500.

Claims of every shape (strings, numbers, lists, objects, null) in the places the account
rules read: email and its verification, preferred_username, names, groups and roles, Entra's
overage markers, with a connector that maps claims, trusts preferred_username and makes
staff from roles.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from django_entra_sso.models import Connector
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn
from tests.test_hardening import PROFILE

pytestmark = pytest.mark.django_db


def json_values(text_size: int = 20, key_size: int = 6) -> st.SearchStrategy[Any]:
    """Any JSON value, small: what an IdP could put in a claim."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=text_size),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=key_size), inner, max_size=3)
        ),
        max_leaves=6,
    )


_json = json_values()
_odd_places = st.sampled_from(
    [
        "email",
        "email_verified",
        "preferred_username",
        "given_name",
        "family_name",
        "name",
        "groups",
        "roles",
        "hasgroups",
        "_claim_names",
        "upn",
        "xms_edov",
        "employee_id",
        "login_hint",
        "sid",
    ]
)


def test_any_claims_end_on_a_page(client: Client, fake_idp: FakeIdP, connector: Connector) -> None:
    connector.claim_mapping = {"username": "employee_id", "first_name": "name"}
    connector.trust_preferred_username = True
    connector.staff_values = ["Admin"]
    connector.group_mapping = {"readers": ["Readers"]}
    connector.save()

    @PROFILE
    @given(claims=st.dictionaries(_odd_places, _json, max_size=5))
    def run(claims: dict[str, Any]) -> None:
        browser = Client(raise_request_exception=False)
        signer = SignIn(browser, fake_idp)
        params = fake_idp.authorize(signer.start("alice@contoso.com"), **claims)
        response = signer.callback("contoso", params)
        assert response.status_code < 500, (claims, response.content[:300])

    run()
