"""The dead ends of issue 13: signed-out landing, the back button, wording, the admin's help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from django_entra_sso.models import Connector
from tests.fakeidp import FakeIdP
from tests.helpers import SignIn, make_connector, query_of, signed_in_user

pytestmark = pytest.mark.django_db


# -- after sign-out ------------------------------------------------------------------------------


def test_the_signed_out_page_says_so_and_drops_what_the_idp_appended(client: Client) -> None:
    bounce = client.get("/sso/logout/done/?state=abc&iss=https%3A%2F%2Fidp")
    assert bounce.status_code == 302
    assert bounce["Location"] == "/sso/logout/done/"
    page = client.get(bounce["Location"])
    assert page.status_code == 200
    assert b"You have been signed out" in page.content
    assert b'href="/sso/login/"' in page.content


def test_sign_out_returns_to_the_signed_out_page_without_a_state(
    client: Client, sign_in: SignIn
) -> None:
    sign_in()
    query = query_of(client.post("/sso/logout/")["Location"])
    assert query["post_logout_redirect_uri"] == "http://testserver/sso/logout/done/"
    assert "state" not in query


# -- the back button right after sign-in ------------------------------------------------------------


def test_reloading_the_callback_after_signing_in_goes_to_the_landing_page(
    client: Client, fake_idp: FakeIdP, sign_in: SignIn
) -> None:
    params = fake_idp.authorize(sign_in.start())
    assert sign_in.callback("contoso", params).status_code == 302
    user = signed_in_user(client)
    again = sign_in.callback("contoso", params)  # the back button, or a reload
    assert again.status_code == 302
    assert again["Location"] == "/home/"
    assert signed_in_user(client) == user


def test_reloading_a_form_post_hand_off_after_signing_in_goes_to_the_landing_page(
    client: Client, fake_idp: FakeIdP
) -> None:
    make_connector(fake_idp, "contoso", domain="contoso.com", response_mode="form_post")
    signer = SignIn(client, fake_idp)
    bounce = client.post("/sso/callback/contoso/", fake_idp.authorize(signer.start()))
    assert client.get(bounce["Location"]).status_code == 302
    again = client.get(bounce["Location"])
    assert (again.status_code, again["Location"]) == (302, "/home/")


def test_an_unknown_state_is_still_refused_when_not_signed_in(
    client: Client, connector: Connector
) -> None:
    response = client.get("/sso/callback/contoso/", {"code": "c", "state": "s" * 43})
    assert response.status_code == 400
    assert b"This sign-in has expired" in response.content


def test_an_unknown_state_is_refused_when_signed_in_through_another_connector(
    client: Client, fake_idp: FakeIdP, sign_in: SignIn
) -> None:
    sign_in()
    make_connector(fake_idp, "fabrikam", domain="fabrikam.com")
    response = client.get("/sso/callback/fabrikam/", {"code": "c", "state": "s" * 43})
    assert response.status_code == 400


# -- wording -----------------------------------------------------------------------------------


def test_the_sign_in_page_says_continue_and_why_the_person_is_here(client: Client) -> None:
    plain = client.get("/sso/login/").content.decode()
    assert ">Continue</button>" in plain
    assert "Sign in with your work account" in plain
    asked = client.get("/sso/login/?next=/private/").content.decode()
    assert "Sign in to continue" in asked
    assert 'name="next" value="/private/"' in asked


def test_the_sign_in_page_says_who_is_signed_in(client: Client, sign_in: SignIn) -> None:
    sign_in()
    page = client.get("/sso/login/").content.decode()
    assert 'id="sso-signed-in"' in page
    assert "You are signed in as Alice Liddell" in page


def test_the_error_page_keeps_next_on_its_way_back(client: Client, connector: Connector) -> None:
    page = client.get("/sso/login/?connector=nobody&next=/private/")
    assert page.status_code == 404
    assert b'href="/sso/login/?next=/private/"' in page.content


def test_a_refused_callback_keeps_the_pending_next_on_its_way_back(
    client: Client, fake_idp: FakeIdP, sign_in: SignIn
) -> None:
    params = fake_idp.authorize(sign_in.start(next_url="/private/"))
    response = sign_in.callback("contoso", {"error": "access_denied", "state": params["state"]})
    assert response.status_code == 403
    assert b'href="/sso/login/?next=/private/"' in response.content


def test_japanese_uses_one_term_for_the_work_email_everywhere() -> None:
    """The app's and the bookstore's catalogues: 勤務先のメールアドレス, nothing else."""
    root = Path(__file__).resolve().parents[1]
    catalogues = [
        root / "django_entra_sso/locale/ja/LC_MESSAGES/django.po",
        root / "example_project/bookstore/locale/ja/LC_MESSAGES/django.po",
    ]
    work_email_messages = 0
    for catalogue in catalogues:
        text = catalogue.read_text(encoding="utf-8")
        for other in ("仕事用のメール", "職場のメール", "会社のメールアドレス", "メール アドレス"):
            assert other not in text, (catalogue.name, other)
        for msgid, msgstr in re.findall(r'msgid "(.*?)"\nmsgstr "(.*?)"', text):
            if "work email" in msgid.lower():
                work_email_messages += 1
                assert "勤務先のメールアドレス" in msgstr, (msgid, msgstr)
    assert work_email_messages >= 2


# -- the admin ------------------------------------------------------------------------------------


def test_a_connector_saved_without_domains_is_flagged(admin_client: Client) -> None:
    from tests.test_admin import form_data

    response = admin_client.post(
        "/admin/django_entra_sso/connector/add/",
        form_data(**{"domains-0-domain": "", "domains-0-sso_only": None}),
        follow=True,
    )
    assert response.status_code == 200
    assert "has no email domain" in response.content.decode()
    listing = admin_client.get("/admin/django_entra_sso/connector/").content.decode()
    assert "None: the sign-in page cannot send anyone here" in listing


def test_the_copy_box_has_the_post_logout_redirect_uri(admin_client: Client) -> None:
    connector = make_connector(domain="contoso.com")
    page = admin_client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    content = page.content.decode()
    assert "Post-logout redirect URI" in content
    assert 'value="http://testserver/sso/logout/done/"' in content


def test_tenants_and_group_mapping_are_filled_without_json(admin_client: Client) -> None:
    from tests.test_admin import form_data

    tenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
    other = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
    response = admin_client.post(
        "/admin/django_entra_sso/connector/add/",
        form_data(
            issuer="https://login.microsoftonline.com/organizations/v2.0",
            allowed_tenants=f"{tenant}\n{other}\n",
            group_mapping="readers-id = Readers\nAdmin = Staff, Editors\n\n",
        ),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    connector = Connector.objects.get()
    assert connector.allowed_tenants == [tenant, other.lower()]
    assert connector.group_mapping == {"readers-id": ["Readers"], "Admin": ["Staff", "Editors"]}
    page = admin_client.get(f"/admin/django_entra_sso/connector/{connector.pk}/change/")
    content = page.content.decode()
    assert f"{tenant}\n{other.lower()}</textarea>" in content
    assert "Admin = Staff, Editors" in content


def test_a_group_rule_without_groups_says_which_line(admin_client: Client) -> None:
    from tests.test_admin import form_data

    response = admin_client.post(
        "/admin/django_entra_sso/connector/add/",
        form_data(group_mapping="readers = Readers\njust-a-claim\n"),
    )
    assert response.status_code == 200
    assert "Line 2" in response.content.decode()
    assert not Connector.objects.exists()


def test_identity_and_session_lists_show_name_and_email(
    admin_client: Client, client: Client, sign_in: SignIn
) -> None:
    sign_in()
    for model in ("identity", "ssosession"):
        listing = admin_client.get(f"/admin/django_entra_sso/{model}/").content.decode()
        assert "Alice Liddell" in listing, model
        assert "alice@contoso.com" in listing, model
