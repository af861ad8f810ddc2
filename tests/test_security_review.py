"""The security review's eleven findings (issue 12), one regression test (or a few) each.

Every test is named after its finding and failed on the code before the fix.
SECURITY.md's threat table points here.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from io import StringIO
from typing import Any
from urllib.parse import quote_plus

import jwt
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission, UserManager
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.views.debug import ExceptionReporter

from django_entra_sso import provider_http
from django_entra_sso.backends import SSOBackend
from django_entra_sso.models import Connector, EmailDomain, Identity, SSOSession
from django_entra_sso.oidc import adapter, flow
from django_entra_sso.oidc.metadata import MetadataError, get_metadata
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import (
    TENANT,
    SignIn,
    assert_refused,
    entra_common_connector,
    entra_issuer,
    logout_claims,
    logout_token,
    make_connector,
    post_logout_token,
    signed_in_user,
)

pytestmark = pytest.mark.django_db

SECRET = "Pl4inText-Secret~value"


def staff_with(django_user_model: Any, *codenames: str) -> Client:
    """A logged-in staff client holding only the named permissions."""
    user = django_user_model.objects.create_user("viewer", password="pw-Viewer-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


# -- 1. View-only staff read the client secret ---------------------------------------------------


@pytest.mark.parametrize("codenames", [("view_connector",), ("view_connector", "change_connector")])
def test_finding_01_the_client_secret_is_never_rendered_to_staff(
    django_user_model: Any, codenames: tuple[str, ...]
) -> None:
    connector = make_connector(client_secret=SECRET)
    client = staff_with(django_user_model, *codenames)
    response = client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert SECRET not in content
    assert connector.client_secret_encrypted not in content
    assert "Set" in content  # "set / not set" instead of the value


def test_finding_01_the_secrets_status_says_when_it_was_last_changed(admin_client: Client) -> None:
    connector = make_connector(client_secret=SECRET)
    assert connector.client_secret_changed_at is not None
    before = connector.client_secret_changed_at
    connector.client_secret = "another"
    connector.save()
    assert connector.client_secret_changed_at >= before
    content = admin_client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    assert "last changed" in content.content.decode()


# -- 2. Session-key oracle in the admin ----------------------------------------------------------


def test_finding_02_session_key_lookups_are_refused_in_the_admin(django_user_model: Any) -> None:
    connector = make_connector()
    owner = django_user_model.objects.create_user("root")
    SSOSession.objects.create(
        connector=connector, sid="s", subject="x", session_key="ab" + "c" * 30, user=owner
    )
    client = staff_with(django_user_model, "view_ssosession")
    base = "/admin/django_entra_sso/ssosession/"
    assert client.get(base).status_code == 200
    for lookup in ("session_key__startswith=ab", "session_key=abc", "session_key__gt=a"):
        assert client.get(f"{base}?{lookup}").status_code == 400, lookup
    # Nor through the user admin's relations, nor a search that would match on it.
    assert "ab" + "c" * 30 not in client.get(f"{base}?q=abccc").content.decode()


# -- 3. A deactivated user stays signed in -------------------------------------------------------


def test_finding_03_deactivating_a_user_ends_their_sso_sessions_at_once(
    client: Client, sign_in: SignIn
) -> None:
    assert sign_in().status_code == 302
    user = signed_in_user(client)
    session_key = client.session.session_key
    assert user is not None and SSOSession.objects.filter(user=user).exists()
    user.is_active = False
    user.save()
    assert not SSOSession.objects.filter(user=user).exists()
    assert not SessionStore().exists(session_key)
    assert signed_in_user(client) is None


def test_finding_03_get_user_refuses_users_who_cannot_authenticate(
    client: Client, sign_in: SignIn
) -> None:
    assert sign_in().status_code == 302
    user = signed_in_user(client)
    # A bulk update sends no post_save: the backend itself must refuse the user.
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert SSOBackend().get_user(user.pk) is None
    assert signed_in_user(client) is None


# -- 4. Google Workspace hd is not checked -------------------------------------------------------


@pytest.fixture
def google(fake_idp: FakeIdP) -> Connector:
    return make_connector(fake_idp, "contoso", domain="contoso.com", provider="google_workspace")


@pytest.mark.parametrize("hd", [None, "evil.example", ""])
def test_finding_04_google_workspace_requires_hd_of_the_connectors_domains(
    client: Client, fake_idp: FakeIdP, google: Connector, hd: str | None
) -> None:
    response = SignIn(client, fake_idp)(hd=hd)
    assert_refused(client, response, status=403, code="wrong_organization")


def test_finding_04_google_workspace_signs_in_with_its_own_hd(
    client: Client, fake_idp: FakeIdP, google: Connector
) -> None:
    assert SignIn(client, fake_idp)(hd="contoso.com").status_code == 302
    assert signed_in_user(client) is not None


# -- 5. Open multi-tenant Entra connectors -------------------------------------------------------

COMMON = "https://login.microsoftonline.com/common/v2.0"


def test_finding_05_an_open_multi_tenant_connector_with_a_group_mapping_is_refused() -> None:
    connector = make_connector(
        provider="entra_id", issuer=COMMON, group_mapping={"role": ["Staff"]}, save=False
    )
    with pytest.raises(ValidationError) as caught:
        connector.full_clean()
    assert "allowed_tenants" in caught.value.error_dict
    # "Any tenant" does not make a mapping safe: every tenant's admin assigns roles.
    connector.allow_any_tenant = True
    with pytest.raises(ValidationError):
        connector.full_clean()
    connector.allowed_tenants = [TENANT]
    connector.full_clean()


def test_finding_05_an_open_connector_needs_the_explicit_switch() -> None:
    connector = make_connector(provider="entra_id", issuer=COMMON, save=False)
    with pytest.raises(ValidationError, match="allow any tenant"):
        connector.full_clean()
    connector.allow_any_tenant = True
    connector.full_clean()


def test_finding_05_the_admin_refuses_domains_on_an_open_multi_tenant_connector(
    admin_client: Client,
) -> None:
    from tests.test_admin import form_data

    response = admin_client.post("/admin/django_entra_sso/connector/add/", form_data(issuer=COMMON))
    assert response.status_code == 200  # the form again
    assert "any tenant" in response.content.decode()
    assert not Connector.objects.exists()
    allowed = admin_client.post(
        "/admin/django_entra_sso/connector/add/",
        form_data(issuer=COMMON, allowed_tenants=f'["{TENANT}"]'),
    )
    assert allowed.status_code == 302


def test_finding_05_the_cli_refuses_domains_on_an_open_multi_tenant_connector() -> None:
    args = ["add", "acme", "--issuer", COMMON, "--client-id", "a", "--client-secret", "s"]
    with pytest.raises(CommandError, match="tenant"):
        call_command("sso_connector", *args, "--domain", "acme.com", stdout=StringIO())
    assert not Connector.objects.exists()
    with pytest.raises(CommandError, match="tenant"):
        call_command(
            "sso_connector", *args, "--domain", "acme.com", "--allow-any-tenant", stdout=StringIO()
        )
    with pytest.raises(CommandError, match="allow any tenant"):
        call_command("sso_connector", *args, stdout=StringIO())
    assert not Connector.objects.exists()
    call_command("sso_connector", *args, "--allow-any-tenant", stdout=StringIO())
    assert Connector.objects.get().allow_any_tenant is True
    call_command(
        "sso_connector", *args, "--domain", "acme.com", "--tenant", TENANT, stdout=StringIO()
    )
    assert Connector.objects.get().domains.get().domain == "acme.com"


def test_finding_05_a_system_check_flags_existing_open_connectors(fake_idp: FakeIdP) -> None:
    # As a row saved before this check existed (the ORM does not call clean()).
    connector = make_connector(provider="entra_id", issuer=COMMON, domain="contoso.com")
    ids = [m.id for m in run_checks(include_deployment_checks=True, databases=["default"])]
    assert "django_entra_sso.W003" in ids
    connector.allowed_tenants = [TENANT]
    connector.save()
    ids = [m.id for m in run_checks(include_deployment_checks=True, databases=["default"])]
    assert "django_entra_sso.W003" not in ids


def test_finding_05_an_open_multi_tenant_connector_with_domains_signs_nobody_in(
    client: Client, fake_idp: FakeIdP
) -> None:
    fake_idp.issuer_override = entra_issuer(fake_idp, "{tenantid}")
    entra_common_connector(fake_idp, domain="contoso.com")
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert_refused(client, response, code="misconfigured")


# -- 6. Account pre-hijacking through unverified emails -------------------------------------------


def test_finding_06_an_unverified_email_is_not_stored_on_a_new_user(
    client: Client, fake_idp: FakeIdP
) -> None:
    # A connector without domains (say, a public IdP): nothing vouches for the email.
    make_connector(fake_idp, "public")
    signer = SignIn(client, fake_idp)
    response = signer.callback(
        "public",
        fake_idp.authorize(
            client.get("/sso/login/?connector=public")["Location"],
            email="victim@contoso.com",
            email_verified=False,
        ),
    )
    assert response.status_code == 302
    assert signed_in_user(client).email == ""


def test_finding_06_an_account_with_an_identity_elsewhere_is_never_linked_by_email(
    client: Client, fake_idp: FakeIdP, django_user_model: Any
) -> None:
    # The attacker's account, made through another connector before Contoso came,
    # holds victim@contoso.com (stored by older code, or typed in by the attacker).
    other = make_connector(slug="attacker-idp", issuer="https://attacker.example")
    attacker = django_user_model.objects.create_user("attacker", email="alice@contoso.com")
    Identity.objects.create(connector=other, issuer=other.issuer, subject="attacker", user=attacker)
    make_connector(fake_idp, "contoso", domain="contoso.com", link_existing_by_email=True)
    assert SignIn(client, fake_idp)().status_code == 302
    alice = signed_in_user(client)
    assert alice.pk != attacker.pk
    assert list(attacker.sso_identities.values_list("subject", flat=True)) == ["attacker"]


def test_finding_06_a_password_account_is_still_linked_by_verified_email(
    client: Client, fake_idp: FakeIdP, django_user_model: Any
) -> None:
    existing = django_user_model.objects.create_user("alice", email="alice@contoso.com")
    make_connector(fake_idp, "contoso", domain="contoso.com", link_existing_by_email=True)
    assert SignIn(client, fake_idp)().status_code == 302
    assert signed_in_user(client).pk == existing.pk


# -- 7. SSO-only domains can be bypassed ----------------------------------------------------------


class EmailBackend(ModelBackend):
    """An allauth-style backend: signs in by email and password."""

    def authenticate(
        self, request: Any, email: str | None = None, password: str | None = None, **kw: Any
    ) -> Any:  # type: ignore[override]
        user = get_user_model()._default_manager.filter(email__iexact=email or "").first()
        if user is not None and password and user.check_password(password):
            return user
        return None


@pytest.fixture
def sso_only_alice(django_user_model: Any, connector: Connector) -> Any:
    EmailDomain.objects.filter(domain="contoso.com").update(sso_only=True)
    return django_user_model.objects.create_user(
        "alice", email="alice@contoso.com", password="pw-Alice-123"
    )


@override_settings(
    AUTHENTICATION_BACKENDS=[
        "django_entra_sso.backends.SSOBackend",
        "tests.test_security_review.EmailBackend",
    ]
)
def test_finding_07_sso_only_refuses_an_email_credential(sso_only_alice: Any) -> None:
    assert authenticate(email="alice@contoso.com", password="pw-Alice-123") is None
    assert authenticate(email="ALICE@Contoso.com", password="pw-Alice-123") is None


def test_finding_07_sso_only_finds_the_user_as_the_manager_does(
    sso_only_alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user model whose manager finds usernames case-insensitively.
    def get_by_natural_key(self: Any, username: str) -> Any:
        return self.get(username__iexact=username)

    monkeypatch.setattr(UserManager, "get_by_natural_key", get_by_natural_key)
    assert ModelBackend().authenticate(None, username="ALICE", password="pw-Alice-123")
    assert authenticate(username="ALICE", password="pw-Alice-123") is None


# -- 8. Unauthenticated form_post writes to the shared cache ---------------------------------------


def cache_entries() -> int:
    return len(cache._cache)  # type: ignore[attr-defined]


def test_finding_08_form_post_without_a_well_formed_state_stores_nothing(
    connector: Connector,
) -> None:
    before = cache_entries()
    client = Client()
    for data in (
        {"code": "x" * 200_000},
        {"code": "c", "state": "not a state!"},
        {"code": "c", "state": "s" * 10_000},
        {"code": "c" * 100_000, "state": "a" * 43},
        {"error": "access_denied", "error_description": "d" * 100_000, "state": "a" * 43},
    ):
        response = client.post("/sso/callback/contoso/", data)
        assert response.status_code == 400, data.keys()
    assert cache_entries() == before


def test_finding_08_a_flood_of_form_posts_does_not_evict_a_pending_hand_off(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    signer = SignIn(client, fake_idp)
    params = fake_idp.authorize(signer.start())
    bounce = client.post("/sso/callback/contoso/", params)
    assert bounce.status_code == 303
    attacker = Client()
    for i in range(400):
        attacker.post("/sso/callback/contoso/", {"code": "x" * 20_000, "state": f"s{i}"})
    assert client.get(bounce["Location"]).status_code == 302
    assert signed_in_user(client) is not None


def test_finding_08_the_stored_hand_off_is_small() -> None:
    handle = flow.stash_form_post({"code": "c" * 2000, "state": "a" * 43, "iss": "https://x"})
    assert handle is not None
    kept = flow.claim_form_post(handle)
    assert kept == {"code": "c" * 2000, "state": "a" * 43, "iss": "https://x"}
    assert flow.stash_form_post({"code": "c" * 20_000, "state": "a" * 43}) is None


# -- 9. Discovery endpoints are used as given ------------------------------------------------------


def discovery_doc(issuer: str, **endpoints: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/logout",
        **endpoints,
    }


@pytest.mark.parametrize(
    "name",
    [
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "authorization_endpoint",
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example/x",
        "http://10.0.0.5/x",
        "https://127.0.0.1:6379/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://localhost/x",
        "ftp://idp.example/x",
    ],
)
def test_finding_09_discovery_endpoints_must_be_https_and_not_internal(name: str, url: str) -> None:
    from django_entra_sso.oidc.metadata import parse_discovery

    issuer = "https://idp.example"
    with pytest.raises(MetadataError, match=name):
        parse_discovery(discovery_doc(issuer, **{name: url}), issuer=issuer, url=issuer)


def test_finding_09_loopback_issuers_may_use_loopback_http_endpoints() -> None:
    from django_entra_sso.oidc.metadata import parse_discovery

    issuer = "http://127.0.0.1:9000"
    metadata = parse_discovery(discovery_doc(issuer), issuer=issuer, url=issuer)
    assert metadata.token_endpoint == f"{issuer}/token"
    with pytest.raises(MetadataError, match="token_endpoint"):
        parse_discovery(
            discovery_doc(issuer, token_endpoint="http://192.0.2.1/token"),
            issuer=issuer,
            url=issuer,
        )


def test_finding_09_a_plain_http_token_endpoint_gets_no_credentials(
    client: Client, fake_idp: FakeIdP, connector: Connector
) -> None:
    doc = {**fake_idp.discovery(), "token_endpoint": "http://192.0.2.1/token"}
    fake_idp.faults["/.well-known/openid-configuration"] = Fault(body=json.dumps(doc).encode())
    with pytest.raises(MetadataError):
        get_metadata(connector)
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert_refused(client, response, code="provider_unreachable")


def test_finding_09_credentials_are_not_sent_on_a_redirect(
    client: Client, fake_idp: FakeIdP, sign_in: SignIn
) -> None:
    fake_idp.faults["/token"] = Fault(
        status=307, body=b"{}", headers={"Location": f"{fake_idp.issuer}/elsewhere"}
    )
    response = sign_in()
    assert_refused(client, response, code="token_failed")
    assert fake_idp.calls["/elsewhere"] == 0


# -- 10. Back-channel logout token gaps -------------------------------------------------------------


@pytest.fixture
def signed_in(client: Client, sign_in: SignIn) -> Client:
    assert sign_in().status_code == 302
    return client


@pytest.mark.parametrize("missing", ["jti", "exp"])
def test_finding_10_logout_token_without_jti_or_exp_is_refused(
    signed_in: Client, fake_idp: FakeIdP, missing: str
) -> None:
    assert post_logout_token(logout_token(fake_idp, **{missing: None})).status_code == 400
    assert signed_in_user(signed_in) is not None


@pytest.mark.parametrize("typ", ["at+jwt", "JWS", "id_token+jwt", "application/at+jwt"])
def test_finding_10_logout_token_of_another_type_is_refused(
    signed_in: Client, fake_idp: FakeIdP, typ: str
) -> None:
    token = fake_idp.sign(
        logout_claims(fake_idp),
        headers={"typ": typ},
    )
    assert post_logout_token(token).status_code == 400
    assert signed_in_user(signed_in) is not None


@pytest.mark.parametrize("typ", ["logout+jwt", "application/logout+jwt", "JWT", None])
def test_finding_10_logout_token_types_real_idps_send_are_accepted(
    signed_in: Client, fake_idp: FakeIdP, typ: str | None
) -> None:
    headers = {"typ": typ} if typ else {}
    token = fake_idp.sign(logout_claims(fake_idp), headers=headers)
    if typ is None:
        # PyJWT writes typ=JWT unless told otherwise.
        token = jwt.encode(
            logout_claims(fake_idp),
            fake_idp.keys[0][1],
            algorithm="RS256",
            headers={"kid": fake_idp.keys[0][0], "typ": None},
        )
        assert "typ" not in jwt.get_unverified_header(token)
    assert post_logout_token(token).status_code == 200
    assert signed_in_user(signed_in) is None


def test_finding_10_a_replay_late_in_the_acceptance_window_is_refused(
    signed_in: Client, fake_idp: FakeIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    token = logout_token(fake_idp, iat=int(now), exp=int(now) + 3600, sid="other-session")
    assert post_logout_token(token).status_code == 200
    # 630 s later the token is still acceptable (iat within max age + leeway)...
    monkeypatch.setattr(time, "time", lambda: now + 630)
    # ...so its jti must still be remembered.
    assert post_logout_token(token).status_code == 400


# -- 11. A deeply nested JSON answer gives a 500 and leaks the secret ---------------------------------


def test_finding_11_a_deeply_nested_token_answer_is_a_clear_refusal(
    client: Client, fake_idp: FakeIdP, sign_in: SignIn
) -> None:
    fake_idp.faults["/token"] = Fault(body=b"[" * 100_000 + b"]" * 100_000)
    response = sign_in()
    assert_refused(client, response, code="token_failed")


class ErrorReports(logging.Handler):
    """What AdminEmailHandler would mail: the HTML report of each logged request error."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        request = getattr(record, "request", None)
        if record.exc_info and request is not None:
            reporter = ExceptionReporter(request, *record.exc_info, is_email=True)
            self.reports.append(reporter.get_traceback_html())


@pytest.fixture
def error_reports() -> Any:
    handler = ErrorReports()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield handler.reports
    logger.removeHandler(handler)


def secrets_of(fake_idp: FakeIdP, params: dict[str, str]) -> list[str]:
    pair = f"{quote_plus(fake_idp.client_id)}:{quote_plus(fake_idp.client_secret)}"
    return [
        fake_idp.client_secret,
        quote_plus(fake_idp.client_secret),
        base64.b64encode(pair.encode()).decode(),
        params["code"],
    ]


@pytest.mark.parametrize("where", ["after the token answer", "while reading the token answer"])
def test_finding_11_an_error_report_holds_no_secret_code_or_token(
    fake_idp: FakeIdP, monkeypatch: pytest.MonkeyPatch, error_reports: list[str], where: str
) -> None:
    """A bug anywhere in a sign-in: the report a site's admins get holds no secret."""
    make_connector(fake_idp, "contoso", domain="contoso.com", response_mode="form_post")
    client = Client(raise_request_exception=False)
    signer = SignIn(client, fake_idp)
    params = fake_idp.authorize(signer.start())
    bounce = client.post("/sso/callback/contoso/", params)
    answers: list[dict[str, Any]] = []
    real_loads = provider_http.json.loads

    class BuggyJSON:
        @staticmethod
        def loads(content: bytes) -> Any:
            answers.append(real_loads(content))
            if where == "while reading the token answer":
                raise RuntimeError("an unforeseen bug while reading the token answer")
            return answers[-1]

    def buggy_check(claims: Any, access_token: str, alg: str) -> None:
        # The real check_access_token_hash's signature: its frame's names decide what hides.
        raise RuntimeError("an unforeseen bug after the token answer")

    monkeypatch.setattr(provider_http, "json", BuggyJSON)
    monkeypatch.setattr(adapter, "check_access_token_hash", buggy_check)
    response = client.get(bounce["Location"])
    leaks = [*secrets_of(fake_idp, params), answers[0]["id_token"], answers[0]["access_token"]]
    if where == "while reading the token answer":
        # A failure talking to the IdP is an unusable answer, not a 500.
        assert_refused(client, response, code="token_failed")
        return
    assert response.status_code == 500
    (report,) = error_reports
    assert "unforeseen bug" in report  # it is the report
    assert "complete_sign_in" in report
    for secret in leaks:
        assert secret not in report, secret


# -- Also: the client secret off the command line ---------------------------------------------------


def test_client_secret_from_standard_input() -> None:
    call_command(
        "sso_connector",
        "add", "acme", "--issuer", "https://idp.example", "--client-id", "app",
        "--client-secret-stdin",
        stdin=StringIO("from-stdin-secret\n"),
        stdout=StringIO(),
    )  # fmt: skip
    assert Connector.objects.get().client_secret == "from-stdin-secret"


def test_client_secret_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", "from-env-secret")
    call_command(
        "sso_connector",
        "add", "acme", "--issuer", "https://idp.example", "--client-id", "app",
        "--client-secret-env", "ACME_SECRET",
        stdout=StringIO(),
    )  # fmt: skip
    assert Connector.objects.get().client_secret == "from-env-secret"


@pytest.mark.parametrize(
    "args",
    [
        [],  # no source at all for a new connector
        ["--client-secret-env", "NOT_SET_ANYWHERE"],
        ["--client-secret", "a", "--client-secret-stdin"],
    ],
)
def test_client_secret_sources_are_checked(args: list[str]) -> None:
    with pytest.raises(CommandError, match="secret"):
        call_command(
            "sso_connector",
            "add", "acme", "--issuer", "https://idp.example", "--client-id", "app", *args,
            stdin=StringIO(""),
            stdout=StringIO(),
        )  # fmt: skip
    assert not Connector.objects.exists()


def test_updating_a_connector_keeps_its_secret_when_none_is_given() -> None:
    make_connector(slug="acme", client_secret="kept")
    call_command(
        "sso_connector",
        "add", "acme", "--issuer", "https://idp.example", "--client-id", "app2",
        stdout=StringIO(),
    )  # fmt: skip
    connector = Connector.objects.get()
    assert (connector.client_id, connector.client_secret) == ("app2", "kept")
