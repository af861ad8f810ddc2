"""The bench's identity provider: the test suite's ``FakeIdP`` plus what a browser needs.

Adds, without touching ``tests/fakeidp.py``:

- ``GET /authorize``: approves at once and answers 302 to ``redirect_uri`` with
  ``code`` and ``state`` (the load test's browsers follow it over HTTP). The
  person is derived from ``login_hint`` (``sub-<email>``), each sign-in gets its
  own ``sid``.
- userinfo answers for the person the access token was issued to (stock
  mozilla-django-oidc reads its claims from userinfo).
- ``GET /_stats``: the per-path call counts as JSON (not counted itself), so a
  driver in another process can read them.
- ``far_away(seconds)``: every answer to the site (discovery, JWKS, token,
  userinfo) waits that long first, as an IdP in a cloud region would (figure 2's
  remote table).

Run standalone (the load test does): ``python -m bench.idp`` prints its issuer
on the first line of stdout and serves until stdin closes or it is killed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from tests.fakeidp import FakeIdP

#: What each path of the fake is, in the words of the figures.
CALL_KINDS = {
    "/.well-known/openid-configuration": "discovery",
    "/jwks": "JWKS",
    "/token": "token",
    "/userinfo": "userinfo",
}


class BenchIdP(FakeIdP):
    def __post_init__(self) -> None:
        self.site_calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        self.userinfo_by_token: dict[str, dict[str, Any]] = {}
        #: Seconds each answer to the site waits (``far_away``); 0 on loopback.
        self.answer_delay = 0.0
        super().__post_init__()
        self.auth_methods = ["client_secret_basic", "client_secret_post"]

    def count(self, path: str) -> None:
        with self._count_lock:
            self.site_calls[path] += 1

    def snapshot(self) -> dict[str, int]:
        """Calls so far by path (thread-safe copy)."""
        with self._count_lock:
            return dict(self.site_calls)

    @contextmanager
    def far_away(self, seconds: float) -> Iterator[None]:
        """Answer the site's calls ``seconds`` late meanwhile (the network's round trip)."""
        self.answer_delay = seconds
        try:
            yield
        finally:
            self.answer_delay = 0.0

    def wait_as_if_remote(self, path: str) -> None:
        if self.answer_delay and path in CALL_KINDS:
            time.sleep(self.answer_delay)

    def _token(self, form: dict[str, str], headers: Any) -> tuple[int, dict[str, Any]]:
        status, payload = super()._token(form, headers)
        # Bounded memory in long runs: the bench never replays old tokens.
        self.received_token_requests.clear()
        if status == 200:
            claims = jwt.decode(payload["id_token"], options={"verify_signature": False})
            info = {
                k: claims[k]
                for k in ("sub", "email", "email_verified", "name", "given_name", "family_name")
                if k in claims
            }
            if len(self.userinfo_by_token) > 10_000:
                self.userinfo_by_token.clear()
            self.userinfo_by_token[payload["access_token"]] = info
        return status, payload

    def approve(self, authorize_url: str) -> str:
        """The browser's visit to /authorize: the URL it is redirected back to."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        hint = query.get("login_hint", "")
        claims: dict[str, Any] = {"sid": "sid-" + uuid.uuid4().hex}
        if hint:
            claims.update({"sub": f"sub-{hint}", "email": hint})
        params = self.authorize(authorize_url, **claims)
        redirect_uri = query["redirect_uri"]
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(params)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler()
        idp = self

        class Handler(base):  # type: ignore[valid-type,misc]
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/_stats":
                    self._send(200, idp.snapshot())
                    return
                idp.count(path)
                idp.wait_as_if_remote(path)
                if path == "/authorize":
                    try:
                        location = idp.approve(self.path)
                    except (AssertionError, KeyError) as exc:
                        self._send(400, {"error": "invalid_request", "detail": repr(exc)})
                        return
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    info = idp.userinfo_by_token.get(token)
                    if info is not None:
                        idp.calls[path] += 1
                        self._send(200, info)
                        return
                super().do_GET()

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                idp.count(path)
                idp.wait_as_if_remote(path)
                super().do_POST()

        return Handler


def stats_from(issuer: str) -> dict[str, int]:
    """Read a running BenchIdP's call counts over HTTP."""
    import requests

    response = requests.get(f"{issuer}/_stats", timeout=10)
    response.raise_for_status()
    return {str(k): int(v) for k, v in json.loads(response.content).items()}


def main() -> None:
    idp = BenchIdP()
    print(idp.issuer, flush=True)
    try:
        sys.stdin.read()  # serve until the driver closes our stdin
    finally:
        idp.close()


if __name__ == "__main__":
    main()
