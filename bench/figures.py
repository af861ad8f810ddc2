"""Figures 1-4 and 6-10: measured in-process with Django's test ``Client``.

Django must already be set up with ``bench.settings`` and migrated
(``bench/__main__.py`` does that). The fake IdP runs on loopback in a thread of
this process; its ``authorize()`` plays the person approving the sign-in.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import time
from collections import Counter
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_entra_sso import providers, revalidation
from django_entra_sso.api.callers import caller_for
from django_entra_sso.api.connectors import connector_for_token, forget_connectors
from django_entra_sso.api.tokens import check_access_token
from django_entra_sso.middleware import SessionRevalidationMiddleware
from django_entra_sso.models import Connector, EmailDomain, SCIMGroup, SCIMUser, SSOSession
from django_entra_sso.scim.auth import new_token
from django_entra_sso.sessions import (
    VALIDATION_SESSION_KEY,
    end_sessions_for_subject,
    session_store_class,
)

from .breakdown import (
    StepTimer,
    our_steps,
    statement_kind,
    statement_lines,
    step_rows,
    stock_steps,
)
from .config import BenchConfig
from .idp import CALL_KINDS, BenchIdP
from .report import Figure, Goal, Table, median, ms, p95, ratio
from .urls import API_SCOPE

User = get_user_model()

OURS_SLUG = "bench"
OURS_EMAIL = "alice@contoso.com"
STOCK_CLAIMS = {
    "sub": "stock-bob",
    "email": "bob@stock.example",
    "given_name": "Bob",
    "family_name": "Stock",
    "sid": "stock-session",
}
HOME = "/home/"


class SignInFailed(Exception):
    pass


class QueryTimer:
    """An ``execute_wrapper`` that adds up the time spent executing SQL."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t0


def make_connector(
    idp: BenchIdP, slug: str = OURS_SLUG, domain: str = "contoso.com", **fields: Any
) -> Connector:
    connector, _ = Connector.objects.update_or_create(
        slug=slug,
        defaults={
            "name": "Bench",
            "provider": "oidc",
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "response_mode": "query",
            **fields,
        },
    )
    connector.client_secret = idp.client_secret
    connector.save()
    EmailDomain.objects.update_or_create(
        domain=domain, defaults={"connector": connector, "verified_at": timezone.now()}
    )
    return connector


# -- one sign-in each way ---------------------------------------------------------
def sign_in_ours(
    client: Client,
    idp: BenchIdP,
    email: str = OURS_EMAIL,
    slug: str = OURS_SLUG,
    claims: dict[str, Any] | None = None,
    timer: StepTimer | None = None,
) -> float:
    """Our whole sign-in; returns the seconds the callback request took.

    ``claims`` go into the ID token (the fake IdP's Alice when not given); a ``timer``
    records where the callback's time goes.
    """
    start = client.post("/sso/login/", {"email": email})
    if start.status_code != 302:
        raise SignInFailed(f"ours: login POST answered {start.status_code}")
    params = idp.authorize(start["Location"], **(claims or {}))
    with timer.measuring() if timer else nullcontext():
        t0 = time.perf_counter()
        done = client.get(f"/sso/callback/{slug}/", params)
        elapsed = time.perf_counter() - t0
    if done.status_code != 302 or done["Location"] != HOME:
        raise SignInFailed(f"ours: callback answered {done.status_code} {done.get('Location')}")
    return elapsed


def sign_in_stock(
    client: Client,
    idp: BenchIdP,
    timer: StepTimer | None = None,
    claims: dict[str, Any] | None = None,
) -> float:
    """Stock mozilla-django-oidc's whole sign-in; returns the callback's seconds."""
    start = client.get("/oidc/authenticate/")
    if start.status_code != 302:
        raise SignInFailed(f"stock: authenticate answered {start.status_code}")
    params = idp.authorize(start["Location"], **(claims or STOCK_CLAIMS))
    with timer.measuring() if timer else nullcontext():
        t0 = time.perf_counter()
        done = client.get("/oidc/callback/", params)
        elapsed = time.perf_counter() - t0
    if done.status_code != 302 or done["Location"] != HOME:
        raise SignInFailed(f"stock: callback answered {done.status_code} {done.get('Location')}")
    return elapsed


def _kinds(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    delta: Counter[str] = Counter()
    for path, count in after.items():
        diff = count - before.get(path, 0)
        if diff:
            delta[CALL_KINDS.get(path, f"other ({path})")] += diff
    return delta


# -- figure 1 -----------------------------------------------------------------------
def figure_1(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    n = cfg.count_signins
    ours_client, stock_client = Client(), Client()
    for _ in range(2):  # warm-up: first sign-ins fetch discovery and JWKS into the cache
        sign_in_ours(ours_client, idp)
        sign_in_stock(stock_client, idp)
    before = idp.snapshot()
    for _ in range(n):
        sign_in_ours(ours_client, idp)
    middle = idp.snapshot()
    for _ in range(n):
        sign_in_stock(stock_client, idp)
    after = idp.snapshot()
    ours, stock = _kinds(before, middle), _kinds(middle, after)
    kinds = ["discovery", "JWKS", "token", "userinfo"]
    kinds += sorted((set(ours) | set(stock)) - set(kinds))
    rows = []
    for kind in kinds:
        rows.append(
            [
                kind,
                str(ours[kind]),
                f"{ours[kind] / n:.2f}",
                str(stock[kind]),
                f"{stock[kind] / n:.2f}",
            ]
        )
    ours_total, stock_total = sum(ours.values()), sum(stock.values())
    rows.append(
        [
            "**all**",
            str(ours_total),
            f"{ours_total / n:.2f}",
            str(stock_total),
            f"{stock_total / n:.2f}",
        ]
    )
    return Figure(
        1,
        f"Network calls the site makes per sign-in ({n} sign-ins each, after 2 warm-up sign-ins)",
        ["call", "ours: total", "ours: per sign-in", "stock: total", "stock: per sign-in"],
        rows,
        goals=[
            Goal(
                "ours makes 1 call per sign-in (token only)",
                ours_total == n and ours["token"] == n,
                f"ours {ours_total / n:.2f} per sign-in, token {ours['token']}/{n}; "
                f"stock {stock_total / n:.2f} per sign-in",
            )
        ],
        notes=[
            f"Counted at the fake IdP (tests/fakeidp.py, subclassed in bench/idp.py) on loopback "
            f"{idp.issuer}; the browser's visit to /authorize is not a call of the site and is "
            "not counted (the test client calls the fake's authorize() directly).",
            "Stock = mozilla-django-oidc "
            "with global OIDC_* settings, OIDC_USE_PKCE=True, OIDC_RP_SIGN_ALGO=RS256.",
        ],
        data={"signins": n, "ours": dict(ours), "stock": dict(stock)},
    )


# -- figure 2 -----------------------------------------------------------------------
def figure_2(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    n = cfg.timed_signins
    # The people exist already (a returning user, the usual sign-in); each sign-in comes
    # from a new browser, as people's do: a browser already signed in as the same user
    # would let stock skip login() altogether (mozilla-django-oidc's login_success()).
    sign_in_ours(Client(), idp)
    sign_in_stock(Client(), idp)
    ours: list[float] = []
    stock: list[float] = []
    errors: Counter[str] = Counter()
    ours_steps, stock_steps_timer = StepTimer(our_steps()), StepTimer(stock_steps())
    with ours_steps.installed(), stock_steps_timer.installed():
        for i in range(n):
            # Interleaved, alternating who goes first, so both share the machine's noise.
            order = ("ours", "stock") if i % 2 == 0 else ("stock", "ours")
            for side in order:
                try:
                    if side == "ours":
                        ours.append(sign_in_ours(Client(), idp, timer=ours_steps))
                    else:
                        stock.append(sign_in_stock(Client(), idp, timer=stock_steps_timer))
                except SignInFailed as exc:
                    errors[str(exc)[:80]] += 1
    far = _far_away_sign_ins(cfg, idp, errors)
    om, sm = median(ours), median(stock)
    rows = [
        ["ours (django-entra-sso)", str(len(ours)), ms(om), ms(p95(ours)), ratio(om, sm)],
        ["stock (mozilla-django-oidc)", str(len(stock)), ms(sm), ms(p95(stock)), "1.00x"],
    ]
    headers, step_table = step_rows(ours_steps, stock_steps_timer)
    notes = [
        "Only the callback request is timed (code exchange, ID token check, user lookup, "
        "session login), in-process through Django's test Client; the fake IdP answers on "
        "loopback from a thread of the same process.",
        f"ours/stock median ratio: {ratio(om, sm)}; p95 ratio: {ratio(p95(ours), p95(stock))}.",
        "Breakdown: bench/breakdown.py wraps each step's functions with timers during the "
        f"same {n} sign-ins per side; a step's time excludes the wrapped steps it calls "
        '(stock\'s JWKS fetch runs inside its ID token check); "everything else" is the '
        "callback minus its steps. Medians of steps do not add up to the median callback; "
        "means do.",
        "SQL per step, ours: " + "; ".join(statement_lines(ours_steps)) + ".",
        "SQL per step, stock: " + "; ".join(statement_lines(stock_steps_timer)) + ".",
        f"IdP {cfg.remote_idp_ms:g} ms away: the fake IdP waits that long before each answer "
        "to the site (discovery, JWKS, token, userinfo), as a round trip to an IdP in a cloud "
        "region would; the sign-ins are interleaved as above, without the step timers. Ours "
        "makes one call per sign-in and stock three, so as the IdP's distance grows the "
        "ratio tends to 1/3. No goal: the goal above is on loopback, where the IdP costs least.",
    ]
    if errors:
        notes.append(f"Failed sign-ins: {dict(errors)}")
    return Figure(
        2,
        f"Server-side callback time per sign-in ({n} interleaved sign-ins per side)",
        ["side", "sign-ins", "median", "p95", "median vs stock"],
        rows,
        notes=notes,
        goals=[
            Goal("no failed sign-ins", not errors, f"{sum(errors.values())} failed"),
            Goal(
                "ours ≤ 0.5x stock's median callback",
                om <= 0.5 * sm if ours and stock else None,
                f"{ratio(om, sm)}",
            ),
        ],
        data={
            "ours": ours,
            "stock": stock,
            "far_ours": far.ours,
            "far_stock": far.stock,
            "far_calls": dict(far.calls),
            "errors": dict(errors),
            "ours_queries": ours_steps.queries_per_callback(),
            "stock_queries": stock_steps_timer.queries_per_callback(),
            "ours_statements": {n: ours_steps.statements_of(n) for n in ours_steps.names()},
            "stock_statements": {
                n: stock_steps_timer.statements_of(n) for n in stock_steps_timer.names()
            },
        },
        extra_tables=[
            Table(
                f"Where the callback's time goes (timers over the same {n} sign-ins per side):",
                headers,
                step_table,
            ),
            far.table(cfg.remote_idp_ms),
        ],
    )


@dataclass
class FarAwaySignIns:
    """Figure 2's sign-ins with the IdP far away: callback seconds and IdP calls per side."""

    ours: list[float] = field(default_factory=list)
    stock: list[float] = field(default_factory=list)
    #: IdP calls by side ("ours", "stock").
    calls: Counter[str] = field(default_factory=Counter)

    def table(self, delay_ms: float) -> Table:
        om, sm = median(self.ours), median(self.stock)
        rows = []
        for name, times, calls, against in (
            ("ours (django-entra-sso)", self.ours, self.calls["ours"], ratio(om, sm)),
            ("stock (mozilla-django-oidc)", self.stock, self.calls["stock"], "1.00x"),
        ):
            per_sign_in = f"{calls / len(times):.2f}" if times else "—"
            rows.append(
                [name, str(len(times)), per_sign_in, ms(median(times)), ms(p95(times)), against]
            )
        return Table(
            f"The same callback with the IdP {delay_ms:g} ms away "
            f"({len(self.ours)} interleaved sign-ins per side):",
            ["side", "sign-ins", "IdP calls per sign-in", "median", "p95", "median vs stock"],
            rows,
        )


def _far_away_sign_ins(cfg: BenchConfig, idp: BenchIdP, errors: Counter[str]) -> FarAwaySignIns:
    far = FarAwaySignIns()
    with idp.far_away(cfg.remote_idp_ms / 1000):
        for i in range(cfg.remote_signins):
            order = ("ours", "stock") if i % 2 == 0 else ("stock", "ours")
            for side in order:
                before = sum(idp.snapshot().get(path, 0) for path in CALL_KINDS)
                try:
                    if side == "ours":
                        far.ours.append(sign_in_ours(Client(), idp))
                    else:
                        far.stock.append(sign_in_stock(Client(), idp))
                except SignInFailed as exc:
                    errors[f"IdP far away: {str(exc)[:60]}"] += 1
                    continue
                far.calls[side] += sum(idp.snapshot().get(p, 0) for p in CALL_KINDS) - before
    return far


# -- figure 3 -----------------------------------------------------------------------
def _session_rows(
    connector: Connector, user: Any, indexes: range | list[int], blob: str
) -> tuple[list[SSOSession], list[Session]]:
    expire = timezone.now() + timedelta(days=1)
    index_rows, session_rows = [], []
    for i in indexes:
        key = f"benchkey{i:024d}"
        index_rows.append(
            SSOSession(
                connector=connector,
                sid=f"bench-sid-{i}",
                subject=f"bench-sub-{i}",
                session_key=key,
                user=user,
            )
        )
        session_rows.append(Session(session_key=key, session_data=blob, expire_date=expire))
    return index_rows, session_rows


def _store(connector: Connector, user: Any, indexes: range | list[int], blob: str) -> None:
    index_rows, session_rows = _session_rows(connector, user, indexes, blob)
    with transaction.atomic():
        Session.objects.bulk_create(session_rows, batch_size=2_000)
        SSOSession.objects.bulk_create(index_rows, batch_size=2_000)


def figure_3(cfg: BenchConfig, idp: BenchIdP, connector: Connector) -> Figure:
    user, _ = User.objects.get_or_create(username="bench-logout-user")
    blob = SessionStore().encode(
        {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": "django_entra_sso.backends.SSOBackend",
            "_auth_user_hash": user.get_session_auth_hash(),
        }
    )
    SSOSession.objects.filter(sid__startswith="bench-sid-").delete()
    Session.objects.filter(session_key__startswith="benchkey").delete()
    client = Client()
    stored = 0
    rng = random.Random(3)
    rows: list[list[str]] = []
    data: dict[str, Any] = {}
    failures = 0
    medians: dict[int, tuple[float, float]] = {}
    db_medians: dict[int, tuple[float, float]] = {}
    for size in sorted(cfg.row_sizes):
        t0 = time.perf_counter()
        _store(connector, user, range(stored, size), blob)
        fill = time.perf_counter() - t0
        stored = size
        total = SSOSession.objects.count()
        by_sid: list[float] = []
        by_sub: list[float] = []
        db_sid: list[float] = []
        db_sub: list[float] = []
        for index in rng.sample(range(size), min(cfg.logouts, size)):
            key = f"benchkey{index:024d}"
            timer = QueryTimer()
            with connection.execute_wrapper(timer):
                t0 = time.perf_counter()
                response = client.get(
                    f"/sso/logout/frontchannel/{OURS_SLUG}/", {"sid": f"bench-sid-{index}"}
                )
                by_sid.append(time.perf_counter() - t0)
            db_sid.append(timer.seconds)
            if response.status_code != 200 or Session.objects.filter(session_key=key).exists():
                failures += 1
            _store(connector, user, [index], blob)
            timer = QueryTimer()
            with connection.execute_wrapper(timer):
                t0 = time.perf_counter()
                ended = end_sessions_for_subject(connector, f"bench-sub-{index}", reason="bench")
                by_sub.append(time.perf_counter() - t0)
            db_sub.append(timer.seconds)
            if ended != 1 or Session.objects.filter(session_key=key).exists():
                failures += 1
            _store(connector, user, [index], blob)
        medians[size] = (median(by_sid), median(by_sub))
        db_medians[size] = (median(db_sid), median(db_sub))
        rows.append(
            [
                f"{size:,}",
                f"{total:,}",
                str(len(by_sid)),
                ms(median(by_sid)),
                ms(p95(by_sid)),
                ms(median(db_sid)),
                ms(median(by_sub)),
                ms(p95(by_sub)),
                ms(median(db_sub)),
                f"{fill:.1f} s",
            ]
        )
        data[str(size)] = {
            "by_sid": by_sid,
            "by_sub": by_sub,
            "db_sid": db_sid,
            "db_sub": db_sub,
            "fill_seconds": fill,
        }
    smallest, largest = min(medians), max(medians)
    sid_ratio = medians[largest][0] / medians[smallest][0]
    sub_ratio = medians[largest][1] / medians[smallest][1]
    db_sid_ratio = db_medians[largest][0] / db_medians[smallest][0]
    db_sub_ratio = db_medians[largest][1] / db_medians[smallest][1]
    return Figure(
        3,
        "Ending one session by sid (front-channel view) and by sub, as stored sessions grow",
        [
            "bench SSOSession rows",
            "SSOSession rows in table",
            "logouts",
            "by sid: median",
            "by sid: p95",
            "by sid: DB time",
            "by sub: median",
            "by sub: p95",
            "by sub: DB time",
            "fill time",
        ],
        rows,
        goals=[
            Goal(
                f"{largest:,}-row time within 1.5x the {smallest:,}-row time",
                sid_ratio <= 1.5 and sub_ratio <= 1.5,
                f"by sid {sid_ratio:.2f}x, by sub {sub_ratio:.2f}x; "
                f"DB time alone: by sid {db_sid_ratio:.2f}x, by sub {db_sub_ratio:.2f}x",
            ),
            Goal("every logout ended its session", failures == 0, f"{failures} failures"),
        ],
        notes=[
            "Each logout ends exactly one session (its SSOSession row and its django_session "
            "row, db session engine); the ended rows are put back outside the timer so the "
            "table size stays constant.",
            "by sid: GET /sso/logout/frontchannel/bench/?sid=… through the test Client "
            "(whole view: template, headers); by sub: "
            "django_entra_sso.sessions.end_sessions_for_subject() called directly. "
            "DB time: the median of the summed SQL execution time per logout (connection."
            "execute_wrapper), the part that depends on the table size; the rest is "
            "Python work and the machine's noise.",
            f"Database: {connection.vendor} ({connection.settings_dict['NAME']}).",
        ],
        data={"sizes": data, "sid_ratio": sid_ratio, "sub_ratio": sub_ratio},
    )


# -- figure 4 -----------------------------------------------------------------------
def _classify(sql: str) -> str:
    lowered = sql.lower()
    if "django_entra_sso_emaildomain" in lowered:
        return "domain lookup"
    if "django_session" in lowered:
        return "session save"
    if "django_entra_sso_connector" in lowered:
        return "connector"
    return "other"


def figure_4(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    count = cfg.connectors
    template = Connector(client_id=idp.client_id)
    template.client_secret = idp.client_secret
    existing = Connector.objects.filter(slug__startswith="hrd-").count()
    t0 = time.perf_counter()
    with transaction.atomic():
        Connector.objects.bulk_create(
            [
                Connector(
                    slug=f"hrd-{i}",
                    name=f"Tenant {i}",
                    provider="oidc",
                    issuer=idp.issuer,
                    client_id=idp.client_id,
                    client_secret_encrypted=template.client_secret_encrypted,
                    response_mode="query",
                )
                for i in range(existing, count)
            ],
            batch_size=2_000,
        )
        pks = dict(Connector.objects.filter(slug__startswith="hrd-").values_list("slug", "pk"))
        EmailDomain.objects.bulk_create(
            [
                EmailDomain(
                    domain=f"tenant{i}.example",
                    connector_id=pks[f"hrd-{i}"],
                    verified_at=timezone.now(),
                )
                for i in range(existing, count)
            ],
            batch_size=2_000,
        )
    fill = time.perf_counter() - t0
    rng = random.Random(4)
    times: list[float] = []
    per_kind: dict[str, list[int]] = {
        "domain lookup": [],
        "session save": [],
        "connector": [],
        "other": [],
    }
    totals: list[int] = []
    other_sql: Counter[str] = Counter()
    failures = 0
    Client().post("/sso/login/", {"email": "warm@tenant0.example"})  # metadata into the cache
    for k in range(cfg.hrd_posts):
        index = rng.randrange(count)
        email = f"person{k}@tenant{index}.example"
        client = Client()  # a visitor with no session yet, as on a first visit
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.post("/sso/login/", {"email": email})
            times.append(time.perf_counter() - t0)
        if response.status_code != 302 or not response["Location"].startswith(
            f"{idp.issuer}/authorize?"
        ):
            failures += 1
        kinds = Counter(_classify(q["sql"]) for q in queries.captured_queries)
        for kind in per_kind:
            per_kind[kind].append(kinds[kind])
        totals.append(len(queries.captured_queries))
        for q in queries.captured_queries:
            if _classify(q["sql"]) == "other":
                other_sql[q["sql"][:60]] += 1
    rows = []
    for kind, values in per_kind.items():
        rows.append([kind, f"{median(values):g}", str(max(values))])
    rows.append(["**all queries**", f"{median(totals):g}", str(max(totals))])
    domain_max = max(per_kind["domain lookup"])
    notes = [
        f"{count:,} connectors with one email domain each (fill {fill:.1f} s); "
        f"{cfg.hrd_posts} POSTs of /sso/login/ with random domains, each from a fresh "
        "client (no session yet), so the session save is an INSERT.",
        f"Median time of the login POST: {ms(median(times))} (p95 {ms(p95(times))}), "
        "including the redirect to the IdP (discovery comes from the cache: all connectors "
        "share the fake IdP's issuer).",
    ]
    if other_sql:
        notes.append(f"Other queries seen: {dict(other_sql)}")
    return Figure(
        4,
        f"Home-realm discovery with {count:,} connectors and domains: DB queries per login POST",
        ["queries by kind", "median per POST", "max per POST"],
        rows,
        goals=[
            Goal(
                "≤ 1 query for the domain lookup",
                domain_max <= 1,
                f"{domain_max} (session save: {median(per_kind['session save']):g} more)",
            ),
            Goal("every POST redirected to the IdP", failures == 0, f"{failures} failed"),
        ],
        notes=notes,
        data={
            "times": times,
            "queries": per_kind,
            "totals": totals,
            "median_post_seconds": median(times),
        },
    )


# -- figure 6 -----------------------------------------------------------------------
def figure_6(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    ours = Client()
    sign_in_ours(ours, idp, email="pageview@contoso.com")
    stock = Client()
    sign_in_stock(stock, idp)
    plain = Client()
    model_user, _ = User.objects.get_or_create(username="bench-password-user")
    plain.force_login(model_user, backend="django.contrib.auth.backends.ModelBackend")
    clients = {"ours": ours, "stock": stock, "plain": plain}
    times: dict[str, list[float]] = {name: [] for name in clients}
    failures = 0
    names = list(clients)
    for i in range(cfg.page_views):
        rotation = names[i % 3 :] + names[: i % 3]
        for name in rotation:
            t0 = time.perf_counter()
            response = clients[name].get(HOME)
            times[name].append(time.perf_counter() - t0)
            if not response.content.startswith(b"signed in as "):
                failures += 1
    base = median(times["plain"])
    ours_middleware = [m for m in settings.MIDDLEWARE if m.startswith("django_entra_sso")]
    rows = [
        [
            "SSOBackend session (ours)",
            ms(median(times["ours"])),
            ms(p95(times["ours"])),
            ratio(median(times["ours"]), base),
        ],
        [
            "OIDCAuthenticationBackend session (stock)",
            ms(median(times["stock"])),
            ms(p95(times["stock"])),
            ratio(median(times["stock"]), base),
        ],
        ["ModelBackend session (plain Django)", ms(base), ms(p95(times["plain"])), "1.00x"],
    ]
    overhead = median(times["ours"]) / base
    return Figure(
        6,
        f"Authenticated page view: what ours adds on every request ({cfg.page_views} views each)",
        ["session signed in through", "median", "p95", "vs plain"],
        rows,
        goals=[
            Goal(
                "ratio ~1.0 (within 1.10x)",
                overhead <= 1.10,
                f"{overhead:.2f}x",
            ),
            Goal("every view saw its user", failures == 0, f"{failures} failures"),
        ],
        notes=[
            f"Middleware of ours in use: {ours_middleware or 'none'} (figure 7 measures "
            "SessionRevalidationMiddleware)"
            "; per request, Django's AuthenticationMiddleware instantiates the session's "
            "backend and calls its get_user() (ours inherits mozilla-django-oidc's).",
            "GET /home/ (a view printing request.user) through the test Client, interleaved.",
        ],
        data={name: values for name, values in times.items()},
    )


# -- figure 7 -----------------------------------------------------------------------
REVALIDATION_MIDDLEWARE = "django_entra_sso.middleware.SessionRevalidationMiddleware"
REVALIDATING_SLUG = "bench-revalidate"
REVALIDATING_DOMAIN = "revalidate.example"
#: Figure 7's window: long enough that every timed request falls between windows.
WINDOW = 3600


def _middleware_lists() -> tuple[list[str], list[str]]:
    """The site's MIDDLEWARE without ours, and with ours right after AuthenticationMiddleware."""
    without = [name for name in settings.MIDDLEWARE if name != REVALIDATION_MIDDLEWARE]
    at = without.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    return without, [*without[:at], REVALIDATION_MIDDLEWARE, *without[at:]]


def _client_running(middleware: list[str]) -> Client:
    # The test Client's handler builds its middleware chain once and keeps it, so
    # two clients built under different settings run side by side in one process.
    client = Client()
    with override_settings(MIDDLEWARE=middleware):
        client.handler.load_middleware()
    return client


def _age(client: Client, seconds: float) -> None:
    """Move the session's last validation ``seconds`` back (tests/test_revalidation.py's age())."""
    session = client.session
    state = dict(session[VALIDATION_SESSION_KEY])
    state["validated_at"] -= seconds
    state["signed_in_at"] -= seconds
    session[VALIDATION_SESSION_KEY] = state
    session.save()


def _calls(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(_kinds(before, after).values())


def _sign_in_revalidating(client: Client, idp: BenchIdP, name: str) -> None:
    email = f"{name}@{REVALIDATING_DOMAIN}"
    claims = {"sub": f"sub-{name}", "email": email, "sid": f"sid-{name}"}
    sign_in_ours(client, idp, email=email, slug=REVALIDATING_SLUG, claims=claims)
    if VALIDATION_SESSION_KEY not in client.session:
        raise SignInFailed("figure 7: the session has no re-validation state")


def _middleware_alone(session_key: str, repeat: int = 2_000) -> tuple[float, float, float]:
    """Seconds per call: the whole middleware, its check() alone, and the reverse() it makes."""
    request = RequestFactory().get(HOME)
    request.session = session_store_class()(session_key)
    answer = HttpResponse()
    middleware = SessionRevalidationMiddleware(lambda request: answer)
    middleware(request)  # loads the session: one query, outside the timer
    per_call = []
    for call in (
        lambda: middleware(request),
        lambda: revalidation.check(request),
        lambda: reverse("entra_sso:login"),
    ):
        t0 = time.perf_counter()
        for _ in range(repeat):
            call()
        per_call.append((time.perf_counter() - t0) / repeat)
    return per_call[0], per_call[1], per_call[2]


def figure_7(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    n, sessions, each = cfg.revalidation_views, cfg.revalidation_sessions, 5
    make_connector(
        idp,
        REVALIDATING_SLUG,
        REVALIDATING_DOMAIN,
        name="Bench (re-validated)",
        revalidate_after=WINDOW,
    )
    without, with_ours = _middleware_lists()
    failures = 0

    def view(client: Client) -> None:
        nonlocal failures
        if not client.get(HOME).content.startswith(b"signed in as "):
            failures += 1

    # (a) and (b): one signed-in session, its cookie in a client without and one with ours.
    plain, checked = _client_running(without), _client_running(with_ours)
    _sign_in_revalidating(checked, idp, "pageview")
    for name, morsel in checked.cookies.items():  # the session's and CSRF's: same request
        plain.cookies[name] = morsel.value
    for _ in range(10):  # warm-up: URL resolver, templates, connections
        view(plain)
        view(checked)
    times: dict[str, list[float]] = {"a": [], "b": []}
    calls_b = 0
    sides = [("a", plain), ("b", checked)]
    for i in range(n):
        # Interleaved, alternating who goes first, so both share the machine's noise.
        for side, client in sides if i % 2 == 0 else sides[::-1]:
            before = idp.snapshot()
            t0 = time.perf_counter()
            response = client.get(HOME)
            times[side].append(time.perf_counter() - t0)
            if side == "b":
                calls_b += _calls(before, idp.snapshot())
            if not response.content.startswith(b"signed in as "):
                failures += 1
    queries: dict[str, list[int]] = {"a": [], "b": []}
    tables: Counter[str] = Counter()
    for _ in range(min(n, 50)):  # counted apart: capturing SQL slows a request down
        for side, client in sides:
            with CaptureQueriesContext(connection) as captured:
                view(client)
            queries[side].append(len(captured.captured_queries))
            if side == "b":
                tables.update(q["sql"].split(" FROM ", 1)[-1].split()[0] for q in captured)
    whole, check_alone, prefix = _middleware_alone(
        checked.cookies[settings.SESSION_COOKIE_NAME].value
    )

    # Set-up check: once this session's window has passed, only (b) re-validates it.
    _age(checked, WINDOW + 1)
    before = idp.snapshot()
    view(plain)
    through_a = _kinds(before, idp.snapshot())["token"]
    before = idp.snapshot()
    view(checked)
    through_b = _kinds(before, idp.snapshot())["token"]
    set_up_ok = through_a == 0 and through_b == 1

    # Calls per session per window: N sessions, `each` requests within a window, then
    # `each` more once their window has passed.
    clients = []
    for k in range(sessions):
        client = _client_running(with_ours)
        _sign_in_revalidating(client, idp, f"leaver{k}")
        clients.append(client)
    before = idp.snapshot()
    for client in clients:
        for _ in range(each):
            view(client)
    within = _calls(before, idp.snapshot())
    per_session: list[int] = []
    other_calls: Counter[str] = Counter()
    stale = 0
    for client in clients:
        _age(client, WINDOW + 1)
        before = idp.snapshot()
        for _ in range(each):
            view(client)
        kinds = _kinds(before, idp.snapshot())
        per_session.append(kinds.pop("token", 0))
        other_calls.update(kinds)
        if time.time() - client.session[VALIDATION_SESSION_KEY]["validated_at"] > 60:
            stale += 1

    am, bm = median(times["a"]), median(times["b"])
    overhead = bm / am
    qa, qb = queries["a"], queries["b"]
    rows = [
        ["median per request", ms(am), ms(bm), ratio(bm, am)],
        [
            "p95 per request",
            ms(p95(times["a"])),
            ms(p95(times["b"])),
            ratio(p95(times["b"]), p95(times["a"])),
        ],
        [
            "DB queries per request (median / max)",
            _spread(qa),
            _spread(qb),
            f"{max(qb) - max(qa):+d}",
        ],
        [
            "IdP calls per request between windows",
            "0 (no middleware)",
            f"{calls_b / n:.2f} ({calls_b} in {n})",
            "—",
        ],
        [
            f"IdP calls: {sessions} sessions, {each} requests each, within one window",
            "n/a",
            str(within),
            "—",
        ],
        [
            f"token calls per session once its window passed ({each} requests each)",
            "n/a",
            f"{median(per_session):g} (min {min(per_session)}, max {max(per_session)})",
            "—",
        ],
    ]
    return Figure(
        7,
        f"Session re-validation: per-request cost ({n} interleaved requests per side)",
        ["measure", "(a) without the middleware", "(b) with the middleware", "b vs a"],
        rows,
        goals=[
            Goal("median b/a ≤ 1.05x", overhead <= 1.05, f"{overhead:.3f}x"),
            Goal(
                "(b) makes no more DB queries per request than (a)",
                max(qb) <= max(qa),
                f"max {max(qb)} with, {max(qa)} without",
            ),
            Goal(
                "0 IdP calls per request between windows",
                calls_b == 0 and within == 0,
                f"{calls_b + within} calls",
            ),
            Goal(
                "1 token call per session per window",
                per_session.count(1) == sessions and not other_calls and stale == 0,
                f"{sum(per_session)} token calls for {sessions} sessions; other calls: "
                f"{dict(other_calls) or 'none'}; sessions left unvalidated: {stale}",
            ),
            Goal(
                "every request saw its user; only (b) re-validates a due session",
                failures == 0 and set_up_ok,
                f"{failures} failures; due session's token calls through (a) {through_a}, "
                f"through (b) {through_b}",
            ),
        ],
        notes=[
            f"GET /home/ (prints request.user) through Django's test Client with one SSO session "
            f"signed in at connector {REVALIDATING_SLUG!r} (revalidate_after={WINDOW} s, refresh "
            "token stored); (a) and (b) are two clients sharing its session cookie, their "
            f"handlers built with MIDDLEWARE without and with {REVALIDATION_MIDDLEWARE} "
            "(after AuthenticationMiddleware).",
            f"The middleware alone, session already loaded: {whole * 1e6:.1f} µs per request, of "
            f"which revalidation.check() {check_alone * 1e6:.1f} µs; most of the rest is "
            "its test of the app's own URL prefix, a reverse('entra_sso:login') per request "
            f"({prefix * 1e6:.1f} µs alone).",
            f"Queries were counted on {len(qa)} further requests per side (tables: "
            f"{dict(tables)}); the window-passed rows age each session's validated_at in the "
            "session store, as tests/test_revalidation.py does.",
        ],
        data={
            "a": times["a"],
            "b": times["b"],
            "queries": queries,
            "calls_between_windows": calls_b + within,
            "token_calls_per_session": per_session,
            "middleware_seconds": whole,
            "check_seconds": check_alone,
            "reverse_seconds": prefix,
        },
    )


# -- figure 8 -----------------------------------------------------------------------
SCIM_SLUG = "bench-scim"
SCIM_DOMAIN = "scim.example"
SCIM_GROUP = "Everyone"
SIZED_GROUP = "Sized"
SCIM_USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#: Requests whose queries are counted at each end of the provisioning run.
SCIM_SAMPLE = 100


class QueryLog:
    """An ``execute_wrapper`` that keeps each statement's SQL and execution time."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, float]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, time.perf_counter() - t0))

    @property
    def seconds(self) -> float:
        return sum(seconds for _sql, seconds in self.queries)


class ScimClient:
    """One connector's SCIM client, as tests/test_scim.py's ``Scim``: JSON in, bearer token."""

    def __init__(self, connector: Connector, token: str) -> None:
        self.client = Client()
        self.base = f"/sso/scim/v2/{connector.slug}/"
        self.auth = f"Bearer {token}"

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        return getattr(self.client, method)(
            self.base + path,
            data=json.dumps(body),
            content_type="application/scim+json",
            HTTP_AUTHORIZATION=self.auth,
        )

    def add_members(self, group_id: str, user_ids: list[str]) -> Any:
        operation = {"op": "add", "path": "members", "value": [{"value": i} for i in user_ids]}
        return self.send(
            "patch",
            f"Groups/{group_id}",
            {"schemas": [SCIM_PATCH_SCHEMA], "Operations": [operation]},
        )


def _scim_user(i: int) -> dict[str, Any]:
    email = f"person{i:06d}@{SCIM_DOMAIN}"
    return {
        "schemas": [SCIM_USER_SCHEMA],
        "userName": email,
        "externalId": f"scim-ext-{i}",
        "name": {"givenName": "Person", "familyName": f"No{i}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }


def _measured(call: Any) -> tuple[Any, float, int, QueryLog]:
    """``call()``'s answer, seconds, queries as Django counts them, and each SQL's time."""
    log = QueryLog()
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(log):
        t0 = time.perf_counter()
        response = call()
        elapsed = time.perf_counter() - t0
    return response, elapsed, len(captured.captured_queries), log


def _grown(start: list[QueryLog], end: list[QueryLog]) -> list[tuple[float, float, str]]:
    """Each statement's median time at the start and the end, the most grown first."""
    times: dict[str, tuple[list[float], list[float]]] = {}
    for index, logs in enumerate((start, end)):
        for log in logs:
            for sql, seconds in log.queries:
                times.setdefault(sql, ([], []))[index].append(seconds)
    rows = [(median(a), median(b), sql) for sql, (a, b) in times.items() if a and b]
    return sorted(rows, key=lambda row: row[1] - row[0], reverse=True)


def _ends(values: list[Any], share: int) -> tuple[list[Any], list[Any]]:
    """The first and last ``share`` values (at least one each)."""
    share = max(1, share)
    return values[:share], values[-share:]


def _spread(counts: list[int]) -> str:
    return f"{median(counts):g} / {max(counts)}"


def figure_8(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    n, batch, sessions = cfg.scim_users, cfg.scim_batch, cfg.scim_sessions
    mapping = {SCIM_GROUP: ["staff"], SIZED_GROUP: ["sized"]}
    connector = make_connector(
        idp, SCIM_SLUG, SCIM_DOMAIN, name="Bench (SCIM)", group_mapping=mapping
    )
    User.objects.filter(scim_links__connector=connector).delete()
    connector.scim_groups.all().delete()
    # The mapped Django groups exist already, as they do once anyone has been granted
    # them: the first grant ever would create the group (two more queries, once).
    for names in mapping.values():
        for name in names:
            Group.objects.get_or_create(name=name)
    scim = ScimClient(connector, new_token(connector))
    failures: Counter[str] = Counter()

    def expect(response: Any, status: int, what: str) -> None:
        if response.status_code != status:
            failures[f"{what}: {response.status_code}"] += 1

    # 1. Provision n users, one POST /Users each.
    times: list[float] = []
    counts: dict[str, list[int]] = {"start": [], "end": []}
    logs: dict[str, list[QueryLog]] = {"start": [], "end": []}
    ids: list[str] = []
    sample = min(SCIM_SAMPLE, max(1, n // 2))
    started = time.perf_counter()
    for i in range(n):
        end = "start" if i < sample else "end" if i >= n - sample else None

        def post(i: int = i) -> Any:
            return scim.send("post", "Users", _scim_user(i))

        if end is None:
            t0 = time.perf_counter()
            response = post()
            times.append(time.perf_counter() - t0)
        else:
            response, elapsed, count, log = _measured(post)
            times.append(elapsed)
            counts[end].append(count)
            logs[end].append(log)
        expect(response, 201, "POST /Users")
        if response.status_code == 201:
            ids.append(json.loads(response.content)["id"])
    provision_seconds = time.perf_counter() - started
    user_db = {end: median([log.seconds for log in logs[end]]) for end in logs}
    grown_posts = _grown(logs["start"], logs["end"])

    # 2. One group with everyone in it, added `batch` members per PATCH.
    created = scim.send(
        "post", "Groups", {"schemas": [SCIM_GROUP_SCHEMA], "displayName": SCIM_GROUP}
    )
    expect(created, 201, "POST /Groups")
    group_id = json.loads(created.content)["id"]
    patch_times: list[float] = []
    patch_counts: list[int] = []
    patch_logs: list[QueryLog] = []
    for at in range(0, len(ids), batch):
        chunk = ids[at : at + batch]
        response, elapsed, count, log = _measured(
            lambda chunk=chunk: scim.add_members(group_id, chunk)
        )
        expect(response, 204, "PATCH /Groups add members")
        patch_times.append(elapsed)
        patch_counts.append(count)
        patch_logs.append(log)
    share = len(patch_counts) // 10
    first_counts, last_counts = _ends(patch_counts, share)
    first_times, last_times = _ends(patch_times, share)
    first_logs, last_logs = _ends(patch_logs, share)
    grown_patches = _grown(first_logs, last_logs)
    members = SCIMGroup.objects.get(connector=connector, display_name=SCIM_GROUP).members.count()
    staff = User.objects.filter(groups__name="staff", scim_links__connector=connector).count()

    # The batch size alone: a fresh group, one PATCH of `small` members, one of `large` others.
    small = min(10, max(1, len(ids) // 3))
    large = min(100, len(ids) - small)
    sized = scim.send(
        "post", "Groups", {"schemas": [SCIM_GROUP_SCHEMA], "displayName": SIZED_GROUP}
    )
    expect(sized, 201, "POST /Groups")
    sized_id = json.loads(sized.content)["id"]
    by_size: dict[int, int] = {}
    for size, chunk in ((small, ids[:small]), (large, ids[small : small + large])):
        response, _elapsed, count, _log = _measured(lambda c=chunk: scim.add_members(sized_id, c))
        expect(response, 204, "PATCH /Groups add members")
        by_size[size] = count

    # 3. One person signed in `sessions` times, deactivated by PATCH active=false.
    leaver = 0
    leaver_email = f"person{leaver:06d}@{SCIM_DOMAIN}"
    browsers = []
    for k in range(sessions):
        browser = Client()
        claims = {"sub": f"scim-ext-{leaver}", "email": leaver_email, "sid": f"scim-sid-{k}"}
        sign_in_ours(browser, idp, email=leaver_email, slug=SCIM_SLUG, claims=claims)
        browsers.append(browser)
    person = SCIMUser.objects.get(connector=connector, external_id=f"scim-ext-{leaver}").user
    keys = [browser.session.session_key for browser in browsers]
    store = session_store_class()
    live_before = sum(store().exists(key) for key in keys)
    indexed_before = SSOSession.objects.filter(user=person).count()
    deactivate = {
        "schemas": [SCIM_PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    response, deactivate_seconds, deactivate_queries, _log = _measured(
        lambda: scim.send("patch", f"Users/{ids[leaver]}", deactivate)
    )
    expect(response, 200, "PATCH /Users active=false")
    ended = sum(not store().exists(key) for key in keys)
    indexed_after = SSOSession.objects.filter(user=person).count()
    signed_out = sum(b.get(HOME).content == b"signed out" for b in browsers)

    start_n, end_n = len(counts["start"]), len(counts["end"])
    rows = [
        [
            f"POST /Users ({len(ids):,} users)",
            f"{len(ids) / provision_seconds:.0f} req/s; median {ms(median(times))}, "
            f"p95 {ms(p95(times))}",
            f"{_spread(counts['start'])} (DB {ms(user_db['start'])})",
            f"{_spread(counts['end'])} (DB {ms(user_db['end'])})",
        ],
        [
            f"PATCH /Groups, {batch} members added ({len(patch_counts)} PATCHes, "
            f"{members:,} members at the end)",
            f"median {ms(median(patch_times))}, p95 {ms(p95(patch_times))}",
            f"{_spread(first_counts)} ({ms(median(first_times))})",
            f"{_spread(last_counts)} ({ms(median(last_times))})",
        ],
        [
            f"PATCH /Groups of a fresh group: {small} vs {large} members",
            "—",
            f"{by_size[small]} ({small} members)",
            f"{by_size[large]} ({large} members)",
        ],
        [
            f"PATCH /Users active=false, {sessions} live SSO sessions",
            ms(deactivate_seconds),
            f"{deactivate_queries} queries",
            f"{ended} of {len(keys)} sessions ended",
        ],
    ]
    notes = [
        f"Through Django's test Client at /sso/scim/v2/{SCIM_SLUG}/ with the connector's "
        f"bearer token; the connector maps the SCIM group {SCIM_GROUP!r} to the Django group "
        "'staff' (and 'Sized' to 'sized'), so every PATCH also syncs Django group memberships "
        f"({staff:,} users in 'staff' at the end).",
        f"Queries: median / max per request, as CaptureQueriesContext counts them, on the first "
        f"{start_n} and last {end_n} POSTs and on the first and last {len(first_counts)} "
        f"PATCHes; DB = median summed SQL execution time per request (execute_wrapper); "
        "PATCH columns show the median request time in brackets. "
        f"Provisioning took {provision_seconds:.1f} s.",
    ]
    for label, grown in (("POST /Users", grown_posts), ("PATCH /Groups", grown_patches)):
        for rank, (a, b, sql) in enumerate(grown[:2], 1):
            notes.append(
                f"{label}: statement #{rank} by growth of its median time, start → end, "
                f"{a * 1e6:.0f} µs → {b * 1e6:.0f} µs: `{sql[:200]}`"
            )
    notes.append(
        f"Deactivation: {sessions} sign-ins through the fake IdP as {leaver_email} (one "
        f"browser each) gave {live_before} live sessions and {indexed_before} SSOSession rows; "
        f"after the PATCH: {indexed_after} rows left, {signed_out} of {len(browsers)} browsers "
        "signed out on their next request."
    )
    if failures:
        notes.append(f"Failed requests: {dict(failures)}")
    return Figure(
        8,
        f"SCIM provisioning: {len(ids):,} users, one group of them all, one deactivation",
        ["request", "time", "queries at the start", "queries at the end"],
        rows,
        goals=[
            Goal(
                "POST /Users: the same queries per request at the end as at the start",
                max(counts["end"]) == max(counts["start"])
                and min(counts["end"]) == min(counts["start"]),
                f"{_spread(counts['start'])} → {_spread(counts['end'])} (median / max)",
            ),
            Goal(
                f"PATCH /Groups: the same queries per PATCH whatever the group holds "
                f"and for {small} or {large} members",
                len(set(patch_counts)) == 1 and by_size[small] == by_size[large],
                f"{sorted(set(patch_counts))} over {len(patch_counts)} PATCHes; "
                f"{by_size[small]} vs {by_size[large]}",
            ),
            Goal(
                f"deactivation ends all {sessions} sessions",
                live_before == sessions
                and ended == sessions
                and indexed_after == 0
                and signed_out == sessions,
                f"{ended} of {live_before} ended",
            ),
            Goal(
                "no failed requests",
                not failures and members == len(ids) == n,
                f"{sum(failures.values())} failed; {members:,} of {n:,} in the group",
            ),
        ],
        notes=notes,
        data={
            "post_times": times,
            "post_queries": counts,
            "patch_times": patch_times,
            "patch_queries": patch_counts,
            "by_size": by_size,
            "deactivate_seconds": deactivate_seconds,
            "sessions_ended": ended,
        },
    )


# -- figure 9 -----------------------------------------------------------------------

SAML_SLUG = "bench-saml"
SAML_DOMAIN = "saml.example"
SAML_SP = f"http://testserver/sso/saml/metadata/{SAML_SLUG}/"
SAML_ACS = f"http://testserver/sso/saml/acs/{SAML_SLUG}/"
SAML_ATTRIBUTES = {
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": [f"alice@{SAML_DOMAIN}"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Alice"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ["Liddell"],
}


class _XmlsecCount:
    """Counts the ``xmlsec1`` processes started per sign-in (one per signature or decryption):
    pysaml2's own (its version checks), and the runs our backend starts with a timeout."""

    def __init__(self) -> None:
        import saml2.sigver

        from django_entra_sso.saml import client

        # Both did ``from subprocess import Popen``: each module's name is replaced.
        self.modules: list[Any] = [saml2.sigver, client]
        self.originals = [module.Popen for module in self.modules]
        self.count = 0

    def __enter__(self) -> _XmlsecCount:
        for module, original in zip(self.modules, self.originals, strict=True):
            module.Popen = self._counting(original)
        return self

    def _counting(self, original: Any) -> Any:
        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        return counting

    def __exit__(self, *exc: object) -> None:
        for module, original in zip(self.modules, self.originals, strict=True):
            module.Popen = original


def sign_in_saml(client: Client, saml_idp: Any, *, encrypt_to: Any = None) -> tuple[float, int]:
    """A SAML sign-in; returns the seconds of the ACS (its POST and the resumed GET) and
    the ``xmlsec1`` processes they started. Making the Response is not timed."""
    from tests.saml_fake_idp import post_form_value, read_redirect_request, request_id

    start = client.post("/sso/login/", {"email": f"alice@{SAML_DOMAIN}"})
    if start.status_code != 302:
        raise SignInFailed(f"saml: login POST answered {start.status_code}")
    xml, params = read_redirect_request(start["Location"])
    answer = saml_idp.response(
        destination=SAML_ACS,
        audience=SAML_SP,
        in_response_to=request_id(xml),
        attributes=SAML_ATTRIBUTES,
        encrypt_to=encrypt_to,
    )
    form = {"SAMLResponse": post_form_value(answer), "RelayState": params["RelayState"]}
    with _XmlsecCount() as processes:
        t0 = time.perf_counter()
        posted = client.post(f"/sso/saml/acs/{SAML_SLUG}/", form)
        done = client.get(posted["Location"]) if posted.status_code == 303 else posted
        elapsed = time.perf_counter() - t0
    if done.status_code != 302 or done["Location"] != HOME:
        raise SignInFailed(f"saml: ACS answered {done.status_code} {done.get('Location')}")
    return elapsed, processes.count


def figure_9(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    from tests.saml_fake_idp import FakeSAMLIdP, KeyPair

    saml_idp = FakeSAMLIdP()
    connector, _created = Connector.objects.update_or_create(
        slug=SAML_SLUG,
        defaults={
            "name": "Bench SAML",
            "protocol": "saml",
            "provider": "oidc",
            "saml_metadata_xml": saml_idp.metadata_xml(),
        },
    )
    EmailDomain.objects.get_or_create(
        domain=SAML_DOMAIN, defaults={"connector": connector, "verified_at": timezone.now()}
    )
    n = cfg.saml_signins
    clients = {"oidc": Client(), "saml": Client(), "saml-encrypted": Client()}
    Client().get(f"/sso/saml/metadata/{SAML_SLUG}/")  # makes the connector's key pair
    connector.refresh_from_db()
    sp_cert = KeyPair(private_key_pem="", certificate_pem=connector.sp_certificate, cert_b64="")
    sign_in_ours(clients["oidc"], idp)
    sign_in_saml(clients["saml"], saml_idp)
    sign_in_saml(clients["saml-encrypted"], saml_idp, encrypt_to=sp_cert)
    times: dict[str, list[float]] = {side: [] for side in clients}
    processes: dict[str, list[int]] = {side: [] for side in clients}
    errors: Counter[str] = Counter()
    for i in range(n):
        sides = list(clients)
        random.Random(i).shuffle(sides)  # shared noise: each round in its own order
        for side in sides:
            try:
                if side == "oidc":
                    times[side].append(sign_in_ours(clients[side], idp))
                    processes[side].append(0)
                else:
                    encrypt = sp_cert if side == "saml-encrypted" else None
                    seconds, started = sign_in_saml(clients[side], saml_idp, encrypt_to=encrypt)
                    times[side].append(seconds)
                    processes[side].append(started)
            except SignInFailed as exc:
                errors[str(exc)[:80]] += 1
    base = median(times["oidc"])
    labels = {
        "oidc": "OIDC callback (ours, for scale)",
        "saml": "SAML ACS, signed assertion",
        "saml-encrypted": "SAML ACS, signed and encrypted assertion",
    }
    rows = [
        [
            labels[side],
            str(len(times[side])),
            ms(median(times[side])),
            ms(p95(times[side])),
            ratio(median(times[side]), base),
            f"{median([float(p) for p in processes[side]]):.0f}",
        ]
        for side in clients
    ]
    notes = [
        "SAML: the ACS's POST (kept in the cache) and the resumed GET (metadata from the "
        "pasted XML, pysaml2 set up with the connector's key pair, signature checked and "
        "assertion decrypted by xmlsec1 processes, user lookup, login) are timed; the fake "
        "IdP's signing and encrypting is not. OIDC: the callback, with its token request "
        "over loopback, as in figure 2.",
        "xmlsec1 is a process per signature check or decryption (pysaml2's backend): most of "
        "the SAML time is starting it.",
    ]
    if errors:
        notes.append(f"Failed sign-ins: {dict(errors)}")
    return Figure(
        9,
        f"SAML sign-in: server time at the ACS ({n} interleaved sign-ins per kind)",
        ["sign-in", "count", "median", "p95", "vs OIDC", "xmlsec1 runs"],
        rows,
        notes=notes,
        goals=[Goal("no failed sign-ins", not errors, f"{sum(errors.values())} failed")],
        data={"times": times, "xmlsec1": processes, "errors": dict(errors)},
    )


# -- figure 10 ----------------------------------------------------------------------
API_AUDIENCE = "api://bench"
API_SLUG = "bench-api-"
API_PATHS = {"bearer": "/api/bearer/", "session": "/api/session/"}
#: Cold and warm issuer lookups measured (random API connectors, and the bench one).
API_LOOKUPS = 100
#: Requests per side whose SQL is counted (apart: capturing SQL slows a request down).
API_COUNTED = 50


def _api_token(idp: BenchIdP, **claims: Any) -> str:
    """A delegated access token for the bench API, signed with the fake IdP's key."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": API_AUDIENCE,
        "sub": "subject-alice",  # the fake IdP's Alice: her sign-in made the identity
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scp": API_SCOPE,
        "azp": "bench-spa",
        **claims,
    }
    return idp.sign({k: v for k, v in values.items() if v is not None})


def _tenant(i: int) -> str:
    """Entra-like tenant IDs, one per API connector."""
    return f"{i:08x}-be9c-4b3a-8d1e-{i:012x}"


def _api_connectors(count: int) -> tuple[list[tuple[str, int]], float]:
    """``count - 1`` Entra tenant connectors taking API tokens (bulk-created, kept across
    figures); returns their ``(issuer, pk)`` and the seconds it took."""
    others = max(0, count - 1)  # the bench connector is the count's last one
    existing = Connector.objects.filter(slug__startswith=API_SLUG).count()
    t0 = time.perf_counter()
    with transaction.atomic():
        Connector.objects.bulk_create(
            [
                Connector(
                    slug=f"{API_SLUG}{i}",
                    name=f"API tenant {i}",
                    provider=providers.ENTRA_ID,
                    issuer=providers.entra_issuer_for_tenant(_tenant(i)),
                    client_id=f"client-{i}",
                    api_audiences=[f"api://tenant-{i}", f"client-{i}"],
                )
                for i in range(existing, others)
            ],
            batch_size=2_000,
        )
    rows = Connector.objects.filter(slug__startswith=API_SLUG).values_list("issuer", "pk")
    return list(rows)[:others], time.perf_counter() - t0


def _issuer_indexes() -> list[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Connector._meta.db_table)
    return [
        name
        for name, c in constraints.items()
        if c.get("columns") == ["issuer"] and c.get("index") and not c.get("primary_key")
    ]


def _plan(sql: str) -> str:
    """The database's plan for ``sql`` (as CaptureQueriesContext recorded it, values inline)."""
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "; ".join(str(row[-1]) for row in cursor.fetchall())


def _uses_index(plan: str, indexes: list[str]) -> bool:
    if connection.vendor == "sqlite":
        return any(name in plan for name in indexes) or "USING INDEX" in plan
    return any(name in plan for name in indexes) or "Index" in plan


def _lookup(idp: BenchIdP, iss: str) -> tuple[Any, Any, float, list[str], list[str]]:
    """``connector_for_token`` on a cold then a warm cache: both answers, the cold one's
    seconds, and each one's SQL."""
    token = idp.sign({"iss": iss, "sub": "bench-lookup"})
    forget_connectors()  # what a connector change does: every cached answer is stale
    with CaptureQueriesContext(connection) as cold:
        t0 = time.perf_counter()
        found = connector_for_token(token)
        seconds = time.perf_counter() - t0
    with CaptureQueriesContext(connection) as warm:
        again = connector_for_token(token)
    return (
        found,
        again,
        seconds,
        [q["sql"] for q in cold.captured_queries],
        [q["sql"] for q in warm.captured_queries],
    )


def _per_call(call: Any, repeat: int) -> float:
    """Median seconds of ``call()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return median(times)


def _table_of(sql: str) -> str:
    return sql.split(" FROM ", 1)[-1].split()[0].strip('"') if " FROM " in sql else sql[:30]


def figure_10(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    if importlib.util.find_spec("rest_framework") is None:
        raise RuntimeError(
            "figure 10 needs Django REST framework: pip install -e .[drf] (or djangorestframework)"
        )
    n, count = cfg.api_requests, cfg.api_connectors
    connector = make_connector(idp, api_audiences=[API_AUDIENCE])
    tenants, fill = _api_connectors(count)
    api_connectors = Connector.objects.exclude(api_audiences=[]).count()
    sharing = Connector.objects.filter(issuer=idp.issuer).count()

    # Alice signs in once through the browser: the session side's session, and the
    # identity her delegated token is looked up by.
    session_client, bearer_client = Client(), Client()
    sign_in_ours(session_client, idp)
    alice = User.objects.get(
        sso_identities__issuer=idp.issuer, sso_identities__subject="subject-alice"
    )
    token = _api_token(idp)
    bearer: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    expected = {"user": alice.get_username()}
    failures: Counter[str] = Counter()

    def call(side: str) -> Any:
        if side == "bearer":
            return bearer_client.get(API_PATHS["bearer"], **bearer)
        return session_client.get(API_PATHS["session"])

    def check(side: str, response: Any) -> None:
        if response.status_code != 200 or json.loads(response.content) != expected:
            failures[f"{side}: {response.status_code}"] += 1

    # The endpoints guard: no token, no session, a token without the scope.
    refusals = {
        "bearer endpoint, no token": Client().get(API_PATHS["bearer"]).status_code,
        "bearer endpoint, token without the scope": bearer_client.get(
            API_PATHS["bearer"],
            HTTP_AUTHORIZATION=f"Bearer {_api_token(idp, scp='Other.Read')}",
        ).status_code,
        "session endpoint, no session": Client().get(API_PATHS["session"]).status_code,
    }
    refused = {"bearer endpoint, no token": 401}
    refused_ok = all(status == refused.get(what, 403) for what, status in refusals.items())

    for _ in range(20):  # warm-up: metadata and JWKS into the cache, URL resolver, connections
        for side in API_PATHS:
            check(side, call(side))
    times: dict[str, list[float]] = {side: [] for side in API_PATHS}
    sides = list(API_PATHS)
    before = idp.snapshot()
    for i in range(n):
        # Interleaved, alternating who goes first, so both share the machine's noise.
        for side in sides if i % 2 == 0 else sides[::-1]:
            t0 = time.perf_counter()
            response = call(side)
            times[side].append(time.perf_counter() - t0)
            check(side, response)
    network = _kinds(before, idp.snapshot())
    calls = sum(network.values())

    queries: dict[str, list[int]] = {side: [] for side in API_PATHS}
    tables: dict[str, Counter[str]] = {side: Counter() for side in API_PATHS}
    for _ in range(min(n, API_COUNTED)):
        for side in sides:
            with CaptureQueriesContext(connection) as captured:
                check(side, call(side))
            queries[side].append(len(captured.captured_queries))
            tables[side].update(_table_of(q["sql"]) for q in captured.captured_queries)

    # Where the bearer side's time goes: its steps alone, warm.
    repeat = min(n, 500)
    checked = check_access_token(token)
    step_lookup = _per_call(lambda: connector_for_token(token), repeat)
    step_check = _per_call(lambda: check_access_token(token), repeat)
    step_caller = _per_call(lambda: caller_for(checked), repeat)

    # The issuer lookup among `count` API connectors: cold cache, then warm.
    rng = random.Random(10)
    samples = [(idp.issuer, connector.pk)]
    samples += rng.sample(tenants, min(API_LOOKUPS, len(tenants)))
    indexes = _issuer_indexes()
    cold_counts, warm_counts, cold_times = [], [], []
    wrong = 0
    plans: dict[str, str] = {}
    warm_by_pk = True
    for iss, pk in samples:
        found, again, seconds, cold_sql, warm_sql = _lookup(idp, iss)
        if found is None or again is None or found.pk != pk or again.pk != pk:
            wrong += 1
        cold_counts.append(len(cold_sql))
        warm_counts.append(len(warm_sql))
        cold_times.append(seconds)
        warm_by_pk &= all(re.search(r'"id" = \d+', sql) for sql in warm_sql)
        kind = "bench" if iss == idp.issuer else "tenant"
        if cold_sql and kind not in plans:
            plans[kind] = _plan(cold_sql[0])
    indexed = bool(plans) and all(_uses_index(plan, indexes) for plan in plans.values())
    forget_connectors()
    with CaptureQueriesContext(connection) as first:  # for the notes: the query itself
        connector_for_token(token)
    cold_query = first.captured_queries[0]["sql"] if first.captured_queries else "none"
    if " FROM " in cold_query:  # the columns say nothing; the rest says how it is found
        cold_query = "SELECT … FROM " + cold_query.split(" FROM ", 1)[1]

    bm, sm = median(times["bearer"]), median(times["session"])
    overhead = bm / sm
    qb, qs = queries["bearer"], queries["session"]

    def rps(side: str) -> str:
        return f"{len(times[side]) / sum(times[side]):.0f}" if times[side] else "n/a"

    rows = [
        [
            "requests per second",
            rps("bearer"),
            rps("session"),
            ratio(sum(times["session"]), sum(times["bearer"])),
        ],
        ["median per request", ms(bm), ms(sm), ratio(bm, sm)],
        [
            "p95 per request",
            ms(p95(times["bearer"])),
            ms(p95(times["session"])),
            ratio(p95(times["bearer"]), p95(times["session"])),
        ],
        [
            "DB queries per request (median / max)",
            _spread(qb),
            _spread(qs),
            f"{max(qb) - max(qs):+d}",
        ],
        [
            "IdP calls per request after warm-up",
            f"{calls / n:.2f} ({calls} in {n})" if n else "n/a",
            "0 (no token)",
            "—",
        ],
        [
            f"issuer lookup, cold cache: queries (median / max) over {len(samples)} issuers",
            f"{_spread(cold_counts)} ({ms(median(cold_times))} median)",
            "—",
            "—",
        ],
        [
            "issuer lookup, warm cache: queries (median / max)",
            _spread(warm_counts) + (" (by pk)" if warm_by_pk and max(warm_counts) else ""),
            "—",
            "—",
        ],
    ]
    notes = [
        f"GET {API_PATHS['bearer']} (DRF APIView, JSONRenderer, IsAuthenticated, "
        f"BearerTokenAuthentication, required_scopes={[API_SCOPE]}) with a delegated access "
        f"token of {alice.get_username()!r} (signed with the fake IdP's key, aud "
        f"{API_AUDIENCE!r}), vs GET {API_PATHS['session']} (the same view with DRF's "
        "SessionAuthentication) with her browser session (signed in through our SSOBackend, "
        "db session engine); through Django's test Client, interleaved, after 20 warm-up "
        "requests each. Requests per second: sequential, one request at a time, in-process.",
        f"The bearer side's steps alone, warm, median of {repeat}: check_access_token() "
        f"{step_check * 1e6:.0f} µs (of which the issuer lookup connector_for_token() "
        f"{step_lookup * 1e6:.0f} µs; the rest: header, cached discovery and JWKS, RS256 "
        f"signature, claims), caller_for() (identity → user) {step_caller * 1e6:.0f} µs.",
        f"Queries were counted on {len(qb)} further requests per side; tables: bearer "
        f"{dict(tables['bearer'])}, session {dict(tables['session'])}.",
        f"Issuer lookup: {api_connectors:,} connectors with API audiences ({len(tenants):,} "
        f"Entra tenant connectors, each its own issuer, bulk-created in {fill:.1f} s, and the "
        f"bench connector); django_entra_sso.api.connectors.connector_for_token() called "
        f"directly for the bench issuer and {len(samples) - 1} random tenant issuers, its cache "
        "entry deleted first (cold), then again (warm). Cold query: "
        f"`{cold_query[:300]}`.",
        f"Issuer indexes: {indexes or 'none found'}; plans ({connection.vendor}): "
        + "; ".join(f"{kind} issuer: `{plan}`" for kind, plan in plans.items())
        + ".",
        "Endpoints refuse: "
        + ", ".join(f"{what} → {status}" for what, status in refusals.items())
        + ".",
    ]
    if sharing > 1:
        notes.append(
            f"{sharing:,} connectors share the bench connector's issuer (figure 4's, without "
            "API audiences): the bench issuer's cold lookup reads all of their rows and keeps "
            f"the one with API audiences ({ms(cold_times[0])} for it)."
        )
    if network:
        notes.append(f"IdP calls during the timed requests: {dict(network)}")
    if failures:
        notes.append(f"Failed requests: {dict(failures)}")
    return Figure(
        10,
        f"API access tokens: a DRF endpoint with a bearer token vs a session ({n} interleaved "
        f"requests per side; issuer lookup among {api_connectors:,} API connectors)",
        ["measure", "bearer token", "session", "bearer vs session"],
        rows,
        goals=[
            Goal("median bearer/session ≤ 1.2x", overhead <= 1.2, f"{overhead:.2f}x"),
            Goal(
                "0 IdP calls per request in steady state",
                calls == 0,
                f"{calls} calls in {n} requests",
            ),
            Goal(
                "cold issuer lookup: one query, through the issuer index",
                set(cold_counts) == {1} and indexed,
                f"queries {sorted(set(cold_counts))}; plan uses the index: {indexed}",
            ),
            Goal(
                "warm issuer lookup: at most the lookup by pk",
                max(warm_counts) <= 1 and warm_by_pk,
                f"queries {sorted(set(warm_counts))}; by pk: {warm_by_pk}",
            ),
            Goal(
                "every request answered 200 as the signed-in user, every lookup found its "
                "connector, the endpoints refuse without credentials (no failed requests)",
                not failures and not wrong and refused_ok,
                f"{sum(failures.values())} failed, {wrong} wrong lookups, refusals {refusals}",
            ),
        ],
        notes=notes,
        data={
            "bearer": times["bearer"],
            "session": times["session"],
            "queries": queries,
            "network": dict(network),
            "cold_queries": cold_counts,
            "warm_queries": warm_counts,
            "cold_seconds": cold_times,
            "plans": plans,
            "steps": {"check": step_check, "lookup": step_lookup, "caller": step_caller},
        },
    )


def run_figure(number: int, cfg: BenchConfig, idp: BenchIdP) -> Figure:
    connector = make_connector(idp)
    if number == 1:
        return figure_1(cfg, idp)
    if number == 2:
        return figure_2(cfg, idp)
    if number == 3:
        return figure_3(cfg, idp, connector)
    if number == 4:
        return figure_4(cfg, idp)
    if number == 6:
        return figure_6(cfg, idp)
    if number == 7:
        return figure_7(cfg, idp)
    if number == 8:
        return figure_8(cfg, idp)
    if number == 9:
        return figure_9(cfg, idp)
    if number == 10:
        return figure_10(cfg, idp)
    if number == 11:
        return figure_11(cfg, idp)
    raise ValueError(f"figure {number} is not an in-process figure")


# -- figure 11 ----------------------------------------------------------------------
#: Steps whose statements are Django's own (the session engine, ``login()``), not ours.
DJANGO_STEPS = ("session read", "login() (key cycle, last_login)", "session save")
#: Our own statements per returning-user callback, and why each is needed (the goal).
OUR_STATEMENTS = {
    "SELECT django_entra_sso_connector": "which connector the callback is for (its IdP, rules)",
    "SELECT django_entra_sso_emaildomain": "whose the email's domain is now (verification can "
    "be withdrawn any time)",
    "SELECT django_entra_sso_identity": "who the person is (the identity, joined with its user)",
    "UPDATE django_entra_sso_identity": "the identity's last_seen",
    "INSERT django_entra_sso_ssosession": "the session index front- and back-channel logout need",
    "INSERT django_entra_sso_signinevent": "the sign-in log row",
}
OUR_TRANSACTIONS = 2  # the sign-in's own, and the log row's (a log failure never fails it)


def _statement_counts(timer: StepTimer) -> dict[str, list[int]]:
    """Per step, the statement count of every sample (they should all be equal)."""
    counts: dict[str, list[int]] = {}
    for name in timer.names():
        counts[name] = [len(sample.statements.get(name, [])) for sample in timer.samples]
    return counts


def _ours_alone(timer: StepTimer) -> tuple[list[str], int]:
    """Our own statements of the last sample (no Django step), and its transactions."""
    mine = [
        statement_kind(sql)
        for name in timer.names()
        if name not in DJANGO_STEPS
        for sql in timer.statements_of(name)
    ]
    data = [kind for kind in mine if kind not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]
    return data, mine.count("COMMIT")


def figure_11(cfg: BenchConfig, idp: BenchIdP) -> Figure:
    n = cfg.query_signins
    timers = {
        ("ours", "returning"): StepTimer(our_steps()),
        ("ours", "first"): StepTimer(our_steps()),
        ("stock", "returning"): StepTimer(stock_steps()),
        ("stock", "first"): StepTimer(stock_steps()),
    }
    sign_in_ours(Client(), idp)  # the returning people exist, caches are warm
    sign_in_stock(Client(), idp)
    run_id = random.randrange(1 << 30)
    with ExitStack() as stack:
        for timer in timers.values():
            stack.enter_context(timer.installed())
        for i in range(n):
            sign_in_ours(Client(), idp, timer=timers["ours", "returning"])
            sign_in_stock(Client(), idp, timer=timers["stock", "returning"])
            person = f"first-{run_id}-{i}"
            sign_in_ours(
                Client(),
                idp,
                claims={"sub": person, "email": f"{person}@contoso.com"},
                timer=timers["ours", "first"],
            )
            sign_in_stock(
                Client(),
                idp,
                claims={**STOCK_CLAIMS, "sub": person, "email": f"{person}@stock.example"},
                timer=timers["stock", "first"],
            )
    names: list[str] = []
    for timer in timers.values():
        names += [name for name in timer.names() if name not in names]
    counts = {key: _statement_counts(timer) for key, timer in timers.items()}
    steady = all(
        len(set(per_sample)) <= 1 for by_step in counts.values() for per_sample in by_step.values()
    )

    def cell(key: tuple[str, str], name: str) -> str:
        per_sample = counts[key].get(name)
        if per_sample is None:
            return "—"
        low, high = min(per_sample, default=0), max(per_sample, default=0)
        return str(low) if low == high else f"{low}-{high}"

    rows = [[name, *(cell(key, name) for key in timers)] for name in names]
    totals = {key: timer.queries_per_callback() for key, timer in timers.items()}
    rows.append(
        [
            "**whole callback**",
            *(f"{median([float(t) for t in totals[key]]):.0f}" for key in timers),
        ]
    )
    data_statements, commits = _ours_alone(timers["ours", "returning"])
    expected = sorted(OUR_STATEMENTS)
    notes = [
        f"{n} sign-ins per column, each from a new browser (Django's test Client); statements "
        "caught with connection.execute_wrapper, COMMITs by wrapping the database wrapper's "
        "commit; each statement is counted in the step that ran it (bench/breakdown.py). "
        "Returning: the person signed in before; first: a new person each time (user created).",
        "Django's own statements (session read, login()'s key cycle and last_login, the "
        "session save) are the same for both sides on the db session engine; figure 5's "
        "production stack (cached_db sessions on Redis) reads the session from the cache.",
        "Ours, returning user, statement by statement: "
        + "; ".join(statement_lines(timers["ours", "returning"]))
        + ".",
        "Stock, returning user: " + "; ".join(statement_lines(timers["stock", "returning"])) + ".",
        "Ours, first sign-in, the account step: "
        + ", ".join(
            statement_kind(sql)
            for sql in timers["ours", "first"].statements_of("account (lookup, writes)")
        )
        + ".",
        "Why each of ours is there: "
        + "; ".join(f"{kind} — {why}" for kind, why in OUR_STATEMENTS.items())
        + ".",
    ]
    return Figure(
        11,
        f"SQL statements per sign-in callback, by step ({n} sign-ins per column)",
        ["step", "ours: returning", "ours: first", "stock: returning", "stock: first"],
        rows,
        notes=notes,
        goals=[
            Goal(
                f"ours runs exactly its {len(OUR_STATEMENTS)} needed statements of its own "
                f"for a returning user, in {OUR_TRANSACTIONS} transactions",
                sorted(data_statements) == expected and commits == OUR_TRANSACTIONS,
                f"{len(data_statements)} statements ({', '.join(data_statements)}), "
                f"{commits} commits",
            ),
            Goal(
                "the same count on every sign-in of a kind",
                steady,
                "constant" if steady else "varies: see the ranges",
            ),
        ],
        data={
            "counts": {f"{side} {kind}": c for (side, kind), c in counts.items()},
            "totals": {f"{side} {kind}": t for (side, kind), t in totals.items()},
            "ours_statements": data_statements,
            "ours_commits": commits,
        },
    )
