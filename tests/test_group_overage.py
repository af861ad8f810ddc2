"""Entra's group overage resolved through Microsoft Graph (``oidc/graph.py``), end to end.

The fake IdP signs people in; its access tokens are the only ones the fake Graph
accepts. A token "in overage" has ``_claim_names`` naming ``groups`` (or
``hasgroups``) and no ``groups`` claim, as Entra ID sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from django_entra_sso import provider_http
from django_entra_sso.models import Connector
from django_entra_sso.oidc import graph as graph_module
from django_entra_sso.oidc.graph import MAX_PAGES, same_origin
from tests.fakegraph import CHECK_MEMBER_GROUPS, MEMBER_OF, FakeGraph
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import SignIn, assert_refused, make_connector, signed_in_user

pytestmark = pytest.mark.django_db

TID = "4f1c2a7e-0d55-4c3b-9a8e-2b6c1d7e9f30"
READERS = "aaaaaaaa-1111-4111-8111-11111111111a"
WRITERS = "bbbbbbbb-2222-4222-8222-22222222222b"
#: Groups the person is in that no mapping names: what makes their token overflow.
OTHERS = [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 6)]
OVERAGE: dict[str, Any] = {
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {
        "src1": {"endpoint": f"https://graph.windows.net/{TID}/users/x/getMemberObjects"}
    },
}
ENTRA: dict[str, Any] = {"tid": TID, "oid": "00000000-0000-0000-0000-00000000a11c"}


@pytest.fixture
def graph(settings: Any) -> Iterator[FakeGraph]:
    graph = FakeGraph()
    settings.ENTRA_SSO_GRAPH_URL = graph.url + "/"  # a trailing slash is fine
    yield graph
    graph.close()


class Tokens:
    """What the fake IdP's token answers hand out: Graph accepts exactly those access tokens."""

    def __init__(self, idp: FakeIdP, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch):
        self.issued: list[str] = []
        self.send_access_token = True
        self.graph_accepts_them = True
        original = idp._token

        def token(form: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
            status, answer = original(form, headers)
            if isinstance(answer.get("access_token"), str):
                self.issued.append(answer["access_token"])
                if self.graph_accepts_them:
                    graph.access_tokens.add(answer["access_token"])
                if not self.send_access_token:
                    del answer["access_token"]
            return status, answer

        monkeypatch.setattr(idp, "_token", token)


@pytest.fixture
def tokens(fake_idp: FakeIdP, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> Tokens:
    return Tokens(fake_idp, graph, monkeypatch)


def entra_connector(idp: FakeIdP, **fields: Any) -> Connector:
    values: dict[str, Any] = {
        "provider": "entra_id",
        "resolve_group_overage": True,
        "group_mapping": {READERS: ["Readers"], WRITERS: "Writers", "Admin": "Admins"},
        **fields,
    }
    return make_connector(idp, "contoso", domain="contoso.com", **values)


@pytest.fixture
def connector(db: Any, fake_idp: FakeIdP) -> Connector:
    """Contoso at Entra ID (the fake IdP), resolving overage; its mapping names two group IDs."""
    return entra_connector(fake_idp)


@pytest.fixture
def sign_in(client: Client, fake_idp: FakeIdP, connector: Connector, tokens: Tokens) -> SignIn:
    return SignIn(client, fake_idp)


def groups_of(client: Client) -> set[str]:
    user = signed_in_user(client)
    assert user is not None, "not signed in"
    return set(user.groups.values_list("name", flat=True))


def signed_in_as_reader(client: Client, sign_in: SignIn, graph: FakeGraph) -> None:
    """A first sign-in whose token still held the groups: the user is a Reader."""
    assert sign_in(groups=[READERS], **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}
    assert not graph.calls
    client.logout()


def twenty_one_group_ids() -> dict[str, str]:
    """A mapping naming more group IDs than one checkMemberGroups request may check."""
    return {f"33333333-3333-4333-8333-{n:012d}": "Many" for n in range(21)}


# -- resolved -----------------------------------------------------------------------------------


def test_overage_is_resolved_over_several_graph_pages_and_mapped_to_groups(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector, tokens: Tokens
) -> None:
    connector.group_mapping = {
        **twenty_one_group_ids(),
        READERS: ["Readers"],
        WRITERS: "Writers",
    }
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [*OTHERS[:3], WRITERS, *OTHERS[3:]]  # no longer a Reader, now a Writer
    graph.page_size = 2

    assert sign_in(**OVERAGE, **ENTRA).status_code == 302

    assert groups_of(client) == {"Writers"}
    assert graph.calls[MEMBER_OF] == 3
    assert not graph.calls[CHECK_MEMBER_GROUPS]
    assert graph.authorizations == [f"Bearer {tokens.issued[-1]}"] * 3


def test_graph_is_asked_for_the_mapped_group_ids_only_when_they_fit_in_one_check(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector
) -> None:
    connector.group_mapping = {READERS: ["Readers"], WRITERS.upper(): "Writers", "Admin": "Admins"}
    connector.staff_values = [OTHERS[0], "Admin"]
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [*OTHERS, WRITERS]

    assert sign_in(**OVERAGE, **ENTRA).status_code == 302

    assert groups_of(client) == {"Writers"}
    # Role values are no group IDs: Graph would refuse the whole request for one of them.
    # Asked once each, lower-cased (Graph compares GUIDs without case).
    assert [sorted(ids) for ids in graph.checked] == [sorted([READERS, WRITERS, OTHERS[0]])]
    assert not graph.calls[MEMBER_OF]


def test_roles_count_beside_the_groups_graph_names(
    client: Client, sign_in: SignIn, graph: FakeGraph
) -> None:
    graph.groups = [*OTHERS, READERS]
    assert sign_in(roles=["Admin"], **OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers", "Admins"}


def test_hasgroups_is_overage_too(client: Client, sign_in: SignIn, graph: FakeGraph) -> None:
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [WRITERS]
    assert sign_in(hasgroups=True, **ENTRA).status_code == 302
    assert groups_of(client) == {"Writers"}
    assert graph.checked == [[READERS, WRITERS]]


def test_without_a_group_id_in_the_mapping_every_group_is_listed(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector
) -> None:
    connector.group_mapping = {"Admin": "Admins"}
    connector.save()
    graph.groups = [*(f"44444444-4444-4444-8444-{n:012d}" for n in range(150)), READERS]
    assert sign_in(roles=["Admin"], **OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Admins"}
    assert graph.calls[MEMBER_OF] == 1  # $top=999: one page
    assert not graph.calls[CHECK_MEMBER_GROUPS]


# -- Graph not asked ------------------------------------------------------------------------------


def test_without_overage_graph_is_never_called(
    client: Client, sign_in: SignIn, graph: FakeGraph
) -> None:
    assert sign_in(groups=[WRITERS], roles=["Admin"], **ENTRA).status_code == 302
    assert groups_of(client) == {"Writers", "Admins"}
    assert not graph.calls


@pytest.mark.parametrize(
    "overage", [OVERAGE, {"hasgroups": True}], ids=["claim_names", "hasgroups"]
)
def test_a_connector_not_opted_in_never_calls_graph_and_keeps_the_groups(
    client: Client,
    sign_in: SignIn,
    graph: FakeGraph,
    connector: Connector,
    overage: dict[str, Any],
) -> None:
    connector.resolve_group_overage = False
    connector.group_overage_failure = "refuse"  # only for Graph's failures
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [WRITERS]
    assert sign_in(**overage, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}
    assert not graph.calls


def test_another_providers_token_never_goes_to_graph(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector
) -> None:
    connector.provider = "oidc"
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [WRITERS]
    assert sign_in(**OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}
    assert not graph.calls


# -- Graph cannot say -------------------------------------------------------------------------------

FAILURES = {
    "down": (
        Fault(status=503, body=b'{"error": {"code": "serviceUnavailable"}}'),
        "provider_unreachable",
    ),
    "throttled": (Fault(status=429, body=b"{}"), "provider_unreachable"),
    "garbage": (
        Fault(body=b"<html>not json</html>", content_type="text/html"),
        "provider_unreachable",
    ),
    "no_list": (Fault(body=b'{"value": {"id": "x"}}'), "provider_unreachable"),
    "not_ids": (Fault(body=b'{"value": [{"id": 7}]}'), "provider_unreachable"),
    "slow": (Fault(delay=1.0), "provider_unreachable"),
    "no_permission": (
        Fault(status=403, body=b'{"error": {"code": "Authorization_RequestDenied"}}'),
        "misconfigured",
    ),
}


def break_graph(graph: FakeGraph, settings: Any, failure: str) -> str:
    fault, code = FAILURES[failure]
    graph.faults[MEMBER_OF] = graph.faults[CHECK_MEMBER_GROUPS] = fault
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.3
    return code


@pytest.mark.parametrize("failure", FAILURES)
def test_graph_failing_keeps_the_groups_and_warns(
    client: Client,
    sign_in: SignIn,
    graph: FakeGraph,
    connector: Connector,
    tokens: Tokens,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    connector.group_mapping = {**twenty_one_group_ids(), READERS: "Readers"}
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [WRITERS]
    break_graph(graph, settings, failure)
    caplog.set_level(logging.WARNING)

    assert sign_in(**OVERAGE, **ENTRA).status_code == 302

    assert groups_of(client) == {"Readers"}
    assert graph.calls[MEMBER_OF] == 1
    assert "could not be resolved through Microsoft Graph" in caplog.text
    assert "groups were left unchanged" in caplog.text
    assert tokens.issued and all(token not in caplog.text for token in tokens.issued)


@pytest.mark.parametrize("failure", FAILURES)
def test_graph_failing_refuses_the_sign_in_when_the_connector_says_so(
    client: Client,
    sign_in: SignIn,
    graph: FakeGraph,
    connector: Connector,
    settings: Any,
    failure: str,
) -> None:
    connector.group_overage_failure = "refuse"
    connector.save()
    graph.groups = [READERS]
    code = break_graph(graph, settings, failure)
    response = sign_in(**OVERAGE, **ENTRA)
    assert_refused(client, response, status=424, code=code)
    assert graph.calls[CHECK_MEMBER_GROUPS] == 1


def test_graph_refusing_the_token_is_a_set_up_problem(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector, tokens: Tokens
) -> None:
    connector.group_overage_failure = "refuse"
    connector.save()
    tokens.graph_accepts_them = False  # e.g. a token for another API than Graph
    response = sign_in(**OVERAGE, **ENTRA)
    assert_refused(client, response, status=424, code="misconfigured")
    assert graph.calls[CHECK_MEMBER_GROUPS] == 1


def test_a_token_answer_without_an_access_token(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector, tokens: Tokens
) -> None:
    signed_in_as_reader(client, sign_in, graph)
    tokens.send_access_token = False
    graph.groups = [WRITERS]
    assert sign_in(**OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}
    client.logout()

    connector.group_overage_failure = "refuse"
    connector.save()
    response = sign_in(**OVERAGE, **ENTRA)
    assert_refused(client, response, status=424, code="misconfigured", created_nothing=False)
    assert not graph.calls


def test_a_failing_later_page_is_never_used_in_part(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector
) -> None:
    connector.group_mapping = {**twenty_one_group_ids(), READERS: "Readers", WRITERS: "Writers"}
    connector.save()
    signed_in_as_reader(client, sign_in, graph)
    graph.groups = [WRITERS, *OTHERS]
    graph.page_size = 2
    graph.page_faults[1] = Fault(status=500, body=b"{}")
    assert sign_in(**OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}  # not Writers from the first page
    assert graph.calls[MEMBER_OF] == 2


@pytest.mark.parametrize("policy", Connector.OverageFailure.values)
def test_endless_paging_stops_after_the_page_limit(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector, policy: str
) -> None:
    connector.group_mapping = {**twenty_one_group_ids(), READERS: "Readers", WRITERS: "Writers"}
    connector.group_overage_failure = policy
    connector.save()
    graph.groups = [WRITERS]
    graph.page_size = 1
    graph.endless = True
    response = sign_in(**OVERAGE, **ENTRA)
    assert graph.calls[MEMBER_OF] == MAX_PAGES
    if policy == Connector.OverageFailure.REFUSE:
        assert_refused(client, response, status=424, code="provider_unreachable")
    else:
        assert response.status_code == 302
        assert groups_of(client) == set()  # a new user: nothing granted from a partial list


@pytest.mark.parametrize("disguise", ["plain", "backslash"])
@pytest.mark.parametrize("policy", Connector.OverageFailure.values)
def test_a_next_link_to_another_origin_is_not_followed(
    client: Client,
    sign_in: SignIn,
    graph: FakeGraph,
    connector: Connector,
    policy: str,
    disguise: str,
) -> None:
    connector.group_mapping = {**twenty_one_group_ids(), READERS: "Readers", WRITERS: "Writers"}
    connector.group_overage_failure = policy
    connector.save()
    elsewhere = FakeGraph()
    try:
        graph.groups = elsewhere.groups = [WRITERS, READERS]
        graph.page_size = elsewhere.page_size = 1
        # Same host, another port: another origin. Disguised, urlsplit reads Graph's host
        # where urllib3 (which sends it) reads the other one.
        graph.next_link_base = (
            elsewhere.url if disguise == "plain" else f"{elsewhere.url}\\@127.0.0.1:{graph.port}"
        )
        response = sign_in(**OVERAGE, **ENTRA)
        assert not elsewhere.calls, "the access token went to another origin"
    finally:
        elsewhere.close()
    assert graph.calls[MEMBER_OF] == 1
    if policy == Connector.OverageFailure.REFUSE:
        assert_refused(client, response, status=424, code="provider_unreachable")
    else:
        assert response.status_code == 302
        assert groups_of(client) == set()


def test_same_origin() -> None:
    base = "https://graph.microsoft.com"
    assert same_origin("https://graph.microsoft.com/v1.0/me?$skiptoken=x", base)
    assert same_origin("HTTPS://Graph.Microsoft.com:443/v1.0/me", base)
    assert not same_origin("http://graph.microsoft.com/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com:8443/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com@evil.example/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com.evil.example/v1.0/me", base)
    assert not same_origin("//evil.example/v1.0/me", base)
    assert not same_origin("/v1.0/me", base)
    assert not same_origin("https://graph.microsoft.com:port/v1.0/me", base)
    assert not same_origin("https://evil.example\\@graph.microsoft.com/v1.0/me", base)


@pytest.mark.django_db(transaction=True)
def test_graph_is_asked_outside_any_transaction(
    client: Client,
    sign_in: SignIn,
    graph: FakeGraph,
    connector: Connector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    graph.groups = [READERS]
    calls: list[tuple[str, bool]] = []
    send = provider_http._session.request

    def probed(method: str, url: str, **kwargs: Any) -> Any:
        calls.append((url, connection.in_atomic_block))
        return send(method, url, **kwargs)

    monkeypatch.setattr(provider_http._session, "request", probed)
    assert sign_in(**OVERAGE, **ENTRA).status_code == 302
    assert groups_of(client) == {"Readers"}
    graph_calls = [inside for url, inside in calls if url.startswith(graph.url)]
    assert graph_calls == [False]


def test_group_ids_to_check_are_the_settings_guids_once_each(connector: Connector) -> None:
    connector.group_mapping = {READERS: "Readers", READERS.upper(): "Readers", "Admin": "Admins"}
    connector.superuser_values = [WRITERS, "not-a-guid"]
    assert graph_module.group_ids_to_check(connector) == [READERS, WRITERS]


# -- app roles are never in overage: staff flags they alone grant follow them ---------------------


@pytest.mark.parametrize("resolve", [False, True])
def test_a_removed_app_role_takes_staff_away_even_in_overage(
    client: Client, sign_in: SignIn, graph: FakeGraph, connector: Connector, resolve: bool
) -> None:
    from django.contrib.auth import get_user_model

    connector.staff_values = connector.superuser_values = ["Admin"]
    connector.resolve_group_overage = resolve
    connector.save()
    assert sign_in(roles=["Admin"], **ENTRA).status_code == 302
    client.logout()
    user = get_user_model().objects.get()
    assert user.is_staff and user.is_superuser
    graph.faults[MEMBER_OF] = Fault(status=503)  # and Graph cannot help (the keep policy)
    assert sign_in(roles=[], **OVERAGE, **ENTRA).status_code == 302
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser
    # The role given back grants it again, overage or not.
    client.logout()
    assert sign_in(roles=["Admin"], **OVERAGE, **ENTRA).status_code == 302
    user.refresh_from_db()
    assert user.is_staff and user.is_superuser


def test_a_flag_a_group_could_grant_is_left_alone_in_overage(
    client: Client, sign_in: SignIn, connector: Connector
) -> None:
    from django.contrib.auth import get_user_model

    connector.staff_values = [OTHERS[0], "Admin"]  # a group object ID, and a role
    connector.resolve_group_overage = False  # the groups stay unknown
    connector.save()
    assert sign_in(groups=[OTHERS[0]], **ENTRA).status_code == 302
    client.logout()
    assert sign_in(roles=[], **OVERAGE, **ENTRA).status_code == 302
    assert get_user_model().objects.get().is_staff  # unknown groups: perhaps still a member
