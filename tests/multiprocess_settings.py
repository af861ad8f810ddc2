"""Settings for app processes started by tests/test_multiprocess.py.

The database and the cache come from the environment so that several processes
share them: ``MP_SQLITE_PATH`` (or ``MP_PG_NAME`` with the PG* variables) and,
optionally, ``MP_REDIS_URL`` with ``MP_SESSION_ENGINE``.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

if os.environ.get("MP_PG_NAME"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["MP_PG_NAME"],
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["MP_SQLITE_PATH"],
            "OPTIONS": {"timeout": 20},
        }
    }

if os.environ.get("MP_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["MP_REDIS_URL"],
            "KEY_PREFIX": os.environ.get("MP_CACHE_PREFIX", "mp"),
        }
    }
SESSION_ENGINE = os.environ.get("MP_SESSION_ENGINE", "django.contrib.sessions.backends.db")
