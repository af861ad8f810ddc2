"""Fixtures of the end-to-end suite: a real OpenID Provider and a real browser.

* ``op9`` / ``op6``: node-oidc-provider 9.x and 6.x (``tests/e2e/oidc_provider.py``), each started
  once per test session on ``127.0.0.1:<free port>``, with clients whose redirect and logout URIs
  point at pytest-django's ``live_server`` (``http://localhost:<port>``). The two hosts are
  different sites, so ``SameSite=Lax`` cookies behave as they do in production.
* ``browser``: Debian's Chromium (``/usr/bin/chromium``, or ``ENTRA_SSO_E2E_CHROMIUM``) driven by
  Playwright for Python, launched once per test module; ``page`` is a fresh context (no cookies)
  per test.
* ``e2e`` (op9 only) / ``e2e6`` (both): the site URL, the providers and helpers that drive
  their pages; connectors are made per test (``transactional_db`` empties the tables after each).

Missing node, ``npm ci`` or Chromium skip these tests locally and fail them under ``CI=true``
(``tests.helpers.require``). Every browser wait is bounded by ``TIMEOUT_MS``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from django_entra_sso.models import Connector
from tests.e2e.oidc_provider import NodeOIDCProvider, provider_available
from tests.helpers import make_connector, require

CHROMIUM = os.environ.get("ENTRA_SSO_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000
REPO_ROOT = Path(__file__).resolve().parents[2]

# Connectors of the suite: slug -> (provider version, client_id, email domain, response mode,
# token endpoint auth method). Email domains are what the provider puts in ``email`` claims:
# ``alice`` at op9 is alice@acme.test, at op6 alice@initech.test; a login with "@" is used as is.
OP9_DOMAIN = "acme.test"
OP6_DOMAIN = "initech.test"
CLIENT_SECRET = "e2e-client-secret-not-a-real-one"


@dataclass(frozen=True)
class Client:
    slug: str
    version: int
    client_id: str
    domain: str
    response_mode: str
    auth_method: str
    backchannel: bool = False
    frontchannel: bool = False
    refresh: bool = False  # may use the refresh_token grant (session re-validation)


CLIENTS = {
    c.slug: c
    for c in (
        # query response mode, client_secret_basic, back-channel logout, refresh tokens (9.x)
        Client(
            "acme",
            9,
            "acme-site",
            OP9_DOMAIN,
            "query",
            "client_secret_basic",
            backchannel=True,
            refresh=True,
        ),
        # form_post response mode, client_secret_post
        Client("globex", 9, "globex-site", "globex.test", "form_post", "client_secret_post"),
        # made through the admin in test_browser_admin.py (no row created by the fixtures)
        Client("umbrella", 9, "umbrella-site", "umbrella.test", "query", "client_secret_basic"),
        # front-channel logout (6.x only)
        Client(
            "initech",
            6,
            "initech-site",
            OP6_DOMAIN,
            "query",
            "client_secret_basic",
            frontchannel=True,
        ),
    )
}


def chromium_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[e2e]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (found {found}: set ENTRA_SSO_E2E_CHROMIUM)" if found else ""
        return f"Chromium is not installed at {CHROMIUM}: apt-get install chromium{hint}"
    return None


def _op_client(site: str, client: Client) -> dict[str, Any]:
    base = f"{site}/sso"
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"{base}/callback/{client.slug}/"],
        # The app's default post-logout page, and the site root for sites that set it.
        "post_logout_redirect_uris": [f"{base}/logout/done/", f"{site}/"],
        "token_endpoint_auth_method": client.auth_method,
    }
    if client.refresh:
        data["grant_types"] = ["authorization_code", "refresh_token"]
    if client.backchannel:
        data["backchannel_logout_uri"] = f"{base}/logout/backchannel/{client.slug}/"
        data["backchannel_logout_session_required"] = True
    if client.frontchannel:
        data["frontchannel_logout_uri"] = f"{base}/logout/frontchannel/{client.slug}/"
        data["frontchannel_logout_session_required"] = True
    return data


def _start_provider(
    version: int, domain: str, live_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeOIDCProvider]:
    require(provider_available())
    site = live_server.url
    clients = [_op_client(site, c) for c in CLIENTS.values() if c.version == version]
    workdir = tmp_path_factory.mktemp(f"op{version}")
    provider = NodeOIDCProvider(version, None, clients, domain, workdir)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def op9(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeOIDCProvider]:
    yield from _start_provider(9, OP9_DOMAIN, live_server, tmp_path_factory)


@pytest.fixture(scope="session")
def op6(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeOIDCProvider]:
    yield from _start_provider(6, OP6_DOMAIN, live_server, tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(chromium_missing())
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread while it is open, and
    # Django refuses ORM calls from a thread with a running loop unless told that it is safe (it
    # is: no coroutine touches the database here). Module scope keeps both the loop and this
    # setting away from the rest of the suite.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS * 2
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def new_page(browser: Any) -> Any:
    """A page in a fresh browser context (no cookies), every wait bounded."""
    context = browser.new_context(viewport={"width": 1100, "height": 760}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    # Keep stray favicon requests off the single-connection in-memory test database.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    return context.new_page()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = new_page(browser)
    try:
        yield p
    finally:
        p.context.close()


@pytest.fixture(autouse=True)
def _site_settings(settings: Any) -> None:
    # login_required sends people to the SSO page (tests.settings keeps Django's default
    # /accounts/login/, which this test site does not serve). SESSION_COOKIE_SAMESITE stays
    # Django's default "Lax" on purpose.
    settings.LOGIN_URL = "/sso/login/"
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"


class E2E:
    """The site under test, both providers, and the steps a person takes on their pages."""

    def __init__(self, site: str, op9: NodeOIDCProvider, op6: NodeOIDCProvider | None) -> None:
        self.site = site
        self.op9 = op9
        self.op6 = op6

    def op_for(self, slug: str) -> NodeOIDCProvider:
        op = self.op9 if CLIENTS[slug].version == 9 else self.op6
        assert op is not None
        return op

    def make_connector(self, slug: str, **fields: Any) -> Connector:
        """The connector of client ``slug``; ``fields`` (e.g. ``revalidate_after``) override."""
        client = CLIENTS[slug]
        return make_connector(
            None,
            slug,
            domain=client.domain,
            issuer=self.op_for(slug).issuer,
            client_id=client.client_id,
            client_secret=CLIENT_SECRET,
            response_mode=client.response_mode,
            **fields,
        )

    # -- the site's pages -------------------------------------------------------------------
    def start_sign_in(self, page: Any, email: str, next_path: str = "/private/") -> None:
        """Open the identifier-first page with ``next`` and give the work email.

        Signed out, opening ``next_path`` itself lands there (``login_required``); signed in,
        the page is opened directly.
        """
        page.goto(f"{self.site}{next_path}")
        if not page.url.startswith(f"{self.site}/sso/login/?next="):
            page.goto(f"{self.site}/sso/login/?next={next_path}")
        page.fill("#sso-email", email)
        page.click("#sso-submit")

    def body(self, page: Any, path: str) -> str:
        page.goto(f"{self.site}{path}")
        return str(page.inner_text("body")).strip()

    def session_key(self, page: Any) -> str | None:
        for cookie in page.context.cookies(self.site):
            if cookie["name"] == "sessionid":
                return str(cookie["value"])
        return None

    # -- the provider's pages (devInteractions) ---------------------------------------------
    def op_login(self, page: Any, op: NodeOIDCProvider, login: str) -> None:
        page.wait_for_url(f"{op.issuer}/interaction/**")
        page.wait_for_selector("input[name=login]")
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "any password")
        page.click("button:has-text('Sign-in')")

    def op_consent(self, page: Any, op: NodeOIDCProvider) -> None:
        page.wait_for_url(f"{op.issuer}/interaction/**")
        page.wait_for_selector("button:has-text('Continue')")
        page.click("button:has-text('Continue')")

    def sign_in(
        self, page: Any, slug: str, login: str, email: str, next_path: str = "/private/"
    ) -> None:
        """The whole identifier-first sign-in; ends back on the site at ``next_path``."""
        op = self.op_for(slug)
        self.start_sign_in(page, email, next_path)
        self.op_login(page, op, login)
        self.op_consent(page, op)
        page.wait_for_url(f"{self.site}{next_path}")

    def op_end_session(self, page: Any, op: NodeOIDCProvider) -> None:
        """Sign out at the provider itself: its /session/end page, "Yes, sign me out"."""
        page.goto(f"{op.issuer}/session/end")
        self.op_confirm_logout(page)

    def op_confirm_logout(self, page: Any) -> None:
        page.wait_for_selector("form[id='op.logoutForm']", state="attached")  # a hidden form
        page.click("button:has-text('Yes, sign me out')")


@pytest.fixture
def e2e(live_server: Any, op9: NodeOIDCProvider, transactional_db: Any) -> E2E:
    return E2E(live_server.url, op9, None)


@pytest.fixture
def e2e6(
    live_server: Any, op9: NodeOIDCProvider, op6: NodeOIDCProvider, transactional_db: Any
) -> E2E:
    return E2E(live_server.url, op9, op6)


def _screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Tracked screenshots change only when asked for: ENTRA_SSO_E2E_SCREENSHOTS=docs/screenshots
    # (relative to the repository root). Otherwise they go to pytest's temporary directory, so
    # a test run leaves the work tree clean but still takes (and checks) every screenshot.
    wanted = os.environ.get("ENTRA_SSO_E2E_SCREENSHOTS")
    if wanted:
        return REPO_ROOT / wanted
    return tmp_path_factory.getbasetemp() / "screenshots"


@pytest.fixture
def save_screenshot(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``save_screenshot(page, "name.png", full_page=False)`` -> the file written."""
    directory = _screenshot_dir(tmp_path_factory)

    def save(page: Any, name: str, *, full_page: bool = False) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 1000, f"{path} looks empty"
        return path

    return save


@pytest.fixture(name="new_page")
def _new_page_factory() -> Any:
    """``new_page(browser)``: a second person's page, for tests that need two."""
    return new_page
