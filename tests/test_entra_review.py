"""Found by a second read-only review of the Entra-in-production work; each failed before."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from django_entra_sso import provider_http
from django_entra_sso.models import ClientKey
from django_entra_sso.oidc import credentials
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("confirm", [["--confirm"], ["--confirm="], ["--confirm=a"]])
def test_confirming_a_rotation_needs_the_certificates_name(
    fake_idp: FakeIdP, confirm: list[str]
) -> None:
    """A bare or one-character ``--confirm`` took whatever certificate was waiting, one a
    rotation someone else started meanwhile may have made."""
    connector = make_connector(
        fake_idp, "acme", provider="oidc", client_auth="private_key_jwt", client_secret=""
    )
    credentials.active_key(connector)
    credentials.start_rotation(connector)
    with pytest.raises(CommandError):
        call_command(
            "sso_connector", "certificate", "acme", *confirm, stdout=StringIO(), stderr=StringIO()
        )
    assert ClientKey.objects.filter(state="next").exists()


def test_cookies_from_one_provider_answer_never_ride_along_with_another_request() -> None:
    """One ``requests.Session`` serves every person and connector: a cookie set by one
    answer (Entra's token endpoint sets several) was sent with the next person's calls."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Cookie"))
            body = b'{"value": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Set-Cookie", "affinity=user-A-session; Path=/")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1.0/me/transitiveMemberOf"
    try:
        provider_http.get_bearer_json(url, "token-of-user-A")
        provider_http.get_bearer_json(url, "token-of-user-B")
    finally:
        server.shutdown()
        server.server_close()
        provider_http._session.cookies.clear()
    assert seen == [None, None]


def test_graph_confirmed_membership_counts_whatever_case_the_settings_spell_it(
    client: Any, fake_idp: FakeIdP, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group ID in upper case in the mapping and lower case in ``staff_values`` (the
    admin lower-cases the latter only): Graph's answer reported one spelling, and a
    person Graph confirmed lost ``is_staff`` only because their token overflowed."""
    from django.contrib.auth import get_user_model

    from tests.fakegraph import FakeGraph
    from tests.helpers import SignIn

    readers = "aaaaaaaa-1111-4111-8111-11111111111a"
    overage: dict[str, Any] = {
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/x/getMemberObjects"}},
    }
    graph = FakeGraph()
    try:
        settings.ENTRA_SSO_GRAPH_URL = graph.url
        original = fake_idp._token

        def token(form: Any, headers: Any) -> Any:
            status, answer = original(form, headers)
            if isinstance(answer.get("access_token"), str):
                graph.access_tokens.add(answer["access_token"])
            return status, answer

        monkeypatch.setattr(fake_idp, "_token", token)
        make_connector(
            fake_idp,
            "contoso",
            domain="contoso.com",
            provider="entra_id",
            resolve_group_overage=True,
            group_mapping={readers.upper(): ["Readers"]},
            staff_values=[readers],
        )
        sign_in = SignIn(client, fake_idp)
        entra = {
            "tid": "4f1c2a7e-0d55-4c3b-9a8e-2b6c1d7e9f30",
            "oid": "00000000-0000-0000-0000-00000000a11c",
        }
        assert sign_in(groups=[readers], **entra).status_code == 302
        user = get_user_model().objects.get()
        assert user.is_staff
        client.logout()
        graph.groups = [readers]
        assert sign_in(**overage, **entra).status_code == 302
        assert graph.checked
        user.refresh_from_db()
        assert user.is_staff
        assert user.groups.filter(name="Readers").exists()
    finally:
        graph.close()


READERS_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_a_group_id_pasted_in_capitals_still_maps_the_lower_case_claim(
    fake_idp: FakeIdP, client: Any
) -> None:
    """Entra sends group object IDs lower-cased; a mapping key (or staff value saved
    outside the admin) typed in capitals never matched, so the group was never granted."""
    make_connector(
        fake_idp,
        "contoso",
        domain="contoso.com",
        group_mapping={READERS_ID.upper(): ["Readers"], "Admin": "Admins"},
        staff_values=[READERS_ID.upper()],
    )
    sign_in = SignIn(client, fake_idp)
    assert sign_in(groups=[READERS_ID], roles=["admin"]).status_code == 302
    user = get_user_model().objects.get()
    # GUIDs fold; names and app roles stay exact ("admin" is not "Admin").
    assert sorted(user.groups.values_list("name", flat=True)) == ["Readers"]
    assert user.is_staff
    client.logout()
    assert sign_in(groups=[]).status_code == 302
    user.refresh_from_db()
    assert not user.groups.exists()
    assert not user.is_staff


def test_a_scim_group_whose_id_is_mapped_in_capitals_grants_its_group(
    fake_idp: FakeIdP,
) -> None:
    from tests.test_scim import Scim

    connector = make_connector(
        fake_idp,
        "contoso",
        domain="contoso.com",
        group_mapping={READERS_ID.upper(): ["Readers"]},
    )
    scim = Scim(connector)
    alice = scim.create_user()["id"]
    scim.create_group("Entra readers", [alice], externalId=READERS_ID)
    assert list(get_user_model().objects.get().groups.values_list("name", flat=True)) == ["Readers"]
