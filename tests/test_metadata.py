"""Discovery and JWKS: caching, TTL, stale-if-error, bad answers, timeouts, "test connection"."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from django_entra_sso.models import Connector
from django_entra_sso.oidc import metadata as metadata_module
from django_entra_sso.oidc.metadata import (
    MetadataError,
    check_connection,
    get_metadata,
    get_signing_keys,
)
from tests.fakeidp import FakeIdP, Fault
from tests.helpers import make_connector

pytestmark = pytest.mark.django_db

DISCOVERY = "/.well-known/openid-configuration"


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def liar_idp() -> Iterator[FakeIdP]:
    idp = FakeIdP(issuer_override="https://login.other.example")
    yield idp
    idp.close()


# -- caching --------------------------------------------------------------------------


def test_discovery_is_fetched_once_and_then_served_from_the_cache(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    first = get_metadata(connector)
    second = get_metadata(connector)
    assert first == second
    assert first.token_endpoint == f"{fake_idp.issuer}/token"
    assert fake_idp.calls[DISCOVERY] == 1


def test_connectors_sharing_an_issuer_share_one_copy(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    twin = make_connector(fake_idp, "contoso-twin")
    get_metadata(connector)
    get_metadata(twin)
    assert fake_idp.calls[DISCOVERY] == 1


def test_copy_older_than_the_ttl_is_fetched_again(
    fake_idp: FakeIdP, connector: Connector, settings: Any
) -> None:
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 3600
    get_metadata(connector)
    get_metadata(connector)
    assert fake_idp.calls[DISCOVERY] == 1
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0  # every copy is now too old
    get_metadata(connector)
    get_metadata(connector)
    assert fake_idp.calls[DISCOVERY] == 3


def test_force_fetches_even_when_the_copy_is_fresh(fake_idp: FakeIdP, connector: Connector) -> None:
    get_metadata(connector)
    get_metadata(connector, force=True)
    assert fake_idp.calls[DISCOVERY] == 2


def test_jwks_is_cached_like_discovery(fake_idp: FakeIdP, connector: Connector) -> None:
    metadata = get_metadata(connector)
    assert [k.key_id for k in get_signing_keys(metadata)] == ["key-1", "key-2"]
    get_signing_keys(metadata)
    assert fake_idp.calls["/jwks"] == 1


def test_stale_copy_is_served_when_the_idp_fails_after_the_ttl(
    fake_idp: FakeIdP, connector: Connector, settings: Any, caplog: Any
) -> None:
    fresh = get_metadata(connector)
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0
    fake_idp.faults[DISCOVERY] = Fault(status=500)
    stale = get_metadata(connector)
    assert stale == fresh
    assert fake_idp.calls[DISCOVERY] == 2  # it did try
    assert "Serving a cached discovery" in caplog.text


def test_stale_jwks_is_served_when_the_idp_fails(
    fake_idp: FakeIdP, connector: Connector, settings: Any
) -> None:
    metadata = get_metadata(connector)
    get_signing_keys(metadata)
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0
    fake_idp.faults["/jwks"] = Fault(status=503)
    assert len(get_signing_keys(metadata)) == 2
    assert fake_idp.calls["/jwks"] == 2


def test_stale_copy_is_not_served_past_the_stale_ttl(
    fake_idp: FakeIdP, connector: Connector, settings: Any
) -> None:
    settings.ENTRA_SSO_METADATA_STALE_TTL = 1
    get_metadata(connector)
    time.sleep(1.2)
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0
    fake_idp.faults[DISCOVERY] = Fault(status=500)
    with pytest.raises(MetadataError):
        get_metadata(connector)


# -- failures without a copy -------------------------------------------------------------


def test_idp_down_without_a_copy_says_so(fake_idp: FakeIdP, connector: Connector) -> None:
    fake_idp.faults[DISCOVERY] = Fault(status=500)
    with pytest.raises(MetadataError) as info:
        get_metadata(connector)
    message = str(info.value)
    assert f"{fake_idp.issuer}{DISCOVERY}" in message
    assert "HTTP 500" in message


def test_dead_port_without_a_copy_says_it_could_not_be_reached(db: Any) -> None:
    connector = make_connector(None, "dead", issuer=f"http://127.0.0.1:{closed_loopback_port()}")
    with pytest.raises(MetadataError, match="could not be reached"):
        get_metadata(connector)


def test_discovery_issuer_other_than_the_connectors_is_refused(liar_idp: FakeIdP, db: Any) -> None:
    connector = make_connector(liar_idp, "liar")
    with pytest.raises(MetadataError) as info:
        get_metadata(connector)
    assert "https://login.other.example" in str(info.value)
    assert liar_idp.issuer in str(info.value)


@pytest.mark.parametrize(
    "fault, message",
    [
        (Fault(body=b"<html><body>Sign in</body></html>", content_type="text/html"), "JSON"),
        (Fault(body=b"\x00\xff garbage {{{", content_type="text/plain"), "JSON"),
        (Fault(body=b'[{"issuer": "x"}]'), "JSON object"),
        (Fault(body=b'"just a string"'), "JSON object"),
        (Fault(body=b"{}"), "lacks issuer, authorization_endpoint, token_endpoint, jwks_uri"),
        (Fault(status=302, body=b"{}"), "HTTP 302"),
        (Fault(status=404, body=b'{"error": "not_found"}'), "HTTP 404"),
    ],
    ids=["html", "garbage", "json-array", "json-string", "empty-object", "redirect", "404"],
)
def test_unusable_discovery_answers_are_refused_with_a_reason(
    fake_idp: FakeIdP, connector: Connector, fault: Fault, message: str
) -> None:
    fake_idp.faults[DISCOVERY] = fault
    with pytest.raises(MetadataError, match=message):
        get_metadata(connector)


def test_discovery_with_fields_of_the_wrong_type_is_refused(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    doc = fake_idp.discovery() | {"jwks_uri": 42, "token_endpoint": None}
    fake_idp.faults[DISCOVERY] = Fault(body=json.dumps(doc).encode())
    with pytest.raises(MetadataError, match="lacks token_endpoint, jwks_uri"):
        get_metadata(connector)


@pytest.mark.parametrize("field", ["jwks_uri", "userinfo_endpoint", "end_session_endpoint"])
def test_a_discovery_endpoint_that_is_no_url_is_refused_not_a_500(
    client: Any, fake_idp: FakeIdP, connector: Connector, field: str
) -> None:
    doc = fake_idp.discovery() | {field: "https://[::1"}
    fake_idp.faults[DISCOVERY] = Fault(body=json.dumps(doc).encode())
    with pytest.raises(MetadataError, match="is not a URL"):
        get_metadata(connector)
    response = client.post("/sso/login/", {"email": "alice@contoso.com"})
    assert 400 <= response.status_code < 500, response.status_code


def test_oversized_discovery_answer_is_refused(fake_idp: FakeIdP, connector: Connector) -> None:
    huge = b'{"issuer": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    fake_idp.faults[DISCOVERY] = Fault(body=huge)
    with pytest.raises(MetadataError, match="more than"):
        get_metadata(connector)


def test_bad_answer_is_not_cached(
    fake_idp: FakeIdP, connector: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No pause between tries (RETRY_AFTER_FAILURE): what is kept is the point here.
    monkeypatch.setattr(metadata_module, "RETRY_AFTER_FAILURE", 0)
    fake_idp.faults[DISCOVERY] = Fault(body=b"<html></html>", content_type="text/html")
    with pytest.raises(MetadataError):
        get_metadata(connector)
    del fake_idp.faults[DISCOVERY]
    assert get_metadata(connector).issuer == fake_idp.issuer


def test_a_failed_fetch_is_not_tried_again_at_once_but_a_forced_one_is(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    """While the IdP is down, each request does not cost a call to it (anyone can send a
    token naming the connector's issuer); Test connection (forced) always asks."""
    fake_idp.faults[DISCOVERY] = Fault(status=503)
    with pytest.raises(MetadataError):
        get_metadata(connector)
    del fake_idp.faults[DISCOVERY]
    calls = fake_idp.calls[DISCOVERY]
    with pytest.raises(MetadataError, match="failed a moment ago"):
        get_metadata(connector)
    assert fake_idp.calls[DISCOVERY] == calls
    assert get_metadata(connector, force=True).issuer == fake_idp.issuer
    assert fake_idp.calls[DISCOVERY] == calls + 1


def test_timeout_is_honoured(fake_idp: FakeIdP, connector: Connector, settings: Any) -> None:
    settings.ENTRA_SSO_HTTP_TIMEOUT = 0.2
    fake_idp.faults[DISCOVERY] = Fault(delay=1)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="did not answer in time"):
        get_metadata(connector)
    assert time.monotonic() - started < 0.9


def test_unusable_keys_in_the_jwks_are_skipped(fake_idp: FakeIdP, connector: Connector) -> None:
    good = fake_idp.jwks()["keys"][0]
    jwks = {
        "keys": [
            good,
            {**fake_idp.jwks()["keys"][1], "use": "enc"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "nonsense", "kid": "odd"},
            "not-an-object",
        ]
    }
    fake_idp.faults["/jwks"] = Fault(body=json.dumps(jwks).encode())
    keys = get_signing_keys(get_metadata(connector))
    assert [k.key_id for k in keys] == ["key-1"]


def test_jwks_without_a_key_list_gives_no_keys(fake_idp: FakeIdP, connector: Connector) -> None:
    fake_idp.faults["/jwks"] = Fault(body=b'{"keys": "none"}')
    assert get_signing_keys(get_metadata(connector)) == []


# -- check_connection -------------------------------------------------------------------------


def test_check_connection_reports_a_healthy_idp(fake_idp: FakeIdP, connector: Connector) -> None:
    report = check_connection(connector)
    assert report.ok, report.error
    assert report.error == ""
    assert report.problems == []
    assert report.issuer == fake_idp.issuer
    assert report.issuer_matches
    assert report.discovery_url == f"{fake_idp.issuer}{DISCOVERY}"
    assert report.token_endpoint == f"{fake_idp.issuer}/token"
    assert report.end_session_endpoint == f"{fake_idp.issuer}/logout"
    assert report.signing_key_count == 2
    assert "form_post" in report.response_modes_supported


def test_check_connection_always_fetches_afresh(fake_idp: FakeIdP, connector: Connector) -> None:
    metadata = get_metadata(connector)
    get_signing_keys(metadata)
    check_connection(connector)
    assert (fake_idp.calls[DISCOVERY], fake_idp.calls["/jwks"]) == (2, 2)


def test_check_connection_reports_a_wrong_issuer(liar_idp: FakeIdP, db: Any) -> None:
    report = check_connection(make_connector(liar_idp, "liar"))
    assert not report.ok
    assert not report.issuer_matches
    assert report.issuer == "https://login.other.example"
    assert "https://login.other.example" in report.error
    assert liar_idp.issuer in report.error


def test_check_connection_reports_a_dead_port(db: Any) -> None:
    port = closed_loopback_port()
    report = check_connection(make_connector(None, "dead", issuer=f"http://127.0.0.1:{port}"))
    assert not report.ok
    assert "could not be reached" in report.error
    assert f"127.0.0.1:{port}" in report.error
    assert report.signing_key_count == 0


def test_check_connection_reports_an_unreachable_jwks(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    fake_idp.faults["/jwks"] = Fault(status=500)
    report = check_connection(connector)
    assert not report.ok
    assert report.error.startswith("JWKS:")


def test_check_connection_reports_an_empty_jwks(fake_idp: FakeIdP, connector: Connector) -> None:
    fake_idp.faults["/jwks"] = Fault(body=b'{"keys": []}')
    report = check_connection(connector)
    assert not report.ok
    assert "no usable signing key" in report.error


def test_check_connection_reports_an_unsupported_response_mode(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    doc = fake_idp.discovery() | {"response_modes_supported": ["query"]}
    fake_idp.faults[DISCOVERY] = Fault(body=json.dumps(doc).encode())
    connector.response_mode = "form_post"
    connector.save()
    report = check_connection(connector)
    assert not report.ok
    assert "form_post" in report.error


def test_check_connection_reports_unsupported_client_authentication(
    fake_idp: FakeIdP, connector: Connector
) -> None:
    fake_idp.auth_methods = ["private_key_jwt"]
    report = check_connection(connector)
    assert not report.ok
    assert "client_secret_basic" in report.error


# -- a review of these fixes (2026-12-01): failed before ------------------------------------


def test_failed_fetches_do_not_keep_a_stale_copy_past_the_stale_ttl(
    fake_idp: FakeIdP,
    connector: Connector,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """METADATA_STALE_TTL: "Seconds a cached document is still served while the provider
    cannot be reached". Each failed fetch now writes the stale copy back with a whole new
    METADATA_STALE_TTL, so an IdP that stays down (or a JWKS endpoint an attacker keeps
    failing) has the old copy, and its keys, served for ever."""
    monkeypatch.setattr(metadata_module, "RETRY_AFTER_FAILURE", 0)  # every request retries
    settings.ENTRA_SSO_METADATA_STALE_TTL = 2
    get_metadata(connector)
    settings.ENTRA_SSO_METADATA_CACHE_TTL = 0
    fake_idp.faults[DISCOVERY] = Fault(status=500)
    for _ in range(3):  # requests keep coming while the IdP is down
        time.sleep(1.2)
        try:
            get_metadata(connector)
        except MetadataError:
            break
    else:
        pytest.fail("the copy fetched 3.6 s ago is still served with a stale TTL of 2 s")
