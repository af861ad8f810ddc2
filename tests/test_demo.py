"""The bookstore demo, driven the way a person would: one command, then a browser.

``example_project/demo.sh`` is started for real (in its own process group, on
free ports, with its own run directory), and a ``requests.Session`` plays the
browser: the home page, the identifier-first page, the demo IdP's sign-in and
consent pages, the signed-in home page, ``/books/`` and sign-out through the
IdP; then the same through the demo's SAML connector (the IdP's SAML side, the
auto-posted Response, SAML single logout), which needs ``xmlsec1``. The ``API``
line the script prints (``call_api.py``: a client-credentials token from the demo
IdP, then ``/api/books/``) is run as printed. It makes the
virtualenv and installs from PyPI like a fresh clone does
(``DEMO_SKIP_INSTALL`` is not set), so it needs ``bash`` and PyPI; set
``DEMO_TEST_SKIP_INSTALL=1`` to use the current interpreter instead.

``demo.sh --add-client`` is run beside a running demo (reusing its virtualenv):
the client it registers must be one the IdP accepts, with the secret it printed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from tests.helpers import require

# The demo brings its own SQLite databases: the PostgreSQL pass need not run it again.
pytestmark = [pytest.mark.multiprocess, pytest.mark.sqlite_only]

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "example_project" / "demo.sh"
# The first run creates a virtualenv and installs from PyPI (pip's cache helps).
START_TIMEOUT = 240.0
EMAIL = "alice@bookstore.example"
SAML_EMAIL = "alice@saml.bookstore.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Form:
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)


class FormParser(HTMLParser):
    """The forms of a page with the values a browser would submit (buttons aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = Form(values)
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and values.get("name"):
            kind = values.get("type", "text")
            if kind in ("submit", "image", "button", "reset"):
                return  # sent only when clicked: the caller names the button
            if kind in ("checkbox", "radio") and "checked" not in values:
                return
            self._open.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def form_of(response: requests.Response, **match: str) -> Form:
    parser = FormParser()
    parser.feed(response.text)
    for form in parser.forms:
        if all(form.attrs.get(name) == value for name, value in match.items()):
            return form
    raise AssertionError(f"no form {match} on {response.url}:\n{response.text[:2000]}")


def submit(
    session: requests.Session, page: requests.Response, form: Form, **values: str
) -> requests.Response:
    action = urljoin(page.url, form.attrs.get("action") or page.url)
    response = session.post(action, data={**form.fields, **values}, timeout=30)
    assert response.status_code == 200, (response.status_code, response.url, response.text[:2000])
    return response


def text_of(response: requests.Response) -> str:
    """The page's visible text, tags dropped and blanks squeezed."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", response.text, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@dataclass
class Demo:
    site: str
    idp: str
    site_port: int
    idp_port: int
    process: subprocess.Popen[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # demo.sh's environment
    #: Stops nothing: starts demo.sh again in the same run directory (after a Ctrl-C).
    restarted: Callable[[], Demo] | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    require(None if shutil.which("bash") else "bash is not installed")
    skip_install = os.environ.get("DEMO_TEST_SKIP_INSTALL") == "1"
    site_port, idp_port = free_port(), free_port()
    while idp_port == site_port:
        idp_port = free_port()
    env = {
        **os.environ,
        "DEMO_RUN_DIR": str(tmp_path / "run"),
        "DEMO_SITE_PORT": str(site_port),
        "DEMO_IDP_PORT": str(idp_port),
        "DEMO_START_TIMEOUT": "60",
        "PYTHON": sys.executable,
    }
    # A real tenant in the developer's shell must not leak into the test.
    for name in list(env):
        if name.startswith("ENTRA_") or name in ("DEMO_LOCAL_IDP", "DEMO_SKIP_INSTALL"):
            del env[name]
    if skip_install:
        env["DEMO_SKIP_INSTALL"] = "1"
    running = Demo(
        site=f"http://localhost:{site_port}",
        idp=f"http://127.0.0.1:{idp_port}",
        site_port=site_port,
        idp_port=idp_port,
        process=start_demo(tmp_path, env, tmp_path / "demo.log"),
        log=tmp_path / "demo.log",
        env=env,
    )
    started = [running]

    def restarted() -> Demo:
        again = restart(running, tmp_path)
        started.append(again)  # stopped at the end whatever happens
        wait_until_ready(again)
        return again

    running.restarted = restarted
    try:
        wait_until_ready(running)
        yield running
    finally:
        for each in started:
            stop(each.process)
        # pytest keeps a few old tmp dirs; the logs are worth keeping, a venv is not.
        shutil.rmtree(tmp_path / "run" / "venv", ignore_errors=True)


def start_demo(cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as out:
        return subprocess.Popen(
            ["bash", str(DEMO)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def wait_until_ready(running: Demo) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while "Press Ctrl-C" not in running.output():
        if running.process.poll() is not None:
            pytest.fail(f"demo.sh exited with {running.process.returncode}:\n{running.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"demo.sh not ready after {START_TIMEOUT}s:\n{running.output()}")
        time.sleep(0.5)


def restart(previous: Demo, cwd: Path) -> Demo:
    """demo.sh started again in the same run directory, as someone would the next day."""
    log = cwd / f"demo-{int(time.monotonic() * 1000)}.log"
    return replace(previous, process=start_demo(cwd, previous.env, log), log=log)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        with_signal(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    # The servers are in demo.sh's process group: make sure none outlives the test.
    with_signal(process, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)


def with_signal(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def sign_in(
    session: requests.Session, demo: Demo, *, consent_remembered: bool = False
) -> requests.Response:
    """Home → "Sign in with SSO" → email → IdP sign-in → consent → back home.

    ``consent_remembered``: the IdP kept Alice's consent (a demo started again), so
    its sign-in leads straight back.
    """
    home = session.get(demo.site + "/", timeout=30)
    assert home.status_code == 200
    assert "Sign in with SSO" in home.text
    link = re.search(r'<a [^>]*id="sign-in"[^>]*href="([^"]+)"', home.text)
    assert link is not None and link.group(1) == "/sso/login/"

    login_page = session.get(urljoin(home.url, link.group(1)), timeout=30)
    assert login_page.status_code == 200
    identifier_form = form_of(login_page, action="/sso/login/")
    assert identifier_form.fields.get("csrfmiddlewaretoken")
    at_idp = submit(session, login_page, identifier_form, email=EMAIL)

    # The email's domain chose the bookstore connector, which sent us to the IdP.
    assert urlsplit(at_idp.url).netloc == f"127.0.0.1:{demo.idp_port}", at_idp.url
    assert urlsplit(at_idp.url).path == "/accounts/login/"
    consent = submit(
        session,
        at_idp,
        form_of(at_idp, id="login-form"),
        username="alice",
        password="alice-demo-pw",
    )
    if consent_remembered:
        back = consent
    else:
        assert "Authorize" in consent.text, consent.text[:2000]
        back = submit(session, consent, form_of(consent, id="authorizationForm"), allow="Authorize")
    assert back.url == demo.site + "/", [r.url for r in back.history] + [back.url]
    return back


def set_up_the_new_customer(demo: Demo) -> None:
    """The setup link demo.sh printed: fill in the IdP's values, try signing in, activate."""
    printed = demo.output()
    link = re.search(r"^  Setup link  (http://\S+/sso/setup/\S+/)$", printed, re.M)
    secret_file = re.search(r"the secret in (\S+),", printed)
    issuer = re.search(r"fill in issuer\s+(\S+), client ID (\S+)", printed)
    assert link and secret_file and issuer, printed
    it_admin = requests.Session()  # the customer's IT administrator: no account on the site
    page = it_admin.get(link.group(1), timeout=30)
    assert page.status_code == 200 and "Set up single sign-on for Northwind Traders" in page.text
    saved = submit(
        it_admin,
        page,
        form_of(page, id="setup-form"),
        issuer=issuer.group(1),
        client_id=issuer.group(2),
        client_secret=Path(secret_file.group(1)).read_text().strip(),
    )
    assert 'id="setup-saved"' in saved.text, text_of(saved)[:2000]
    at_idp = submit(it_admin, saved, form_of(saved, id="setup-try-form"))
    assert urlsplit(at_idp.url).netloc == f"127.0.0.1:{demo.idp_port}", at_idp.url
    consent = submit(
        it_admin,
        at_idp,
        form_of(at_idp, id="login-form"),
        username="alice",
        password="alice-demo-pw",
    )
    tried = submit(it_admin, consent, form_of(consent, id="authorizationForm"), allow="Authorize")
    assert tried.url == link.group(1), tried.url
    assert "This is what this site received" in tried.text and EMAIL in tried.text
    activated = submit(it_admin, tried, form_of(tried, id="setup-activate-form"))
    assert "Single sign-on is on for Northwind Traders" in activated.text
    assert it_admin.get(link.group(1), timeout=30).status_code == 404  # used up


def test_demo_signs_alice_in_and_out_through_the_local_idp_then_stops_on_ctrl_c(
    demo: Demo,
) -> None:
    session = requests.Session()
    home = sign_in(session, demo)

    page = text_of(home)
    assert "Welcome, Alice Liddell" in page
    assert EMAIL in page
    assert "readers" in page  # the IdP's groups claim, mapped onto a Django group
    assert "Bookstore Demo IdP (bookstore)" in page

    books = session.get(demo.site + "/books/", timeout=30)
    assert books.status_code == 200 and books.url == demo.site + "/books/"
    assert "Wonderland" in books.text

    # The API takes access tokens, not the session cookie.
    api = session.get(demo.site + "/api/books/", timeout=30)
    assert api.status_code == 401 and api.headers["WWW-Authenticate"] == "Bearer"
    # The line demo.sh printed gets a client-credentials token and the books, as printed
    # (its DEMO_* knobs in the line, none from this environment).
    line = re.search(r"^  API +(.+)$", demo.output(), re.M)
    assert line is not None, demo.output()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    called = subprocess.run(
        ["bash", "-c", line.group(1)], env=env, capture_output=True, text=True, timeout=60
    )
    assert called.returncode == 0, called.stdout + called.stderr
    assert f"aud=http://localhost:{demo.site_port}/api/" in called.stdout
    assert "Caller    app:bookstore-daemon (application)" in called.stdout
    assert "Wonderland" in called.stdout

    signed_out = submit(session, home, form_of(home, id="sign-out-form"))
    if urlsplit(signed_out.url).netloc != f"localhost:{demo.site_port}":
        # The IdP asks to confirm the sign-out: confirm it like a person would.
        confirm = form_of(signed_out, id="authorizationForm")
        signed_out = submit(session, signed_out, confirm, allow="Logout")
    hops = [urlsplit(r.url).netloc for r in signed_out.history]
    assert f"127.0.0.1:{demo.idp_port}" in hops  # sign-out went through the IdP
    assert urlsplit(signed_out.url).netloc == f"localhost:{demo.site_port}"
    assert urlsplit(signed_out.url).path == "/"
    assert "Sign in with SSO" in signed_out.text
    assert "Alice" not in text_of(signed_out)

    # Signed out at both ends: the site wants a sign-in again, the IdP knows no one.
    again = session.get(demo.site + "/books/", timeout=30)
    assert urlsplit(again.url).path == "/sso/login/"
    assert "Not signed in" in session.get(demo.idp + "/", timeout=30).text

    set_up_the_new_customer(demo)

    # Ctrl-C in a terminal signals the whole foreground group; the servers,
    # started as background jobs, ignore it, so the script's trap must stop them.
    assert answers(demo.site_port) and answers(demo.idp_port)
    os.kill(demo.process.pid, signal.SIGINT)
    demo.process.wait(timeout=20)
    deadline = time.monotonic() + 10
    while (answers(demo.site_port) or answers(demo.idp_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(demo.site_port)
    assert not answers(demo.idp_port)
    assert "Stopped the demo." in demo.output()

    # Started again the next day: Northwind set itself up, so its connector is on and takes
    # no new link; the demo says so instead of printing one, and Alice signs in as before.
    assert demo.restarted is not None
    again = demo.restarted()
    line = re.search(r"^  Setup link  (.+)$", again.output(), re.M)
    assert line is not None, again.output()
    assert line.group(1).startswith("none: northwind is switched on"), line.group(1)
    home = sign_in(requests.Session(), again, consent_remembered=True)
    assert "Welcome, Alice Liddell" in text_of(home)


# -- the SAML connector: the same IdP over SAML 2.0 ---------------------------------------------


@pytest.fixture
def xmlsec1() -> None:
    """Before the demo starts: without xmlsec1 it leaves the SAML connector out."""
    require(
        None if shutil.which("xmlsec1") else "xmlsec1 is not installed (apt-get install xmlsec1)"
    )


def test_demo_signs_alice_in_and_out_through_the_saml_connector(xmlsec1: None, demo: Demo) -> None:
    started = demo.output()
    assert "bookstore-saml: healthy. SAML entity " in started  # sso_connector test ran for it
    assert f"SAML        type  {SAML_EMAIL}" in started
    idp_host = f"127.0.0.1:{demo.idp_port}"
    acs = f"{demo.site}/sso/saml/acs/bookstore-saml/"

    session = requests.Session()
    home = session.get(demo.site + "/", timeout=30)
    assert home.status_code == 200 and "Sign in with SSO" in home.text
    login_page = session.get(demo.site + "/sso/login/", timeout=30)
    at_idp = submit(
        session, login_page, form_of(login_page, action="/sso/login/"), email=SAML_EMAIL
    )

    # The email's domain chose the SAML connector: its AuthnRequest went to the IdP's
    # single sign-on service, which wants alice to sign in first and then comes back.
    assert urlsplit(at_idp.url).netloc == idp_host, at_idp.url
    assert urlsplit(at_idp.url).path == "/accounts/login/"
    next_url = parse_qs(urlsplit(at_idp.url).query)["next"][0]
    assert next_url.startswith("/saml/sso/?SAMLRequest="), next_url
    posting = submit(
        session,
        at_idp,
        form_of(at_idp, id="login-form"),
        username="alice",
        password="alice-demo-pw",
    )

    # No consent page: the IdP's page posts the signed Response to the bookstore's ACS.
    assert urlsplit(posting.url).netloc == idp_host and urlsplit(posting.url).path == "/saml/sso/"
    response_form = form_of(posting, id="saml-post-form")
    assert response_form.attrs["action"] == acs
    assert set(response_form.fields) == {"SAMLResponse", "RelayState"}
    back = submit(session, posting, response_form)
    assert [r.status_code for r in back.history][:1] == [303]  # the ACS resumes as a GET
    assert back.url == demo.site + "/", [r.url for r in back.history] + [back.url]

    page = text_of(back)
    assert "Welcome, Alice Liddell" in page
    assert SAML_EMAIL in page
    assert "readers" in page  # the groups attribute, mapped like the OIDC connector's
    assert "Bookstore Demo IdP (SAML) (bookstore-saml)" in page
    books = session.get(demo.site + "/books/", timeout=30)
    assert books.url == demo.site + "/books/" and "Wonderland" in books.text

    # Sign-out: a LogoutRequest to the IdP's single logout service, its LogoutResponse back.
    signed_out = submit(session, back, form_of(back, id="sign-out-form"))
    hops = [(urlsplit(r.url).netloc, urlsplit(r.url).path) for r in signed_out.history]
    assert (idp_host, "/saml/slo/") in hops, hops
    assert (f"localhost:{demo.site_port}", "/sso/saml/sls/bookstore-saml/") in hops, hops
    assert signed_out.url == demo.site + "/"
    assert "Sign in with SSO" in signed_out.text
    assert "Alice" not in text_of(signed_out)

    # Signed out at both ends.
    again = session.get(demo.site + "/books/", timeout=30)
    assert urlsplit(again.url).path == "/sso/login/"
    assert "Not signed in" in session.get(demo.idp + "/", timeout=30).text


# -- demo.sh --add-client: a site of your own at the demo's provider ----------------------------

MYSITE_CALLBACK = "http://127.0.0.1:8001/sso/callback/mysite/"


def add_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEMO), "--add-client", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://127.0.0.1:8001/sso/callback/mysite/",
        "127.0.0.1:8001/sso/callback/mysite/",
        "/sso/callback/mysite/",
        "http://127.0.0.1:8001/sso/callback/mysite/#top",
    ],
)
def test_add_client_refuses_a_redirect_uri_that_is_not_an_absolute_http_url(
    tmp_path: Path, uri: str
) -> None:
    require(None if shutil.which("bash") else "bash is not installed")
    env = {**os.environ, "DEMO_RUN_DIR": str(tmp_path / "run"), "PYTHON": sys.executable}
    result = add_client(env, "mysite", "--redirect-uri", uri)
    assert result.returncode != 0
    assert result.stderr.startswith(f'demo.sh: "{uri}" is not an absolute http(s) URL')
    assert result.stderr.count("\n") == 1, result.stderr  # one line, the reason
    assert result.stdout == ""  # nothing installed, nothing started
    assert not (tmp_path / "run").exists()


def test_add_client_registers_a_site_of_your_own_that_the_running_idp_accepts(
    demo: Demo,
) -> None:
    issuer = demo.idp + "/o"
    result = add_client(demo.env, "mysite", "--redirect-uri", MYSITE_CALLBACK)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(rf"^  Issuer +{re.escape(issuer)}$", out, re.M), out
    assert re.search(r"^  Client ID +mysite$", out, re.M), out
    found = re.search(r"^  Client secret +([0-9a-f]{64})$", out, re.M)
    assert found is not None, out
    secret = found.group(1)
    assert (
        'python manage.py sso_connector add mysite --provider oidc --name "Demo IdP" '
        f"--issuer {issuer} --client-id mysite --client-secret-stdin --response-mode query "
        "--domain bookstore.example"
    ) in out
    assert "Press Ctrl-C" not in out  # it exits without starting servers

    again = add_client(demo.env, "mysite", "--redirect-uri", MYSITE_CALLBACK)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Client secret   {secret}\n" in again.stdout  # kept, not rotated
    assert "the same as before" in again.stdout

    # Alice signs in at the IdP and authorizes the new client, which gets a code at its callback.
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": "mysite",
        "redirect_uri": MYSITE_CALLBACK,
        "scope": "openid profile email",
        "state": "st-mysite",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    session = requests.Session()
    at_login = session.get(f"{issuer}/authorize/?{urlencode(params)}", timeout=30)
    assert urlsplit(at_login.url).path == "/accounts/login/", at_login.url
    consent = submit(
        session,
        at_login,
        form_of(at_login, id="login-form"),
        username="alice",
        password="alice-demo-pw",
    )
    assert "Mismatching redirect URI" not in consent.text
    form = form_of(consent, id="authorizationForm")
    assert form.fields.get("redirect_uri") == MYSITE_CALLBACK
    answer = session.post(
        urljoin(consent.url, form.attrs.get("action") or consent.url),
        data={**form.fields, "allow": "Authorize"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text[:2000]
    location = answer.headers["Location"]
    assert location.startswith(MYSITE_CALLBACK + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["st-mysite"]

    # The secret it printed is the one the IdP checks.
    tokens = requests.post(
        f"{issuer}/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": MYSITE_CALLBACK,
            "code_verifier": verifier,
        },
        auth=("mysite", secret),
        timeout=30,
    )
    assert tokens.status_code == 200, tokens.text
    id_token = tokens.json()["id_token"]

    # Signing out there may come back to the app's default "signed out" page of that site.
    signed_out = "http://127.0.0.1:8001/sso/logout/done/"
    bye = session.get(
        f"{issuer}/logout/",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": signed_out},
        allow_redirects=False,
        timeout=30,
    )
    assert bye.status_code == 302, bye.text[:2000]
    assert bye.headers["Location"] == signed_out

    # The demo's own client and users are still there: Alice still signs in to the bookstore.
    sign_in(requests.Session(), demo)
