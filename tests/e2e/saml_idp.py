"""Start and stop a real SAML 2.0 Identity Provider (samlify on node) for end-to-end tests.

The IdP lives in ``tests/e2e/saml_idp/`` (``npm ci`` there first). It is written independently
of the app's SAML code, on the npm package ``samlify`` (2.13.1) with
``@authenio/samlify-node-xmllint`` (2.0.0) as its schema validator (no Java), and node's own
``http`` module; ``server.mjs`` documents every route. It answers as Entra ID does where an SP
can tell: Assertion *and* Response signed (RSA-SHA256), NameID format persistent, Entra's claim
URIs as attribute names.

Usage::

    from tests.e2e.saml_idp import NodeSAMLIdP, saml_idp_available

    reason = saml_idp_available()       # None when node + node_modules are present
    with NodeSAMLIdP(tmp_path) as idp:  # port 0: any free port; keys made in tmp_path
        idp.base_url                    # "http://127.0.0.1:<port>"
        idp.entity_id                   # "<base_url>/metadata" (= idp.metadata_url)
        idp.cert_pem                    # the signing certificate (PEM), also in the metadata
        idp.metadata_xml()              # GET /metadata
        idp.register_sp(sp_metadata_xml)  # POST /admin/sp: register (or replace) an SP
        idp.launch_url(sp_entity_id, relay_state="/next/")  # IdP-initiated sign-in
        idp.logout_url                  # IdP-initiated single logout (GET, browser)
        idp.sessions()                  # GET /admin/sessions: the IdP sessions, as dicts
        idp.end_sessions()              # DELETE /admin/sessions: forget them all (SPs stay)

Options: ``NodeSAMLIdP(workdir, port=0, email_domain="saml.test",
want_authn_requests_signed=False, encrypt_assertions=False, startup_timeout=20.0,
name="saml-idp")``. ``restart()`` keeps the port, so the entity ID and the key pair stay the
same, but the IdP's memory (registered SPs, sessions) is gone.

The process is ``node server.mjs --config <workdir>/<name>-config.json`` with cwd
``tests/e2e/saml_idp``. The config JSON written by this helper (and read by server.mjs) is::

    {
      "host": "127.0.0.1",                 # loopback only; anything else is refused
      "port": 0,                           # 0: the IdP picks a free port and reports it
      "key_path": "/abs/workdir/saml-idp-key.pem",    # RSA 2048 private key (PKCS#8 PEM)
      "cert_path": "/abs/workdir/saml-idp-cert.pem",  # its self-signed certificate (PEM)
      "email_domain": "saml.test",         # alice -> alice@saml.test
      "want_authn_requests_signed": false, # true: AuthnRequests must be signed by the SP's key
      "encrypt_assertions": false,         # true: encrypted to the SP's encryption certificate
      "admin_token": "..."                 # bearer token of /admin/*; fresh on every start
    }

This helper makes the key pair (with ``cryptography``) the first time, in ``workdir``, and keeps
it. When the IdP listens it prints one JSON line on stdout, ``{"ready": true, "base_url": ...,
"entity_id": ..., "metadata_url": ...}``, which ``start()`` waits for (``startup_timeout``; the
IdP compiles its schema validator first, which takes a few seconds); its stderr (one line per
request, and the reason for every 400) goes to ``log_path``.

People (any password is accepted; the NameID is a UUID derived from the login as typed):

* ``alice`` -> Alice Liddell, groups ``["readers"]``; ``bob`` -> Bob Builder,
  ``["readers", "editors"]``
* anything else -> given name = capitalised login, surname "Tester", no groups
* email ``<login>@<email_domain>``, or the login itself when it contains "@"

Attributes: ``http://schemas.xmlsoap.org/ws/2005/05/identity/claims/`` ``emailaddress``,
``givenname``, ``surname``, ``name`` (= email), ``http://schemas.microsoft.com/identity/claims/``
``displayname``, ``objectidentifier`` (the OpenID Provider's ``oid`` for the same login), and
``http://schemas.microsoft.com/ws/2008/06/identity/claims/groups`` (one value per group; left out
when there are none, as Entra ID does).

Browser pages: the login form (``username``, ``password``, button "Sign in"); the Response page,
a form ``#saml-post`` that posts ``SAMLResponse`` and ``RelayState`` to the SP's ACS on load;
the end of ``/logout``, "You are signed out". SP-initiated single logout (``/slo``) requires a
signed LogoutRequest and answers with a signed LogoutResponse (HTTP-Redirect preferred).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

IDP_DIR = Path(__file__).resolve().parent / "saml_idp"
SERVER_SCRIPT = "server.mjs"
NPM_PACKAGES = ("samlify", "@authenio/samlify-node-xmllint")

# IdPs started and not yet stopped; any left over are killed when Python exits.
_LIVE: set[NodeSAMLIdP] = set()


@atexit.register
def _stop_leftovers() -> None:
    for idp in list(_LIVE):
        idp.stop()


def saml_idp_available() -> str | None:
    """Return why the SAML IdP cannot run here, or None if it can.

    Reasons: ``node`` is not on PATH, or ``tests/e2e/saml_idp/node_modules`` (or one of the
    npm packages in it) is missing, i.e. ``npm ci`` has not been run there.
    """
    if shutil.which("node") is None:
        return "node is not installed (needed for the e2e SAML IdP)"
    modules = IDP_DIR / "node_modules"
    if not modules.is_dir():
        return f"{modules} is missing: run `npm ci` in {IDP_DIR}"
    for pkg in NPM_PACKAGES:
        if not (modules / pkg / "package.json").is_file():
            return f"{modules / pkg} is missing: run `npm ci` in {IDP_DIR}"
    return None


class SAMLIdPStartError(RuntimeError):
    pass


class SAMLIdPAdminError(RuntimeError):
    """The IdP's admin routes refused or failed a request."""


def make_key_pair(key_path: Path, cert_path: Path, common_name: str) -> None:
    """Write an RSA 2048 private key (PKCS#8 PEM) and a self-signed certificate (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class NodeSAMLIdP:
    """A samlify SAML IdP process on 127.0.0.1 (see the module docstring)."""

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int = 0,
        email_domain: str = "saml.test",
        want_authn_requests_signed: bool = False,
        encrypt_assertions: bool = False,
        startup_timeout: float = 20.0,
        name: str = "saml-idp",
        node: str = "node",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.email_domain = email_domain
        self.want_authn_requests_signed = want_authn_requests_signed
        self.encrypt_assertions = encrypt_assertions
        self.startup_timeout = startup_timeout
        self.name = name
        self.node = node
        self.key_path = self.workdir / f"{name}-key.pem"
        self.cert_path = self.workdir / f"{name}-cert.pem"
        self.config_path = self.workdir / f"{name}-config.json"
        self.log_path = self.workdir / f"{name}.log"
        self._base_url: str | None = None
        self._admin_token = ""  # set by start(): only this handle can use the admin routes
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._reader: threading.Thread | None = None

    # -- properties ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise SAMLIdPStartError("the SAML IdP has not been started")
        return self._base_url

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/metadata"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/sso"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/slo"

    @property
    def logout_url(self) -> str:
        """IdP-initiated single logout of the browser's IdP session (GET)."""
        return f"{self.base_url}/logout"

    def launch_url(self, sp_entity_id: str, relay_state: str | None = None) -> str:
        """IdP-initiated sign-in at the SP ``sp_entity_id`` (GET, browser)."""
        query = {"sp": sp_entity_id}
        if relay_state is not None:
            query["relay_state"] = relay_state
        return f"{self.base_url}/launch?{urllib.parse.urlencode(query)}"

    @property
    def cert_pem(self) -> str:
        """The IdP's signing certificate, PEM (the same one its metadata publishes)."""
        self._ensure_key_pair()
        return self.cert_path.read_text()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "key_path": str(self.key_path),
            "cert_path": str(self.cert_path),
            "email_domain": self.email_domain,
            "want_authn_requests_signed": self.want_authn_requests_signed,
            "encrypt_assertions": self.encrypt_assertions,
            "admin_token": self._admin_token,
        }

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> NodeSAMLIdP:
        if self.running:
            return self
        reason = saml_idp_available()
        if reason:
            raise SAMLIdPStartError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._ensure_key_pair()
        self._admin_token = secrets.token_urlsafe(32)
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.config_path.chmod(0o600)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_file.write(f"\n=== starting {self.name} (port {self.port}) ===\n".encode())
        self._log_file.flush()
        env = {**os.environ, "NODE_ENV": "test", "NO_COLOR": "1"}
        self._proc = subprocess.Popen(
            [self.node, SERVER_SCRIPT, "--config", str(self.config_path)],
            cwd=IDP_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
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
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> None:
        """Stop and start again on the same port (same entity ID and keys; memory lost)."""
        self.stop()
        self.start()

    def __enter__(self) -> NodeSAMLIdP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ------------------------------------------------------------------------------
    def metadata_xml(self, *, timeout: float = 10.0) -> str:
        with urllib.request.urlopen(self.metadata_url, timeout=timeout) as resp:
            return resp.read().decode()

    def register_sp(self, metadata_xml: str | bytes, *, timeout: float = 10.0) -> dict[str, Any]:
        """Register (or replace, by entityID) an SP from its metadata XML.

        Returns the IdP's view of the SP: ``entity_id``, ``replaced``,
        ``assertion_consumer_services``, ``single_logout_services``, ``signing_certificate``,
        ``encryption_certificate``. Raises ``SAMLIdPAdminError`` on anything but a 200.
        """
        body = metadata_xml.encode() if isinstance(metadata_xml, str) else metadata_xml
        return self._admin("POST", "/admin/sp", body, "application/samlmetadata+xml", timeout)

    def service_providers(self, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._admin("GET", "/admin/sp", None, None, timeout)["service_providers"]

    def sessions(self, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The IdP sessions: ``id``, ``login``, ``email``, ``name_id``, ``session_index``,
        ``authn_instant``, ``created_at``, ``logging_out`` and ``service_providers`` (one
        ``{"entity_id", "name_id", "session_index", "signed_in_at"}`` per SP signed into).
        """
        return self._admin("GET", "/admin/sessions", None, None, timeout)["sessions"]

    def end_sessions(self, *, timeout: float = 10.0) -> int:
        """Forget every IdP session (and pending sign-in or logout), as a restart would, but
        keep the registered SPs; returns how many sessions ended. Lets tests share one IdP."""
        return self._admin("DELETE", "/admin/sessions", None, None, timeout)["ended"]

    def _admin(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        timeout: float,
    ) -> Any:
        if not self.running:
            raise SAMLIdPAdminError(f"{self.name} is not running")
        headers = {"Authorization": f"Bearer {self._admin_token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise SAMLIdPAdminError(f"{method} {path} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SAMLIdPAdminError(f"{method} {path} failed: {exc}") from exc

    # -- helpers ---------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _ensure_key_pair(self) -> None:
        if self.key_path.exists() and self.cert_path.exists():
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        make_key_pair(self.key_path, self.cert_path, f"django-entra-sso e2e SAML IdP ({self.name})")

    def _read_stdout(self, proc: subprocess.Popen[bytes], lines: queue.Queue[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends at EOF, i.e. when the process is gone
            lines.put(line)
            log_file = self._log_file
            if log_file is not None and not log_file.closed:
                with contextlib.suppress(ValueError, OSError):
                    log_file.write(b"[stdout] " + line)
                    log_file.flush()

    def _wait_until_ready(self) -> None:
        assert self._proc is not None
        lines: queue.Queue[bytes] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read_stdout, args=(self._proc, lines), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if self._proc.poll() is not None and lines.empty():
                    raise SAMLIdPStartError(
                        f"{self.name} exited with {self._proc.returncode} before it was ready; "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    ) from None
                continue
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("ready") is True:
                self._base_url = ready["base_url"]
                self.port = urllib.parse.urlsplit(self._base_url).port or self.port
                return
        raise SAMLIdPStartError(
            f"{self.name} did not report ready within {self.startup_timeout}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )
