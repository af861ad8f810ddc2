"""What the tests share: one connector factory, one sign-in driver, one ``assert_refused``.

Fixtures live in ``conftest.py`` and are built from these; test modules import
from here, never from each other.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from django_entra_sso.oidc.tokens import BACKCHANNEL_LOGOUT_EVENT
from django_entra_sso.verified import VerifiedPerson
from tests.fakeidp import FakeIdP, Fault

IN_CI = os.environ.get("CI", "").lower() == "true"

# An organisation's tenant. Not 9188040d-…, the tenant of personal Microsoft accounts.
TENANT = "5f2a0c1e-7b3d-4e8f-9a6b-1c2d3e4f5a6b"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
ENTRA_TENANT_PLACEHOLDER = "{tenantid}"


def require(reason: str | None) -> None:
    """Skip a test for a missing tool locally; fail it under CI=true."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"Required under CI=true: {reason}")
    pytest.skip(reason)  # local runs only: under CI=true the line above fails the test


# -- connectors ------------------------------------------------------------------------------


def make_connector(
    idp: Any = None,
    slug: str = "contoso",
    *,
    domain: str | None = None,
    save: bool = True,
    **fields: Any,
) -> Connector:
    """The one connector factory: a query-mode OIDC connector at ``idp``, owning ``domain``.

    ``idp`` is anything with ``issuer``, ``client_id`` and ``client_secret`` (the fake
    IdP, node-oidc-provider's clients); without one, a connector at a made-up issuer.
    ``save=False`` returns it unsaved (for validation tests); ``fields`` override.
    """
    values: dict[str, Any] = {
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "provider": "oidc",
        "issuer": idp.issuer if idp is not None else "https://login.contoso.example",
        "client_id": idp.client_id if idp is not None else "client-1",
        "client_secret": idp.client_secret if idp is not None else "s3cret",
        "response_mode": "query",
        **fields,
    }
    connector = Connector(**values)  # client_secret: the model's encrypting property
    if save:
        connector.save()
        if domain:
            EmailDomain.objects.create(
                domain=domain, connector=connector, verified_at=timezone.now()
            )
    return connector


def entra_issuer(idp: FakeIdP, tenant: str) -> str:
    """A tenant's v2.0 issuer at the fake IdP, shaped like Entra's ``<origin>/<tenant>/v2.0``
    (``tenant="{tenantid}"`` gives the template of its multi-tenant documents)."""
    return f"{idp.issuer}/{tenant}/v2.0"


def make_entra_idp() -> FakeIdP:
    """A fake IdP whose discovery document names Entra's ``{tenantid}`` template issuer,
    on its own origin as Entra's is on ``login.microsoftonline.com``; its ID tokens'
    ``iss`` is the template filled with their ``tid``."""
    idp = FakeIdP()
    idp.issuer_override = entra_issuer(idp, ENTRA_TENANT_PLACEHOLDER)
    return idp


def entra_common_connector(idp: FakeIdP, provider: str = "entra_id", **fields: Any) -> Connector:
    """A connector at the fake IdP's ``/common/v2.0``, whose discovery names the
    ``{tenantid}`` template issuer, as Entra ID's multi-tenant documents do.
    """
    if idp.issuer_override is None:
        idp.issuer_override = entra_issuer(idp, ENTRA_TENANT_PLACEHOLDER)
    doc = idp.discovery()
    assert doc["issuer"] == entra_issuer(idp, ENTRA_TENANT_PLACEHOLDER)
    idp.faults["/common/v2.0/.well-known/openid-configuration"] = Fault(
        body=json.dumps(doc).encode()
    )
    return make_connector(
        idp,
        f"entra-{provider}",
        name="Entra common",
        provider=provider,
        issuer=f"{idp.issuer}/common/v2.0",
        **fields,
    )


def verified_person(connector: Connector, **claims: Any) -> VerifiedPerson:
    """Alice as the OIDC adapter would hand her to ``accounts`` (claims override)."""
    from django_entra_sso.oidc.adapter import person_from_claims

    values = {
        "iss": connector.issuer,
        "sub": "subject-alice",
        "email": "alice@contoso.com",
        "email_verified": True,
        "given_name": "Alice",
        "family_name": "Liddell",
        **claims,
    }
    return person_from_claims(connector, {k: v for k, v in values.items() if v is not None})


# -- driving a sign-in --------------------------------------------------------------------------


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class SignIn:
    """Drives a whole sign-in with the test client against the fake IdP."""

    def __init__(self, client: Client, idp: FakeIdP):
        self.client = client
        self.idp = idp

    def start(self, email: str = "alice@contoso.com", next_url: str | None = None) -> str:
        data = {"email": email}
        if next_url is not None:
            data["next"] = next_url
        response = self.client.post("/sso/login/", data)
        assert response.status_code == 302, response.content
        return response["Location"]

    def callback(self, connector_slug: str, params: dict[str, str], method: str = "get") -> Any:
        url = f"/sso/callback/{connector_slug}/"
        if method == "post":
            bounce = self.client.post(url, params)
            assert bounce.status_code == 303, bounce.content
            return self.client.get(bounce["Location"])
        return self.client.get(url, params)

    def __call__(
        self,
        email: str = "alice@contoso.com",
        slug: str = "contoso",
        method: str = "get",
        next_url: str | None = None,
        **claims: Any,
    ) -> Any:
        authorize_url = self.start(email, next_url)
        params = self.idp.authorize(authorize_url, **claims)
        return self.callback(slug, params, method)


def signed_in_user(client: Client) -> Any:
    from django.contrib.auth import get_user

    request = type("R", (), {"session": client.session})()
    user = get_user(request)  # type: ignore[arg-type]
    return user if user.is_authenticated else None


def assert_refused(
    client: Client,
    response: Any,
    *,
    status: int | None = None,
    code: str | None = None,
    created_nothing: bool = True,
) -> None:
    """Refused with ``status`` (by default any 4xx): nobody signed in, no session bound
    and, unless ``created_nothing=False`` (people who existed before), no user or
    identity made.
    """
    if status is None:
        assert 400 <= response.status_code < 500, response.content[:500]
    else:
        assert response.status_code == status, response.content[:500]
    if code is not None:
        assert f"Reference: {code}".encode() in response.content, response.content[:500]
    assert signed_in_user(client) is None
    assert not SSOSession.objects.exists()
    if created_nothing:
        assert not get_user_model().objects.exists()
        assert not Identity.objects.exists()


# -- logout tokens ------------------------------------------------------------------------------


def logout_claims(idp: FakeIdP, **overrides: Any) -> dict[str, Any]:
    """A back-channel logout token's claims naming alice's IdP session; ``None`` drops one."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": idp.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sid": "idp-session-1",
        "sub": "subject-alice",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


def logout_token(idp: FakeIdP, **overrides: Any) -> str:
    return idp.sign(logout_claims(idp, **overrides))


def post_logout_token(token: str, slug: str = "contoso", **extra: str) -> Any:
    return Client().post(f"/sso/logout/backchannel/{slug}/", {"logout_token": token, **extra})
