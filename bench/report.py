"""Tables, statistics and the machine description for the benchmark output."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


@dataclass
class Goal:
    text: str
    met: bool | None  # None: not applicable in this run (e.g. too few samples)
    detail: str

    def line(self) -> str:
        mark = {True: "MET", False: "MISSED", None: "n/a"}[self.met]
        return f"- Goal: {self.text} — **{mark}** ({self.detail})"


def _table_lines(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


@dataclass
class Table:
    """A further table under a figure's main one, introduced by its caption."""

    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    number: int
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: Printed after the main table, before the goals (none: the output is as before).
    extra_tables: list[Table] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"## Figure {self.number}: {self.title}", ""]
        lines.extend(_table_lines(self.headers, self.rows))
        lines.append("")
        for extra in self.extra_tables:
            lines.extend([extra.caption, ""])
            lines.extend(_table_lines(extra.headers, extra.rows))
            lines.append("")
        lines.extend(goal.line() for goal in self.goals)
        lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines).rstrip() + "\n"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    # Nearest-rank percentile: the smallest value with 95 % of samples at or below it.
    rank = max(1, -(-95 * len(ordered) // 100))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description(database: str) -> list[str]:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return [
        f"- Date: {now}; load average at the start: "
        + ", ".join(f"{value:.2f}" for value in load)
        + " (1, 5, 15 min; other work on the machine shows here)",
        f"- CPUs (nproc): {nproc}; CPU model: {cpu_model()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"Django {_version('Django')}, mozilla-django-oidc {_version('mozilla-django-oidc')}, "
        f"PyJWT {_version('PyJWT')}, requests {_version('requests')}, "
        f"gunicorn {_version('gunicorn')}, SQLite {sqlite3.sqlite_version}",
        f"- Database: {database}",
        f"- OS: {platform.platform()}",
    ]
