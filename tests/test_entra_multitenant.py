"""A multi-tenant Entra ID connector (``common`` issuer) signing in through the views."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from django_entra_sso.models import Connector, Identity
from tests.fakeidp import FakeIdP
from tests.helpers import (
    OTHER_TENANT,
    TENANT,
    SignIn,
    entra_common_connector,
    entra_issuer,
    make_entra_idp,
    signed_in_user,
)

pytestmark = pytest.mark.django_db

OID = "00000000-0000-0000-0000-00000000a11c"


@pytest.fixture
def entra_idp() -> Iterator[FakeIdP]:
    idp = make_entra_idp()
    idp.client_secret = "entra-secret"
    yield idp
    idp.close()


@pytest.fixture
def entra_connector(entra_idp: FakeIdP) -> Connector:
    return entra_common_connector(entra_idp, allowed_tenants=[TENANT], domain="contoso.com")


def tenant_claims(tid: str = TENANT, **more: str) -> dict[str, str]:
    # The fake IdP fills its template's tenant from tid, as Entra's iss is.
    return {"tid": tid, "oid": OID, **more}


def test_multi_tenant_sign_in_keys_the_user_by_tenant_and_object_id(
    client: Client, entra_idp: FakeIdP, entra_connector: Connector
) -> None:
    sign_in = SignIn(client, entra_idp)
    response = sign_in(slug=entra_connector.slug, **tenant_claims())
    assert response.status_code == 302
    identity = Identity.objects.get()
    assert identity.subject == OID
    assert identity.tenant_id == TENANT
    assert identity.issuer == entra_issuer(entra_idp, TENANT)
    first = signed_in_user(client)
    client.logout()
    # Entra's sub is pairwise per app and may differ; (tid, oid) still finds the user.
    sign_in(slug=entra_connector.slug, sub="another-pairwise-sub", **tenant_claims())
    assert signed_in_user(client).pk == first.pk


def test_tenant_outside_the_allow_list_is_refused(
    client: Client, entra_idp: FakeIdP, entra_connector: Connector
) -> None:
    response = SignIn(client, entra_idp)(slug=entra_connector.slug, **tenant_claims(OTHER_TENANT))
    assert response.status_code == 400
    assert signed_in_user(client) is None
    assert not Identity.objects.exists()


def test_response_iss_must_match_the_tokens_tenant(
    client: Client, entra_idp: FakeIdP, entra_connector: Connector
) -> None:
    sign_in = SignIn(client, entra_idp)
    params = entra_idp.authorize(sign_in.start(), **tenant_claims())
    params["iss"] = entra_issuer(entra_idp, OTHER_TENANT)
    response = sign_in.callback(entra_connector.slug, params)
    assert response.status_code == 400
    assert b"different organization" in response.content
    assert signed_in_user(client) is None


def test_response_iss_of_the_tokens_tenant_is_accepted(
    client: Client, entra_idp: FakeIdP, entra_connector: Connector
) -> None:
    sign_in = SignIn(client, entra_idp)
    params = entra_idp.authorize(sign_in.start(), **tenant_claims())
    params["iss"] = entra_issuer(entra_idp, TENANT)
    assert sign_in.callback(entra_connector.slug, params).status_code == 302
    assert signed_in_user(client) is not None
