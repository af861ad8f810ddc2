"""Each SAML assertion and LogoutRequest ID is accepted once, even when the cache forgets.

The markers used to be cache entries, which a cache may evict early (LocMem keeps 300
entries; anonymous ACS posts each leave one): an unsolicited assertion could then sign
in twice and a replayed LogoutRequest end the person's next session. They are rows now.
"""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from django_entra_sso.models import Connector, SSOSession, UsedSAMLMessage
from django_entra_sso.saml import replay
from tests.saml_fake_idp import FakeSAMLIdP
from tests.test_saml import (  # noqa: F401 - fixtures
    SLS,
    _signed_in,
    acme,
    answer,
    idp,
    post,
    sign_in,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
VICTIM = "00000000-persistent-id"


def test_an_unsolicited_assertion_signs_in_once_even_when_the_cache_is_emptied(
    idp: FakeSAMLIdP, acme: Connector
) -> None:
    acme.allow_idp_initiated = True
    acme.save()
    xml = answer(idp, None)
    assert post(Client(), xml).status_code == 302
    cache.clear()  # what eviction under memory pressure, or a flood of ACS posts, does
    again = post(Client(), xml)
    assert again.status_code == 400 and b"Reference: invalid_token" in again.content
    assert SSOSession.objects.count() == 1


def test_a_logout_request_ends_sessions_once_even_when_the_cache_is_emptied(
    client: Client, idp: FakeSAMLIdP, acme: Connector
) -> None:
    _signed_in(client, idp)
    query = urlencode(idp.redirect_logout_request_query(destination=SLS, name_id=VICTIM))
    assert Client().get("/sso/saml/sls/acme/?" + query).status_code == 302
    assert not SSOSession.objects.exists()
    cache.clear()
    _signed_in(client, idp)
    assert Client().get("/sso/saml/sls/acme/?" + query).status_code == 400
    assert SSOSession.objects.count() == 1, "the replayed LogoutRequest ended the new session"


def test_markers_belong_to_their_connector_and_kind(acme: Connector) -> None:
    other = Connector.objects.create(slug="other", name="Other", protocol="saml")
    assert replay.first_use(acme, UsedSAMLMessage.ASSERTION, "_id-1", 60)
    assert not replay.first_use(acme, UsedSAMLMessage.ASSERTION, "_id-1", 60)
    assert replay.first_use(acme, UsedSAMLMessage.LOGOUT_REQUEST, "_id-1", 60)
    assert replay.first_use(other, UsedSAMLMessage.ASSERTION, "_id-1", 60)


def test_a_marker_past_its_time_is_dropped_and_no_longer_blocks(acme: Connector) -> None:
    kind = UsedSAMLMessage.ASSERTION
    assert replay.first_use(acme, kind, "_old", 60)
    UsedSAMLMessage.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert replay.first_use(acme, kind, "_old", 60)  # its message is refused on its times
    assert UsedSAMLMessage.objects.count() == 1


def test_sso_clear_sessions_prunes_markers_past_their_time(acme: Connector) -> None:
    kind = UsedSAMLMessage.ASSERTION
    for message_id in ("_a", "_b", "_c"):
        assert replay.first_use(acme, kind, message_id, 3600)
    UsedSAMLMessage.objects.filter(
        message_digest__in=UsedSAMLMessage.objects.values_list("message_digest", flat=True)[:2]
    ).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    out = io.StringIO()
    call_command("sso_clear_sessions", stdout=out)
    assert "Removed 2 used SAML message marker(s)" in out.getvalue()
    assert UsedSAMLMessage.objects.count() == 1


def test_long_message_ids_are_kept_as_digests(acme: Connector) -> None:
    long_id = "_" + "x" * 5000
    assert replay.first_use(acme, UsedSAMLMessage.ASSERTION, long_id, 60)
    assert not replay.first_use(acme, UsedSAMLMessage.ASSERTION, long_id, 60)
    assert len(UsedSAMLMessage.objects.get().message_digest) == 64


def test_a_register_that_cannot_answer_refuses_the_sign_in(
    idp: FakeSAMLIdP, acme: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme.allow_idp_initiated = True
    acme.save()

    def broken(*args: object, **kwargs: object) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(UsedSAMLMessage.objects, "create", broken)
    response = post(Client(), answer(idp, None))
    assert response.status_code == 503 and b"Reference: unavailable" in response.content
    assert not User.objects.exists() and not SSOSession.objects.exists()


def test_a_marker_prunes_only_its_own_expired_twin_but_now_and_then_all(
    acme: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pruning every expired marker at each sign-in would hold their row locks to the end
    of the request (under ATOMIC_REQUESTS, concurrent sign-ins queue): one in
    ``PRUNE_EVERY`` does."""
    kind = UsedSAMLMessage.ASSERTION
    monkeypatch.setattr(replay, "PRUNE_EVERY", 10**9)
    for message_id in ("_a", "_b"):
        assert replay.first_use(acme, kind, message_id, 60)
    UsedSAMLMessage.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert replay.first_use(acme, kind, "_c", 60)
    assert UsedSAMLMessage.objects.count() == 3
    monkeypatch.setattr(replay, "PRUNE_EVERY", 1)
    assert replay.first_use(acme, kind, "_d", 60)
    assert UsedSAMLMessage.objects.count() == 2  # _c and _d


# -- a review of these fixes (2026-12-01): failed before ------------------------------------


def test_an_assertion_valid_until_the_far_future_is_no_500(
    idp: FakeSAMLIdP, acme: Connector
) -> None:
    """The IdP's signed Conditions say NotOnOrAfter 9999-12-31 (some IdPs write "never"
    like this); the marker's expires_at = now + that lifetime + 2 x leeway is past
    datetime.max, and the OverflowError is neither IntegrityError nor DatabaseError."""
    browser = Client(raise_request_exception=False)
    far = dt.datetime(9999, 12, 31, 23, 59, 0, tzinfo=dt.timezone.utc)
    response = sign_in(browser, idp, not_on_or_after=far)
    assert response.status_code != 500
