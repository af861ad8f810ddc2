"""Figure 5: sign-ins from concurrent browsers against the site under gunicorn.

Three kinds of process: gunicorn (``bench.wsgi``, sync workers), the fake IdP
(``python -m bench.idp``, its own process so its token signing does not compete
with the driver for one GIL), and this driver, whose threads each play one
browser at a time with a fresh ``requests.Session``: GET the login page (CSRF
cookie and token), POST the email, follow to the IdP's /authorize (approves at
once), GET the callback, GET the landing page. Counts and time are bounded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from .config import BenchConfig
from .idp import stats_from
from .report import Figure, Goal, median

ROOT = Path(__file__).resolve().parent.parent
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
SECRET = "test-secret with spaces+plus"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return sorted(int(p) for p in handle.read().split())
    except OSError:
        return []


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )


class Driver:
    """Runs sign-ins until ``total`` are done or the time cap passes."""

    def __init__(self, base: str, total: int, users: int, deadline: float, rss_at: int):
        self.base = base
        self.total = total
        self.users = users
        self.deadline = deadline
        self.rss_at = rss_at
        self.lock = threading.Lock()
        self.started = 0
        self.done = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.durations: list[float] = []
        self.steps: dict[str, list[float]] = {}
        self.on_milestone: Any = None

    def ticket(self) -> int | None:
        with self.lock:
            if self.started >= self.total or time.monotonic() > self.deadline:
                return None
            self.started += 1
            return self.started

    def finish(self, ok: bool, reason: str, seconds: float) -> None:
        with self.lock:
            self.done += 1
            if ok:
                self.ok += 1
                self.durations.append(seconds)
            else:
                self.errors[reason] += 1
            milestone = self.done == self.rss_at
        if milestone and self.on_milestone is not None:
            self.on_milestone()

    def _step(self, name: str, t0: float) -> float:
        now = time.perf_counter()
        with self.lock:
            self.steps.setdefault(name, []).append(now - t0)
        return now

    def sign_in(self, number: int) -> tuple[bool, str]:
        email = f"user{number % self.users}@contoso.com"
        with requests.Session() as browser:
            t = time.perf_counter()
            page = browser.get(f"{self.base}/sso/login/", timeout=30)
            t = self._step("login page", t)
            match = CSRF_FIELD.search(page.content)
            if page.status_code != 200 or match is None:
                return False, f"login page {page.status_code}"
            start = browser.post(
                f"{self.base}/sso/login/",
                data={"email": email, "csrfmiddlewaretoken": match.group(1).decode()},
                allow_redirects=False,
                timeout=30,
            )
            t = self._step("login POST", t)
            if start.status_code != 302:
                return False, f"login POST {start.status_code}"
            approved = browser.get(start.headers["Location"], allow_redirects=False, timeout=30)
            t = self._step("IdP authorize", t)
            if approved.status_code != 302:
                return False, f"authorize {approved.status_code}"
            done = browser.get(approved.headers["Location"], allow_redirects=False, timeout=60)
            t = self._step("callback", t)
            if done.status_code != 302 or done.headers.get("Location") != "/home/":
                return False, f"callback {done.status_code}"
            home = browser.get(f"{self.base}/home/", timeout=30)
            self._step("landing page", t)
            if not home.content.startswith(b"signed in as "):
                return False, "landing page not signed in"
        return True, ""

    def run(self) -> None:
        while (number := self.ticket()) is not None:
            t0 = time.perf_counter()
            try:
                ok, reason = self.sign_in(number)
            except requests.RequestException as exc:
                ok, reason = False, exc.__class__.__name__
            self.finish(ok, reason, time.perf_counter() - t0)


def figure_5(cfg: BenchConfig, workdir: str) -> Figure:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return Figure(
            5, "Load under gunicorn: skipped", ["status"], [["gunicorn is not installed"]]
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTRA_SSO_BENCH_")}
    env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    use_pg = cfg.postgres or bool(os.environ.get("ENTRA_SSO_BENCH_PG"))
    if use_pg:
        env["ENTRA_SSO_BENCH_DB"] = "postgres"
        database = f"PostgreSQL ({os.environ.get('PGHOST', '127.0.0.1')})"
    else:
        env["ENTRA_SSO_BENCH_SQLITE"] = os.path.join(workdir, "load.sqlite3")
        database = "SQLite file, WAL journal, IMMEDIATE transactions (no PostgreSQL configured)"
    idp = subprocess.Popen(
        [sys.executable, "-m", "bench.idp"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    gunicorn_proc: subprocess.Popen[bytes] | None = None
    log_path = os.path.join(workdir, "gunicorn.log")
    try:
        assert idp.stdout is not None
        issuer = idp.stdout.readline().strip()
        env["ENTRA_SSO_BENCH_ISSUER"] = issuer
        _manage(env, "migrate", "--verbosity=0")
        if use_pg:
            _manage(env, "flush", "--no-input", "--verbosity=0")
        _manage(
            env,
            "sso_connector",
            "add",
            "load",
            "--issuer",
            issuer,
            "--client-id",
            "test-client",
            "--client-secret",
            SECRET,
            "--provider",
            "oidc",
            "--domain",
            "contoso.com",
            "--response-mode",
            "query",
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            gunicorn_proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "bench.wsgi:application",
                    "--workers",
                    str(cfg.load_workers),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--timeout",
                    "60",
                    "--backlog",
                    "256",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        ready_by = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/home/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > ready_by or gunicorn_proc.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {log_path}")
            time.sleep(0.2)
        workers: list[int] = []
        for _ in range(50):
            workers = _children(gunicorn_proc.pid)
            if len(workers) >= cfg.load_workers:
                break
            time.sleep(0.1)
        baseline = stats_from(issuer)
        rss_at = min(100, max(1, cfg.load_signins // 2))
        rss_early: dict[int, int] = {}
        rss_start = {pid: _rss_kib(pid) for pid in workers}
        driver = Driver(
            base, cfg.load_signins, cfg.load_users, time.monotonic() + cfg.load_time_cap, rss_at
        )
        driver.on_milestone = lambda: rss_early.update({pid: _rss_kib(pid) for pid in workers})
        threads = [
            threading.Thread(target=driver.run, daemon=True) for _ in range(cfg.load_clients)
        ]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(cfg.load_time_cap + 120)
        elapsed = time.perf_counter() - t0
        rss_end = {pid: _rss_kib(pid) for pid in workers}
        stats = stats_from(issuer)
        workers_after = _children(gunicorn_proc.pid)
    finally:
        if gunicorn_proc is not None:
            gunicorn_proc.terminate()
            try:
                gunicorn_proc.wait(20)
            except subprocess.TimeoutExpired:
                gunicorn_proc.kill()
        if idp.stdin is not None:
            idp.stdin.close()
        try:
            idp.wait(10)
        except subprocess.TimeoutExpired:
            idp.kill()

    def delta(path: str) -> int:
        return stats.get(path, 0) - baseline.get(path, 0)

    jwks = stats.get("/jwks", 0)
    discovery = stats.get("/.well-known/openid-configuration", 0)
    total_errors = sum(driver.errors.values())
    rate = driver.ok / elapsed if elapsed else 0.0
    rows = [
        [
            str(cfg.load_clients),
            str(cfg.load_workers),
            str(driver.done),
            str(driver.ok),
            str(total_errors),
            f"{elapsed:.1f} s",
            f"{rate:.1f}",
            f"{median(driver.durations) * 1000:.0f} ms",
            str(delta("/token")),
            str(jwks),
            str(discovery),
        ]
    ]
    rss_rows = []
    for pid in workers:
        early, end = rss_early.get(pid), rss_end.get(pid, 0)
        rss_rows.append(
            f"worker {pid}: {rss_start.get(pid, 0) / 1024:.1f} MiB at start, "
            + (f"{early / 1024:.1f} MiB after {rss_at} sign-ins, " if early else "")
            + f"{end / 1024:.1f} MiB after {driver.done}"
            + (f" (+{(end - early) / 1024:.1f} MiB)" if early else "")
        )
    growth = [rss_end[p] - rss_early[p] for p in workers if p in rss_early and p in rss_end]
    notes = [
        f"Database: {database}; cache: LocMem (per worker); gunicorn sync workers.",
        f"Fake IdP (bench/idp.py) in its own process on loopback {issuer}; the driver "
        f"runs {cfg.load_clients} threads, each a fresh requests.Session per sign-in "
        f"(login page, POST email, /authorize, callback, landing page), "
        f"{cfg.load_users} distinct people.",
        "JWKS and discovery columns count every fetch since the IdP started, "
        "i.e. each worker's first sign-in and any refresh.",
        "Median time per step as the browser saw it: "
        + ", ".join(f"{name} {median(v) * 1000:.0f} ms" for name, v in driver.steps.items())
        + ".",
        *rss_rows,
    ]
    if set(workers_after) != set(workers):
        notes.append(f"Workers changed during the run: {workers} → {workers_after}")
    if driver.started < cfg.load_signins:
        notes.append(
            f"Stopped by the time cap ({cfg.load_time_cap:.0f} s) after {driver.done} "
            f"of {cfg.load_signins} sign-ins."
        )
    if driver.errors:
        notes.append(f"Errors: {dict(driver.errors)}; gunicorn log: {log_path}")
    rss_detail = (
        f"largest growth {max(growth) / 1024:.1f} MiB between sign-in {rss_at} and {driver.done}"
        if growth
        else "no sample"
    )
    return Figure(
        5,
        f"Load: sign-ins from {cfg.load_clients} concurrent browsers, gunicorn "
        f"{cfg.load_workers} workers",
        [
            "browsers",
            "workers",
            "sign-ins tried",
            "succeeded",
            "errors",
            "wall time",
            "sign-ins/s",
            "median sign-in",
            "token calls",
            "JWKS fetches",
            "discovery fetches",
        ],
        rows,
        goals=[
            Goal("0 errors", total_errors == 0, f"{total_errors} errors"),
            Goal(
                "JWKS fetched at most once per worker per key",
                jwks <= cfg.load_workers,
                f"{jwks} fetches for {cfg.load_workers} workers, 1 signing key",
            ),
            Goal(
                "worker RSS flat after warm-up (informational: growth reported)",
                None,
                rss_detail,
            ),
        ],
        notes=notes,
        data={
            "done": driver.done,
            "ok": driver.ok,
            "errors": dict(driver.errors),
            "elapsed": elapsed,
            "jwks": jwks,
            "discovery": discovery,
            "token": delta("/token"),
            "rss_start": rss_start,
            "rss_early": rss_early,
            "rss_end": rss_end,
        },
    )
