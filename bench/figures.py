"""Figures 1-4 and 6: measured in-process with Django's test ``Client``.

Django must already be set up with ``bench.settings`` and migrated
(``bench/__main__.py`` does that). The fake IdP runs on loopback in a thread of
this process; its ``authorize()`` plays the person approving the sign-in.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_entra_sso.models import Connector, EmailDomain, SSOSession
from django_entra_sso.sessions import end_sessions_for_subject

from .config import BenchConfig
from .idp import CALL_KINDS, BenchIdP
from .report import Figure, Goal, median, ms, p95, ratio

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


def make_connector(idp: BenchIdP) -> Connector:
    connector, _ = Connector.objects.update_or_create(
        slug=OURS_SLUG,
        defaults={
            "name": "Bench",
            "provider": "oidc",
            "issuer": idp.issuer,
            "client_id": idp.client_id,
            "response_mode": "query",
        },
    )
    connector.client_secret = idp.client_secret
    connector.save()
    EmailDomain.objects.update_or_create(domain="contoso.com", defaults={"connector": connector})
    return connector


# -- one sign-in each way ---------------------------------------------------------
def sign_in_ours(client: Client, idp: BenchIdP, email: str = OURS_EMAIL) -> float:
    """Our whole sign-in; returns the seconds the callback request took."""
    start = client.post("/sso/login/", {"email": email})
    if start.status_code != 302:
        raise SignInFailed(f"ours: login POST answered {start.status_code}")
    params = idp.authorize(start["Location"])
    t0 = time.perf_counter()
    done = client.get(f"/sso/callback/{OURS_SLUG}/", params)
    elapsed = time.perf_counter() - t0
    if done.status_code != 302 or done["Location"] != HOME:
        raise SignInFailed(f"ours: callback answered {done.status_code} {done.get('Location')}")
    return elapsed


def sign_in_stock(client: Client, idp: BenchIdP) -> float:
    """Stock mozilla-django-oidc's whole sign-in; returns the callback's seconds."""
    start = client.get("/oidc/authenticate/")
    if start.status_code != 302:
        raise SignInFailed(f"stock: authenticate answered {start.status_code}")
    params = idp.authorize(start["Location"], **STOCK_CLAIMS)
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
    ours_client, stock_client = Client(), Client()
    sign_in_ours(ours_client, idp)
    sign_in_stock(stock_client, idp)
    ours: list[float] = []
    stock: list[float] = []
    errors: Counter[str] = Counter()
    for i in range(n):
        # Interleaved, alternating who goes first, so both share the machine's noise.
        order = ("ours", "stock") if i % 2 == 0 else ("stock", "ours")
        for side in order:
            try:
                if side == "ours":
                    ours.append(sign_in_ours(ours_client, idp))
                else:
                    stock.append(sign_in_stock(stock_client, idp))
            except SignInFailed as exc:
                errors[str(exc)[:80]] += 1
    om, sm = median(ours), median(stock)
    rows = [
        ["ours (django-entra-sso)", str(len(ours)), ms(om), ms(p95(ours)), ratio(om, sm)],
        ["stock (mozilla-django-oidc)", str(len(stock)), ms(sm), ms(p95(stock)), "1.00x"],
    ]
    notes = [
        "Only the callback request is timed (code exchange, ID token check, user lookup, "
        "session login), in-process through Django's test Client; the fake IdP answers on "
        "loopback from a thread of the same process.",
        f"ours/stock median ratio: {ratio(om, sm)}; p95 ratio: {ratio(p95(ours), p95(stock))}.",
    ]
    if errors:
        notes.append(f"Failed sign-ins: {dict(errors)}")
    return Figure(
        2,
        f"Server-side callback time per sign-in ({n} interleaved sign-ins per side)",
        ["side", "sign-ins", "median", "p95", "median vs stock"],
        rows,
        notes=notes,
        goals=[Goal("no failed sign-ins", not errors, f"{sum(errors.values())} failed")],
        data={"ours": ours, "stock": stock, "errors": dict(errors)},
    )


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
                EmailDomain(domain=f"tenant{i}.example", connector_id=pks[f"hrd-{i}"])
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
            f"Middleware of ours in use: {ours_middleware or 'none (the app ships no middleware)'}"
            "; per request, Django's AuthenticationMiddleware instantiates the session's "
            "backend and calls its get_user() (ours inherits mozilla-django-oidc's).",
            "GET /home/ (a view printing request.user) through the test Client, interleaved.",
        ],
        data={name: values for name, values in times.items()},
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
    raise ValueError(f"figure {number} is not an in-process figure")
