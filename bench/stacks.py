"""Figure 5's two production-like stacks: what the gunicorn and ``manage.py`` processes get.

A stack is the environment handed to those subprocesses; ``bench/settings.py`` reads it:

- ``sqlite``: a SQLite file with WAL (fresh per run), the ``db`` session engine and the
  LocMem cache (one per gunicorn worker). What figure 5 measured first.
- ``postgres+redis``: PostgreSQL (database ``entra_sso_bench``, never the test suite's
  ``entra_sso``: both may run on one server at once), Django's built-in ``RedisCache``
  shared by all workers, and ``cached_db`` sessions (read from Redis, written to both).

``prepare()`` checks that the servers answer and empties what the run will use; a server
that does not answer raises ``StackUnavailable`` with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: The names ``--stacks`` accepts, and the stack each one means.
ALIASES = {
    "sqlite": "sqlite",
    "postgres": "postgres+redis",
    "postgresql": "postgres+redis",
    "pg": "postgres+redis",
    "postgres+redis": "postgres+redis",
}
ALL_STACKS = ["sqlite", "postgres+redis"]

#: Its own database: the test suite uses ``entra_sso`` on the same server.
PG_DATABASE = "entra_sso_bench"
#: Database 14: the test suite's Redis URL points at database 0.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
PG_DEFAULTS = {
    "PGHOST": "127.0.0.1",
    "PGPORT": "5432",
    "PGUSER": "postgres",
    "PGPASSWORD": "postgres",
}


class StackUnavailable(Exception):
    """A server the stack needs does not answer (the message says which and why)."""


@dataclass(frozen=True)
class Stack:
    name: str
    #: One line for the figure's notes: database, sessions, cache.
    description: str
    #: Variables added to the subprocesses' environment.
    env: dict[str, str] = field(default_factory=dict)
    #: Empty the database after migrating (a server database outlives the run).
    flush: bool = False
    redis_url: str = ""

    def prepare(self) -> None:
        """Fail with ``StackUnavailable`` unless the servers answer; empty the cache."""
        if self.name == "postgres+redis":
            _ensure_pg_database(self.env)
            _flush_redis(self.redis_url)


def parse_stacks(text: str) -> list[str]:
    """``sqlite,postgres`` → ``["sqlite", "postgres+redis"]``, in the order given."""
    names: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key not in ALIASES:
            raise ValueError(f"no such stack: {part.strip()!r} (known: sqlite, postgres)")
        if ALIASES[key] not in names:
            names.append(ALIASES[key])
    return names


def make_stack(name: str, workdir: str) -> Stack:
    if name == "sqlite":
        return Stack(
            name,
            "SQLite file (WAL journal, IMMEDIATE transactions), db sessions, "
            "LocMem cache (one per worker)",
            {"ENTRA_SSO_BENCH_SQLITE": os.path.join(workdir, "load.sqlite3")},
        )
    if name == "postgres+redis":
        pg = {key: os.environ.get(key) or default for key, default in PG_DEFAULTS.items()}
        redis_url = os.environ.get("ENTRA_SSO_BENCH_REDIS_URL") or DEFAULT_REDIS_URL
        return Stack(
            name,
            f"PostgreSQL {pg['PGHOST']}:{pg['PGPORT']} database {PG_DATABASE}, "
            f"cached_db sessions, RedisCache {redis_url} (shared by the workers)",
            {
                **pg,
                "PGDATABASE": PG_DATABASE,
                "ENTRA_SSO_BENCH_DB": "postgres",
                "ENTRA_SSO_BENCH_CACHE_URL": redis_url,
                "ENTRA_SSO_BENCH_SESSIONS": "cached_db",
            },
            flush=True,
            redis_url=redis_url,
        )
    raise ValueError(f"no such stack: {name!r}")


def _ensure_pg_database(env: dict[str, str]) -> None:
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        raise StackUnavailable("psycopg is not installed (pip install -e .[e2e])") from exc
    try:
        # CREATE DATABASE cannot run in a transaction, hence autocommit; the maintenance
        # database ``postgres`` is there on every server.
        with psycopg.connect(
            host=env["PGHOST"],
            port=int(env["PGPORT"]),
            user=env["PGUSER"],
            password=env["PGPASSWORD"],
            dbname="postgres",
            connect_timeout=5,
            autocommit=True,
        ) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [env["PGDATABASE"]]
            ).fetchone()
            if found is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(env["PGDATABASE"]))
                )
    except psycopg.Error as exc:
        where = f"{env['PGUSER']}@{env['PGHOST']}:{env['PGPORT']}"
        raise StackUnavailable(f"PostgreSQL at {where}: {_first_line(exc)}") from exc


def _flush_redis(url: str) -> None:
    try:
        import redis
    except ImportError as exc:
        raise StackUnavailable("redis is not installed (pip install -e .[e2e])") from exc
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        # Leftovers of an earlier run (cached sessions, JWKS, connectors) would make
        # the first sign-ins cheaper than they are.
        client.flushdb()
    except redis.RedisError as exc:
        raise StackUnavailable(f"Redis at {url}: {_first_line(exc)}") from exc
    finally:
        client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
