"""Django settings for the benchmarks: our app under /sso/ and stock mozilla-django-oidc under /oidc/.

Read from the environment (``bench/__main__.py`` and the load test set them):

- ``ENTRA_SSO_BENCH_ISSUER``: the fake IdP's issuer URL; stock mozilla-django-oidc's
  global ``OIDC_OP_*`` endpoints are built from it.
- ``ENTRA_SSO_BENCH_SQLITE``: the SQLite file (a fresh tmp dir per run).
- ``ENTRA_SSO_BENCH_DB=postgres`` with ``PG*`` variables: PostgreSQL instead.
- ``ENTRA_SSO_BENCH_CACHE_URL``: a ``redis://`` URL makes Django's ``RedisCache`` the
  default cache (shared by gunicorn's workers); unset, the LocMem cache.
- ``ENTRA_SSO_BENCH_SESSIONS``: the session engine, ``db`` (unset) or ``cached_db``.

Figure 5 (``bench/stacks.py``) sets them per stack for its gunicorn and ``manage.py``
processes; each reads them once, here, when Django loads the settings.
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = "bench-only-secret-key-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "bench.urls"
LANGUAGE_CODE = "en"
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_entra_sso",
    "mozilla_django_oidc",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Ours first: it declines everything that is not one of its own sign-ins, so the
# stock backend gets mozilla-django-oidc's callbacks and ModelBackend passwords.
AUTHENTICATION_BACKENDS = [
    "django_entra_sso.backends.SSOBackend",
    "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
    "django.contrib.auth.backends.ModelBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("ENTRA_SSO_BENCH_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "entra_sso_bench"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "CONN_MAX_AGE": 60,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("ENTRA_SSO_BENCH_SQLITE")
            or os.path.join(tempfile.gettempdir(), "entra-sso-bench.sqlite3"),
            # Persistent connections: closing the last connection to a WAL database
            # checkpoints and deletes the WAL file, per request with the default 0.
            "CONN_MAX_AGE": 600,
            # WAL and IMMEDIATE transactions: several gunicorn workers write at once.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

SESSION_ENGINE = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
}[os.environ.get("ENTRA_SSO_BENCH_SESSIONS") or "db"]
_CACHE_URL = os.environ.get("ENTRA_SSO_BENCH_CACHE_URL", "")
if _CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_REDIRECT_URL = "/home/"
LOGIN_REDIRECT_URL_FAILURE = "/failed/"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_entra_sso": {"handlers": ["console"], "level": "WARNING"}},
}

# Stock mozilla-django-oidc 5.x: one provider through global settings.
_ISSUER = os.environ.get("ENTRA_SSO_BENCH_ISSUER", "http://127.0.0.1:9")
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{_ISSUER}/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{_ISSUER}/token"
OIDC_OP_USER_ENDPOINT = f"{_ISSUER}/userinfo"
OIDC_OP_JWKS_ENDPOINT = f"{_ISSUER}/jwks"
OIDC_RP_CLIENT_ID = "test-client"
OIDC_RP_CLIENT_SECRET = "test-secret with spaces+plus"
OIDC_RP_SIGN_ALGO = "RS256"
# The fake IdP insists on PKCE S256 (as ours always sends); stock sends it only when asked.
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
