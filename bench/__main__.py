"""``python -m bench``: run the benchmarks and print one table per figure.

``--quick`` is a small run (under a minute); ``--only 1,3`` picks figures;
the count options shrink or grow a figure (the smoke test uses tiny counts).
A full run writes ``bench/RESULTS.md``; ``--results PATH`` writes elsewhere,
``--results -`` nowhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .config import BenchConfig
from .stacks import parse_stacks

HERE = Path(__file__).resolve().parent


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _stacks(text: str) -> list[str]:
    try:
        names = parse_stacks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if not names:
        raise argparse.ArgumentTypeError("name at least one stack: sqlite, postgres")
    return names


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--only", type=_ints, help="figures to run, e.g. 1,3")
    parser.add_argument("--results", help="where to write the Markdown results ('-': nowhere)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="use PostgreSQL from the PG* environment variables instead of SQLite",
    )
    parser.add_argument("--count-signins", type=int, help="figure 1: sign-ins counted per side")
    parser.add_argument("--signins", type=int, help="figure 2: timed sign-ins per side")
    parser.add_argument(
        "--remote-signins", type=int, help="figure 2: sign-ins per side with the IdP far away"
    )
    parser.add_argument(
        "--remote-idp-ms",
        type=float,
        help="figure 2: milliseconds each IdP answer waits in the far-away table (default 20)",
    )
    parser.add_argument("--rows", type=_ints, help="figure 3: row counts, e.g. 100,10000")
    parser.add_argument("--logouts", type=int, help="figure 3: timed logouts per size")
    parser.add_argument("--connectors", type=int, help="figure 4: connectors")
    parser.add_argument("--posts", type=int, help="figure 4: login POSTs measured")
    parser.add_argument("--load-signins", type=int, help="figure 5: sign-ins per side per stack")
    parser.add_argument("--clients", type=int, help="figure 5: simulated browsers at once")
    parser.add_argument("--workers", type=int, help="figure 5: gunicorn workers")
    parser.add_argument(
        "--time-cap", type=float, help="figure 5: seconds at most per side per stack"
    )
    parser.add_argument(
        "--stacks",
        type=_stacks,
        help="figure 5: stacks to load, e.g. sqlite,postgres (default: both; with "
        "--postgres or ENTRA_SSO_BENCH_PG=1 alone: postgres, i.e. PostgreSQL + Redis)",
    )
    parser.add_argument("--views", type=int, help="figure 6: page views per kind")
    parser.add_argument("--reval-views", type=int, help="figure 7: timed requests per side")
    parser.add_argument("--reval-sessions", type=int, help="figure 7: sessions re-validated")
    parser.add_argument("--scim-users", type=int, help="figure 8: users provisioned by SCIM")
    parser.add_argument("--scim-batch", type=int, help="figure 8: members added per group PATCH")
    parser.add_argument("--saml-signins", type=int, help="figure 9: timed SAML sign-ins per kind")
    parser.add_argument("--api-requests", type=int, help="figure 10: timed API requests per side")
    parser.add_argument(
        "--api-connectors", type=int, help="figure 10: connectors taking API tokens"
    )
    parser.add_argument(
        "--query-signins", type=int, help="figure 11: sign-ins per column, SQL counted"
    )
    args = parser.parse_args(argv)
    cfg = BenchConfig.quick_run() if args.quick else BenchConfig()
    overrides = {
        "figures": args.only,
        "count_signins": args.count_signins,
        "timed_signins": args.signins,
        "remote_signins": args.remote_signins,
        "remote_idp_ms": args.remote_idp_ms,
        "row_sizes": args.rows,
        "logouts": args.logouts,
        "connectors": args.connectors,
        "hrd_posts": args.posts,
        "load_signins": args.load_signins,
        "load_clients": args.clients,
        "load_workers": args.workers,
        "load_time_cap": args.time_cap,
        "page_views": args.views,
        "revalidation_views": args.reval_views,
        "revalidation_sessions": args.reval_sessions,
        "scim_users": args.scim_users,
        "scim_batch": args.scim_batch,
        "saml_signins": args.saml_signins,
        "api_requests": args.api_requests,
        "api_connectors": args.api_connectors,
        "query_signins": args.query_signins,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(cfg, name, value)
    cfg.postgres = args.postgres
    if args.stacks is not None:
        cfg.load_stacks = args.stacks
    elif args.postgres or os.environ.get("ENTRA_SSO_BENCH_PG"):
        # Asked for PostgreSQL: figure 5 loads the production stack only, as it used to.
        cfg.load_stacks = ["postgres+redis"]
    unknown = set(cfg.figures) - set(range(1, 12))
    if unknown:
        parser.error(f"no such figure: {sorted(unknown)}")
    return cfg, args


def main(argv: list[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    if cfg.postgres and not any(k.startswith("PG") for k in os.environ):
        print("--postgres needs PGHOST/PGDATABASE/PGUSER/... in the environment.", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="entra-sso-bench-")
    if cfg.postgres:
        os.environ["ENTRA_SSO_BENCH_DB"] = "postgres"
    else:
        os.environ["ENTRA_SSO_BENCH_SQLITE"] = os.path.join(workdir, "bench.sqlite3")

    # The fake IdP first: stock mozilla-django-oidc's settings are built from its address.
    from .idp import BenchIdP

    idp = BenchIdP()
    os.environ["ENTRA_SSO_BENCH_ISSUER"] = idp.issuer
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from . import figures, load
    from .report import machine_description

    call_command("migrate", verbosity=0)
    if cfg.postgres:
        call_command("flush", interactive=False, verbosity=0)
    database = (
        f"PostgreSQL ({connection.settings_dict['HOST']})"
        if cfg.postgres
        else "SQLite file in a fresh tmp dir (WAL journal), db session engine, LocMem cache"
    )
    header = [
        "# django-entra-sso benchmarks",
        "",
        "Command: `"
        + " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
        + "`",
        "",
        *machine_description(database),
        f"- Identity provider: the project's fake IdP (tests/fakeidp.py via bench/idp.py) on "
        f"loopback {idp.issuer}; figure 5 starts its own copy in a separate process.",
        "- ours = django-entra-sso under /sso/; stock = mozilla-django-oidc "
        "(global OIDC_* settings, OIDC_USE_PKCE=True) under /oidc/; same site, same run.",
        "",
    ]
    print("\n".join(header), flush=True)
    sections = []
    started = time.perf_counter()
    try:
        for number in cfg.figures:
            t0 = time.perf_counter()
            if number == 5:
                figure = load.figure_5(cfg, workdir)
            else:
                figure = figures.run_figure(number, cfg, idp)
            text = figure.markdown() + f"- ({time.perf_counter() - t0:.1f} s to measure)\n"
            print(text, flush=True)
            sections.append(text)
    finally:
        idp.close()
        connection.close()
        shutil.rmtree(workdir, ignore_errors=True)
    # Not named ``load``: that is figure 5's module, imported above.
    loadavg = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    footer = (
        f"Total run time: {time.perf_counter() - started:.0f} s; "
        f"load average at the end: {loadavg}.\n"
    )
    print(footer)
    results = args.results
    if results is None and not cfg.quick:
        results = str(HERE / "RESULTS.md")
    if results and results != "-":
        Path(results).write_text("\n".join(header) + "\n" + "\n".join(sections) + "\n" + footer)
        print(f"Written to {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
