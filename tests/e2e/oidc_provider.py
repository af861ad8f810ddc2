"""Start and stop a real OpenID Provider (node-oidc-provider) for end-to-end tests.

The provider lives in ``tests/e2e/provider/`` (``npm ci`` there first). Two major versions are
installed side by side:

* ``version=9`` -> npm ``oidc-provider`` 9.x (current; back-channel logout, no front-channel)
* ``version=6`` -> npm alias ``oidc-provider-6`` = ``oidc-provider@6.31.1`` (has front-channel
  logout draft-04 *and* back-channel logout)

Usage::

    from tests.e2e.oidc_provider import NodeOIDCProvider, provider_available

    reason = provider_available()          # None when node + node_modules are present
    clients = [{
        "client_id": "django",
        "client_secret": "s3cret",
        "redirect_uris": ["http://127.0.0.1:8000/sso/callback/"],
        "post_logout_redirect_uris": ["http://127.0.0.1:8000/"],
        "token_endpoint_auth_method": "client_secret_basic",   # or client_secret_post
        "grant_types": ["authorization_code", "refresh_token"],  # optional: refresh tokens
        "backchannel_logout_uri": "http://127.0.0.1:8000/sso/backchannel-logout/",  # optional
        "backchannel_logout_session_required": True,                              # optional
        "frontchannel_logout_uri": "http://127.0.0.1:8000/sso/frontchannel-logout/",  # 6 only
        "frontchannel_logout_session_required": True,                               # 6 only
    }]
    with NodeOIDCProvider(9, None, clients, "example.test", tmp_path) as op:
        op.issuer        # "http://127.0.0.1:<port>"
        op.rotate_keys() # restarts on the same port; in-memory sessions/codes are lost
        op.revoke_account("alice")  # an administrator revokes alice's sessions and tokens

The process is ``node server.mjs --config <workdir>/provider-config.json`` with cwd
``tests/e2e/provider``. The config JSON written by this helper (and accepted by server.mjs) is::

    {
      "version": 9,                       # 9 or 6
      "host": "127.0.0.1",                # loopback only; anything else is refused
      "port": 43123,
      "issuer": "http://127.0.0.1:43123",
      "email_domain": "example.test",     # alice -> alice@example.test
      "jwks_path": "/abs/workdir/jwks.json",   # private RSA JWKS; created (2 keys) if missing
      "clients": [ ...client dicts as above... ],
      "users": {"alice": {"groups": ["x"]}},   # optional per-login claim overrides/extra claims
      "tenant_id": "...",                 # optional: adds a `tid` claim
      "require_pkce": true,               # optional (default true): PKCE S256 mandatory
      "always_include_sid": true,         # optional (default true): `sid` in every ID token
      "cookie_keys": ["..."],             # optional; fixed test keys by default
      "admin_token": "..."                # optional: enables POST /admin/revoke (this helper
                                          # sets a fresh random one on every start)
    }

Client defaults: ``response_types=["code"]``, ``grant_types=["authorization_code"]``,
``token_endpoint_auth_method="client_secret_basic"``. Front-channel fields are dropped (with a log
line) by version 9, so one client list serves both versions.

Claims (``sub`` = the login name exactly as typed; any password is accepted):

* ``alice`` -> email ``alice@<domain>``, email_verified true, given_name Alice, family_name
  Liddell, name "Alice Liddell", preferred_username = email, groups ["readers"]
* ``bob`` -> Bob Builder, groups ["readers", "editors"]; ``carol`` -> Carol Danvers, ["admins"]
* anything else -> email ``<login>@<domain>`` (or the login itself if it contains "@"),
  given_name = capitalised login, family_name "Tester", groups []
* always: ``oid`` (a UUID derived from the login), ``tid`` if tenant_id is configured.

Scope -> claims: openid -> sub, groups, oid, tid (+ names from ``users`` overrides);
email -> email, email_verified; profile -> name, given_name, family_name, preferred_username.
``conformIdTokenClaims`` is false, so these are in the ID token (and at userinfo), plus ``sid``.

Refresh tokens: a client with ``"refresh_token"`` in its ``grant_types`` gets one when the
granted scope includes ``offline_access``, which the provider only keeps when the authorization
request also says ``prompt=consent``. Every refresh_token grant rotates the refresh token (a
new one comes back; presenting the old one again is ``invalid_grant`` *and* revokes the whole
grant, as the OAuth security BCP asks) and returns a fresh ``id_token`` (same ``sub``) for
``openid`` scope. Refresh tokens live 14 days; in version 9 the grant behind them 24 hours.

Administrator revocation: ``revoke_account(account)`` calls the provider's test-only route
``POST /admin/revoke`` (``Authorization: Bearer <admin_token>``, JSON ``{"account": ...}``),
which drops every grant of that account for every client (refresh and access tokens, codes)
and its OP sessions; the next refresh_token grant with any of its refresh tokens is
``invalid_grant``, other accounts are untouched. It returns the provider's counts
``{"account": ..., "grants": n, "tokens": n, "sessions": n}`` and raises
``ProviderAdminError`` on anything but a 200.

Keys: the JWKS file holds private RSA keys; the FIRST key of ``keys`` signs. ``rotate_keys()``
reorders (or prepends a fresh key) and restarts the process on the same port. The provider keeps
its state in memory (``provider/adapter.mjs``), so sessions, codes, grants and refresh tokens at
the provider are lost on every restart.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
SERVER_SCRIPT = "server.mjs"
KEYS_SCRIPT = "keys.mjs"
SUPPORTED_VERSIONS = (9, 6)

# Providers started and not yet stopped; any left over are killed when Python exits.
_LIVE: set[NodeOIDCProvider] = set()


@atexit.register
def _stop_leftovers() -> None:
    for provider in list(_LIVE):
        provider.stop()


def provider_available() -> str | None:
    """Return why the provider cannot run here, or None if it can.

    Reasons: ``node`` is not on PATH, or ``tests/e2e/provider/node_modules`` (or one of the two
    oidc-provider packages in it) is missing, i.e. ``npm ci`` has not been run there.
    """
    if shutil.which("node") is None:
        return "node is not installed (needed for the e2e OpenID Provider)"
    modules = PROVIDER_DIR / "node_modules"
    if not modules.is_dir():
        return f"{modules} is missing: run `npm ci` in {PROVIDER_DIR}"
    for pkg in ("oidc-provider", "oidc-provider-6"):
        if not (modules / pkg / "package.json").is_file():
            return f"{modules / pkg} is missing: run `npm ci` in {PROVIDER_DIR}"
    return None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProviderStartError(RuntimeError):
    pass


class ProviderAdminError(RuntimeError):
    """The provider's admin route refused or failed a request."""


class NodeOIDCProvider:
    """A node-oidc-provider process on 127.0.0.1 (see the module docstring)."""

    host = "127.0.0.1"

    def __init__(
        self,
        version: int,
        port: int | None,
        clients: list[dict[str, Any]],
        email_domain: str,
        workdir: Path,
        *,
        users: dict[str, dict[str, Any]] | None = None,
        tenant_id: str | None = None,
        require_pkce: bool = True,
        startup_timeout: float = 30.0,
        node: str = "node",
    ) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"version must be one of {SUPPORTED_VERSIONS}, not {version!r}")
        self.version = version
        self.port = port or free_loopback_port()
        self.clients = [dict(c) for c in clients]
        self.email_domain = email_domain
        self.workdir = Path(workdir).resolve()
        self.users = users or {}
        self.tenant_id = tenant_id
        self.require_pkce = require_pkce
        self.startup_timeout = startup_timeout
        self.node = node
        self.config_path = self.workdir / f"provider-v{version}-config.json"
        self.log_path = self.workdir / f"provider-v{version}.log"
        self._jwks_path = self.workdir / f"provider-v{version}-jwks.json"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._admin_token = ""  # set by start(): only this handle can use the admin route

    # -- properties ------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def jwks_path(self) -> Path:
        return self._jwks_path

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "version": self.version,
            "host": self.host,
            "port": self.port,
            "issuer": self.issuer,
            "email_domain": self.email_domain,
            "jwks_path": str(self._jwks_path),
            "clients": self.clients,
            "require_pkce": self.require_pkce,
            "admin_token": self._admin_token,
        }
        if self.users:
            cfg["users"] = self.users
        if self.tenant_id:
            cfg["tenant_id"] = self.tenant_id
        return cfg

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> NodeOIDCProvider:
        if self.running:
            return self
        reason = provider_available()
        if reason:
            raise ProviderStartError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._admin_token = secrets.token_urlsafe(32)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self._ensure_jwks()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file.write(f"\n=== starting {self.issuer} (v{self.version}) ===\n".encode())
        self._log_file.flush()
        env = {**os.environ, "NODE_ENV": "test", "NO_COLOR": "1"}
        self._proc = subprocess.Popen(
            [self.node, SERVER_SCRIPT, "--config", str(self.config_path)],
            cwd=PROVIDER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group, killed as a whole in stop()
        )
        _LIVE.add(self)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> NodeOIDCProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- administration --------------------------------------------------------------------
    def revoke_account(self, account: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Revoke every grant, token and OP session of ``account``, as an administrator would.

        Returns the provider's answer ``{"account", "grants", "tokens", "sessions"}`` (counts of
        what was dropped; zeros when the account had nothing). Raises ``ProviderAdminError``
        when the provider is not running or answers anything but 200.
        """
        if not self.running:
            raise ProviderAdminError(f"oidc-provider v{self.version} is not running")
        request = urllib.request.Request(
            f"{self.issuer}/admin/revoke",
            data=json.dumps({"account": account}).encode(),
            headers={
                "Authorization": f"Bearer {self._admin_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ProviderAdminError(
                f"POST /admin/revoke for {account!r} answered {exc.code}: {detail}"
            ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ProviderAdminError(f"POST /admin/revoke for {account!r} failed: {exc}") from exc

    # -- keys ------------------------------------------------------------------------------
    def read_jwks(self) -> dict[str, Any]:
        return json.loads(self._jwks_path.read_text())

    def signing_kid(self) -> str:
        return self.read_jwks()["keys"][0]["kid"]

    def rotate_keys(self, new_key: bool = False) -> str:
        """Change the signing key and restart on the same port; returns the new signing kid.

        ``new_key=False``: the key order is rotated (the former second key signs, the former
        first key stays published). ``new_key=True``: a freshly generated key is put first and
        all previous keys stay published. The provider's in-memory state (sessions, interaction,
        codes, grants) is lost by the restart; clients must log in again.
        """
        self._ensure_jwks()
        jwks = self.read_jwks()
        keys = list(jwks["keys"])
        if new_key:
            keys.insert(0, self._new_jwk())
        else:
            keys = keys[1:] + keys[:1]
        jwks["keys"] = keys
        tmp = self._jwks_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(jwks, indent=2))
        tmp.replace(self._jwks_path)
        if self.running:
            self.restart()
        return keys[0]["kid"]

    def _ensure_jwks(self) -> None:
        if self._jwks_path.exists():
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [self.node, KEYS_SCRIPT, "ensure", str(self._jwks_path)],
            cwd=PROVIDER_DIR,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _new_jwk(self) -> dict[str, Any]:
        out = subprocess.run(
            [self.node, KEYS_SCRIPT, "new-jwk"],
            cwd=PROVIDER_DIR,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return json.loads(out.stdout)

    # -- helpers ---------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: object = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ProviderStartError(
                    f"oidc-provider v{self.version} exited with {self._proc.returncode} "
                    f"before answering; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.discovery_url, timeout=2) as resp:
                    if resp.status == 200:
                        doc = json.load(resp)
                        if doc.get("issuer") == self.issuer:
                            return
                        last_error = f"unexpected issuer {doc.get('issuer')!r}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last_error = exc
            time.sleep(0.1)
        raise ProviderStartError(
            f"oidc-provider v{self.version} did not answer {self.discovery_url} within "
            f"{self.startup_timeout}s (last error: {last_error}); log {self.log_path}:\n"
            f"{self.log_tail()}"
        )
