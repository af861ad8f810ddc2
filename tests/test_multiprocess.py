"""Two app processes sharing one database (and cache): a logout handled by one
ends a session created by the other."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakeidp import FakeIdP
from tests.helpers import IN_CI, require

pytestmark = pytest.mark.multiprocess
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def redis_reason(url: str | None) -> str | None:
    if not url:
        return "ENTRA_SSO_TEST_REDIS_URL is not set (scripts/run-tests.sh starts Redis)"
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"Redis at {url} is not reachable: {exc}"
    return None


@pytest.fixture(params=["db-sessions", "redis-cache-sessions"])
def app_env(request: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.multiprocess_settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ENTRA_SSO_TEST_SQLITE", None)
    pg_name = None
    if os.environ.get("ENTRA_SSO_TEST_DB") == "postgres":
        import psycopg

        pg_name = f"entra_sso_mp_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["MP_PG_NAME"] = pg_name
    else:
        env["MP_SQLITE_PATH"] = str(tmp_path / "shared.sqlite3")
    if request.param == "redis-cache-sessions":
        url = os.environ.get("ENTRA_SSO_TEST_REDIS_URL")
        require(redis_reason(url))
        env["MP_REDIS_URL"] = str(url)
        env["MP_CACHE_PREFIX"] = uuid.uuid4().hex[:8]
        env["MP_SESSION_ENGINE"] = "django.contrib.sessions.backends.cache"
    manage(env, "migrate", "--noinput")
    yield env
    if pg_name:
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def start_app(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app on {port} exited: {log.read_text()[-2000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"app on {port} did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def sign_in(base: str, idp: FakeIdP, email: str) -> requests.Session:
    browser = requests.Session()
    browser.get(f"{base}/sso/login/", timeout=10)
    token = browser.cookies["csrftoken"]
    started = browser.post(
        f"{base}/sso/login/",
        data={"email": email, "csrfmiddlewaretoken": token, "next": "/private/"},
        headers={"Referer": f"{base}/sso/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert started.status_code == 302, started.text[:500]
    params = idp.authorize(started.headers["Location"])
    done = browser.get(
        f"{base}/sso/callback/contoso/", params=params, allow_redirects=False, timeout=10
    )
    assert done.status_code == 302, done.text[:500]
    assert done.headers["Location"] == "/private/"
    return browser


def test_frontchannel_logout_in_one_process_ends_a_session_of_another(
    app_env: dict[str, str], fake_idp: FakeIdP, tmp_path: Path
) -> None:
    manage(
        app_env,
        "sso_connector",
        "add",
        "contoso",
        "--issuer",
        fake_idp.issuer,
        "--client-id",
        fake_idp.client_id,
        "--client-secret",
        fake_idp.client_secret,
        "--provider",
        "oidc",
        "--response-mode",
        "query",
        "--domain",
        "contoso.com",
    )
    port_a, port_b = free_port(), free_port()
    app_a = start_app(app_env, port_a, tmp_path / "a.log")
    try:
        app_b = start_app(app_env, port_b, tmp_path / "b.log")
        try:
            base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
            browser = sign_in(base_a, fake_idp, "alice@contoso.com")
            private = browser.get(f"{base_a}/private/", allow_redirects=False, timeout=10)
            assert private.status_code == 200 and b"signed in as" in private.content
            # Both browsers now share the fake IdP's sid; give the bystander its own.
            fake_idp.token_overrides["sid"] = "idp-session-2"
            bystander = sign_in(base_a, fake_idp, "carol@contoso.com")
            # The IdP's iframe reaches process B, without the browser's cookies.
            logout = requests.get(
                f"{base_b}/sso/logout/frontchannel/contoso/",
                params={"sid": "idp-session-1"},
                timeout=10,
            )
            assert logout.status_code == 200
            after = browser.get(f"{base_a}/private/", allow_redirects=False, timeout=10)
            assert after.status_code == 302
            still = bystander.get(f"{base_a}/private/", allow_redirects=False, timeout=10)
            assert still.status_code == 200
        finally:
            stop(app_b)
    finally:
        stop(app_a)


def test_ci_runs_the_redis_variant() -> None:
    """Under CI=true Redis must be there: the redis-cache variant may not skip."""
    if IN_CI:
        assert redis_reason(os.environ.get("ENTRA_SSO_TEST_REDIS_URL")) is None
    else:
        pytest.skip("only meaningful under CI=true")
