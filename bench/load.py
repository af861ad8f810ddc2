"""Figure 5: sign-ins from concurrent browsers against the site under gunicorn.

Three kinds of process: gunicorn (``bench.wsgi``, sync workers), the fake IdP
(``python -m bench.idp``, its own process so its token signing does not compete
with the driver for one GIL), and this driver, whose threads each play one
browser at a time with a fresh ``requests.Session``.

Both sides sign in on the same site, per stack (``bench/stacks.py``):

- ours: GET the login page (CSRF cookie and token), POST the email, follow to the
  IdP's /authorize (approves at once), GET the callback, GET the landing page;
- stock mozilla-django-oidc: GET /oidc/authenticate/, the IdP's /authorize, GET
  /oidc/callback/, GET the landing page.

The sides alternate in chunks (ours then stock, then stock then ours, ...): both see
the same stretches of the machine's noise, and within a chunk every browser plays the
same side, so each side's rate and step times are its own. Counts and time are bounded.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from .config import BenchConfig
from .idp import stats_from
from .report import Figure, Goal, Table, median, p95, ratio
from .stacks import Stack, StackUnavailable, make_stack

ROOT = Path(__file__).resolve().parent.parent
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
SECRET = "test-secret with spaces+plus"
SIDES = ("ours", "stock")
#: Each side's people: ours by home-realm discovery on the connector's domain; stock's
#: on another domain, so that neither side ever signs in a user the other created.
DOMAINS = {"ours": "contoso.com", "stock": "stock.example"}
START_STEP = "login POST / authenticate"
STEPS = ("login page", START_STEP, "IdP authorize", "callback", "landing page")
LANDING = b"signed in as "
#: Seconds at most for each side's warm-up (a handful of sign-ins).
WARM_UP_CAP = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # the worker is gone (reported as "workers changed")
        pass
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


def _ci() -> bool:
    # As tests/helpers.py reads it: CI=true is where every server must be up.
    return os.environ.get("CI", "").lower() == "true"


# -- one browser, one sign-in ----------------------------------------------------------
class Laps:
    """The time of each step of one sign-in, as the browser saw it."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.times: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now

    @property
    def total(self) -> float:
        return self.last - self.started


@dataclass
class Outcome:
    ok: bool
    reason: str = ""
    #: The landing page's greeting: who the site says is signed in.
    who: str = ""


def _follow_callback(browser: requests.Session, base: str, location: str, laps: Laps) -> Outcome:
    """The part both sides share: the callback, then the landing page."""
    done = browser.get(location, allow_redirects=False, timeout=60)
    laps.lap("callback")
    if done.status_code != 302 or done.headers.get("Location") != "/home/":
        return Outcome(False, f"callback {done.status_code}")
    home = browser.get(f"{base}/home/", timeout=30)
    laps.lap("landing page")
    if not home.content.startswith(LANDING):
        return Outcome(False, "landing page not signed in")
    return Outcome(True, who=home.content[len(LANDING) :].decode())


def sign_in_ours(base: str, email: str, laps: Laps) -> Outcome:
    with requests.Session() as browser:
        page = browser.get(f"{base}/sso/login/", timeout=30)
        laps.lap("login page")
        match = CSRF_FIELD.search(page.content)
        if page.status_code != 200 or match is None:
            return Outcome(False, f"login page {page.status_code}")
        start = browser.post(
            f"{base}/sso/login/",
            data={"email": email, "csrfmiddlewaretoken": match.group(1).decode()},
            allow_redirects=False,
            timeout=30,
        )
        laps.lap(START_STEP)
        if start.status_code != 302:
            return Outcome(False, f"login POST {start.status_code}")
        approved = browser.get(start.headers["Location"], allow_redirects=False, timeout=30)
        laps.lap("IdP authorize")
        if approved.status_code != 302:
            return Outcome(False, f"authorize {approved.status_code}")
        return _follow_callback(browser, base, approved.headers["Location"], laps)


def sign_in_stock(base: str, email: str, laps: Laps) -> Outcome:
    with requests.Session() as browser:
        start = browser.get(f"{base}/oidc/authenticate/", allow_redirects=False, timeout=30)
        laps.lap(START_STEP)
        if start.status_code != 302:
            return Outcome(False, f"authenticate {start.status_code}")
        # mozilla-django-oidc sends no login_hint; the person names themselves at the
        # IdP instead. The browser adds the hint to the URL stock built, which the
        # bench IdP turns into sub and email, as for ours: distinct people per sign-in.
        authorize = start.headers["Location"] + "&" + urlencode({"login_hint": email})
        approved = browser.get(authorize, allow_redirects=False, timeout=30)
        laps.lap("IdP authorize")
        if approved.status_code != 302:
            return Outcome(False, f"authorize {approved.status_code}")
        return _follow_callback(browser, base, approved.headers["Location"], laps)


SIGN_INS: dict[str, Callable[[str, str, Laps], Outcome]] = {
    "ours": sign_in_ours,
    "stock": sign_in_stock,
}


# -- one side's sign-ins, in chunks -----------------------------------------------------
@dataclass
class SideRun:
    side: str
    total: int
    time_cap: float
    started: int = 0
    done: int = 0
    ok: int = 0
    wall: float = 0.0
    capped: bool = False
    errors: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)
    people: set[str] = field(default_factory=set)
    #: IdP calls by path made while this side's chunks ran.
    calls: Counter[str] = field(default_factory=Counter)

    @property
    def finished(self) -> bool:
        return self.capped or self.started >= self.total

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def record(self, outcome: Outcome, laps: Laps) -> None:
        self.done += 1
        for name, seconds in laps.times.items():
            self.steps.setdefault(name, []).append(seconds)
        if outcome.ok:
            self.ok += 1
            self.durations.append(laps.total)
            self.people.add(outcome.who)
        else:
            self.errors[outcome.reason] += 1


def run_chunk(run: SideRun, base: str, size: int, clients: int, users: int) -> None:
    """``size`` more sign-ins of one side from ``clients`` browsers at once."""
    lock = threading.Lock()
    end = min(run.total, run.started + size)
    budget = run.time_cap - run.wall
    deadline = time.monotonic() + budget
    sign_in = SIGN_INS[run.side]

    def ticket() -> int | None:
        with lock:
            if time.monotonic() > deadline:
                run.capped = True
                return None
            if run.started >= end:
                return None
            run.started += 1
            return run.started

    def browse() -> None:
        while (number := ticket()) is not None:
            laps = Laps()
            email = f"user{number % users}@{DOMAINS[run.side]}"
            try:
                outcome = sign_in(base, email, laps)
            except (requests.RequestException, KeyError, ValueError) as exc:
                # Counted as an error, not lost with the thread: "tried" stays honest.
                outcome = Outcome(False, exc.__class__.__name__)
            laps.last = time.perf_counter()  # a failed step still counts in the total
            with lock:
                run.record(outcome, laps)

    threads = [threading.Thread(target=browse, daemon=True) for _ in range(clients)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(budget, 0) + 120)
    run.wall += time.perf_counter() - t0


def warm_up_size(cfg: BenchConfig) -> int:
    # Two sign-ins per worker (at least one per browser): most workers then have run
    # each side's views once, their connections are open and the caches filled.
    return max(cfg.load_clients, 2 * cfg.load_workers)


def chunk_size(cfg: BenchConfig) -> int:
    # At most 100 sign-ins: short enough (10-15 s at full size) that both sides meet the
    # same noise; long enough that each chunk's ramp-down (browsers idle while the last
    # sign-ins finish) costs a few percent, alike for both sides. At least 4 per side.
    return max(cfg.load_clients, min(100, -(-cfg.load_signins // 4)))


# -- one stack: its own database, cache and gunicorn --------------------------------------
@dataclass
class StackResult:
    stack: Stack
    skipped: str = ""
    runs: dict[str, SideRun] = field(default_factory=dict)
    workers: list[int] = field(default_factory=list)
    workers_after: list[int] = field(default_factory=list)
    rss_start: dict[int, int] = field(default_factory=dict)
    rss_warm: dict[int, int] = field(default_factory=dict)
    rss_end: dict[int, int] = field(default_factory=dict)
    #: Each side's untimed first sign-ins (left out of the table, not of the goals).
    warm_up: dict[str, SideRun] = field(default_factory=dict)
    log_path: str = ""


@contextmanager
def idp_process(env: dict[str, str]) -> Iterator[str]:
    """The fake IdP in its own process, for every stack; yields its issuer."""
    idp = subprocess.Popen(
        [sys.executable, "-m", "bench.idp"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert idp.stdout is not None
        yield idp.stdout.readline().strip()
    finally:
        if idp.stdin is not None:
            idp.stdin.close()  # it serves until its stdin closes
        try:
            idp.wait(10)
        except subprocess.TimeoutExpired:
            idp.kill()


def _set_up_site(env: dict[str, str], stack: Stack, issuer: str) -> None:
    _manage(env, "migrate", "--verbosity=0")
    if stack.flush:
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
        DOMAINS["ours"],
        "--response-mode",
        "query",
    )


@contextmanager
def gunicorn(env: dict[str, str], workers: int, log_path: str) -> Iterator[tuple[str, int]]:
    """gunicorn serving ``bench.wsgi``; yields its base URL and master pid once it answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "bench.wsgi:application",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "--backlog",
        "256",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        ready_by = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/home/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > ready_by or proc.poll() is not None:
                raise RuntimeError(f"gunicorn did not start; see {log_path}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _worker_pids(master: int, expected: int) -> list[int]:
    workers: list[int] = []
    for _ in range(50):
        workers = _children(master)
        if len(workers) >= expected:
            break
        time.sleep(0.1)
    return workers


def _rss(workers: list[int]) -> dict[int, int]:
    return {pid: _rss_kib(pid) for pid in workers}


def _settled_rss(workers: list[int], timeout: float = 15.0) -> dict[int, int]:
    """RSS once no worker grows any more: each imports Django and the site after it is
    forked, so the first sample can catch some half-way."""
    last = _rss(workers)
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        time.sleep(0.5)
        now = _rss(workers)
        if now == last:
            break
        last = now
    return last


def _idp_delta(issuer: str, before: dict[str, int]) -> Counter[str]:
    after = stats_from(issuer)
    return Counter({p: n - before.get(p, 0) for p, n in after.items() if n > before.get(p, 0)})


def _chunk(run: SideRun, cfg: BenchConfig, base: str, issuer: str, size: int) -> None:
    """One chunk, with the IdP calls made meanwhile put down to its side."""
    before = stats_from(issuer)
    run_chunk(run, base, size, cfg.load_clients, cfg.load_users)
    run.calls.update(_idp_delta(issuer, before))


def _warm_up(result: StackResult, cfg: BenchConfig, base: str, issuer: str) -> None:
    """Each side's first sign-ins, untimed: every worker's first requests import code,
    open connections and fill caches, and would otherwise fall on whoever goes first."""
    size = warm_up_size(cfg)
    for side in SIDES:
        result.warm_up[side] = run = SideRun(side, size, WARM_UP_CAP)
        _chunk(run, cfg, base, issuer, size)


def _alternate(result: StackResult, cfg: BenchConfig, base: str, issuer: str) -> None:
    """Both sides' timed sign-ins in alternating chunks."""
    size = chunk_size(cfg)
    round_number = 0
    while not all(run.finished for run in result.runs.values()):
        # ABBA order: neither side always runs right after the other's warm caches.
        order = SIDES if round_number % 2 == 0 else SIDES[::-1]
        for side in order:
            run = result.runs[side]
            if run.finished:
                continue
            _chunk(run, cfg, base, issuer, size)
        round_number += 1


def load_stack(stack: Stack, cfg: BenchConfig, env: dict[str, str], workdir: str) -> StackResult:
    result = StackResult(stack, log_path=os.path.join(workdir, f"gunicorn-{stack.name}.log"))
    try:
        stack.prepare()
    except StackUnavailable as exc:
        if _ci():
            # CI has PostgreSQL and Redis: a missing server there is a broken setup.
            raise RuntimeError(f"figure 5, stack {stack.name}: {exc} (CI=true)") from exc
        result.skipped = str(exc)
        return result
    issuer = env["ENTRA_SSO_BENCH_ISSUER"]
    stack_env = {**env, **stack.env}
    _set_up_site(stack_env, stack, issuer)
    result.runs = {side: SideRun(side, cfg.load_signins, cfg.load_time_cap) for side in SIDES}
    with gunicorn(stack_env, cfg.load_workers, result.log_path) as (base, master):
        result.workers = _worker_pids(master, cfg.load_workers)
        result.rss_start = _settled_rss(result.workers)
        _warm_up(result, cfg, base, issuer)
        result.rss_warm = _rss(result.workers)
        _alternate(result, cfg, base, issuer)
        result.rss_end = _rss(result.workers)
        result.workers_after = _children(master)
    return result


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
    stacks = [make_stack(name, workdir) for name in cfg.load_stacks]
    with idp_process(env) as issuer:
        env["ENTRA_SSO_BENCH_ISSUER"] = issuer
        results = [load_stack(stack, cfg, env, workdir) for stack in stacks]
    return _figure(cfg, issuer, results)


# -- the figure ---------------------------------------------------------------------------
MAIN_HEADERS = [
    "stack",
    "side",
    "sign-ins tried",
    "succeeded",
    "errors",
    "wall time",
    "sign-ins/s",
    "median sign-in",
    "p95 sign-in",
    "people",
    "token calls",
    "JWKS fetches",
    "discovery fetches",
    "userinfo calls",
]
#: The IdP paths the site calls, in the order of the table's last columns.
CALL_KINDS = {
    "/token": "token",
    "/jwks": "JWKS",
    "/.well-known/openid-configuration": "discovery",
    "/userinfo": "userinfo",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _main_row(name: str, run: SideRun) -> list[str]:
    return [
        name,
        run.side,
        str(run.done),
        str(run.ok),
        str(sum(run.errors.values())),
        f"{run.wall:.1f} s",
        f"{run.rate:.1f}",
        _ms(median(run.durations)),
        _ms(p95(run.durations)),
        str(len(run.people)),
        *(str(run.calls.get(path, 0)) for path in CALL_KINDS),
    ]


def _step_row(name: str, run: SideRun) -> list[str]:
    cells = [name, run.side]
    for step in (*STEPS, "whole sign-in"):
        values = run.durations if step == "whole sign-in" else run.steps.get(step, [])
        cells.append(f"{median(values) * 1000:.0f} / {p95(values) * 1000:.0f}" if values else "—")
    return cells


def _mib_range(values: dict[int, int]) -> str:
    if not values:
        return "—"
    low, high = min(values.values()) / 1024, max(values.values()) / 1024
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}"


def _growth(result: StackResult) -> float | None:
    growth = [
        result.rss_end[pid] - result.rss_warm[pid]
        for pid in result.workers
        if pid in result.rss_warm and pid in result.rss_end
    ]
    return max(growth) / 1024 if growth else None


def _done(runs: dict[str, SideRun]) -> int:
    return sum(run.done for run in runs.values())


def _rss_row(result: StackResult) -> list[str]:
    growth = _growth(result)
    return [
        result.stack.name,
        str(len(result.workers)),
        _mib_range(result.rss_start),
        f"{_mib_range(result.rss_warm)} (after {_done(result.warm_up)} sign-ins)",
        f"{_mib_range(result.rss_end)} (after {_done(result.warm_up) + _done(result.runs)})",
        "—" if growth is None else f"{growth:+.1f} MiB",
    ]


def _ratio_note(result: StackResult) -> str:
    ours, stock = result.runs["ours"], result.runs["stock"]
    callback = ratio(
        median(ours.steps.get("callback", [])), median(stock.steps.get("callback", []))
    )
    return (
        f"ours/stock on {result.stack.name}: sign-ins/s {ratio(ours.rate, stock.rate)}, "
        f"median callback {callback}, median sign-in "
        f"{ratio(median(ours.durations), median(stock.durations))}."
    )


def _calls_text(calls: Counter[str]) -> str:
    return ", ".join(f"{kind} {calls.get(path, 0)}" for path, kind in CALL_KINDS.items())


def _warm_up_note(result: StackResult) -> str:
    parts = [
        f"{run.side} {run.ok} of {run.done} signed in, {sum(run.errors.values())} errors "
        f"(IdP calls: {_calls_text(run.calls)})"
        for run in result.warm_up.values()
    ]
    return f"Warm-up on {result.stack.name}, untimed, not in the tables: " + "; ".join(parts) + "."


def _stack_notes(result: StackResult) -> list[str]:
    notes = [_warm_up_note(result), _ratio_note(result)]
    if result.workers_after and set(result.workers_after) != set(result.workers):
        notes.append(
            f"{result.stack.name}: workers changed during the run: "
            f"{result.workers} → {result.workers_after}"
        )
    for run in _all_runs(result):
        if run.capped and run.started < run.total:
            notes.append(
                f"{result.stack.name}, {run.side}: stopped by the time cap "
                f"({run.time_cap:.0f} s) after {run.done} of {run.total} sign-ins."
            )
        if run.errors:
            notes.append(
                f"{result.stack.name}, {run.side}: errors {dict(run.errors)}; "
                f"gunicorn log: {result.log_path}"
            )
    return notes


def _method_notes(cfg: BenchConfig, issuer: str, results: list[StackResult]) -> list[str]:
    size = chunk_size(cfg)
    return [
        *(f"Stack {r.stack.name}: {r.stack.description}." for r in results),
        f"Sizes: {cfg.load_signins} sign-ins per side per stack (--load-signins), time cap "
        f"{cfg.load_time_cap:.0f} s per side per stack (--time-cap), {cfg.load_users} "
        f"distinct people per side, {cfg.load_clients} browsers at once (--clients), "
        f"{cfg.load_workers} gunicorn sync workers (--workers); stacks: "
        f"{', '.join(cfg.load_stacks)} (--stacks).",
        f"Warm-up: first {warm_up_size(cfg)} untimed sign-ins per side per stack (each "
        "worker's first requests import code, open connections and fill caches, which would "
        "fall on whichever side went first); they count for the goals, not in the tables. "
        f"Then the sides alternate in chunks of {size} sign-ins (ours, stock, then stock, ours, "
        "...) on the same gunicorn and IdP, so both meet the same stretches of the "
        "machine's noise; within a chunk all browsers play one side, so each side's "
        "steps are timed without the other's requests in flight. A side's wall time is "
        "the sum of its chunks; sign-ins/s = succeeded / that (each chunk's ramp-down "
        "costs both sides alike).",
        f"Fake IdP (bench/idp.py) in its own process on loopback {issuer}, one for every "
        "stack. Each sign-in is a fresh requests.Session. Ours: login page, POST "
        f"user<n>@{DOMAINS['ours']}, /authorize, callback, landing page. Stock: "
        "/oidc/authenticate/, /authorize, /oidc/callback/, landing page; "
        "mozilla-django-oidc sends no login_hint, so the browser appends "
        f"login_hint=user<n>@{DOMAINS['stock']} to the authorize URL stock built (the "
        "person naming themselves at the IdP), and the IdP makes sub and email from it, "
        "as it does for ours. The two sides' people are different users; 'people' is "
        "how many distinct users the landing page greeted.",
        "IdP calls are counted at the IdP while each side's chunks ran (setup excluded). "
        "Ours keeps discovery and JWKS in Django's cache (per worker with LocMem, shared "
        "with Redis); stock fetches JWKS and userinfo on every sign-in.",
    ]


def _all_runs(result: StackResult) -> list[SideRun]:
    return [*result.warm_up.values(), *result.runs.values()]


def _goals(cfg: BenchConfig, ran: list[StackResult]) -> list[Goal]:
    # Warm-up included: an error is an error, and it is where ours fetches JWKS.
    errors = sum(sum(run.errors.values()) for r in ran for run in _all_runs(r))
    tried = sum(run.done for r in ran for run in _all_runs(r))
    jwks = {
        r.stack.name: sum(run.calls.get("/jwks", 0) for run in _all_runs(r) if run.side == "ours")
        for r in ran
    }
    growth = {r.stack.name: _growth(r) for r in ran}
    return [
        Goal("0 errors", errors == 0 if ran else None, f"{errors} errors in {tried} sign-ins"),
        Goal(
            "ours fetches JWKS at most once per worker per key",
            all(n <= cfg.load_workers for n in jwks.values()) if ran else None,
            "fetches by ours, warm-up included: "
            + ", ".join(f"{name} {n}" for name, n in jwks.items())
            + f"; {cfg.load_workers} workers, 1 signing key",
        ),
        Goal(
            "worker RSS flat after warm-up (informational: growth reported)",
            None,
            ", ".join(
                f"{name}: " + ("no sample" if g is None else f"largest growth {g:+.1f} MiB")
                for name, g in growth.items()
            ),
        ),
    ]


def _side_data(run: SideRun) -> dict[str, Any]:
    return {
        "done": run.done,
        "ok": run.ok,
        "errors": dict(run.errors),
        "elapsed": run.wall,
        "people": len(run.people),
        "calls": dict(run.calls),
        "token": run.calls.get("/token", 0),
        "jwks": run.calls.get("/jwks", 0),
    }


def _figure(cfg: BenchConfig, issuer: str, results: list[StackResult]) -> Figure:
    ran = [r for r in results if not r.skipped]
    rows: list[list[str]] = []
    for result in results:
        if result.skipped:
            rows.append(
                [result.stack.name, f"skipped: {result.skipped}"] + ["—"] * (len(MAIN_HEADERS) - 2)
            )
        else:
            rows.extend(_main_row(result.stack.name, run) for run in result.runs.values())
    steps = Table(
        "Time per step as the browser saw it, median / p95 in ms (stock has no login page; "
        "its first step is GET /oidc/authenticate/, ours' the POST of the email):",
        ["stack", "side", *STEPS, "whole sign-in"],
        [_step_row(r.stack.name, run) for r in ran for run in r.runs.values()],
    )
    rss = Table(
        "Gunicorn worker RSS in MiB, lowest-highest of the workers (both sides' sign-ins "
        "go to the same workers; at start: before any sign-in, and a worker loads the "
        "URLconf, the views and their libraries on its first request; warm-up: each "
        "side's untimed first sign-ins):",
        ["stack", "workers", "at start", "after warm-up", "at the end", "growth after warm-up"],
        [_rss_row(r) for r in ran],
    )
    notes = _method_notes(cfg, issuer, results)
    for result in ran:
        notes.extend(_stack_notes(result))
    return Figure(
        5,
        f"Load under gunicorn, ours and stock: {cfg.load_clients} concurrent browsers, "
        f"{cfg.load_workers} workers, per stack",
        MAIN_HEADERS,
        rows,
        goals=_goals(cfg, ran),
        notes=notes,
        extra_tables=[steps, rss] if ran else [],
        data={
            r.stack.name: (
                {"skipped": r.skipped}
                if r.skipped
                else {
                    **{side: _side_data(run) for side, run in r.runs.items()},
                    "warm_up": {side: _side_data(run) for side, run in r.warm_up.items()},
                }
            )
            for r in results
        },
    )
