#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need, starts
# PostgreSQL and Redis on loopback, then runs ruff and pytest on SQLite and PostgreSQL.
#
#   ./scripts/run-tests.sh              everything (what CI runs)
#   ./scripts/run-tests.sh -k signin    extra arguments go to pytest (both database runs)
#   SKIP_SYSTEM_INSTALL=1 ...           do not apt-get (you installed chromium, postgresql,
#                                       redis-server and nodejs yourself)
#   SKIP_POSTGRES=1 ...                 no PostgreSQL pass
#   SKIP_DJANGO42=1 ...                 no Django 4.2 LTS pass
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"
log() { printf '\n==> %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------
need=()
for pkg in chromium postgresql redis-server nodejs npm xmlsec1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ] && [ -z "${SKIP_SYSTEM_INSTALL:-}" ]; then
  # nodejs/npm may come from elsewhere on this machine: only install when absent.
  if command -v node >/dev/null 2>&1; then
    need=("${need[@]/nodejs}"); need=("${need[@]/npm}")
  fi
  pkgs=$(printf '%s ' "${need[@]}" | xargs)
  if [ -n "$pkgs" ]; then
    log "apt-get install $pkgs"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
  fi
fi

# --- Python packages (a virtualenv of the project's own) -----------------------------
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  log "creating .venv"
  python3 -m venv "$ROOT/.venv"
fi
PY="$ROOT/.venv/bin/python"
log "pip install -e .[test,e2e]"
"$PY" -m pip install -q --upgrade pip >/dev/null
"$PY" -m pip install -q -e ".[test,e2e]"

# --- npm packages for the real OpenID provider ------------------------------------
log "npm ci (node-oidc-provider)"
(cd tests/e2e/provider && npm ci --no-audit --no-fund --loglevel=error)
log "npm ci (samlify SAML IdP)"
(cd tests/e2e/saml_idp && npm ci --no-audit --no-fund --loglevel=error)

# --- PostgreSQL and Redis on loopback ------------------------------------------------
export PGHOST=127.0.0.1 PGPORT="${PGPORT:-5432}" PGUSER=postgres PGPASSWORD=postgres PGDATABASE=entra_sso
if [ -z "${SKIP_POSTGRES:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; then
    log "starting PostgreSQL"
    cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
    if [ -n "$cluster" ]; then
      pg_ctlcluster $cluster start || true
    else
      service postgresql start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 1; done
  fi
  if [ "$(id -u)" -eq 0 ]; then
    su - postgres -c "psql -q -d postgres -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
  pg_isready -h 127.0.0.1 -p "$PGPORT"
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no \
    --logfile "$RUN_DIR/redis.log"
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
export ENTRA_SSO_TEST_REDIS_URL="redis://127.0.0.1:6379/0"

# --- lint --------------------------------------------------------------------------
log "ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .
log "mypy"
"$PY" -m mypy django_entra_sso

# --- tests -------------------------------------------------------------------------
log "pytest on SQLite"
"$PY" -m pytest "$@"
if [ -z "${SKIP_POSTGRES:-}" ]; then
  log "pytest on PostgreSQL"
  ENTRA_SSO_TEST_DB=postgres "$PY" -m pytest -m "not sqlite_only" -p no:cacheprovider "$@"
fi
# Django 4.2 LTS: the app's own suite once more (the browser, demo and benchmark
# tests exercise the same code paths and stay on the newest Django).
if [ -z "${SKIP_DJANGO42:-}" ]; then
  log "pytest on Django 4.2 LTS (SQLite)"
  if [ ! -x "$ROOT/.venv-django42/bin/python" ]; then
    python3 -m venv "$ROOT/.venv-django42"
  fi
  "$ROOT/.venv-django42/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$ROOT/.venv-django42/bin/python" -m pip install -q "Django>=4.2,<5.0" -e ".[test]" redis
  "$ROOT/.venv-django42/bin/python" -m pytest -p no:cacheprovider \
    --ignore=tests/e2e --ignore=tests/test_demo.py --ignore=tests/test_bench_smoke.py "$@"
fi
log "all tests passed"
