"""The README's Quick start, run literally in a project fresh from ``startproject``.

The snippets are read from the README (each follows a ``<!-- quickstart: NAME -->``
marker), so the README cannot drift from what works. The new project then signs a
person in and out through the fake provider, in a process of its own (its own
settings module), and must land on real pages: no 404 after sign-in, no ``?state=``
after sign-out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent(
    '''
    """Runs inside the new project: migrate, add a connector, sign in, sign out."""
    import os
    import django
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()  # lets the test client's "testserver" host in
    call_command("migrate", verbosity=0)

    from tests.fakeidp import FakeIdP
    from tests.helpers import query_of

    idp = FakeIdP()
    os.environ["QUICKSTART_SECRET"] = idp.client_secret
    call_command(
        "sso_connector", "add", "contoso", "--issuer", idp.issuer,
        "--client-id", idp.client_id, "--client-secret-env", "QUICKSTART_SECRET",
        "--provider", "oidc", "--response-mode", "query", "--domain", "contoso.com",
    )
    browser = Client()
    home = browser.get("/")
    assert home.status_code == 200, home.status_code
    assert b"Sign in with your work account" in home.content

    start = browser.post("/sso/login/", {"email": "alice@contoso.com"})
    assert start.status_code == 302, start.status_code
    landing = browser.get("/sso/callback/contoso/", idp.authorize(start["Location"]), follow=True)
    assert landing.status_code == 200, (landing.status_code, landing.redirect_chain)
    assert landing.redirect_chain[-1][0] == "/", landing.redirect_chain
    assert b"Signed in as Alice Liddell (alice@contoso.com)" in landing.content

    to_idp = browser.post("/sso/logout/")
    assert to_idp.status_code == 302
    back = query_of(to_idp["Location"])["post_logout_redirect_uri"]
    # The IdP sends the browser back, adding what it likes (node-oidc-provider: state).
    done = browser.get(back + "?state=from-the-idp", follow=True)
    assert done.status_code == 200
    assert done.redirect_chain[-1][0] == "/sso/logout/done/", done.redirect_chain
    assert b"You have been signed out" in done.content
    assert b"Sign in with your work account" in browser.get("/").content
    idp.close()
    print("QUICKSTART OK")
    '''
)


def readme_snippets() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- quickstart: (\S+) -->\n```\w*\n(.*?)```", readme, flags=re.DOTALL)
    return dict(found)


def test_the_readme_marks_every_quick_start_snippet() -> None:
    assert set(readme_snippets()) == {"settings", "urls", "home.html", "connector"}


def test_the_quick_start_makes_a_site_that_signs_in_and_out(tmp_path: Path) -> None:
    snippets = readme_snippets()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)],
        check=True,
        timeout=60,
        env=env,
    )
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + snippets["settings"], encoding="utf-8")
    (tmp_path / "mysite" / "urls.py").write_text(snippets["urls"], encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "home.html").write_text(snippets["home.html"], encoding="utf-8")
    (tmp_path / "drive.py").write_text(DRIVER, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "drive.py"],
        cwd=tmp_path,
        env={**env, "DJANGO_SETTINGS_MODULE": "mysite.settings"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "QUICKSTART OK" in result.stdout


def test_the_quick_start_connector_command_names_real_options() -> None:
    from django.core.management import load_command_class

    command = load_command_class("django_entra_sso", "sso_connector")
    parser = command.create_parser("manage.py", "sso_connector")
    line = readme_snippets()["connector"].replace("\\\n", " ")
    options = [word for word in line.split() if word.startswith("--")]
    add = parser._subparsers._group_actions[0].choices["add"]  # type: ignore[union-attr]
    assert options and all(option in add._option_string_actions for option in options), line
