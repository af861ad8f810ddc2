"""Settings of the bookstore demo site.

A development setup (DEBUG on, SQLite, runserver) that signs people in with
django-entra-sso. Everything the site writes lives in ``BOOKSTORE_DATA_DIR``
(default ``example_project/.run/site/``, git-ignored): the SQLite database and
the generated ``secret_key.txt``. Keep that key: the connectors' client secrets
are encrypted with it (``ENTRA_SSO_SECRET_KEYS`` defaults to ``SECRET_KEY``).

Environment variables:

BOOKSTORE_DATA_DIR   where the database and secret key live
DJANGO_SECRET_KEY    use this key instead of the generated one
BOOKSTORE_DEBUG      ``0`` turns DEBUG off (then serve static files yourself)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/

DATA_DIR = Path(os.environ.get("BOOKSTORE_DATA_DIR") or BASE_DIR / ".run" / "site").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    from_env = os.environ.get("DJANGO_SECRET_KEY")
    if from_env:
        return from_env
    path = DATA_DIR / "secret_key.txt"
    if not path.exists():
        # O_EXCL: two processes starting at once cannot both write a key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("BOOKSTORE_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    # First, so that its templates/django_entra_sso/base.html dresses the
    # app's sign-in and error pages in the bookstore's look.
    "bookstore",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_entra_sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django_entra_sso.backends.SSOBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "bookstore.urls"
WSGI_APPLICATION = "bookstore.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "bookstore.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One runserver process: the in-memory cache is enough for provider metadata
# and form_post hand-offs. Several processes (gunicorn -w 4) need a shared one.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "static/"

# Single sign-on: the identifier-first page is the site's sign-in page.
LOGIN_URL = "entra_sso:login"
LOGIN_REDIRECT_URL = "home"
# People without an SSO domain (the demo's admin) sign in with a password here.
ENTRA_SSO_PASSWORD_LOGIN_URL = "/admin/login/"
# After sign-out the IdP sends people back to the shop's front page (demo.sh registers
# it at the local IdP); without this setting they would land on the app's own
# "You have been signed out" page (entra_sso:signed_out).
ENTRA_SSO_POST_LOGOUT_REDIRECT_URL = "home"
# The demo's identity provider runs on 127.0.0.1, and so does the one a customer sets up
# from the printed setup link; a production site keeps this off (the default).
ENTRA_SSO_SETUP_ALLOW_PRIVATE_ADDRESSES = True

# The local IdP runs on 127.0.0.1 and this site on localhost: different host
# names, so their cookies never mix. A name of our own makes that obvious.
SESSION_COOKIE_NAME = "bookstore_sessionid"
CSRF_COOKIE_NAME = "bookstore_csrftoken"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Why a sign-in failed is logged here, never shown in the browser.
    "loggers": {"django_entra_sso": {"handlers": ["console"], "level": "INFO"}},
}
