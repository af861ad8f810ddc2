"""Where a sign-in callback's time goes: per-step timers, and the SQL each step runs.

Figure 2 times the whole callback request. To say which part of it costs what,
``StepTimer`` wraps the functions each step runs (ours and stock mozilla-django-oidc
alike) with timers while the figure runs, and sends every SQL statement to the
innermost step that was running when it was executed (``connection.execute_wrapper``).
A step's time is *exclusive*: a wrapped function called inside another wrapped one
is counted in its own step only (stock's JWKS fetch happens inside its ID token
check; ours is timed apart from it). What no step claims — URL resolving,
middleware, the view's own lines, signal receivers not listed, Django's test client
— is "everything else": the callback's time minus the steps'.

Timers cost about a microsecond per wrapped call, a few dozen per callback: noise
next to the milliseconds measured, and the same for both sides.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from .report import median, ms

#: What no step claims: the callback's time minus the steps'.
EVERYTHING_ELSE = "everything else (URL, middleware, view, test client)"


@dataclass(frozen=True)
class Step:
    """One step of a callback and the functions (``"module:Class.attr"``) that make it."""

    name: str
    targets: tuple[str, ...]


def _session_store(attr: str) -> str:
    # The configured engine's class: the db engine in figure 2, cached_db in figure 5's stack.
    return f"{settings.SESSION_ENGINE}:SessionStore.{attr}"


def our_steps() -> list[Step]:
    return [
        Step("session read", (_session_store("load"),)),
        Step("state lookup (pending sign-in)", ("django_entra_sso.oidc.flow:take",)),
        Step("metadata from the cache", ("django_entra_sso.oidc.adapter:_metadata",)),
        Step("token request", ("django_entra_sso.oidc.client:redeem_code",)),
        Step("ID token check", ("django_entra_sso.oidc.adapter:_checked_id_token",)),
        Step(
            "account (lookup, writes)",
            ("django_entra_sso.backends:SSOBackend.authenticate",),
        ),
        Step("login() (key cycle, last_login)", ("django_entra_sso.views:login",)),
        Step("SSOSession row", ("django_entra_sso.views:bind_session",)),
        Step("sign-in log row", ("django_entra_sso.signin_log:record_sign_in",)),
        Step(
            "session save",
            ("django.contrib.sessions.middleware:SessionMiddleware.process_response",),
        ),
    ]


def stock_steps() -> list[Step]:
    backend = "mozilla_django_oidc.auth:OIDCAuthenticationBackend"
    return [
        Step("session read", (_session_store("load"),)),
        Step("token request", (f"{backend}.get_token",)),
        Step("JWKS fetch", (f"{backend}.retrieve_matching_jwk",)),
        Step("ID token check", (f"{backend}.verify_token",)),
        Step("userinfo request", (f"{backend}.get_userinfo",)),
        Step("account (lookup, writes)", (f"{backend}.get_or_create_user",)),
        Step("login() (key cycle, last_login)", ("django.contrib.auth:login",)),
        Step(
            "session save",
            ("django.contrib.sessions.middleware:SessionMiddleware.process_response",),
        ),
    ]


def _resolve(target: str) -> tuple[Any, str]:
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    return owner, attr


@dataclass
class _Frame:
    """A running step: its name, when it started, seconds spent in steps it called."""

    name: str
    started: float
    nested: float = 0.0


@dataclass
class Sample:
    """One callback: seconds and SQL statements per step."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: dict[str, list[str]] = field(default_factory=dict)
    total: float = 0.0


class StepTimer:
    """Wraps the steps' functions while installed; one ``Sample`` per ``measuring()``."""

    def __init__(self, steps: list[Step]):
        self.steps = steps
        self.samples: list[Sample] = []
        self._current: Sample | None = None
        self._stack: list[_Frame] = []
        self._undo: list[tuple[Any, str, Any]] = []

    # -- installing the timers -------------------------------------------------------
    @contextmanager
    def installed(self) -> Iterator[StepTimer]:
        for step in self.steps:
            for target in step.targets:
                owner, attr = _resolve(target)
                # A class's own attribute (not a bound method); None: inherited.
                own = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)
                self._undo.append((owner, attr, own))
                setattr(
                    owner,
                    attr,
                    self._timed(step.name, getattr(owner, attr) if own is None else own),
                )
        # COMMIT is no cursor statement (Django calls the driver's commit()): count it too.
        wrapper_class = type(connections[DEFAULT_DB_ALIAS])
        self._undo.append((wrapper_class, "_commit", wrapper_class.__dict__.get("_commit")))
        wrapper_class._commit = self._counted_commit(wrapper_class._commit)  # type: ignore[attr-defined]
        try:
            with connection.execute_wrapper(self._sql):
                yield self
        finally:
            for owner, attr, original in reversed(self._undo):
                if original is None:
                    delattr(owner, attr)  # was inherited: the base class's shows again
                else:
                    setattr(owner, attr, original)
            self._undo.clear()

    def _counted_commit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        timer = self

        @functools.wraps(original)
        def commit(*args: Any, **kwargs: Any) -> Any:
            if timer._current is not None:
                step = timer._stack[-1].name if timer._stack else EVERYTHING_ELSE
                timer._current.statements.setdefault(step, []).append("COMMIT")
            return original(*args, **kwargs)

        return commit

    def _timed(self, name: str, original: Any) -> Any:
        if isinstance(original, (staticmethod, classmethod)):
            raise TypeError(f"{name}: wrap plain functions and methods only")
        if getattr(original, "__self__", None) is not None and isinstance(original.__self__, type):
            raise TypeError(f"{name}: wrap plain functions and methods only")
        timer = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if timer._current is None:
                return original(*args, **kwargs)
            frame = _Frame(name, time.perf_counter())
            timer._stack.append(frame)
            try:
                return original(*args, **kwargs)
            finally:
                timer._stack.pop()
                spent = time.perf_counter() - frame.started
                timer._current.seconds[name] += spent - frame.nested
                if timer._stack:
                    timer._stack[-1].nested += spent

        return timed

    def _sql(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if self._current is not None:
            step = self._stack[-1].name if self._stack else EVERYTHING_ELSE
            self._current.statements.setdefault(step, []).append(sql)
        return execute(sql, *args)

    # -- measuring ---------------------------------------------------------------------
    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Around one callback request: its steps' time and SQL make one ``Sample``."""
        sample = Sample()
        self._current = sample
        started = time.perf_counter()
        try:
            yield
        finally:
            sample.total = time.perf_counter() - started
            self._current = None
            self._stack.clear()
            claimed = sum(sample.seconds.values())
            sample.seconds[EVERYTHING_ELSE] = max(0.0, sample.total - claimed)
            self.samples.append(sample)

    # -- results -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return [step.name for step in self.steps] + [EVERYTHING_ELSE]

    def median_of(self, name: str) -> float:
        return median([sample.seconds.get(name, 0.0) for sample in self.samples])

    def mean_of(self, name: str) -> float:
        if not self.samples:
            return float("nan")
        return sum(sample.seconds.get(name, 0.0) for sample in self.samples) / len(self.samples)

    def statements_of(self, name: str) -> list[str]:
        """The statements of the step in the last sample (every callback runs the same)."""
        return list(self.samples[-1].statements.get(name, [])) if self.samples else []

    def queries_per_callback(self) -> list[int]:
        return [sum(len(v) for v in sample.statements.values()) for sample in self.samples]


def statement_kind(sql: str) -> str:
    """A statement shown by its kind and table, not its values: ``UPDATE auth_user``."""
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    upper = [word.upper() for word in words]
    if verb == "UPDATE" and len(words) > 1:
        table = words[1]
    elif verb in ("SELECT", "INSERT", "DELETE"):
        keyword = "INTO" if verb == "INSERT" else "FROM"
        table = words[upper.index(keyword) + 1] if keyword in upper[:-1] else ""
    else:
        return verb  # BEGIN, COMMIT, SAVEPOINT ...
    table = table.strip('"')
    return f"{verb} {table}"


def step_rows(ours: StepTimer, stock: StepTimer) -> tuple[list[str], list[list[str]]]:
    """Per step, median and mean time and SQL statements, ours beside stock."""
    names: list[str] = []
    for name in ours.names() + stock.names():
        if name not in names and name != EVERYTHING_ELSE:
            names.append(name)
    names.append(EVERYTHING_ELSE)

    def cells(timer: StepTimer, name: str) -> list[str]:
        if name not in timer.names():
            return ["—", "—", "—"]
        return [
            ms(timer.median_of(name)),
            ms(timer.mean_of(name)),
            str(len(timer.statements_of(name))),
        ]

    def whole(timer: StepTimer) -> list[str]:
        totals = [sample.total for sample in timer.samples]
        queries = [float(q) for q in timer.queries_per_callback()]
        return [
            ms(median(totals)),
            ms(sum(totals) / max(len(totals), 1)),
            f"{median(queries):.0f}",
        ]

    headers = [
        "step",
        "ours: median",
        "ours: mean",
        "ours: SQL",
        "stock: median",
        "stock: mean",
        "stock: SQL",
    ]
    rows = [[name, *cells(ours, name), *cells(stock, name)] for name in names]
    rows.append(["**whole callback**", *whole(ours), *whole(stock)])
    return headers, rows


def statement_lines(timer: StepTimer) -> list[str]:
    """Per step, the statements of one callback, as ``kind table`` in the order run."""
    out = []
    for name in timer.names():
        statements = timer.statements_of(name)
        if statements:
            kinds = ", ".join(statement_kind(sql) for sql in statements)
            out.append(f"{name}: {kinds}")
    return out
